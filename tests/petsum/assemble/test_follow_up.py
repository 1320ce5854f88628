"""petsum.assemble.follow_up: a follow-up finding's change kept in the item written for it."""

from __future__ import annotations

import re

import pytest

from petsum.assemble.follow_up import change_clause, keep_change, says_course, stated
from petsum.text.rules import NUMBER

SMALLER = "右肺上叶结节较前缩小，放射性摄取较前减低，SUVmax：5.3vs11.2。"
LOWER = "右肺上叶结节，放射性摄取较前减低，SUVmax：5.3vs11.2。"


@pytest.mark.parametrize(
    ("finding", "clause"),
    [
        ("右肺上叶结节较前增大，放射性摄取较前增高，SUVmax：11.2vs5.3。", "较前增大、代谢增高（SUVmax 11.2 vs 5.3）"),
        (SMALLER, "较前缩小、代谢减低（SUVmax 5.3 vs 11.2）"),
        (LOWER, "代谢较前减低（SUVmax 5.3 vs 11.2）"),
        ("右肺上叶结节，SUVmax：5.3vs11.2。", "代谢较前减低（SUVmax 5.3 vs 11.2）"),  # the values alone say it
        ("右肺结节较前减小。", "较前减小"),  # the finding's own verb
        ("腹膜后淋巴结较前增多。", "较前增多"),
        ("原右肺结节本次消失。", "较前消失"),
        ("原纵隔高代谢淋巴结基本消失。", "较前基本消失"),
        ("肝内新发低密度灶，放射性摄取增高，SUVmax：6.1。", "较前新发"),  # a new lesion has no before
        ("纵隔淋巴结大小及代谢同前相仿。", "同前相仿"),
        ("纵隔淋巴结较前无明显变化。", "较前无明显变化"),
        ("右肺结节密度较前增高。", "密度较前增高"),  # density, not metabolism
        ("右肺上叶结节，放射性摄取增高，SUVmax：5.2。", None),  # a first exam's finding
        ("肝内多发结节，部分较前增大，部分较前缩小。", None),  # two directions: which one the item means is unknown
        ("原中腹壁下放射性摄取增高软组织肿块，本次检查未见。", "较前消失"),  # gone, not raised
        ("中下段食管管壁弥漫性放射性摄取，SUVmax:4.1，前次未见。", "较前新发"),
        ("原左上肺团块，体积明显缩小，代谢明显减低，SUVmax3.3。", "较前缩小、代谢减低"),  # the lesion seen before
        ("原纵隔放射性浓聚灶基本消失，SUVmax：1.2vs6.5。", "较前基本消失（SUVmax 1.2 vs 6.5）"),
        ("放射性摄取与前相仿。", "同前相仿"),
        ("右肺结节，SUVmax：3.6vs3.5。", "（SUVmax 3.6 vs 3.5）"),  # too close to say a direction
        ("右肺结节，SUVmax：3.0vs3.8。", "代谢较前减低（SUVmax 3.0 vs 3.8）"),  # below 0.8 of the earlier value
        ("右肺结节，放射性摄取较前不均匀增高。", "代谢较前增高"),  # `不均匀` negates nothing
    ],
)
def test_change_clause_says_the_finding_s_change_as_radiologists_write_it(finding: str, clause: str | None):
    assert change_clause(finding) == clause


def test_the_values_and_the_stable_clause_can_be_left_out():
    assert change_clause(LOWER, values=False) == "代谢较前减低"
    assert change_clause("纵隔淋巴结同前相仿。", stable=False) is None
    assert change_clause(SMALLER, stable=False) == "较前缩小、代谢减低（SUVmax 5.3 vs 11.2）"


def test_keep_change_adds_the_direction_and_the_values_before_the_final_mark():
    assert keep_change(SMALLER, "右肺上叶结节。") == "右肺上叶结节，较前缩小、代谢减低（SUVmax 5.3 vs 11.2）。"
    assert keep_change("右肺结节较前增大。", "右肺结节") == "右肺结节，较前增大"  # no final mark: none added
    assert keep_change(LOWER, "右肺上叶结节。", values=False) == "右肺上叶结节，代谢较前减低。"


def test_keep_change_puts_the_clause_before_what_the_item_concludes_or_advises():
    assert (
        keep_change(LOWER, "右肺上叶高代谢结节，考虑恶性，建议穿刺活检。")
        == "右肺上叶高代谢结节，代谢较前减低（SUVmax 5.3 vs 11.2），考虑恶性，建议穿刺活检。"
    )
    assert keep_change("右肺结节较前增大。", "右肺结节。建议随访。") == "右肺结节，较前增大。建议随访。"
    thyroid = keep_change("甲状腺结节较前增大。", "甲状腺结节，请结合超声检查。")
    assert thyroid == "甲状腺结节，较前增大，请结合超声检查。"


