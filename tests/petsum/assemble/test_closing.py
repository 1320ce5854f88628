"""petsum.assemble.closing: the closing line's coverage from the scan, its wording learned from written
impressions, in the assembler, the summarizer and `petsum order`."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from petsum.assemble.closing import FIELDS, TRUNK, ClosingLine, closing_line, coverage, fit, wording
from petsum.assemble.impression import assemble
from petsum.cli import main as petsum
from petsum.text.lexicon import REGIONS
from petsum.text.report import split_sections
from shared.schema import Example

BRAIN = "脑部：双侧大脑半球对称，未见异常代谢。   "
CHEST = "胸部：右肺上叶见结节，放射性摄取增高，SUVmax5.2。   "
ABDOMEN = "腹部：肝脏见低密度灶，无放射性摄取。"
WHOLE = "余躯干及脑部PET/CT检查未见明显异常代谢征象。"
OTHER = "余躯干及脑部PET/CT检查未见其他异常代谢征象。"  # this house's second radiologist
TRUNK_LINE = "余躯干PET/CT检查未见明显异常代谢征象。"


def house() -> list[Example]:
    # One radiologist writes `摄取增高` and closes with 明显, the other `代谢增高` and 其他; a scan
    # without the brain closes with the trunk only.
    reports = []
    for k in range(12):
        reports.append(Example(f"a{k}", BRAIN + CHEST + ABDOMEN, f"1、右肺上叶高代谢结节。  2、肝囊肿。  {WHOLE}"))
        reports.append(
            Example(
                f"b{k}",
                BRAIN + CHEST.replace("摄取增高", "代谢增高") + ABDOMEN,
                f"1、右肺上叶高代谢结节。  2、肝囊肿。  {OTHER}",
            )
        )
        reports.append(Example(f"c{k}", CHEST + ABDOMEN, f"1、右肺上叶高代谢结节。  2、肝囊肿。  {TRUNK_LINE}"))
    return reports + [Example("d", CHEST, "右肺上叶结节。")]  # no closing line: not learned from


def test_closing_line_is_the_impressions_last_line_without_spaces():
    assert (
        closing_line("1、肝囊肿。  余躯干PET/CT 检查未见明显异常代谢征象。  ")
        == "余躯干PET/CT检查未见明显异常代谢征象。"
    )
    assert closing_line("1、肝囊肿。2、胆囊结石。") is None


def test_fit_learns_who_writes_which_wording_and_survives_json():
    line, n = fit(house(), epochs=30, lr=0.05)
    assert n == 36 and set(line.lines) == {wording(WHOLE), wording(OTHER)}  # WHOLE and TRUNK: one wording
    for report, expected in (
        (BRAIN + CHEST + ABDOMEN, "余脑部、胸部及腹部PET/CT检查未见明显异常代谢征象。"),
        (BRAIN + CHEST.replace("摄取增高", "代谢增高") + ABDOMEN, "余脑部、胸部及腹部PET/CT检查未见其他异常代谢征象。"),
        (CHEST + ABDOMEN, "余胸部及腹部PET/CT检查未见明显异常代谢征象。"),
    ):
        assert line.choose(split_sections(report)) == expected
    again = ClosingLine.from_json(json.loads(json.dumps(line.to_json(), ensure_ascii=False)))
    assert again.weights == pytest.approx(line.weights, abs=1e-6)
    assert again.choose(split_sections(CHEST + ABDOMEN)) == line.choose(split_sections(CHEST + ABDOMEN))
    with pytest.raises(ValueError, match="numbers in its tables"):
        ClosingLine.from_json({**line.to_json(), "lines": [WHOLE]})
    assert fit([Example("d", CHEST, "右肺上叶结节。")]) == (None, 0)


def test_wording_cuts_the_coverage_and_keeps_the_house_style():
    assert wording(WHOLE) == "余{field}PET/CT检查未见明显异常代谢征象。"
    assert wording("目前余腹部及盆腔PET/CT检查未见其他异常代谢。") == "目前余{field}PET/CT检查未见其他异常代谢。"
    assert wording("余躯干部PET/CT检查未见明显异常代谢征象。") == "余{field}部PET/CT检查未见明显异常代谢征象。"
    assert wording("余所见基本同前，躯干PET/CT检查未见明显异常。") is None  # not a plain list of fields
    assert wording(wording(OTHER)) == wording(OTHER)


# How a coverage names regions, read back: the test's own reading, not the code's.
_NAMED = {"脑部": {"brain"}, "头颈部": {"head_neck"}, "胸部": {"chest"}, "腹部": {"abdomen"}, "盆腔": {"pelvis"}}


def _named_regions(field: str) -> set[str]:
    if field == "视野范围内":
        return set()
    out = set(TRUNK) if field.startswith("躯干") else set()
    rest = field.removeprefix("躯干").removeprefix("及") if field.startswith("躯干") else field
    for name in (p for p in re.split("[、及]", rest) if p):
        out |= _NAMED[name]  # a KeyError is a name no region has
    return out


@pytest.mark.parametrize("k", range(len(REGIONS) + 1))
def test_coverage_names_exactly_the_scanned_regions_for_every_combination(k):
    for regions in map(set, itertools.combinations(REGIONS, k)):
        field = coverage(regions)
        scanned = regions & FIELDS.keys()
        assert _named_regions(field) == scanned, (regions, field)  # never an absent region, never one left out
        assert (field == "视野范围内") == (not scanned)


def test_the_closing_line_follows_the_scan_whatever_the_fit_learned():
    # Trained only on whole-body scans of one radiologist: the line still names what this scan covered.
    line, _ = fit([r for r in house() if r.id.startswith("a")], epochs=30, lr=0.05)
    sections = {"brain": BRAIN, "chest": CHEST, "abdomen": ABDOMEN, "pelvis": "盆腔：膀胱充盈可，未见异常代谢。"}
    for k in range(1, len(sections) + 1):
        for combo in itertools.combinations(sections, k):
            split = split_sections("".join(sections[r] + "   " for r in combo))
            chosen = line.choose(split)
            assert chosen == f"余{coverage({r for r, _ in split})}PET/CT检查未见明显异常代谢征象。", combo
            assert {r for r, _ in split} == set(combo)  # the fixture's sections are what the scan has


def test_the_assembler_closes_with_the_chosen_line_and_keeps_the_rule_otherwise():
    outputs = [("chest", "右肺上叶高代谢结节。"), ("abdomen", "未见明显异常。")]
    assert assemble(outputs, closing=OTHER).split("\n") == ["1、右肺上叶高代谢结节。", OTHER]
    assert assemble(outputs).split("\n")[-1] == "余胸部及腹部PET/CT检查未见明显异常代谢征象。"  # the rule
    assert (
        assemble([("chest", "未见明显异常。")], closing=OTHER) == "胸部PET/CT检查未见明显异常代谢征象。"
    )  # nothing abnormal: the rule's sentence


@pytest.mark.slow
def test_petsum_order_writes_the_closing_line_the_summarizer_then_uses(pet_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)
    data = tmp_path / "house.csv"
    rows = [(r.question, r.target, r.id) for r in house()]
    data.write_text("question,answer,qid\n" + "".join(f'"{q}","{a}",{i}\n' for q, a, i in rows), encoding="utf-8")
    res = CliRunner().invoke(
        petsum, ["order", "--data", str(data), "--model", str(run), "--grams", "50", "--epochs", "2"]
    )
    assert res.exit_code == 0, res.output
    assert "the closing line from 36 impressions" in res.output
    stored = json.loads((run / "fitted.json").read_text(encoding="utf-8"))
    assert set(stored["closing_line"]["lines"]) == {wording(WHOLE), wording(OTHER)}
    from petsum.summarize.summarizer import Summarizer

    summarizer = Summarizer(run)
    assert isinstance(summarizer.closing, ClosingLine) and Summarizer(pet_run).closing is None
    report = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
    [summary] = summarizer.summarize([report])
    regions = {r for r, _ in split_sections(report)}
    last = summary.impression.split("\n")[-1]
    assert last in {f"余{coverage(regions)}PET/CT检查未见{w}异常代谢征象。" for w in ("明显", "其他")}
    # a corrupt table is one line, not a traceback
    (run / "fitted.json").write_text(
        json.dumps({**stored, "closing_line": {**stored["closing_line"], "tables": "not base64!"}}, ensure_ascii=False),
        encoding="utf-8",
    )
    res = CliRunner().invoke(petsum, ["summarize", str(REPO / "examples" / "report.txt"), "--model", str(run)])
    assert res.exit_code != 0 and "unreadable closing_line" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_refitting_on_impressions_without_closing_lines_removes_the_old_fit(pet_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)
    manifest = json.loads(
        (run / "ases.json").read_text(encoding="utf-8")
    )  # an older folder: its fits inside the manifest
    (run / "ases.json").write_text(
        json.dumps({**manifest, "closing_line": fit(house(), epochs=1)[0].to_json()}, ensure_ascii=False),
        encoding="utf-8",
    )
    data = tmp_path / "bare.csv"
    data.write_text(
        "question,answer,qid\n" + "".join(f'"{CHEST}{ABDOMEN}","1、右肺结节。2、肝囊肿。",{k}\n' for k in range(3)),
        encoding="utf-8",
    )
    res = CliRunner().invoke(
        petsum, ["order", "--data", str(data), "--model", str(run), "--grams", "50", "--epochs", "1"]
    )
    assert res.exit_code == 0, res.output
    assert "no closing line" in res.output and json.loads((run / "ases.json").read_text(encoding="utf-8")) == manifest
    assert "closing_line" not in json.loads((run / "fitted.json").read_text(encoding="utf-8"))
