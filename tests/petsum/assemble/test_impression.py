"""The whole-report impression from per-region outputs."""

import pytest

from petsum.assemble.impression import (
    assemble,
    grouped,
    is_normal,
    items,
    shared_descriptions,
    without_repeated_clauses,
    without_repeats,
)
from petsum.text.rules import suspicion


def test_clinical_order_numbering_and_closing():
    got = assemble(
        [
            ("abdomen", "胰头区高代谢肿块，考虑恶性。"),
            ("brain", "未见明显异常。"),
            ("chest", "右肺上叶结节，考虑转移。"),
        ]
    )
    assert got.splitlines() == [
        "1、右肺上叶结节，考虑转移。",
        "2、胰头区高代谢肿块，考虑恶性。",
        "余脑部、胸部及腹部PET/CT检查未见明显异常代谢征象。",
    ]


def test_suspicious_items_come_first_in_clinical_order_within_a_rank():
    got = assemble(
        [
            ("chest", "双肺陈旧性索条。右肺上叶结节，代谢增高。"),
            ("brain", "左侧基底节区腔隙性脑梗塞。"),
            ("abdomen", "肝囊肿。胰头区高代谢肿块，考虑恶性。"),
            ("lymph", "腹膜后淋巴结转移。"),
        ]
    )
    assert got.splitlines()[:-1] == [
        "1、胰头区高代谢肿块，考虑恶性。",
        "2、腹膜后淋巴结转移。",
        "3、右肺上叶结节，代谢增高。",
        "4、左侧基底节区腔隙性脑梗塞。",
        "5、双肺陈旧性索条。",
        "6、肝囊肿。",
    ]
    assert [suspicion(i) for i in ("胰腺癌术后。", "甲状腺结节，代谢增高。", "前列腺增生。")] == [0, 1, 2]


def test_all_normal_report_has_no_items():
    assert assemble([("abdomen", "未见明显异常。"), ("pelvis", "")]) == "腹部及盆腔PET/CT检查未见明显异常代谢征象。"


def test_normal_items_are_left_out_item_by_item():
    got = assemble([("brain", "脑部PET/CT检查未见明显异常代谢征象。"), ("abdomen", "未见明显异常。肝囊肿。")])
    assert got.splitlines() == ["1、肝囊肿。", "余脑部及腹部PET/CT检查未见明显异常代谢征象。"]


def test_advice_stays_with_its_finding_and_duplicates_are_written_once():
    got = assemble([("chest", "右肺结节。建议随访。纵隔淋巴结转移"), ("abdomen", "纵隔淋巴结转移。")])
    assert got.splitlines() == [
        "1、纵隔淋巴结转移；右肺结节。建议随访。",
        "余胸部及腹部PET/CT检查未见明显异常代谢征象。",
    ]


def test_adjacent_items_of_one_region_share_a_number():
    assert grouped(["肝囊肿。", "胆囊结石。", "右肺结节。"], ["abdomen", "abdomen", "chest"]) == [
        "肝囊肿；胆囊结石。",
        "右肺结节。",
    ]
    assert grouped(["肝囊肿。", "右肺结节。", "胆囊结石。"], ["abdomen", "chest", "abdomen"]) == [
        "肝囊肿。",
        "右肺结节。",
        "胆囊结石。",
    ]
    assert grouped(["肺门淋巴结；", "纵隔淋巴结。"], ["lymph", "lymph"]) == [
        "肺门淋巴结；纵隔淋巴结。"
    ]  # one separator
    got = assemble([("abdomen", "胰头区高代谢肿块，考虑恶性。肝囊肿。"), ("chest", "右肺上叶结节，代谢增高。")])
    assert got.splitlines()[:2] == [
        "1、胰头区高代谢肿块，考虑恶性。",
        "2、右肺上叶结节，代谢增高。",
    ]  # ranked apart: not grouped
    assert got.splitlines()[2] == "3、肝囊肿。"


