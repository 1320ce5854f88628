"""Similarity scores (shared.metrics)."""

from __future__ import annotations

import math

import pytest

from shared.metrics import corpus_bleu, ngram_precision, rouge_l, rouge_l_precision, rouge_n, units

# --- units -------------------------------------------------------------------------------------


def test_units_split_cjk_singly_and_keep_ascii_words_and_numbers_whole():
    assert units("胰头部2.5cm肿块, 共1,000个 PET/CT SUVmax：3.6") == [
        "胰", "头", "部", "2.5", "cm", "肿", "块", ",", "共", "1,000", "个",
        "PET", "/", "CT", "SUVmax", "：", "3.6",
    ]  # fmt: skip


def test_units_of_english():
    assert units("She sold 14 boxes for $3.50 each.") == ["She", "sold", "14", "boxes", "for", "$", "3.50", "each", "."]


def test_units_of_empty_text():
    assert units("") == []
    assert units("   \n") == []


# --- ngram_precision (BLEU without brevity penalty) --------------------------------------------


def test_ngram_precision_identical_is_one():
    assert ngram_precision("胰头部软组织肿块", "胰头部软组织肿块") == pytest.approx(1.0)
    assert ngram_precision("The answer is 8.", "The answer is 8.") == pytest.approx(1.0)


def test_ngram_precision_of_a_piece_inside_a_longer_input_is_one():
    # No brevity penalty: a short copied piece of a long input scores 1.
    assert ngram_precision("软组织肿块", "胰头部见软组织肿块，放射性摄取增高。") == pytest.approx(1.0)


def test_ngram_precision_disjoint_is_near_zero():
    got = ngram_precision("胰头部", "abc")
    # unigrams: 0 matches (floored at 1e-9) / 3; bigrams (0+1)/(2+1); trigrams (0+1)/(1+1)
    expected = math.exp((math.log(1e-9 / 3) + math.log(1 / 3) + math.log(1 / 2)) / 3)
    assert got == pytest.approx(expected)
    assert got < 1e-3


def test_ngram_precision_partial_overlap_exact_value():
    # hyp 甲乙丙丁 vs ref 甲乙戊己: unigram 2/4, bigram (1+1)/(3+1), trigram (0+1)/(2+1), 4-gram (0+1)/(1+1)
    expected = math.exp((math.log(2 / 4) + math.log(2 / 4) + math.log(1 / 3) + math.log(1 / 2)) / 4)
    assert ngram_precision("甲乙丙丁", "甲乙戊己") == pytest.approx(expected)


def test_ngram_precision_empty_hypothesis_is_zero():
    assert ngram_precision("", "胰头部") == 0.0
    assert ngram_precision("   ", "胰头部") == 0.0


def test_ngram_precision_single_unit_uses_unigrams_only():
    assert ngram_precision("肝", "肝脏") == pytest.approx(1.0)


# --- rouge_l_precision ---------------------------------------------------------------------------


def test_rouge_l_precision_copied_piece_is_one():
    assert rouge_l_precision("胰头部软组织肿块，", "胰头部见软组织肿块，放射性摄取增高。") == pytest.approx(1.0)


def test_rouge_l_precision_disjoint_is_zero():
    assert rouge_l_precision("甲乙丙", "丁戊己") == 0.0


def test_rouge_l_precision_partial_exact_value():
    # 考虑恶性肿瘤。: only 肿 and 。 lie on a common subsequence with the input: 2/7
    assert rouge_l_precision("考虑恶性肿瘤。", "胰头部见软组织肿块，放射性摄取增高。") == pytest.approx(2 / 7)


def test_rouge_l_precision_empty_hypothesis_is_zero():
    assert rouge_l_precision("", "abc") == 0.0


# --- rouge_n / rouge_l F1 --------------------------------------------------------------------


def test_rouge_identical_chinese_is_100():
    u = units("胰头部高代谢肿块，考虑恶性肿瘤。")
    assert rouge_n(u, u, 1) == pytest.approx(100.0)
    assert rouge_n(u, u, 2) == pytest.approx(100.0)
    assert rouge_l(u, u) == pytest.approx(100.0)


def test_rouge_disjoint_chinese_is_0():
    a, b = units("胰头部高代谢"), units("肝脏囊肿小")
    assert rouge_n(a, b, 1) == 0.0
    assert rouge_n(a, b, 2) == 0.0
    assert rouge_l(a, b) == 0.0


def test_rouge_partial_exact_values():
    assert rouge_n(units("甲乙丙丁"), units("甲乙戊己"), 1) == pytest.approx(50.0)
    # bigrams: 甲乙 matches 1 of 3 each side
    assert rouge_n(units("甲乙丙丁"), units("甲乙戊己"), 2) == pytest.approx(100 / 3)
    # LCS(甲乙丙丁, 甲丙乙丁) = 3 of 4 each side
    assert rouge_l(units("甲乙丙丁"), units("甲丙乙丁")) == pytest.approx(75.0)
    # unequal lengths: LCS 2, p=2/2, r=2/4 → F1 = 2/3
    assert rouge_l(units("甲乙"), units("甲丙乙丁")) == pytest.approx(200 / 3)


def test_rouge_of_empty_inputs_is_zero():
    assert rouge_n([], [], 1) == 0.0
    assert rouge_l([], []) == 0.0
    assert rouge_l([], units("甲")) == 0.0


# --- corpus_bleu -------------------------------------------------------------------------------


def test_corpus_bleu_zh_identical_is_100():
    s = "胰头部高代谢肿块，考虑恶性肿瘤。"
    assert corpus_bleu(
        [s, "肝右叶结节，转移可能大。"], [s, "肝右叶结节，转移可能大。"], tokenize="zh"
    ) == pytest.approx(100.0)


def test_corpus_bleu_zh_disjoint_is_0():
    assert corpus_bleu(["甲乙丙丁戊己庚辛"], ["子丑寅卯辰巳午未"], tokenize="zh") == pytest.approx(0.0)


def test_corpus_bleu_zh_tokenizer_splits_chinese_characters():
    # Without the zh tokenizer the unspaced sentence is one token and a one-char change scores 0.
    hyp, ref = ["胰头部高代谢肿块考虑恶性肿瘤"], ["胰头部高代谢肿块考虑良性肿瘤"]
    assert corpus_bleu(hyp, ref, tokenize="13a") == pytest.approx(0.0)
    assert 30 < corpus_bleu(hyp, ref, tokenize="zh") < 100


def test_corpus_bleu_of_nothing_is_zero():
    assert corpus_bleu([], [], tokenize="zh") == 0.0
