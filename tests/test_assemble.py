"""The whole-report impression from per-region outputs."""

import pytest

from petsum.assemble import assemble, is_normal, items, scope


def test_clinical_order_numbering_and_closing():
    got = assemble([("abdomen", "胰头区高代谢肿块，考虑恶性。"), ("brain", "未见明显异常。"), ("chest", "右肺上叶结节，考虑转移。")])
    assert got.splitlines() == ["1、右肺上叶结节，考虑转移。", "2、胰头区高代谢肿块，考虑恶性。", "余躯干及脑部PET/CT检查未见明显异常代谢征象。"]


def test_all_normal_report_has_no_items():
    assert assemble([("abdomen", "未见明显异常。"), ("pelvis", "")]) == "腹部及盆腔PET/CT检查未见明显异常代谢征象。"


def test_advice_stays_with_its_finding_and_duplicates_are_written_once():
    got = assemble([("chest", "右肺结节。建议随访。纵隔淋巴结转移"), ("abdomen", "纵隔淋巴结转移。")])
    assert got.splitlines()[:2] == ["1、右肺结节。建议随访。", "2、纵隔淋巴结转移。"]
    assert len(got.splitlines()) == 3


@pytest.mark.parametrize(
    "regions, field",
    [({"brain", "chest", "abdomen"}, "躯干及脑部"), ({"chest", "abdomen"}, "躯干"), ({"abdomen", "pelvis"}, "腹部及盆腔"),
     ({"abdomen"}, "腹部"), ({"musculoskeletal"}, "视野范围内")],
)
def test_closing_names_the_scanned_field(regions, field):
    assert scope(regions) == field


def test_normal_outputs_and_items():
    assert is_normal("未见明显异常。") and is_normal("  ") and not is_normal("肝囊肿。")
    assert items("肝囊肿。胆囊结石") == ["肝囊肿。", "胆囊结石。"]
