"""Other hospitals' report formats: section headers, newline-separated sections, one paragraph."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from petsum.text.findings import findings
from petsum.text.inputs import model_inputs
from petsum.text.report import drop_headers, split_sections
from petsum.text.rules import header_region, strip_header
from petsum.text.salient import salient_sentence, salient_text

HEADERS = (
    "脑部：双侧大脑半球对称，皮层代谢分布均匀。胸部：右肺上叶见结节，大小约1.2cm，SUVmax：5.3。腹部：肝脏形态正常。"
)


def regions(report: str) -> list[str]:
    return [region for region, _ in split_sections(report)]


@pytest.mark.parametrize(
    "header, region",
    [
        ("胸部：", "chest"),
        ("胸部:", "chest"),
        ("【胸部】", "chest"),
        ("【胸部】：", "chest"),
        ("[盆腔]", "pelvis"),
        ("骨骼肌肉：", "musculoskeletal"),
        ("骨骼:", "musculoskeletal"),
        ("颈部：", "head_neck"),
        ("头颈部：", "head_neck"),
        ("颅脑：", "brain"),
        ("其他：", None),
    ],
)
def test_header_variants_are_stripped_and_name_their_region(header: str, region: str | None) -> None:
    assert strip_header(header + "右肺上叶见结节。") == "右肺上叶见结节。"
    assert header_region(header + "右肺上叶见结节。") == region


def test_a_bare_region_word_is_content_not_a_header() -> None:
    """cPET starts sections with the word alone (`腹部胃充盈好`): no colon, no header."""
    assert strip_header("腹部胃充盈好。") == "腹部胃充盈好。"
    assert header_region("腹部胃充盈好。") is None
    assert drop_headers("腹部胃充盈好。胸腔积液。") == "腹部胃充盈好。胸腔积液。"


def test_headers_leave_section_texts_and_findings() -> None:
    sections = split_sections(HEADERS)
    assert [r for r, _ in sections] == ["brain", "chest", "abdomen"]
    assert dict(sections)["chest"] == "右肺上叶见结节，大小约1.2cm，SUVmax：5.3。"
    for _, text in sections:
        assert "：" not in text.replace("SUVmax：", "")
        for finding in model_inputs(text, "finding"):
            assert not finding.startswith(("脑部", "胸部", "腹部"))


def test_findings_and_salient_drop_a_header_a_caller_leaves_in() -> None:
    section = "胸部：右肺上叶见结节，SUVmax 5.3。【腹部】肝脏见低密度灶。"
    assert findings(section) == ["右肺上叶见结节，SUVmax 5.3。", "肝脏见低密度灶。"]
    assert salient_sentence("胸部：右肺上叶见结节。") == "右肺上叶见结节。"
    assert salient_text(section).startswith("右肺")
    assert model_inputs("【胸部】右肺上叶见结节。", "region") == ["右肺上叶见结节。"]


def test_a_header_assigns_a_section_without_organ_terms() -> None:
    assert regions("胸部：未见异常放射性浓聚。腹部：肝脏未见异常。") == ["chest", "abdomen"]


def test_a_header_section_about_another_regions_organs_follows_them() -> None:
    """Under `胸部：` a section naming bones only is about bones, as without a header."""
    assert regions("胸部：胸椎骨质破坏，SUVmax:6.0。") == ["musculoskeletal"]
    # One organ of the header's region keeps the header's region.
    assert regions("胸部：右肺结节，胸骨骨质破坏。") == ["chest"]


def test_headers_on_lines_of_their_own() -> None:
    report = "检查方法：全身显像。\n【胸部】\n双肺纹理清晰。\n纵隔未见肿大淋巴结。\n【盆腔】\n膀胱充盈好。"
    sections = split_sections(report)
    assert [r for r, _ in sections] == ["chest", "pelvis"]
    assert sections[0][1] == "检查方法：全身显像。双肺纹理清晰。纵隔未见肿大淋巴结。"  # the preamble joins the first


def test_newline_sections() -> None:
    report = "双侧大脑半球对称。\n双肺纹理清晰，未见结节。\n肝脏形态正常。\n膀胱充盈好。"
    assert regions(report) == ["brain", "chest", "abdomen", "pelvis"]


def test_one_paragraph_without_headers_splits_by_sentence() -> None:
    report = "双侧大脑半球对称。双肺纹理清晰，未见结节。肝右叶见低密度灶，SUVmax 4.1。膀胱充盈好。"
    sections = split_sections(report)
    assert [r for r, _ in sections] == ["brain", "chest", "abdomen", "pelvis"]
    assert model_inputs(dict(sections)["abdomen"], "finding") == ["肝右叶见低密度灶，SUVmax 4.1。"]


def test_one_paragraph_with_inline_headers_splits_at_them() -> None:
    report = "脑部：未见异常。胸部：右肺见结节，SUVmax:3.2；未见其他异常。骨骼：未见异常放射性浓聚。"
    sections = split_sections(report)
    assert sections == [
        ("brain", "未见异常。"),
        ("chest", "右肺见结节，SUVmax:3.2；未见其他异常。"),
        ("musculoskeletal", "未见异常放射性浓聚。"),
    ]


def test_cpet_layout_is_read_as_before() -> None:
    """Space-run sections, no headers: the split cPET's own reports always had."""
    report = (
        "注射示踪剂60min后显像，见大脑形态如常。      甲状腺两叶不大。      两肺显影清晰。"
        "      腹部胃充盈好，肝脏形态可。"
    )
    assert split_sections(report) == [
        ("brain", "注射示踪剂60min后显像，见大脑形态如常。"),
        ("head_neck", "甲状腺两叶不大。"),
        ("chest", "两肺显影清晰。"),
        ("abdomen", "腹部胃充盈好，肝脏形态可。"),
    ]


def _reformat_module():
    path = Path(__file__).parents[3] / "experiments" / "reformat_style.py"
    spec = importlib.util.spec_from_file_location("reformat_style", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CPET = (
    "注射示踪剂60min后显像，见大脑形态如常，皮层各叶放射性分布均匀。"
    "      甲状腺两叶不大，形态可，未见明显异常放射性摄取。"
    "      两肺显影清晰，右肺上叶见结节，放射性摄取增高，SUVmax:5.3。胸水征阴性。"
    "      腹部胃充盈好。肝脏形态可，肝右叶见低密度灶，无异常放射性摄取。腹水征阴性。"
    "      盆腔内膀胱放射性浓聚如常。      视野内轴心骨未见异常放射性浓聚。"
)


@pytest.mark.parametrize("layout", ["headers", "newlines", "paragraph", "inline_headers", "header_lines"])
def test_reformatted_report_splits_into_the_same_regions(layout: str) -> None:
    module = _reformat_module()
    module.check_phrases()
    rewritten = module.reformat(CPET, layout, random.Random(0))
    assert rewritten != CPET
    assert (
        regions(rewritten) == regions(CPET) == ["brain", "head_neck", "chest", "abdomen", "pelvis", "musculoskeletal"]
    )
    assert "SUVmax 5.3" in rewritten and "胸水征阴性" not in rewritten
    if layout in ("headers", "newlines", "header_lines", "inline_headers"):
        kept = split_sections(module.reformat(CPET, layout, random.Random(0), phrases=False))
        assert kept == split_sections(CPET)


def test_reformat_is_deterministic() -> None:
    module = _reformat_module()
    assert module.reformat(CPET, "headers", random.Random("0:7")) == module.reformat(
        CPET, "headers", random.Random("0:7")
    )
