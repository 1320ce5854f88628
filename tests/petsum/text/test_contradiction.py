"""Impression items that contradict their findings: raised uptake the findings deny, an organ state
they deny, a change in the opposite direction; and what must not count as one."""

import pytest

from petsum.text.contradiction import KINDS, STATES, contradictions, impression_contradictions

LUNG_NOT_LIVER = "右肺上叶见结节，大小约1.2cm，放射性摄取增高，SUVmax：5.1。肝脏形态可，肝内未见异常放射性摄取。"
AFTER_TREATMENT = "右肺癌化疗后：原纵隔及右肺门肿大淋巴结代谢增高灶消失。双肺未见异常放射性摄取。"


def test_kinds_and_the_state_table():
    assert KINDS == ("uptake", "state", "direction")
    assert {s.name for s in STATES} == {"充盈", "显影", "大小", "扩张", "增厚"}


@pytest.mark.parametrize(
    ("finding", "item", "expected"),
    [
        # judged per organ: raised uptake in the lung says nothing of the liver
        (LUNG_NOT_LIVER, "肝脏高代谢灶，考虑转移", ["uptake"]),
        (LUNG_NOT_LIVER, "右肺上叶高代谢结节，考虑肺癌", []),
        # uptake that disappeared after treatment, written as if still there
        (AFTER_TREATMENT, "纵隔及右肺门高代谢淋巴结，考虑转移", ["uptake"]),
        (AFTER_TREATMENT, "原纵隔及右肺门高代谢淋巴结消失，考虑治疗后改变", []),
        # a denied focus still contradicts an item about a lesion
        ("甲状腺两叶不大，腺实质内未见异常放射性增高灶。", "甲状腺左叶高代谢结节", ["uptake"]),
        # what is gone is gone, whether or not the item names a lesion
        ("原纵隔代谢增高灶消失。", "纵隔代谢增高", ["uptake"]),
        ("右侧肩关节周围放射性摄取增高，本次未见。", "右侧肩关节代谢增高，考虑非特异性摄取", []),
    ],
)
def test_uptake(finding: str, item: str, expected: list[str]):
    assert contradictions(finding, item) == expected


@pytest.mark.parametrize(
    ("finding", "item"),
    [
        (LUNG_NOT_LIVER, "肝脏未见高代谢"),  # the item claims nothing
        (LUNG_NOT_LIVER, "肝脏低密度结节，代谢增高不明显"),  # `增高不明显` says it is not raised
        ("肝内未见异常放射性摄取。", "肝脏多发小结节，代谢未见增高"),
        # the organ has raised uptake somewhere: one lesion's denial does not contradict another's
        ("肝S8见低密度灶，放射性摄取增高，SUVmax 4.2；肝左叶见小囊肿，无异常放射性摄取。", "肝S8高代谢灶"),
        # a node anywhere with raised uptake supports an item about nodes named without a station
        ("原纵隔淋巴结代谢增高灶消失；左锁骨上新见肿大淋巴结，SUVmax 6.0。", "高代谢淋巴结，考虑转移"),
        # `余…` speaks of the rest of the skeleton, not of the vertebra named
        ("胸4椎体骨质破坏，放射性摄取增高，SUVmax 8.0。余骨骼未见异常放射性摄取。", "胸4椎体高代谢灶，考虑骨转移"),
        ("左肾未见异常放射性摄取。", "右肾高代谢结节"),  # the other side
        ("胰头区见软组织肿块。胰周散在小淋巴结，未见异常放射性摄取。", "胰头高代谢肿块"),  # nodes beside it
        ("脾脏放射性稍浓聚，放射性分布尚均匀。", "脾脏稍高代谢，考虑反应性改变"),  # some uptake is said
        ("胃壁放射性分布稍欠均匀，未见局灶性放射性浓聚。", "胃壁弥漫性代谢增高"),  # not focal is not none
        # no focus is not no uptake of the whole organ
        ("甲状腺两叶不大，腺实质内未见异常放射性增高灶。", "甲状腺代谢轻度增高，考虑炎性改变"),
        ("十二指肠术后，术区未见异常放射性浓聚。", "十二指肠降段高代谢灶"),  # the operative bed is not the organ
        # the splenic hilum is beside the spleen, not the spleen
        ("胰尾部肿块，放射性摄取增高，SUVmax 6.0，脾门部受压。脾脏放射性分布均匀。", "脾门部高代谢病变"),
        # a sentence about a place beside an organ does not continue the organ before it
        ("胰头饱满，胰管不扩张。脾脏前方见实性结节，无摄取。", "胰头高代谢病变"),
    ],
)
def test_uptake_false_alarms_are_avoided(finding: str, item: str):
    assert contradictions(finding, item) == []


