"""petsum.assemble.order: the item order learned from written impressions, in the assembler, the summarizer
and `petsum order`."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import FIXTURES, REPO

from petsum.assemble.impression import assemble
from petsum.assemble.order import (
    ItemOrder,
    Source,
    _common,
    context,
    finding_entries,
    finding_items,
    fit,
    ordered_entries,
    ordered_items,
    reference_items,
)
from petsum.assemble.pointer import PointerOrder
from petsum.cli import main as petsum
from petsum.text.rules import suv_max
from shared.schema import Example

# A house that writes the lung cancer first, then the liver cyst, then the gallstone.
HOUSE = [
    reference_items(t)
    for t in ["1、右肺癌伴纵隔淋巴结转移。  2、肝囊肿。  3、胆囊结石。"] * 5 + ["1. 肺癌。2. 胆囊结石。"] * 3
]
# Findings in report order (chest, then abdomen) and an impression that numbers the abdomen first,
# listing two of its findings in one item.
REPORT = Example(
    "1",
    "右肺上叶见软组织结节，大小约2.0cm，放射性摄取增高，SUVmax8.5。纵隔未见肿大淋巴结。   "
    "肝脏见低密度灶，无放射性摄取。胆囊内见高密度结石影。",
    "1、胆囊结石；肝囊肿。  2、右肺上叶高代谢结节，考虑肺癌。",
)


def test_reference_items_split_at_item_numbers_not_at_decimals():
    assert reference_items("1、肝囊肿，大小约2.5cm。  2.胆囊结石。3．肾囊肿。") == [
        "肝囊肿，大小约2.5cm。",
        "胆囊结石。",
        "肾囊肿。",
    ]
    assert reference_items("全身PET/CT未见异常。") == ["全身PET/CT未见异常。"]


def test_fit_learns_the_house_order_and_survives_json():
    order, n = fit(HOUSE, n_grams=50, rank=4, epochs=30, lr=0.05)
    assert n == 21
    items = ["胆囊结石。", "肝囊肿。", "左肺上叶结节，考虑肺癌。"]
    assert order.arrange(items) == ["左肺上叶结节，考虑肺癌。", "肝囊肿。", "胆囊结石。"]
    again = ItemOrder.from_json(json.loads(json.dumps(order.to_json(), ensure_ascii=False)))
    assert again.arrange(items) == order.arrange(items)
    assert again.first == pytest.approx(order.first, abs=1e-6) and again.after == pytest.approx(
        order.after, abs=1e-6
    )  # float32 kept
    assert order.arrange(["肝囊肿。"]) == ["肝囊肿。"] and order.arrange([]) == []
    with pytest.raises(ValueError, match="two or more items"):
        fit([["肝囊肿。"]])


@pytest.mark.slow  # fits an item order: seconds to a minute on a busy 2-core machine
def test_the_pair_term_learns_what_follows_what():
    # This house keeps an organ's items together: the duct dilatation follows the pancreatic
    # mass and comes before the lung nodule, but after the lung nodule that follows a lung
    # cancer. No score per item can write both lists; a score of which item follows which can.
    house = [["胰头癌。", "胰管扩张。", "肺结节。"], ["肺癌。", "肺结节。", "胰管扩张。"]] * 30
    paired, _ = fit(house, n_grams=100, rank=8, epochs=40, lr=0.05)
    alone, _ = fit(house, n_grams=100, rank=0, epochs=40, lr=0.05)
    assert paired.after.shape == (len(paired.features), 8) and alone.after.shape == (len(alone.features), 0)
    assert [paired.arrange(list(reversed(written))) for written in house[:2]] == house[:2]
    assert [alone.arrange(list(reversed(written))) for written in house[:2]] != house[:2]


def test_an_order_written_by_earlier_versions_still_reads_as_the_same_order():
    # `petsum order` once stored a ridge regression of position; items sort by it, ascending
    stored = {"weights": {"肝": 0.5, "肺": -0.5, "胆": 0.9}, "ranks": [0.0, 0.1, 0.2], "bias": 0.3}
    order = ItemOrder.from_json(stored)
    items = ["胆囊结石。", "肝囊肿。", "左肺上叶结节。", "脾大。"]
    positions = {
        i: sum(w for g, w in stored["weights"].items() if g in i) + 0.2 for i in items
    }  # none names malignancy or uptake: rank 2
    assert order.arrange(items) == sorted(items, key=positions.get)
    with pytest.raises(ValueError, match="ranks"):
        ItemOrder.from_json({**stored, "ranks": [0.0]})
    fitted = fit(HOUSE, n_grams=50, rank=2, epochs=1)[0].to_json()
    with pytest.raises(ValueError, match="numbers in its tables"):
        ItemOrder.from_json({**fitted, "rank": 3})
    with pytest.raises(ValueError, match="beam 0"):  # else arrange would fail mid-summary
        ItemOrder.from_json({**fitted, "beam": 0})
    with pytest.raises(ValueError, match="temperature -1"):
        ItemOrder.from_json({**fitted, "temperature": -1})
    before_the_vote = {k: v for k, v in fitted.items() if k != "temperature"} | {
        "beam": 5
    }  # an order fitted before the vote
    again = ItemOrder.from_json(before_the_vote)
    assert (again.beam, again.temperature) == (5, 0.0) and ItemOrder.from_json(fitted).temperature == 2.0


def test_the_order_written_is_the_beam_that_agrees_most_with_the_others():
    # The most probable order puts item 3 first; every other beam starts 0, 1, 2. Voting by the
    # items they share in the same order picks the one the others agree with, not the top one.
    beams = [
        (-1.0, [3, 0, 1, 2]),
        (-1.1, [0, 1, 2, 3]),
        (-1.2, [0, 1, 3, 2]),
        (-1.3, [0, 3, 1, 2]),
        (-1.4, [1, 0, 2, 3]),
    ]
    voting = ItemOrder({}, np.zeros(0), np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0), beam=5, temperature=2.0)
    assert voting._choose(beams, [1, 1, 1, 1]) == [0, 1, 2, 3]
    assert replace(voting, temperature=0.0)._choose(beams, [1, 1, 1, 1]) == [3, 0, 1, 2]  # no vote: the top beam
    assert (
        _common([0, 1, 2], [2, 0, 1], [1, 1, 1]) == 2 and _common([0, 1, 2], [2, 0, 1], [1, 1, 40]) == 40
    )  # items weigh their length
    assert voting._choose(beams[:1], [1, 1, 1, 1]) == [3, 0, 1, 2]


def test_features_are_the_same_on_every_run():
    from collections import Counter

    from petsum.assemble.fitted import most_common

    assert most_common(Counter({"b": 1, "a": 1, "c": 2}), 2) == ["c", "a"]  # ties by the key, not by insertion


def test_finding_targets_stand_where_their_first_piece_stands_in_the_impression():
    # what a finding model writes: one target per finding, not the impression's numbered items
    assert finding_items(REPORT) == ["胆囊结石。", "肝囊肿。", "右肺上叶高代谢结节，考虑肺癌。"]
    assert ordered_items([REPORT], "finding") == [finding_items(REPORT)]
    assert ordered_items([REPORT]) == [["胆囊结石；肝囊肿。", "右肺上叶高代谢结节，考虑肺癌。"]]


def test_context_says_region_place_in_the_report_and_suv_rank():
    sources = [
        Source("abdomen", "胰头部肿块，放射性摄取增高，SUVmax：12.5。", 3),
        Source("chest", "右肺结节，SUVmax:2.1，SUV max 4.0。", 0),
        Source("abdomen", "肝囊肿。", 2),
    ]
    assert [suv_max(s.text) for s in sources] == [12.5, 4.0, None]
    assert context(sources) == [
        ["<region abdomen>", "<place 2>", "<last 1>", "<suv rank 0>", "<suv bin 6>"],
        ["<region chest>", "<place 0>", "<last 0>", "<suv rank 1>", "<suv bin 2>"],
        ["<region abdomen>", "<place 1>", "<last 0>", "<suv none>"],
    ]


def test_items_of_one_finding_share_its_place_and_suv_rank():
    lung, liver = Source("chest", "右肺结节，SUVmax:6.0。", 0), Source("abdomen", "肝脏结节，SUVmax:3.0。", 4)
    said = context([lung, lung, liver])  # the lung finding answered in two sentences
    assert said[0] == said[1] == ["<region chest>", "<place 0>", "<last 0>", "<suv rank 0>", "<suv bin 3>"]
    assert said[2] == ["<region abdomen>", "<place 1>", "<last 1>", "<suv rank 1>", "<suv bin 1>"]


def test_finding_entries_name_the_finding_each_target_is_from():
    entries = finding_entries(REPORT)
    assert [t for t, _ in entries] == finding_items(REPORT)
    assert [(s.region, s.index) for _, s in entries] == [("abdomen", 2), ("abdomen", 1), ("chest", 0)]
    assert entries[2][1].text.startswith("右肺上叶见软组织结节") and "SUVmax8.5" in entries[2][1].text
    items, sources = ordered_entries([REPORT], "finding")
    assert items == [finding_items(REPORT)] and sources == [[s for _, s in entries]]
    assert ordered_entries([REPORT]) == (
        ordered_items([REPORT]),
        None,
    )  # which section a numbered item is from is not known


@pytest.mark.slow  # fits an item order: seconds to a minute on a busy 2-core machine
def test_an_order_with_context_learns_what_the_words_do_not_say():
    # The same two items, and a house that writes first whichever finding has the hotter lesion:
    # the words cannot tell the lists apart, the SUVmax rank can.
    def source(region: str, suv: float, k: int) -> Source:
        return Source(region, f"见结节，SUVmax:{suv}。", k)

    lists = [
        (["肝结节。", "肺结节。"], [source("abdomen", 9.0, 1), source("chest", 3.0, 0)]),
        (["肺结节。", "肝结节。"], [source("chest", 8.0, 0), source("abdomen", 2.0, 1)]),
    ] * 30
    items, sources = [i for i, _ in lists], [s for _, s in lists]
    with_context, n = fit(items, n_grams=20, rank=4, epochs=40, lr=0.05, sources=sources)
    words_only, _ = fit(items, n_grams=20, rank=4, epochs=40, lr=0.05)
    assert n == 120 and "<suv rank 0>" in with_context.features and "<suv rank 0>" not in words_only.features
    hot_liver = [source("chest", 2.5, 0), source("abdomen", 7.0, 1)]
    hot_lung = [source("chest", 7.0, 0), source("abdomen", 2.5, 1)]
    assert with_context.arrange(["肺结节。", "肝结节。"], hot_liver) == ["肝结节。", "肺结节。"]
    assert with_context.arrange(["肺结节。", "肝结节。"], hot_lung) == ["肺结节。", "肝结节。"]
    assert words_only.arrange(["肺结节。", "肝结节。"], hot_liver) == words_only.arrange(
        ["肺结节。", "肝结节。"], hot_lung
    )  # context it was not fitted on is ignored
    again = ItemOrder.from_json(json.loads(json.dumps(with_context.to_json(), ensure_ascii=False)))
    assert again.arrange(["肺结节。", "肝结节。"], hot_liver) == ["肝结节。", "肺结节。"]
    with pytest.raises(ValueError, match="one Source per item"):
        fit(items, sources=sources[:-1])
    with pytest.raises(ValueError, match="2 items but 1 sources"):
        with_context.arrange(["肺结节。", "肝结节。"], hot_liver[:1])


@pytest.mark.slow  # fits an item order: seconds to a minute on a busy 2-core machine
def test_the_assembler_gives_the_order_each_item_source():
    lists = [
        (["肝结节。", "肺结节。"], [Source("abdomen", "SUVmax:9.0。", 1), Source("chest", "SUVmax:3.0。", 0)]),
        (["肺结节。", "肝结节。"], [Source("chest", "SUVmax:8.0。", 0), Source("abdomen", "SUVmax:2.0。", 1)]),
    ] * 30
    order, _ = fit([i for i, _ in lists], n_grams=20, rank=4, epochs=40, lr=0.05, sources=[s for _, s in lists])
    outputs = [
        ("chest", "肺结节。"),
        ("abdomen", "未见明显异常。"),
        ("abdomen", "肝结节。"),
    ]  # per call; the normal one is no item
    sources = [
        Source("chest", "SUVmax:2.0。", 0),
        Source("abdomen", "脾脏未见异常。", 1),
        Source("abdomen", "SUVmax:6.0。", 2),
    ]
    assert assemble(outputs, {"chest", "abdomen"}, order, None, sources).split("\n")[:2] == [
        "1、肝结节。",
        "2、肺结节。",
    ]
    hot_lung = [Source("chest", "SUVmax:6.0。", 0), sources[1], Source("abdomen", "SUVmax:2.0。", 2)]
    assert assemble(outputs, {"chest", "abdomen"}, order, None, hot_lung).split("\n")[:2] == [
        "1、肺结节。",
        "2、肝结节。",
    ]
    with pytest.raises(ValueError, match="3 outputs but 2 sources"):
        assemble(outputs, None, order, None, sources[:2])


def test_the_assembler_numbers_items_by_the_learned_order():
    outputs = [("chest", "左肺上叶结节，考虑肺癌。"), ("abdomen", "胆囊结石。肝囊肿。")]
    order, _ = fit(HOUSE, n_grams=50, rank=4, epochs=30, lr=0.05)
    by_rule = assemble(outputs).split("\n")[:2]
    assert by_rule == [
        "1、左肺上叶结节，考虑肺癌。",
        "2、胆囊结石；肝囊肿。",
    ]  # suspicion, then as written; one region, one number
    assert assemble(outputs, item_order=order).split("\n")[:2] == [
        "1、左肺上叶结节，考虑肺癌。",
        "2、肝囊肿；胆囊结石。",
    ]


@pytest.mark.slow
def test_petsum_order_writes_the_order_the_summarizer_then_uses(pet_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)  # the session's run stays as other tests expect it
    before = json.loads((run / "ases.json").read_text(encoding="utf-8"))
    res = CliRunner().invoke(
        petsum, ["order", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run), "--grams", "200"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((run / "ases.json").read_text(encoding="utf-8")) == before  # the manifest is left alone
    fitted = json.loads((run / "fitted.json").read_text(encoding="utf-8"))
    assert (
        set(fitted) == {"item_order", "closing_line"} and len(fitted["item_order"]["features"]) == 200 + 3
    )  # n-grams and suspicion ranks
    assert (
        "impression items" in res.output and str(run / "fitted.json") in res.output
    )  # a region model writes the impression's items
    from petsum.summarize.summarizer import Summarizer

    summarizer = Summarizer(run)
    assert (
        isinstance(summarizer.item_order, PointerOrder) and Summarizer(pet_run).item_order is None
    )  # the default kind
    assert summarizer.closing is not None and Summarizer(pet_run).closing is None
    report = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
    [summary] = summarizer.summarize([report])
    # An older folder holds the same fits inside ases.json: it loads and writes the same impression ...
    old = tmp_path / "old"
    shutil.copytree(run, old)
    (old / "fitted.json").unlink()
    (old / "ases.json").write_text(json.dumps({**before, **fitted}, ensure_ascii=False), encoding="utf-8")
    legacy = Summarizer(old)
    assert isinstance(legacy.item_order, PointerOrder) and legacy.closing is not None
    assert legacy.summarize([report])[0].impression == summary.impression
    # ... and `petsum order` moves the fits out of its manifest into fitted.json.
    res = CliRunner().invoke(
        petsum,
        [
            "order",
            "--data",
            str(FIXTURES / "pet_toy.csv"),
            "--model",
            str(old),
            "--grams",
            "50",
            "--kind",
            "pairs",
            "--epochs",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((old / "ases.json").read_text(encoding="utf-8")) == before
    assert set(json.loads((old / "fitted.json").read_text(encoding="utf-8"))) == {"item_order", "closing_line"}


@pytest.mark.slow
def test_bad_order_input_is_one_line(pet_run: Path, tmp_path: Path):
    csv = tmp_path / "flat.csv"
    csv.write_text("question,answer,qid\n肝脏见低密度灶。,肝囊肿。,1\n", encoding="utf-8")
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)
    res = CliRunner().invoke(petsum, ["order", "--data", str(csv), "--model", str(run)])
    assert res.exit_code == 2 and res.output.startswith("error: no impression with two or more items")
    manifest = json.loads((run / "ases.json").read_text(encoding="utf-8"))
    (run / "ases.json").write_text(
        json.dumps({**manifest, "source": "findings"}), encoding="utf-8"
    )  # a typo: no silent fallback
    res = CliRunner().invoke(petsum, ["order", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run)])
    assert (
        res.exit_code != 0
        and res.output.startswith("error: ")
        and "unknown source 'findings'" in res.output
        and "Traceback" not in res.output
    )
    (run / "ases.json").write_text(json.dumps(manifest), encoding="utf-8")
    (run / "fitted.json").write_text(json.dumps({"item_order": {"features": []}}))
    res = CliRunner().invoke(petsum, ["summarize", str(REPO / "examples" / "report.txt"), "--model", str(run)])
    assert res.exit_code != 0 and "unreadable item_order" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_petsum_order_learns_a_finding_model_from_its_finding_targets(pet_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)
    manifest = json.loads((run / "ases.json").read_text(encoding="utf-8"))
    (run / "ases.json").write_text(json.dumps({**manifest, "source": "finding"}, ensure_ascii=False), encoding="utf-8")
    res = CliRunner().invoke(
        petsum,
        ["order", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run), "--grams", "200", "--kind", "pairs"],
    )
    assert res.exit_code == 0, res.output
    from petsum.data.pairs import load_pairs

    items, sources = ordered_entries(load_pairs(str(FIXTURES / "pet_toy.csv")), "finding")
    expected, n = fit(items, n_grams=200, sources=sources)
    assert f"from {n} finding targets" in res.output
    stored = json.loads((run / "fitted.json").read_text(encoding="utf-8"))["item_order"]
    assert stored == expected.to_json() and any(
        f.startswith("<region ") for f in stored["features"]
    )  # a finding model's order reads context
    res = CliRunner().invoke(
        petsum,
        ["order", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run), "--grams", "200", "--epochs", "2"],
    )
    assert res.exit_code == 0 and "(pointer)" in res.output, res.output
    stored = json.loads((run / "fitted.json").read_text(encoding="utf-8"))["item_order"]
    assert stored["kind"] == "pointer" and any(f.startswith("<region ") for f in stored["features"])
