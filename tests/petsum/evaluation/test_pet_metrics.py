"""PET metrics: BLEU (zh), character and word ROUGE, the missing and extra ratios."""

import pytest

from petsum.evaluation.metrics import evaluate_texts, extra_ratio, missing_ratio, rouge_scores
from petsum.text.rules import chars, comparable
from petsum.text.words import available, words

REF = "1、胰头区高代谢肿块，考虑恶性。2、肝右叶结节，考虑转移。"


def test_identical_chinese_scores_100_and_disjoint_scores_0():
    # rouge_score's default tokenizer drops every CJK character; ours scores characters.
    assert rouge_scores([REF], [REF]) == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0}
    assert rouge_scores(["脑部代谢对称"], ["胰头区肿块"]) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    m = evaluate_texts([REF], [REF])
    assert m["bleu"] == pytest.approx(100.0) and m["mr"] == 0.0 and m["n"] == 1


def test_numbering_style_and_whitespace_do_not_count():
    assert comparable("1.胰头肿块。  2、肝转移。") == comparable("1、胰头肿块。\n2、肝转移。") == "胰头肿块。肝转移。"
    assert chars("SUVmax约5.6，胰头。") == ["SUVmax", "约", "5.6", "胰", "头"]


def test_char_rouge_by_hand():
    # hyp 胰头肿块 vs ref 胰头区肿块: 4 of 4 / 4 of 5 unigrams; bigrams 胰头, 肿块 match of 3 and 4.
    got = rouge_scores(["胰头肿块"], ["胰头区肿块"])
    assert got["rouge1"] == pytest.approx(100 * 2 * 1 * 0.8 / 1.8)
    assert got["rouge2"] == pytest.approx(100 * 2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4))
    assert got["rougeL"] == pytest.approx(got["rouge1"])


def test_missing_ratio_eq10_with_regions():
    refs = [
        "1、胰头区肿块，考虑恶性。2、肝转移。3、右肺结节。",
        "1、胆囊结石。",
        "躯干PET/CT检查未见明显异常代谢征象。",
    ]
    hyps = ["1、胰头区肿块。", "1、胆囊结石。", "未见异常。"]
    got = missing_ratio(hyps, refs)
    # report 1 misses 肝 and 肺 of {胰腺, 肝, 肺}: 2/3; report 2 misses nothing; report 3 has no organ finding.
    assert got["mr_n"] == 2 and got["mr"] == pytest.approx(100 * (2 / 3 + 0) / 2)
    assert got["by_region"]["chest"] == {"mr": 100.0, "n": 1}
    assert got["by_region"]["abdomen"] == {"mr": pytest.approx(100 * (1 / 2 + 0) / 2), "n": 2}


def test_negative_clauses_name_no_organ():
    assert missing_ratio(["胰头肿块。"], ["胰头肿块；肝脏未见异常。"])["mr"] == 0.0


@pytest.mark.skipif(not available(), reason="jieba not installed")
def test_words_keep_clinical_tokens_and_lexicon_terms():
    got = words("静脉注射18F-FDG后行PET/CT显像，胰头区肿块大小约3.4×2.9cm，SUVmax：7.8。")
    for token in ["18F-FDG", "PET/CT", "3.4×2.9cm", "SUVmax", "7.8", "胰头"]:
        assert token in got
    assert "，" not in got and "。" not in got
    m = evaluate_texts([REF], [REF], word_rouge=True)
    assert m["word_rouge1"] == m["word_rougeL"] == 100.0


def test_asymmetry_is_a_finding_symmetry_is_not():
    from petsum.text.rules import finding_organs

    assert finding_organs("双侧扁桃体不对称增厚，代谢增高。") == {"扁桃体"}
    assert finding_organs("双侧扁桃体对称，代谢未见异常。") == set()


def test_extra_ratio_counts_what_the_reference_does_not_report():
    refs = ["1、胰头区肿块，考虑恶性。", "1、胆囊结石。", "1、右肺结节。"]
    hyps = ["1、胰头区肿块。2、肝转移。3、右肺结节。", "1、胆囊结石。", "未见明显异常。"]
    got = extra_ratio(hyps, refs)
    # report 1 claims 肝 and 肺 beyond 胰腺: 2/3; report 2 claims nothing extra; report 3 claims no organ.
    assert got == {"er": pytest.approx(100 * (2 / 3 + 0) / 2), "er_n": 2}
    assert extra_ratio(["胰头肿块；肝脏未见异常。"], ["胰头肿块。"])["er"] == 0.0  # a negated organ is no claim
    m = evaluate_texts(hyps, refs)
    assert m["er"] == got["er"] and m["er_n"] == 2