@pytest.mark.parametrize(
    ("finding", "item"),
    [
        ("盆腔内膀胱充盈可，膀胱壁未见增厚。", "膀胱充盈欠佳"),
        ("两侧肾脏显影可。", "双肾显影欠佳"),
        ("甲状腺两叶不大。", "甲状腺增大"),
        ("肝内外胆管未见扩张。", "肝内胆管扩张"),
        ("胃充盈可，胃壁未见增厚。", "胃壁增厚"),
    ],
)
def test_state(finding: str, item: str):
    assert contradictions(finding, item) == ["state"]


@pytest.mark.parametrize(
    ("finding", "item"),
    [
        ("盆腔内膀胱充盈欠佳。", "膀胱充盈欠佳"),
        ("脾脏不大，放射性分布均匀。", "脾大"),  # another organ's state
        ("肝内外胆管未见扩张。", "胰头区低密度影，考虑扩张胆管可能"),  # a differential, not an assertion
        ("左侧肾盂无扩张，右侧肾盂扩张积水。", "右肾盂扩张积水"),  # denied of one side, said of the other
        ("胃窦部胃壁不均匀性增厚，放射性摄取增高。胃体部胃壁未见增厚。", "胃窦壁增厚伴代谢增高"),
        ("甲状腺两叶不大。", "甲状腺较前增大"),  # a change, not a state
    ],
)
def test_state_false_alarms_are_avoided(finding: str, item: str):
    assert contradictions(finding, item) == []


@pytest.mark.parametrize(
    ("finding", "item", "expected"),
    [
        ("右肺上叶结节，放射性摄取较前减低。", "右肺上叶结节，代谢较前增高", ["direction"]),
        ("右肺上叶结节，SUVmax：3.1vs5.2。", "右肺上叶结节代谢较前增高", ["direction"]),  # now vs before
        ("右肺上叶结节，SUVmax：3.1vs5.2。", "右肺上叶结节代谢较前减低", []),
        # the finding calls it unchanged: a small difference of SUVmax is no direction
        ("右肺上叶结节，放射性摄取较前相仿，SUVmax：4.0vs3.7。", "右肺上叶结节，代谢较前减低", []),
        ("肝内多发低密度灶，较前增大。", "肝内多发转移灶，较前缩小", ["direction"]),
        ("肝内多发低密度灶，较前增大。", "肝内多发转移灶，较前增大", []),
    ],
)
def test_direction(finding: str, item: str, expected: list[str]):
    assert contradictions(finding, item) == expected


@pytest.mark.parametrize("item", ["肝内多发转移灶，较前增大", "肝内多发转移灶，较前缩小"])
def test_mixed_changes_contradict_neither_direction(item: str):
    assert contradictions("肝内多发低密度灶，部分较前增大，部分较前缩小。", item) == []


def test_direction_false_alarms_are_avoided():
    # what is new and what is gone are different lesions
    assert contradictions("原肝内低密度灶放射性摄取消失；肝左叶新见高代谢灶，SUVmax 5.0。", "肝左叶新发高代谢灶") == []
    # another organ's change
    assert contradictions("右肺上叶结节较前增大。肝内病灶较前缩小。", "右肺上叶结节较前增大") == []
    # a side named on its own continues the nodes before it there; an implicit comparison agrees
    finding = "右侧颈部2区淋巴结缩小，放射性摄取减低。双侧颈部5区多发淋巴结，左侧较前增大，右侧同前相仿。"
    assert contradictions(finding, "右侧颈部2区淋巴结较前缩小") == []
    # a verdict on the patient is not a change of the organ its sentence named before
    finding = "腹膜后淋巴结较前略缩小，放射性摄取较前略减低。肝内新见多发高代谢灶。"
    assert contradictions(finding, "原腹膜后淋巴结较前缩小，代谢较前减低，综上所述考虑病情较前进展") == []
    # `增强MR` is imaging, not a change
    assert contradictions("胰头病灶放射性摄取较前减低。", "胰头病灶较前代谢减低，请结合增强MR") == []


def test_several_kinds_in_one_item():
    finding = "胰头病灶较前增大，放射性摄取较前减低。胰管未见扩张。"
    assert contradictions(finding, "胰头病灶代谢较前增高，伴胰管扩张") == ["state", "direction"]


def test_impression_counts_items_not_the_closing_line():
    findings = LUNG_NOT_LIVER + "盆腔内膀胱充盈可。"
    impression = (
        "1、右肺上叶高代谢结节，考虑肺癌。2、肝脏高代谢灶。3、膀胱充盈欠佳。4、请结合临床。"
        "余躯干及脑部PET/CT检查未见明显异常代谢征象。"
    )
    # four items (the last names no organ: counted, never flagged); the closing line is no item
    assert impression_contradictions(findings, impression) == (4, 2)
    assert impression_contradictions(findings, "1、右肺上叶高代谢结节。") == (1, 0)
    assert impression_contradictions(findings, "") == (0, 0)