def test_keep_change_leaves_an_item_that_already_states_a_change_as_it_is():
    for item in (
        "右肺上叶结节，较前增大。",  # even the other direction: contradictions are the guard's
        "右肺上叶结节，代谢减低（较前）。",
        "右肺上叶结节，同前相仿。",
        "右肺上叶新发结节。",
        "原右肺结节消失。",
    ):
        assert keep_change(SMALLER, item) == item
    assert keep_change("右肺上叶结节，放射性摄取增高。", "右肺上叶高代谢结节。") == "右肺上叶高代谢结节。"  # no change
    assert keep_change(SMALLER, "") == ""


def test_keep_change_handles_new_vanished_and_stable_lesions():
    new = keep_change("肝内新发低密度灶，SUVmax：6.1。", "肝内高代谢灶，考虑转移。")
    assert new == "肝内高代谢灶，较前新发，考虑转移。"
    assert keep_change("原右肺结节本次消失。", "右肺结节。") == "右肺结节，较前消失。"
    assert keep_change("纵隔淋巴结大小及代谢同前相仿。", "纵隔淋巴结，考虑炎性。") == "纵隔淋巴结，同前相仿，考虑炎性。"


def test_keep_change_adds_no_number_the_finding_does_not_give():
    for finding in (SMALLER, LOWER, "肝内新发低密度灶，SUVmax：6.1。", "右肺结节较前增大。", "纵隔淋巴结同前相仿。"):
        item = "右肺上叶结节，大小约1.2cm。"
        added = set(NUMBER.findall(keep_change(finding, item))) - set(NUMBER.findall(item))
        assert added <= set(NUMBER.findall(finding)), finding
    # the finding's own digits, as written
    assert "5.30 vs 11.20" in keep_change("右肺结节，摄取较前减低，SUVmax：5.30vs11.20。", "右肺结节。")
    assert not re.search(r"\d", keep_change("右肺结节较前增大。", "右肺结节。"))


@pytest.mark.parametrize(
    "finding",
    [
        "右肺中叶多发斑片影，放射性摄取增高，本次SUVmax：4.9。",  # a state this exam, not a rise
        "原胰颈区软组织密度结节，放射性摄取增高，SUVmax：4.5。",  # the old lesion's uptake, not its course
        "胰周脂肪间隙消失。",  # an anatomical plane, not a lesion that went
        "颈椎生理曲度消失。",
        "胃窦壁增厚，考虑进展期胃癌。",  # a stage
        "肝内低密度灶，密度与肌肉相似。",  # like muscle, not like before
        "右肺上叶结节未见增大。",
    ],
)
def test_state_words_are_no_change(finding: str):
    assert change_clause(finding) is None
    assert keep_change(finding, "右肺结节。") == "右肺结节。"


def test_stated_reads_changes_stability_and_values():
    said = stated("右肺结节较前增大，放射性摄取较前减低，SUVmax：5.3vs11.2；纵隔淋巴结同前。")
    assert said.changes == {("size", "up"), ("level", "down")}
    assert said.stable and said.values == [("5.3", "11.2")]
    assert stated("右肺结节，SUVmax：11.2vs5.3。").changes == {("level", "up")}  # the values alone, clearly apart


def test_values_alone_qualify_the_description_without_a_comma():
    assert keep_change("右肺结节，SUVmax：3.6vs3.5。", "右肺结节。") == "右肺结节（SUVmax 3.6 vs 3.5）。"
    assert keep_change("右肺结节，SUVmax：3.6vs3.5。", "右肺结节。", values=False) == "右肺结节。"


def test_keep_change_leaves_normal_statements_and_goes_with_the_first_sentence():
    assert keep_change("右肺结节较前增大。", "未见明显异常。") == "未见明显异常。"
    assert keep_change("右肺结节较前增大。", "右肺结节；纵隔淋巴结。") == "右肺结节，较前增大；纵隔淋巴结。"
    assert keep_change("右肺结节较前增大。", "右肺结节。肝囊肿。") == "右肺结节，较前增大。肝囊肿。"


def test_says_course_is_wide_so_that_nothing_is_added_to_an_item_that_may_say_one():
    said = ("右肺结节，较前增大。", "右肺结节，本次未见。", "右肺结节（SUVmax 5.3 vs 11.2）。")
    said += ("病情进展。", "纵隔淋巴结相仿。")
    for item in said:
        assert says_course(item), item
    for item in ("右肺上叶高代谢结节，考虑恶性。", "直肠高代谢。", "右肺结节，大小约1.2cm，放射性摄取增高。"):
        assert not says_course(item), item
