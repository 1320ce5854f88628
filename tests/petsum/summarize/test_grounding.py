"""The grounding guard: an output about an organ its finding does not name is replaced by the
finding in the report's words, in `petsum.summarize.grounding` and in the summarizer that applies it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, NORMAL_HEAD, PANCREAS, tiny_sets

from petsum.cli import main as petsum
from petsum.summarize.grounding import grounded, guard, invented_numbers, invented_sides, report_words, trim
from petsum.text.rules import sided_organs

PROSTATE = "前列腺大小正常，内见点状钙化灶，大小约0.3cm，放射性分布大致正常。"


def test_an_output_is_grounded_when_it_shares_an_organ_with_its_finding():
    assert grounded(PROSTATE, "前列腺钙化灶。")
    assert not grounded(PROSTATE, "肝内钙化灶。")  # the frequent impression, about another organ
    assert grounded(PROSTATE, "未见明显异常。") and grounded("SUVmax:3.0。", "肝内钙化灶。")  # nothing to compare


def test_trim_cuts_the_clauses_about_organs_the_finding_does_not_name():
    liver = "肝左叶见低密度灶，放射性摄取增高，SUVmax5.1。"
    assert trim(liver, "肝左叶高代谢灶，考虑胃癌可能性大。") == "肝左叶高代谢灶。"
    assert (
        trim(liver, "肝左叶高代谢灶，考虑胃癌；双肾囊肿，考虑转移。") == "肝左叶高代谢灶，考虑转移。"
    )  # organ-less clauses stay
    lung = "左肺上叶结节，纵隔淋巴结肿大。"
    assert (
        trim(lung, "左肺上叶结节，考虑肺癌伴纵隔淋巴结转移；双肾囊肿。") == "左肺上叶结节，考虑肺癌伴纵隔淋巴结转移。"
    )
    assert trim(liver, "肝左叶低密度灶，考虑转移。") is None  # nothing to cut
    assert trim(PROSTATE, "肝内钙化灶。") is None  # nothing about the finding would be left: guard's case
    assert trim("SUVmax:3.0。", "肝内钙化灶。") is None  # the finding names no organ: nothing to compare


def test_numbers_the_finding_does_not_state_are_cut_or_replaced():
    pancreas = "胰腺术后，胰腺体尾部见软组织密度影，放射性摄取增高，SUVmax5.6。"
    assert invented_numbers(pancreas, "与2019-09-08 PET/CT检查比较") == {"2019", "09", "08"}
    assert invented_numbers("SUVmax5.6。", "SUVmax5.6") == set() and invented_numbers("胸11椎体。", "胸1椎体") == {
        "1"
    }  # whole numbers
    # by value, ranges in full, tracer and sequence names are not numbers
    assert (
        invented_numbers("大小约2cm。", "右肺上叶2.0cm结节") == set()
        and invented_numbers("2019年9月8日", "2019-09-08") == set()
    )
    assert invented_numbers("腰3-5椎体骨质破坏。", "腰4椎体骨质破坏") == set() and invented_numbers(
        "腰3-5椎体。", "腰6椎体"
    ) == {"6"}
    assert invented_numbers("肝脏见低密度影。", "18F-FDG代谢未见增高，T2WI高信号") == set()
    # a comparison date the findings never gave goes; the rest of the answer stays
    assert (
        trim(pancreas, "胰腺癌术后，与2019-09-08 PET/CT检查比较；胰腺体尾部高代谢灶，考虑复发。")
        == "胰腺癌术后，胰腺体尾部高代谢灶，考虑复发。"
    )
    assert guard(pancreas, "胰腺术后，与2019-19-09 PET/CT检查比较。") is None
    spine = "胸11椎体骨质破坏，放射性摄取增高，SUVmax6.2。"
    assert (
        trim(spine, "胸11椎体骨质破坏伴代谢增高，考虑转移。") is None
        and guard(spine, "胸11椎体骨质破坏伴代谢增高，考虑转移。") is None
    )
    # a wrong vertebra is the whole answer about the finding: the report's words instead
    assert trim(spine, "胸1111椎体骨质破坏，考虑转移。") is None
    assert (
        guard(spine, "胸1111椎体骨质破坏，考虑转移。")
        == report_words(spine)
        == "胸11椎体骨质破坏，放射性摄取增高，SUVmax6.2。"
    )


def test_a_side_the_finding_does_not_give_its_organ_is_cut_or_replaced():
    assert sided_organs("右肾见囊性低密度影，左侧锁骨区淋巴结，右下肺结节，左、右肾") == {
        ("右", "肾"),
        ("左", "锁骨"),
        ("右", "肺"),
    }
    assert sided_organs("左、右肾") == set() and sided_organs("左右肺") == set()
    kidney = "右肾见类圆形低密度影，无放射性摄取。"
    assert invented_sides(kidney, "左肾囊肿。") == {("左", "肾")}
    assert invented_sides("双肾见低密度影。", "左肾囊肿。") == set()  # both sides: either may stand
    assert invented_sides("左肾及右肾见低密度影。", "左肾囊肿。") == set()
    for both in (
        "左、右肾见低密度影。",
        "左右肾见低密度影。",
        "左侧及右侧肾见低密度影。",
    ):  # written out, both sides are `双`
        assert invented_sides(both, "左肾囊肿。") == set() and guard(both, "左肾囊肿。") is None
    assert guard(kidney, "左肾囊肿。") == report_words(kidney) == "右肾见类圆形低密度影。"
    lung = "右肺上叶见结节，放射性摄取增高，右肾见低密度影。"
    assert trim(lung, "右肺上叶高代谢结节，考虑恶性；左肾囊肿。") == "右肺上叶高代谢结节，考虑恶性。"
    assert trim(lung, "右肺上叶高代谢结节；右肾囊肿。") is None


def test_a_finding_of_measurements_only_stands_as_written_for_an_invented_answer():
    assert report_words("SUVmax:3.0。") == "" and report_words("CT值约35HU。") == ""  # nothing reported
    spine = "胸12椎体前方见长径约1.9cm结节，SUVmax:1.5。"
    assert guard(spine, "胸11椎体前方高代谢结节，考虑骨转移。") == report_words(spine) == spine  # its size and SUV
    assert guard(spine, "胸12椎体前方高代谢结节。") is None


def test_report_words_read_like_an_impression_item_and_keep_size_and_uptake():
    # the organ of a normal clause carries over; the normal clauses go; the size stays
    assert report_words(PROSTATE) == "前列腺内见点状钙化灶，大小约0.3cm。"
    assert (
        report_words("右颈动脉鞘内淋巴结，放射性摄取增高，SUVmax3.3。")
        == "右颈动脉鞘内淋巴结，放射性摄取增高，SUVmax3.3。"
    )
    # a section header and a CT value are not what an item says; size and SUVmax are
    nodule = "胸部：右肺上叶见一结节，大小约1.2cm×1.0cm，CT值约35HU，放射性摄取增高，SUVmax 6.8。双肺门未见异常。"
    assert report_words(nodule) == "右肺上叶见一结节，大小约1.2cm×1.0cm，放射性摄取增高，SUVmax 6.8。"
    assert report_words("【腹部】肝脏形态大小正常，右叶见低密度灶，直径约2.1cm，未见放射性摄取。") == (
        "肝脏右叶见低密度灶，直径约2.1cm。"
    )
    # a follow-up's change and its before and after values stay
    node = "纵隔4R区淋巴结较前增多，放射性摄取较前减低，SUVmax:3.46 vs 5.39。"
    assert report_words(node) == node
    assert guard(PROSTATE, "肝内钙化灶。") == report_words(PROSTATE) and guard(PROSTATE, "前列腺钙化灶。") is None


class OneAnswer:
    """A `TokenGenerator` that writes one impression whatever it is asked: the model a guard is for."""

    def __init__(self, tokenizer, answer: str) -> None:
        self.ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    def generate_tokens(self, sources, max_new_tokens, num_beams, no_repeat=0, bias=None):
        return [self.ids[:max_new_tokens] for _ in sources]


@pytest.mark.slow
def test_the_summarizer_writes_an_ungrounded_finding_in_the_reports_words(tmp_path: Path):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(FIXTURES / "pet_toy.csv"),
        "--out",
        str(out),
        "--method",
        "direct",
        "--source",
        "finding",
        *tiny_sets(**{"train.max_steps": 1}),
    ]
    assert CliRunner().invoke(petsum, args).exit_code == 0
    from petsum.summarize.summarizer import Summarizer

    summarizer = Summarizer(out)
    summarizer.models.models["model"] = OneAnswer(summarizer.models.tokenizer, "肝内钙化灶。<STOP>")
    [summary] = summarizer.summarize([f"{NORMAL_HEAD}   {PANCREAS}   {PROSTATE}"])
    by_region = {r.region: r for r in summary.regions}
    assert by_region["pelvis"].text == report_words(PROSTATE) and by_region["pelvis"].segments == [
        {"tag": "copy", "text": report_words(PROSTATE)}
    ]
    assert "肝" not in summary.impression and "前列腺内见点状钙化灶，大小约0.3cm。" in summary.impression
    assert "SUVmax:12.4" in summary.impression  # the pancreas copy keeps its uptake
    assert summary.warnings == [
        "3 finding(s) in the report's own words: the model wrote about another organ, "
        "or a number or side the finding does not give"
    ]  # 2 pancreas, 1 prostate
    assert all("钙化" not in w for w in summary.warnings)  # warnings reach logs: no report text

    summarizer.models.models["model"] = OneAnswer(summarizer.models.tokenizer, "前列腺钙化灶，肝内钙化灶。<STOP>")
    [summary] = summarizer.summarize([f"{NORMAL_HEAD}   {PROSTATE}"])
    assert summary.regions[-1].text == "前列腺灶。" and "肝" not in summary.impression  # (no 钙化 in the toy tokenizer)
    assert summary.regions[-1].segments[0]["text"].startswith("前列腺灶，肝内")  # what the model wrote stays visible
    assert summary.warnings == [
        "1 finding(s) with clauses about another organ, or with a number or side the finding does not give, removed"
    ]
    summarizer.trim = False  # as `petsum evaluate --no-trim` measures it
    [kept] = summarizer.summarize([f"{NORMAL_HEAD}   {PROSTATE}"])
    assert "肝内" in kept.impression and kept.warnings == []

    summarizer.models.models["model"] = OneAnswer(summarizer.models.tokenizer, "肝内钙化灶。<STOP>")
    summarizer.guard = False  # the model alone, as `petsum evaluate --no-guard` measures it
    [raw] = summarizer.summarize([f"{NORMAL_HEAD}   {PANCREAS}   {PROSTATE}"])
    assert "肝内" in raw.impression and raw.warnings == []  # (the toy tokenizer has no 钙化)


@pytest.mark.slow
def test_evaluate_measures_the_model_alone_with_no_guard(tmp_path: Path):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(FIXTURES / "pet_toy.csv"),
        "--out",
        str(out),
        "--method",
        "direct",
        *tiny_sets(**{"train.max_steps": 1}),
    ]
    assert CliRunner().invoke(petsum, args).exit_code == 0
    res = CliRunner().invoke(
        petsum,
        [
            "evaluate",
            "--data",
            str(FIXTURES / "pet_toy.csv"),
            "--model",
            str(out),
            "--limit",
            "2",
            "--no-guard",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["n"] == 2


def test_an_answer_that_contradicts_its_finding_is_replaced_by_the_reports_words():
    from petsum.summarize.grounding import checked

    bladder = "膀胱充盈可，膀胱壁未见增厚。"
    said, action = checked(bladder, "膀胱充盈欠佳。")
    assert action == "contradiction" and "欠佳" not in said and said.startswith("膀胱")
    nodes = "原纵隔淋巴结放射性摄取增高灶本次消失。"
    said, action = checked(nodes, "纵隔高代谢淋巴结，考虑转移。")
    assert action == "contradiction" and "转移" not in said
    assert checked("右肺上叶结节，放射性摄取增高，SUVmax5.1。", "右肺上叶高代谢结节。") == (
        "右肺上叶高代谢结节。",
        None,
    )  # an answer true to its finding stands
