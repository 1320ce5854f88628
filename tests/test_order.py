"""petsum.order: the item order learned from written impressions, in the assembler, the summarizer
and `petsum order`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from petsum.assemble import assemble
from petsum.cli import main as petsum
from petsum.order import ItemOrder, finding_items, fit, ordered_items, reference_items
from shared.schema import Example
from tests.conftest import FIXTURES

# A house that writes the lung cancer first, then the liver cyst, then the gallstone.
HOUSE = [reference_items(t) for t in ["1、右肺癌伴纵隔淋巴结转移。  2、肝囊肿。  3、胆囊结石。"] * 5 + ["1. 肺癌。2. 胆囊结石。"] * 3]
# Findings in report order (chest, then abdomen) and an impression that numbers the abdomen first,
# listing two of its findings in one item.
REPORT = Example(
    "1",
    "右肺上叶见软组织结节，大小约2.0cm，放射性摄取增高，SUVmax8.5。纵隔未见肿大淋巴结。   肝脏见低密度灶，无放射性摄取。胆囊内见高密度结石影。",
    "1、胆囊结石；肝囊肿。  2、右肺上叶高代谢结节，考虑肺癌。",
)


def test_reference_items_split_at_item_numbers_not_at_decimals():
    assert reference_items("1、肝囊肿，大小约2.5cm。  2.胆囊结石。3．肾囊肿。") == ["肝囊肿，大小约2.5cm。", "胆囊结石。", "肾囊肿。"]
    assert reference_items("全身PET/CT未见异常。") == ["全身PET/CT未见异常。"]


def test_fit_learns_the_house_order_and_survives_json():
    order, n = fit(HOUSE, n_grams=50, rank=4, epochs=30, lr=0.05)
    assert n == 21
    items = ["胆囊结石。", "肝囊肿。", "左肺上叶结节，考虑肺癌。"]
    assert order.arrange(items) == ["左肺上叶结节，考虑肺癌。", "肝囊肿。", "胆囊结石。"]
    again = ItemOrder.from_json(json.loads(json.dumps(order.to_json(), ensure_ascii=False)))
    assert again.arrange(items) == order.arrange(items)
    assert again.first == pytest.approx(order.first, abs=1e-6) and again.after == pytest.approx(order.after, abs=1e-6)  # float32 kept
    assert order.arrange(["肝囊肿。"]) == ["肝囊肿。"] and order.arrange([]) == []
    with pytest.raises(ValueError, match="two or more items"):
        fit([["肝囊肿。"]])


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
    positions = {i: sum(w for g, w in stored["weights"].items() if g in i) + 0.2 for i in items}  # none names malignancy or uptake: rank 2
    assert order.arrange(items) == sorted(items, key=positions.get)
    with pytest.raises(ValueError, match="ranks"):
        ItemOrder.from_json({**stored, "ranks": [0.0]})
    fitted = fit(HOUSE, n_grams=50, rank=2, epochs=1)[0].to_json()
    with pytest.raises(ValueError, match="numbers in its tables"):
        ItemOrder.from_json({**fitted, "rank": 3})
    with pytest.raises(ValueError, match="beam 0"):  # else arrange would fail mid-summary
        ItemOrder.from_json({**fitted, "beam": 0})


def test_features_are_the_same_on_every_run():
    from collections import Counter

    from petsum.fitted import most_common

    assert most_common(Counter({"b": 1, "a": 1, "c": 2}), 2) == ["c", "a"]  # ties by the key, not by insertion


def test_finding_targets_stand_where_their_first_piece_stands_in_the_impression():
    # what a finding model writes: one target per finding, not the impression's numbered items
    assert finding_items(REPORT) == ["胆囊结石。", "肝囊肿。", "右肺上叶高代谢结节，考虑肺癌。"]
    assert ordered_items([REPORT], "finding") == [finding_items(REPORT)]
    assert ordered_items([REPORT]) == [["胆囊结石；肝囊肿。", "右肺上叶高代谢结节，考虑肺癌。"]]


def test_the_assembler_numbers_items_by_the_learned_order():
    outputs = [("chest", "左肺上叶结节，考虑肺癌。"), ("abdomen", "胆囊结石。肝囊肿。")]
    order, _ = fit(HOUSE, n_grams=50, rank=4, epochs=30, lr=0.05)
    by_rule = assemble(outputs).split("\n")[:3]
    assert by_rule == ["1、左肺上叶结节，考虑肺癌。", "2、胆囊结石。", "3、肝囊肿。"]  # suspicion, then as written
    assert assemble(outputs, item_order=order).split("\n")[:3] == ["1、左肺上叶结节，考虑肺癌。", "2、肝囊肿。", "3、胆囊结石。"]


def test_petsum_order_writes_the_order_the_summarizer_then_uses(pet_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)  # the session's run stays as other tests expect it
    before = json.loads((run / "ases.json").read_text(encoding="utf-8"))
    res = CliRunner().invoke(petsum, ["order", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run), "--grams", "200"])
    assert res.exit_code == 0, res.output
    after = json.loads((run / "ases.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in after.items() if k not in ("item_order", "closing_line")} == before and len(after["item_order"]["features"]) == 200 + 3  # n-grams and suspicion ranks
    assert "impression items" in res.output  # a region model writes the impression's items
    from petsum.summarizer import Summarizer

    summarizer = Summarizer(run)
    assert isinstance(summarizer.item_order, ItemOrder) and Summarizer(pet_run).item_order is None
    [summary] = summarizer.summarize([(FIXTURES / ".." / ".." / "examples" / "report.txt").read_text(encoding="utf-8")])
    assert summary.impression.strip()


def test_bad_order_input_is_one_line(pet_run: Path, tmp_path: Path):
    csv = tmp_path / "flat.csv"
    csv.write_text("question,answer,qid\n肝脏见低密度灶。,肝囊肿。,1\n", encoding="utf-8")
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)
    res = CliRunner().invoke(petsum, ["order", "--data", str(csv), "--model", str(run)])
    assert res.exit_code == 2 and res.output.startswith("error: no impression with two or more items")
    manifest = json.loads((run / "ases.json").read_text(encoding="utf-8"))
    (run / "ases.json").write_text(json.dumps({**manifest, "source": "findings"}), encoding="utf-8")  # a typo: no silent fallback
    res = CliRunner().invoke(petsum, ["order", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run)])
    assert res.exit_code != 0 and res.output.startswith("error: ") and "unknown source 'findings'" in res.output and "Traceback" not in res.output
    (run / "ases.json").write_text(json.dumps(manifest), encoding="utf-8")
    (run / "ases.json").write_text(json.dumps({**json.loads((run / "ases.json").read_text(encoding="utf-8")), "item_order": {"features": []}}))
    res = CliRunner().invoke(petsum, ["summarize", str(FIXTURES / ".." / ".." / "examples" / "report.txt"), "--model", str(run)])
    assert res.exit_code != 0 and "unreadable item_order" in res.output and "Traceback" not in res.output


def test_petsum_order_learns_a_finding_model_from_its_finding_targets(pet_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)
    manifest = json.loads((run / "ases.json").read_text(encoding="utf-8"))
    (run / "ases.json").write_text(json.dumps({**manifest, "source": "finding"}, ensure_ascii=False), encoding="utf-8")
    res = CliRunner().invoke(petsum, ["order", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run), "--grams", "200"])
    assert res.exit_code == 0, res.output
    from petsum.data import load_pairs

    expected, n = fit(ordered_items(load_pairs(str(FIXTURES / "pet_toy.csv")), "finding"), n_grams=200)
    assert f"from {n} finding targets" in res.output
    stored = json.loads((run / "ases.json").read_text(encoding="utf-8"))["item_order"]
    assert stored == expected.to_json()
