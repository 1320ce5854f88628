"""experiments/confidence_check.py: items split by confidence, each scored against the reference's pieces."""

import csv
import json

import pytest
from conftest import load_benchmark


def test_scores_each_side_of_the_threshold_and_counts_copies_apart(tmp_path):
    check = load_benchmark("confidence_check")
    data = tmp_path / "pairs.csv"
    with data.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["qid", "question", "answer"])
        closing = "余躯干PET/CT检查未见明显异常代谢征象。"
        w.writerow(["a", "肝脏见低密度灶。右肺见结节。", f"1、肝囊肿；右肺结节。\n{closing}"])
    item = lambda n, text, c: {"n": n, "text": text, "confidence": c}  # noqa: E731
    record = {"id": "a", "items": [item(1, "肝囊肿。", 0.9), item(2, "脑梗塞。", 0.2), item(3, "右肺结节。", None)]}
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps(record, ensure_ascii=False) + "\n" + json.dumps({"id": "x", "error": "e"}) + "\n")
    got = check.check(str(preds), str(data), 0.5)
    assert got["high"] == {"items": 1, "mean_best_rouge_l": 100.0}  # 肝囊肿 is a piece of the reference
    assert got["low"] == {"items": 1, "mean_best_rouge_l": pytest.approx(0.0)}  # nothing of 脑梗塞 is
    assert got["copies"] == 1
