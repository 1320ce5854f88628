"""petsum.assemble.closing: the closing line learned from written impressions, in the assembler, the
summarizer and `petsum order`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from petsum.assemble.closing import ClosingLine, closing_line, fit
from petsum.assemble.impression import assemble
from petsum.cli import main as petsum
from petsum.text.report import split_sections
from shared.schema import Example

BRAIN = "脑部：双侧大脑半球对称，未见异常代谢。   "
CHEST = "胸部：右肺上叶见结节，放射性摄取增高，SUVmax5.2。   "
ABDOMEN = "腹部：肝脏见低密度灶，无放射性摄取。"
WHOLE = "余躯干及脑部PET/CT检查未见明显异常代谢征象。"
OTHER = "余躯干及脑部PET/CT检查未见其他异常代谢征象。"  # this house's second radiologist
TRUNK = "余躯干PET/CT检查未见明显异常代谢征象。"


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
        reports.append(Example(f"c{k}", CHEST + ABDOMEN, f"1、右肺上叶高代谢结节。  2、肝囊肿。  {TRUNK}"))
    return reports + [Example("d", CHEST, "右肺上叶结节。")]  # no closing line: not learned from


def test_closing_line_is_the_impressions_last_line_without_spaces():
    assert (
        closing_line("1、肝囊肿。  余躯干PET/CT 检查未见明显异常代谢征象。  ")
        == "余躯干PET/CT检查未见明显异常代谢征象。"
    )
    assert closing_line("1、肝囊肿。2、胆囊结石。") is None


def test_fit_learns_who_writes_which_line_and_survives_json():
    line, n = fit(house(), epochs=30, lr=0.05)
    assert n == 36 and set(line.lines) == {WHOLE, OTHER, TRUNK}
    for report, expected in (
        (BRAIN + CHEST + ABDOMEN, WHOLE),
        (BRAIN + CHEST.replace("摄取增高", "代谢增高") + ABDOMEN, OTHER),
        (CHEST + ABDOMEN, TRUNK),
    ):
        assert line.choose(split_sections(report)) == expected
    again = ClosingLine.from_json(json.loads(json.dumps(line.to_json(), ensure_ascii=False)))
    assert (
        again.weights == pytest.approx(line.weights, abs=1e-6)
        and again.choose(split_sections(CHEST + ABDOMEN)) == TRUNK
    )
    with pytest.raises(ValueError, match="numbers in its tables"):
        ClosingLine.from_json({**line.to_json(), "lines": [WHOLE]})
    assert fit([Example("d", CHEST, "右肺上叶结节。")]) == (None, 0)


def test_a_line_that_names_the_brain_is_never_chosen_for_a_scan_without_one():
    line, _ = fit(
        [r for r in house() if r.id.startswith("a")] + [house()[2]], epochs=30, lr=0.05
    )  # nearly always the brain line
    assert line.choose(split_sections(CHEST + ABDOMEN)) == TRUNK
    only_brain = ClosingLine((WHOLE,), line.features, line.weights[:, :1], line.bias[:1])
    assert only_brain.choose(split_sections(CHEST + ABDOMEN)) is None  # the assembler's rule then writes it


def test_the_assembler_closes_with_the_chosen_line_and_keeps_the_rule_otherwise():
    outputs = [("chest", "右肺上叶高代谢结节。"), ("abdomen", "未见明显异常。")]
    assert assemble(outputs, closing=OTHER).split("\n") == ["1、右肺上叶高代谢结节。", OTHER]
    assert assemble(outputs).split("\n")[-1] == TRUNK  # the rule: chest and abdomen, the trunk
    assert (
        assemble([("chest", "未见明显异常。")], closing=OTHER) == "躯干PET/CT检查未见明显异常代谢征象。"
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
    assert set(stored["closing_line"]["lines"]) == {WHOLE, OTHER, TRUNK}
    from petsum.summarize.summarizer import Summarizer

    summarizer = Summarizer(run)
    assert isinstance(summarizer.closing, ClosingLine) and Summarizer(pet_run).closing is None
    report = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
    [summary] = summarizer.summarize([report])
    regions = {r for r, _ in split_sections(report)}
    last = summary.impression.split("\n")[-1]
    assert last in {WHOLE, OTHER, TRUNK} and ("脑" not in last or "brain" in regions)
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