def test_items_that_say_the_same_of_different_sites_are_said_once():
    nodes = "多发淋巴结伴代谢轻度增高，考虑反应性改变。"
    got, regions = shared_descriptions(
        [f"双侧腋窝{nodes}", "右肺结节。", f"双侧颈部{nodes}", f"双侧腹股沟区{nodes}"],
        ["chest", "chest", "head_neck", "pelvis"],
    )
    assert got == [
        f"双侧颈部、腋窝及腹股沟区{nodes}",
        "右肺结节。",
    ]  # where the first stood; sites head to foot, the side said once
    assert regions == ["chest", "chest"]
    got, _ = shared_descriptions(
        [f"双侧颈部{nodes}", f"右侧锁骨上{nodes}", f"双侧腋窝{nodes}"], ["head_neck", "head_neck", "chest"]
    )
    assert got == [
        f"双侧颈部及腋窝{nodes}",
        f"右侧锁骨上{nodes}",
    ]  # only sites of one side share: a side said once is not misread
    got, _ = shared_descriptions([f"左侧颈部及右侧锁骨上{nodes}", f"左侧腋窝{nodes}"], ["head_neck", "chest"])
    assert got == [f"左侧颈部、右侧锁骨上及腋窝{nodes}"]  # a side inside a site stays said
    got, _ = shared_descriptions([f"双侧颈部{nodes[:-1]}！", f"双侧腋窝{nodes[:-1]}"], ["head_neck", "chest"])
    assert got == [f"双侧颈部及腋窝{nodes[:-1]}！"]  # the first's punctuation, once
    got, _ = shared_descriptions(
        ["肝门区及腹膜后多发高代谢淋巴结，考虑转移；", "胰周多发高代谢淋巴结，考虑转移。"], ["lymph", "lymph"]
    )
    assert got == ["肝门区、腹膜后及胰周多发高代谢淋巴结，考虑转移；"]


@pytest.mark.parametrize(
    "pair",
    [
        (
            "腹膜后多发高代谢淋巴结，考虑转移；",
            "膈脚多发高代谢肿大淋巴结，考虑转移；",
        ),  # the sites would describe: not sites alone
        (
            "胰头高代谢病变，考虑恶性，胰腺癌可能性大；",
            "胰腺颈部高代谢灶，考虑恶性，胰腺癌可能性大；",
        ),  # only a conclusion shared
        ("肝囊肿。", "肾囊肿。"),  # too little shared to be worth saying once
        ("左肺上叶结节，代谢增高。", "左肺上叶结节，代谢增高。"),  # the same site
        ("双侧颈部未见明显高代谢淋巴结。", "双侧腋窝未见明显高代谢淋巴结。"),  # a negation is not a site
        ("右肺上叶软组织肿块代谢增高，考虑恶性。", "左肺下叶结节代谢增高，考虑恶性。"),  # nor a lesion
        ("左侧颈部多发淋巴结伴代谢轻度增高。", "腋窝多发淋巴结伴代谢轻度增高。"),  # a side the other does not say
        ("及多发淋巴结伴代谢轻度增高。", "及及多发淋巴结伴代谢轻度增高。"),  # nothing that is a site
    ],
)
def test_items_that_share_less_than_a_description_stay_apart(pair):
    assert shared_descriptions(list(pair), ["chest", "chest"])[0] == list(pair)


def test_assemble_says_a_shared_description_once():
    got = assemble(
        [
            ("head_neck", "双侧颈部多发淋巴结伴代谢轻度增高，考虑反应性改变。"),
            ("chest", "双侧腋窝多发淋巴结伴代谢轻度增高，考虑反应性改变。"),
        ]
    )
    assert got.splitlines()[0] == "1、双侧颈部及腋窝多发淋巴结伴代谢轻度增高，考虑反应性改变。"
    assert len(got.splitlines()) == 2
    got = assemble(
        [("head_neck", "颈部多发淋巴结伴代谢轻度增高。建议随访"), ("chest", "腋窝多发淋巴结伴代谢轻度增高。建议随访")]
    )
    assert (
        got.splitlines()[0] == "1、颈部及腋窝多发淋巴结伴代谢轻度增高。建议随访。"
    )  # advice with no full stop ends with one


def test_normal_outputs_and_items():
    assert is_normal("未见明显异常。") and is_normal("  ") and not is_normal("肝囊肿。")
    assert is_normal("脑部PET/CT检查未见明显异常代谢征象。") and not is_normal("胰腺癌术后，PET/CT检查示局部复发。")
    assert not is_normal("未见明显异常。肝囊肿。")
    assert items("肝囊肿。胆囊结石") == ["肝囊肿。", "胆囊结石。"]


def test_an_item_the_model_stopped_after_a_comma_ends_with_a_full_stop():
    assert items("双肺结节，") == ["双肺结节。"]
    assert items("右肺无代谢小结节，考虑良性，。肝囊肿、") == ["右肺无代谢小结节，考虑良性。", "肝囊肿。"]
    assert items("，。") == [] and items("胆囊结石；") == ["胆囊结石；"]


def test_a_question_mark_inside_brackets_does_not_end_the_item():
    # the model writes `（囊腺瘤？）`; cut at the `？`, the `）` became an item of its own (`6、）。`)
    assert items("胰体部低密度影，考虑良性（囊腺瘤？）。左肾囊肿。") == [
        "胰体部低密度影，考虑良性（囊腺瘤？）。",
        "左肾囊肿。",
    ]
    assert items("考虑良性(囊肿?)可能性大。") == ["考虑良性(囊肿?)可能性大。"]
    assert items("考虑良性（囊肿?)可能性大。") == ["考虑良性（囊肿?)可能性大。"]  # mixed widths
    assert items("考虑良性（囊肿？肝囊肿。") == ["考虑良性（囊肿？", "肝囊肿。"]  # a bracket never closed is no aside
    impression = assemble([("abdomen", "胰体部低密度影，考虑良性（囊腺瘤？）。"), ("chest", "左肺结节。")])
    assert impression.splitlines()[:2] == ["1、左肺结节。", "2、胰体部低密度影，考虑良性（囊腺瘤？）。"]


