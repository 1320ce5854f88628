"""Report structure: normalization, region sections, impression items, the organ lexicon."""

import pytest

from petsum.data.pairs import load_pairs
from petsum.text.lexicon import REGIONS, load_lexicon
from petsum.text.report import impression_items, normalize, section_region, split_sections
from petsum.text.rules import finding_organs

SIX = ["brain", "head_neck", "chest", "abdomen", "pelvis", "musculoskeletal"]


def test_normalize_folds_latin_width_but_keeps_chinese_punctuation():
    assert normalize("ＳＵＶｍａｘ：５．３，ＰＥＴ／ＣＴ。\r\n") == "SUVmax：5.3，PET/CT。"
    assert normalize("胸部：\u3000未见异常。   \r\n腹部") == "胸部： 未见异常。\n腹部"


def test_lexicon_prefers_longest_term_and_knows_every_region():
    lex = load_lexicon()
    assert lex.terms_in("纵隔淋巴结肿大") == ["纵隔淋巴结"]
    assert lex.organs_in("胰头部肿块，肝右叶结节") == {"胰腺", "肝"}
    assert set(lex.region_of.values()) == set(REGIONS)


def test_finding_organs_skip_normal_clauses():
    text = "1、胰头部高代谢肿块，考虑恶性。  2、双肺未见异常。  余躯干及脑部PET/CT检查未见其他异常代谢征象。"
    assert finding_organs(text) == {"胰腺"}


@pytest.mark.parametrize(
    "text, region",
    [("两肺显影清晰，纵隔未见肿大淋巴结。", "chest"), ("膀胱充盈好，前列腺不大。", "pelvis"), ("未见异常。", None)],
)
def test_section_region(text, region):
    assert section_region(text) == region


def test_sections_of_fixture_reports(pet_csv):
    ex = {e.id: e for e in load_pairs(pet_csv)}
    assert [r for r, _ in split_sections(ex["toy-001"].question)] == SIX
    assert [r for r, _ in split_sections(ex["toy-013"].question)] == ["chest"]  # chest-only scan
    assert [r for r, _ in split_sections(ex["toy-014"].question)] == ["abdomen"]
    assert [r for r, _ in split_sections(ex["toy-016"].question)] == SIX  # newline separators
    joined = split_sections(ex["toy-015"].question)  # no separators: sentence-level fallback
    assert len(joined) >= 4 and [r for r, _ in joined] == sorted((r for r, _ in joined), key=SIX.index)


def test_sections_keep_all_text():
    report = "显像见大脑形态如常。      甲状腺两叶不大。      双肺见结节，SUVmax：3.1。"
    sections = split_sections(report)
    assert [r for r, _ in sections] == ["brain", "head_neck", "chest"]
    assert "".join(t for _, t in sections) == report.replace(" ", "")


def test_impression_items_and_closing_line():
    imp = (
        "术后：  1、胰头部增大伴异常高代谢，首先考虑恶性肿瘤；胰管扩张。  2.双下肺斑片影。  "
        "余躯干及脑部PET/CT检查未见明显异常代谢征象。  "
    )
    items, closing = impression_items(imp)
    assert items == ["术后", "胰头部增大伴异常高代谢，首先考虑恶性肿瘤；胰管扩张。", "双下肺斑片影。"]
    assert closing == "余躯干及脑部PET/CT检查未见明显异常代谢征象。"
    assert impression_items("肝囊肿。前列腺增生。") == (["肝囊肿。", "前列腺增生。"], None)
