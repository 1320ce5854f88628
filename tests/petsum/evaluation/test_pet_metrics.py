"""PET metrics: BLEU (zh), character and word ROUGE, the missing and extra ratios, the
contradiction rates and the follow-up / first-exam subsets, and scoring a predictions file."""

import csv
import json
from pathlib import Path

import pytest

from petsum.evaluation.metrics import contradiction_rates, evaluate_texts, extra_ratio, missing_ratio, rouge_scores
from petsum.evaluation.scoring import metrics_table, score_predictions
from petsum.text.rules import chars, comparable
from petsum.text.words import available, words
from shared.textio import InputError

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


# Three reports, the second a follow-up exam (`较前`): (findings, reference, generated impression).
FIRST = "右肺上叶见结节，放射性摄取增高，SUVmax：5.1。肝内未见异常放射性摄取。"
FOLLOW_UP = "右肺上叶结节较前缩小，放射性摄取较前减低。盆腔内膀胱充盈可。"
THYROID = "甲状腺左叶见小结节，未见异常放射性摄取。"
CLOSING = "余躯干及脑部PET/CT检查未见明显异常代谢征象。"
REPORTS = [
    # 1 reference item, none contradicted; 2 generated items, the liver's contradicted
    (FIRST, "1、右肺上叶高代谢结节，考虑肺癌。" + CLOSING, "1、右肺上叶高代谢结节，考虑肺癌。2、肝脏高代谢灶。"),
    # 2 reference items, the bladder's contradicted; 1 generated item, contradicted (增高 for 减低)
    (FOLLOW_UP, "1、右肺上叶结节较前缩小，代谢较前减低。2、膀胱充盈欠佳。", "1、右肺上叶结节，代谢较前增高。"),
    (THYROID, "1、甲状腺左叶小结节。", "1、甲状腺左叶小结节。"),
]


def _metrics(**kwargs) -> dict:
    questions, refs, hyps = (list(x) for x in zip(*REPORTS))
    return evaluate_texts(hyps, refs, questions=questions, **kwargs)


def test_contradiction_rates_per_100_items():
    m = _metrics()
    assert m["contradiction_n"] == 4 and m["contradictions"] == pytest.approx(100 * 2 / 4)
    assert m["reference_contradiction_n"] == 4 and m["reference_contradictions"] == pytest.approx(100 * 1 / 4)
    questions, refs, hyps = (list(x) for x in zip(*REPORTS))
    assert contradiction_rates(hyps, refs, questions) == {
        k: m[k] for k in ("contradictions", "contradiction_n", "reference_contradictions", "reference_contradiction_n")
    }


def test_follow_up_and_first_exams_apart():
    m = _metrics()
    _, refs, hyps = (list(x) for x in zip(*REPORTS))
    assert m["follow_up"] == {
        "n": 1,
        "rougeL": pytest.approx(rouge_scores(hyps[1:2], refs[1:2])["rougeL"]),
        "bleu": pytest.approx(evaluate_texts(hyps[1:2], refs[1:2])["bleu"]),
        "mr": pytest.approx(missing_ratio(hyps[1:2], refs[1:2])["mr"]),
        "contradictions": pytest.approx(100.0),
        "reference_contradictions": pytest.approx(50.0),
    }
    first = [0, 2]
    assert m["first_exam"] == {
        "n": 2,
        "rougeL": pytest.approx(rouge_scores([hyps[i] for i in first], [refs[i] for i in first])["rougeL"]),
        "bleu": pytest.approx(evaluate_texts([hyps[i] for i in first], [refs[i] for i in first])["bleu"]),
        "mr": pytest.approx(missing_ratio([hyps[i] for i in first], [refs[i] for i in first])["mr"]),
        "contradictions": pytest.approx(100 * 1 / 3),
        "reference_contradictions": 0.0,
    }


def test_without_findings_the_metrics_are_as_before():
    _, refs, hyps = (list(x) for x in zip(*REPORTS))
    m = evaluate_texts(hyps, refs)
    assert not {"contradictions", "reference_contradictions", "follow_up", "first_exam"} & m.keys()
    assert {k: v for k, v in _metrics().items() if k in m} == m
    with pytest.raises(ValueError):
        evaluate_texts(hyps, refs, questions=["右肺上叶见结节。"])


def test_an_empty_subset_scores_zero():
    m = evaluate_texts([REPORTS[2][2]], [REPORTS[2][1]], questions=[REPORTS[2][0]])
    assert m["follow_up"] == {
        "n": 0,
        "rougeL": 0.0,
        "bleu": 0.0,
        "mr": 0.0,
        "contradictions": 0.0,
        "reference_contradictions": 0.0,
    }
    assert m["first_exam"]["n"] == 1


def _write_set(tmp_path) -> tuple[str, str]:
    data = tmp_path / "data.csv"
    with data.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer", "qid"])
        for i, (question, ref, _) in enumerate(REPORTS):
            w.writerow([question, ref, f"r{i}"])
    preds = tmp_path / "preds.jsonl"
    rows = [{"id": f"r{i}", "impression": hyp, "reference": ref} for i, (_, ref, hyp) in enumerate(REPORTS)]
    preds.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reversed(rows)), encoding="utf-8")
    return str(preds), str(data)


def test_score_predictions_joins_findings_by_id(tmp_path):
    preds, data = _write_set(tmp_path)
    got = score_predictions(preds, data)  # the file is in another order than the CSV
    want = _metrics()
    assert got["failed"] == 0 and got.keys() - {"failed"} == want.keys()
    for key in ("bleu", "rougeL", "mr", "er", "contradictions", "reference_contradictions"):
        assert got[key] == pytest.approx(want[key])
    for subset in ("follow_up", "first_exam"):
        assert got[subset] == {k: pytest.approx(v) for k, v in want[subset].items()}


def test_score_predictions_refuses_unknown_ids_without_quoting_text(tmp_path):
    preds, data = _write_set(tmp_path)
    Path(preds).write_text(
        json.dumps({"id": "nope", "impression": "肝脏高代谢灶", "reference": "x"}) + "\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match="1 of 1 prediction ids") as e:
        score_predictions(preds, data)
    assert "肝" not in str(e.value)


def test_metrics_table_shows_the_new_numbers():
    from rich.console import Console

    console = Console(record=True, width=140)
    console.print(metrics_table(_metrics(), "toy"))
    text = console.export_text()
    for shown in ("contradictions", "references'", "follow-up exams (1 reports)", "first exams (2 reports)", "50.00"):
        assert shown in text