def test_a_stuttered_list_of_sites_names_each_site_once():
    assert (
        without_repeats("肝门区、肝门区、肝门区及腹膜后多发高代谢淋巴结，考虑转移。")
        == "肝门区及腹膜后多发高代谢淋巴结，考虑转移。"
    )
    assert without_repeats("纵隔、纵隔、纵隔旁、纵隔内淋巴结；纵隔") == "纵隔、纵隔旁、纵隔内淋巴结；纵隔"  # per clause
    assert without_repeats("胰管、胰管扩张。") == "胰管、胰管扩张。"  # not the same entry: left as written
    assert assemble([("abdomen", "膈上、膈上及腹膜后多发高代谢淋巴结，考虑转移。")]).startswith(
        "1、膈上及腹膜后多发高代谢淋巴结"
    )
    assert (
        without_repeats("膈上、膈上、膈上多发高代谢淋巴结") == "膈上多发高代谢淋巴结"
    )  # the last entry is the site and its description
    assert without_repeats("肝门、肝门区多发淋巴结") == "肝门、肝门区多发淋巴结"  # 肝门区 is another site


def test_a_character_said_three_times_running_is_said_once():
    assert items("前前前前列腺增生，脾脏稍稍稍稍低密度影。") == ["前列腺增生，脾脏稍低密度影。"]
    assert items("右肺肺门淋巴结，SUVmax 111。") == ["右肺肺门淋巴结，SUVmax 111。"]  # doubles and digits are real text


def test_a_clause_said_again_right_after_itself_is_said_once():
    assert items("胰体部高代谢肿块，伴远端胰管扩张，伴远端胰管扩张，考虑恶性。") == [
        "胰体部高代谢肿块，伴远端胰管扩张，考虑恶性。"
    ]
    assert without_repeated_clauses("肝囊肿；肝囊肿；肝囊肿。") == "肝囊肿。"  # a run of three
    assert without_repeated_clauses("双肺结节，双肺结节影。") == "双肺结节，双肺结节影。"  # not the same clause
    assert (
        without_repeated_clauses("肝囊肿，考虑良性；肾囊肿，考虑良性。") == "肝囊肿，考虑良性；肾囊肿，考虑良性。"
    )  # not adjacent


def test_an_answer_that_opens_with_advice_stays_with_its_regions_finding():
    # one output per model call: advice is the region's finding's, as when one answer says both
    per_call = assemble([("chest", "右肺结节。"), ("chest", "建议随访。"), ("abdomen", "肝囊肿。")])
    assert per_call == assemble([("chest", "右肺结节。建议随访。"), ("abdomen", "肝囊肿。")])
    assert per_call.splitlines()[:2] == ["1、右肺结节。建议随访。", "2、肝囊肿。"]
    assert assemble([("chest", "右肺结节。"), ("abdomen", "建议随访。")]).splitlines()[:2] == [
        "1、右肺结节。",
        "2、建议随访。",
    ]  # another region's: its own item


def test_assemble_items_says_which_outputs_each_item_came_from():
    from petsum.assemble.impression import assemble_items

    nodes = "多发淋巴结伴代谢轻度增高，考虑反应性改变。"
    outputs = [
        ("head_neck", f"双侧颈部{nodes}"),  # 0: shares its description with 2
        ("abdomen", "肝囊肿。"),  # 1
        ("chest", f"双侧腋窝{nodes}"),  # 2
        ("abdomen", "胆囊结石。"),  # 3: grouped under one number with 1
        ("abdomen", "肝囊肿。"),  # 4: the same item as 1, written once
        ("pelvis", "未见明显异常。"),  # 5: normal, no item
    ]
    got = assemble_items(outputs, opening="与前片比较：")
    assert got.impression == assemble(outputs, opening="与前片比较：")
    assert got.opening == "与前片比较：" and got.closing.startswith("余")
    by_text = {text: froms for text, froms in got.items}
    assert by_text[f"双侧颈部及腋窝{nodes}"] == [0, 2]
    assert by_text["肝囊肿；胆囊结石。"] == [1, 3, 4]
    assert all(5 not in froms for _, froms in got.items)
    nothing = assemble_items([("chest", "未见明显异常。")])
    assert nothing.items == [] and nothing.opening is None and nothing.impression == nothing.closing
