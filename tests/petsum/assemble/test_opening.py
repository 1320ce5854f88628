"""petsum.assemble.opening: the comparison line a follow-up exam's impression opens with, learned from
written impressions, in the assembler, the summarizer and `petsum order`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from petsum.assemble.impression import assemble
from petsum.assemble.opening import DEFAULT_LINE, OpeningLine, fit, opening_for, opening_line
from petsum.cli import main as petsum
from petsum.text.report import split_sections
from shared.schema import Example

CHEST = "胸部：右肺上叶见结节，放射性摄取增高，SUVmax5.2。   "
FOLLOW_UP = "胸部：右肺上叶见结节，较前增大，放射性摄取增高，SUVmax5.2。   "  # `较前`: compared with the last exam
SEEN = "胸部：右肺上叶见结节，较前增大，代谢增高，SUVmax5.2。   "  # the second radiologist's words
ABDOMEN = "腹部：肝脏见低密度灶，无放射性摄取。"
CLOSE = "余躯干PET/CT检查未见明显异常代谢征象。"


def house() -> list[Example]:
    # One radiologist opens a follow-up with `与<date> PET/CT检查比较：`, the other with
    # `与<date>显像相比：`; a first exam opens with its items; one history line compares nothing.
    reports = []
    for k in range(12):
        reports.append(
            Example(
                f"a{k}",
                FOLLOW_UP + ABDOMEN,
                f"与2015-11-{k + 10} PET/CT检查比较：  1、右肺上叶结节，较前增大。  2、肝囊肿。  {CLOSE}",
            )
        )
        reports.append(
            Example(
                f"b{k}",
                SEEN + ABDOMEN,
                f"与2014-6-{k + 1}显像相比：  1、右肺上叶结节，较前增大。  2、肝囊肿。  {CLOSE}",
            )
        )
        reports.append(Example(f"c{k}", CHEST + ABDOMEN, f"1、右肺上叶高代谢结节。  2、肝囊肿。  {CLOSE}"))
    return reports + [Example("d", CHEST + ABDOMEN, f"胃癌术后：  1、右肺上叶结节。  {CLOSE}")]


def test_opening_line_is_the_comparison_with_the_previous_exam_for_its_date():
    assert opening_line("与2015-11-12 PET/CT检查比较：  1、胰头部高代谢。") == "与前次PET/CT检查比较"
    assert (
        opening_line("胰腺癌术后，与2014年6月26日显像相比:\n1.胰头部高代谢。") == "与前次显像相比"
    )  # the history is not kept
    assert opening_line("与我院20140102检查比较：1、肝囊肿。") == "与我院前次检查比较"
    assert (
        opening_line("与2015-11-2 18F-FDG PET/CT显像比较：  1、肝囊肿。") == "与前次18F-FDG PET/CT显像比较"
    )  # the date, not the tracer's 18
    assert opening_line("胰腺癌与胃癌术后，与前片比较：  1、肝囊肿。") == "与前片比较"  # no date: as written
    assert opening_line("胰腺癌术后：  1、胰头部高代谢。") is None
    assert opening_line("与对侧相比：  1、左侧腮腺高代谢。") is None  # compares with no earlier exam
    # inside item 1, not an opening: `SUVmax：1.6` is no item 1
    assert opening_line("1、左侧腮腺摄取增高，与2015-11-12 PET/CT检查比较，SUVmax：1.6。") is None
    assert opening_line("1、胰头部高代谢。  2、与前片比较：肝囊肿增大。") is None


def test_fit_learns_who_writes_which_comparison_and_survives_json():
    line, n = fit(house(), epochs=30, lr=0.05)
    assert n == 24 and line.lines == ("", "与前次PET/CT检查比较", "与前次显像相比")
    assert line.choose(split_sections(FOLLOW_UP + ABDOMEN)) == "与前次PET/CT检查比较："
    assert line.choose(split_sections(SEEN + ABDOMEN)) == "与前次显像相比："
    again = OpeningLine.from_json(json.loads(json.dumps(line.to_json(), ensure_ascii=False)))
    assert (
        again.weights == pytest.approx(line.weights, abs=1e-6)
        and again.choose(split_sections(SEEN + ABDOMEN)) == "与前次显像相比："
    )
    with pytest.raises(ValueError, match="numbers in its tables"):
        OpeningLine.from_json({**line.to_json(), "lines": ["", "与前次显像相比"]})
    with pytest.raises(ValueError, match="none first"):
        OpeningLine.from_json({**line.to_json(), "lines": ["与前次显像相比", "", "与前次PET/CT检查比较"]})
    assert fit([r for r in house() if r.id.startswith("c")]) == (None, 0)


def test_every_follow_up_opens_with_a_line_and_no_first_exam_does():
    # Every impression of this house opens with a comparison, so the fit says `compare` for any
    # report; a report whose findings never say `较前`, `新增`, ... still gets none.
    line, _ = fit([r for r in house() if r.id[0] in "ab"], epochs=30, lr=0.05)
    assert line.choose(split_sections(FOLLOW_UP + ABDOMEN)) is not None
    assert line.choose(split_sections(CHEST + ABDOMEN)) is None
    # A fit that finds none far more likely still writes the line: it only picks the wording.
    never = OpeningLine(line.lines, line.features, line.weights * 0, line.bias * 0 + [9.0, 0.0, 1.0])
    assert never.choose(split_sections(FOLLOW_UP + ABDOMEN)) == "与前次显像相比："
    assert never.choose(split_sections(CHEST + ABDOMEN)) is None


def test_opening_for_writes_the_fit_s_wording_or_the_default_for_follow_ups_only():
    line, _ = fit(house(), epochs=30, lr=0.05)
    follow_up, first = split_sections(SEEN + ABDOMEN), split_sections(CHEST + ABDOMEN)
    assert opening_for(line, follow_up) == "与前次显像相比："
    assert opening_for(None, follow_up) == DEFAULT_LINE == "与前次PET/CT检查比较："
    assert opening_for(line, first) is None and opening_for(None, first) is None
    # a comparison in any section makes the report a follow-up
    assert opening_for(None, split_sections(CHEST + "腹部：肝脏低密度灶较前缩小。")) == DEFAULT_LINE


def test_the_shipped_fit_still_reads_and_opens_every_follow_up():
    stored = json.loads((REPO / "petsum" / "models" / "default" / "fitted.json").read_text(encoding="utf-8"))
    shipped = OpeningLine.from_json(stored["opening_line"])
    assert shipped.choose(split_sections(FOLLOW_UP + ABDOMEN)) in {line + "：" for line in shipped.lines[1:]}
    assert shipped.choose(split_sections("腹部：肝内新发低密度灶，SUVmax：6.1。")) is not None
    assert shipped.choose(split_sections(CHEST + ABDOMEN)) is None
    assert opening_for(shipped, split_sections(CHEST + ABDOMEN)) is None


def test_the_assembler_opens_with_the_line_where_given():
    outputs = [("chest", "右肺上叶结节，较前增大。"), ("abdomen", "未见明显异常。")]
    assert assemble(outputs, opening="与前次显像相比：").split("\n") == [
        "与前次显像相比：",
        "1、右肺上叶结节，较前增大。",
        "余胸部及腹部PET/CT检查未见明显异常代谢征象。",  # the field the scan's regions cover
    ]
    assert assemble(outputs).split("\n")[0] == "1、右肺上叶结节，较前增大。"
    assert (
        assemble([("chest", "未见明显异常。")], opening="与前次显像相比：") == "胸部PET/CT检查未见明显异常代谢征象。"
    )  # nothing to open


@pytest.mark.slow
def test_petsum_order_writes_the_opening_line_the_summarizer_then_uses(pet_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)
    data = tmp_path / "house.csv"
    data.write_text(
        "question,answer,qid\n" + "".join(f'"{r.question}","{r.target}",{r.id}\n' for r in house()), encoding="utf-8"
    )
    res = CliRunner().invoke(
        petsum, ["order", "--data", str(data), "--model", str(run), "--grams", "50", "--epochs", "2"]
    )
    assert res.exit_code == 0, res.output
    assert "the opening line from 24 that compare with an earlier exam" in res.output
    stored = json.loads((run / "fitted.json").read_text(encoding="utf-8"))
    assert stored["opening_line"]["lines"] == ["", "与前次PET/CT检查比较", "与前次显像相比"]
    from petsum.summarize.summarizer import Summarizer

    assert Summarizer(pet_run).opening is None
    sure, _ = fit(
        [r for r in house() if r.id[0] in "ab"], epochs=30, lr=0.05
    )  # a fit that says `compare` wherever the findings do
    (run / "fitted.json").write_text(
        json.dumps({**stored, "opening_line": sure.to_json()}, ensure_ascii=False), encoding="utf-8"
    )
    summarizer = Summarizer(run)
    report = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
    later = report.replace("放射性浓聚，SUVmax：8.1", "较前增大，放射性浓聚，SUVmax：8.1")
    [plain, follow_up] = summarizer.summarize([report, later])
    assert (
        "较前" not in report and "较前" in later and plain.impression.split("\n")[0].startswith("1、")
    )  # no comparison in the findings: no line
    assert follow_up.impression.split("\n")[0] in {"与前次PET/CT检查比较：", "与前次显像相比："}
    # a corrupt table is one line, not a traceback
    (run / "fitted.json").write_text(
        json.dumps({**stored, "opening_line": {**stored["opening_line"], "tables": "not base64!"}}, ensure_ascii=False),
        encoding="utf-8",
    )
    res = CliRunner().invoke(petsum, ["summarize", str(REPO / "examples" / "report.txt"), "--model", str(run)])
    assert res.exit_code != 0 and "unreadable opening_line" in res.output and "Traceback" not in res.output
