"""Sub-sentence splitting and joining (shared.text)."""

from __future__ import annotations

import re

import pytest

from shared.text import join_segments, join_with_spans, split_subsentences


def no_ws(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- Chinese breaks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("胰头部肿块，考虑恶性。", ["胰头部肿块，", "考虑恶性。"]),
        ("胆总管扩张；胰管扩张。", ["胆总管扩张；", "胰管扩张。"]),
        ("双肺、纵隔未见异常", ["双肺、", "纵隔未见异常"]),
        ("请复查！结果如何？好的", ["请复查！", "结果如何？", "好的"]),
        ("胸部：双肺纹理清晰", ["胸部：", "双肺纹理清晰"]),
        ("甲，乙。丙；丁、戊！己？", ["甲，", "乙。", "丙；", "丁、", "戊！", "己？"]),
    ],
)
def test_chinese_punctuation_breaks(text, expected):
    assert split_subsentences(text) == expected


def test_numbered_items_start_a_piece_and_stay_attached():
    text = "1、胰头部高代谢，考虑恶性。  2、肝囊肿。"
    assert split_subsentences(text) == ["1、胰头部高代谢，", "考虑恶性。", "2、肝囊肿。"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1、胆管扩张。2.肝囊肿。3．脾大。", ["1、胆管扩张。", "2.肝囊肿。", "3．脾大。"]),
        ("1、胆管扩张。 2.肝囊肿。 3．脾大。", ["1、胆管扩张。", "2.肝囊肿。", "3．脾大。"]),
        ("1、a。 2) b。", ["1、a。", "2) b。"]),
    ],
)
def test_item_markers_of_every_style(text, expected):
    assert split_subsentences(text) == expected


def test_colon_followed_by_text_breaks_before_numbered_items():
    text = "行胆管引流术：  1、胆管扩张。  2、肝囊肿。"
    assert split_subsentences(text) == ["行胆管引流术：", "1、胆管扩张。", "2、肝囊肿。"]


# --- no breaks inside numbers, labels and names -------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("结节大小约2.5cm，边界清。", ["结节大小约2.5cm，", "边界清。"]),
        ("共1,000个细胞，未见异常。", ["共1,000个细胞，", "未见异常。"]),
        ("It costs $3.50 now. Half is 1/2 of it.", ["It costs $3.50 now.", "Half is 1/2 of it."]),
        ("The pool holds 1,000 liters, then 2.5 more.", ["The pool holds 1,000 liters,", "then 2.5 more."]),
        ("放射性摄取增高，SUVmax：3.6，考虑恶性。", ["放射性摄取增高，", "SUVmax：3.6，", "考虑恶性。"]),
        ("摄取增高，SUVmax: 3.6, next", ["摄取增高，", "SUVmax: 3.6,", "next"]),
        ("摄取增高，SUVmax:4.5。", ["摄取增高，", "SUVmax:4.5。"]),
        ("行PET/CT显像。", ["行PET/CT显像。"]),
        ("静脉注射18F-FDG后约60min行PET/CT显像。", ["静脉注射18F-FDG后约60min行PET/CT显像。"]),
        ("大小约1.6×1.2cm，SUVmax：5.6。", ["大小约1.6×1.2cm，", "SUVmax：5.6。"]),
    ],
)
def test_no_break_inside_numbers_labels_and_names(text, expected):
    assert split_subsentences(text) == expected


# --- English -----------------------------------------------------------------------------------


def test_english_punctuation_breaks_before_whitespace_or_end():
    assert split_subsentences("Hello, world. Yes; no! Why? End.") == ["Hello,", "world.", "Yes;", "no!", "Why?", "End."]


def test_english_punctuation_without_following_space_does_not_break():
    assert split_subsentences("see e.g.this, a.b c") == ["see e.g.this,", "a.b c"]


def test_english_period_directly_before_chinese_breaks():
    assert split_subsentences("Done.胰头部肿块。") == ["Done.", "胰头部肿块。"]


def test_sentence_ending_in_a_small_number_is_not_an_item():
    # ` 8.` after whitespace must not be read as a numbered-item marker.
    assert split_subsentences("So she has 12 - 4 = 8. Then she buys more.") == [
        "So she has 12 - 4 = 8.",
        "Then she buys more.",
    ]


def test_mwp_answer_sentence_stays_whole():
    # MWP's stop sentence must stay one piece, or a segment carries the stop phrase without the answer.
    assert split_subsentences("Then 20 + 3 = 23. The answer is 23.") == ["Then 20 + 3 = 23.", "The answer is 23."]


def test_three_digit_numbers_are_never_items():
    # \d{1,2} in the item pattern: three digits before a period never form a marker.
    assert split_subsentences("That is 138. The answer is 138.") == ["That is 138.", "The answer is 138."]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("印象：1、胰头部肿块。2、肝囊肿。", ["印象：", "1、胰头部肿块。", "2、肝囊肿。"]),
        ("1、胰头部肿块，2、肝囊肿。", ["1、胰头部肿块，", "2、肝囊肿。"]),
    ],
)
def test_item_after_colon_or_comma_stays_attached(text, expected):
    assert split_subsentences(text) == expected


@pytest.mark.parametrize("text", ["SUVmax:  3.6，", "SUVmax：\u30003.6，"])
def test_value_label_with_wider_spacing_does_not_break(text):
    assert split_subsentences(text) == [text.strip()]


# --- empty input -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t  \n"])
def test_empty_or_blank_text_gives_no_pieces(text):
    assert split_subsentences(text) == []


def test_pieces_are_stripped_and_non_empty():
    assert split_subsentences("  甲，  。 乙  ") == ["甲，", "。", "乙"]


# --- joining -----------------------------------------------------------------------------------


def test_join_puts_a_space_only_between_two_ascii_characters():
    assert join_segments(["Hello,", "world."]) == "Hello, world."
    assert join_segments(["胰头部肿块，", "考虑恶性。"]) == "胰头部肿块，考虑恶性。"
    assert join_segments(["SUVmax：3.6，", "CT示结节"]) == "SUVmax：3.6，CT示结节"
    assert join_segments(["Done.", "胰头部"]) == "Done.胰头部"
    assert join_segments(["胰头部", "CT"]) == "胰头部CT"
    assert join_segments(["abc", "def"]) == "abc def"


def test_join_with_spans_gives_each_piece_its_place():
    text, spans = join_with_spans(["Hello,", "world.", "中文。", "abc"])
    assert text == "Hello, world.中文。abc"
    assert spans == [(0, 6), (7, 13), (13, 16), (16, 19)]
    assert [text[s:e] for s, e in spans] == ["Hello,", "world.", "中文。", "abc"]


def test_join_with_spans_strips_pieces_and_gives_empty_ones_empty_spans():
    text, spans = join_with_spans(["  甲，", "", " 乙 "])
    assert text == "甲，乙"
    assert spans == [(0, 2), (2, 2), (2, 3)]


def test_join_of_nothing_is_empty():
    assert join_with_spans([]) == ("", [])
    assert join_segments([""]) == ""


@pytest.mark.parametrize(
    "text",
    [
        "1、胰头部高代谢，考虑恶性。  2、肝囊肿。",
        "胰头区见软组织肿块，大小约3.4×2.9cm，边界不清，放射性摄取增高，SUVmax：7.8，胰管扩张。",
        "行胆管引流术：  1、胆管扩张；  2、肝囊肿！  3．脾大？",
        "静脉注射18F-FDG后约60min行PET/CT显像。脑部：双侧大脑半球对称，未见异常。",
    ],
)
def test_chinese_round_trip_equals_text_without_whitespace(text):
    assert join_segments(split_subsentences(text)) == no_ws(text)


@pytest.mark.parametrize(
    "text",
    [
        "It costs $3.50 now. Half is 1/2 of it.",
        "The pool holds 1,000 liters, then 2.5 more. Done!",
        "检查所见:CT示正常。",
    ],
)
def test_round_trip_up_to_whitespace(text):
    assert no_ws(join_segments(split_subsentences(text))) == no_ws(text)


def test_english_round_trip_is_exact_with_single_spaces():
    text = "The bakery sold 23 boxes. That is 138 muffins, so the answer is 138."
    assert join_segments(split_subsentences(text)) == text
