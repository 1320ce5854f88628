"""The two floors every model is compared with (retrieval, extractive) and `petsum floor`, on
hand-written reports."""

import csv
import json

from click.testing import CliRunner

from petsum.cli import main as petsum
from petsum.evaluation.floors import Retrieval, extractive
from petsum.text.rules import raised_uptake
from shared.schema import Example


def invoke(args):
    return CliRunner().invoke(petsum, args)


def write_reports(path, n):
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer", "qid"])
        for i in range(n):
            w.writerow([f"肝脏见结节{i}，放射性摄取增高，SUVmax：{i}.1。", f"1、肝脏高代谢结节{i}。", f"q{i}"])


def test_retrieval_copies_the_nearest_reports_impression():
    train = [
        Example("a", "右肺上叶见结节，放射性摄取增高，SUVmax：5.2。", "右肺上叶高代谢结节，考虑肺癌。"),
        Example("b", "肝脏见多发低密度灶，放射性摄取增高。", "肝多发高代谢灶，考虑转移。"),
        Example("c", "甲状腺右叶见低密度结节，未见放射性摄取。", "甲状腺右叶结节。"),
    ]
    index = Retrieval(train)
    assert index.predict("左肺上叶见结节，放射性摄取增高，SUVmax：3.0。") == train[0].target
    best, sim = index.nearest("肝脏见多发低密度灶，放射性摄取增高。")
    assert best == 1 and abs(sim - 1.0) < 1e-5  # the same text: cosine 1
    assert index.nearest("")[1] == 0.0  # nothing shared, nothing claimed


def test_extractive_lists_raised_uptake_sentences_by_region():
    report = (
        "脑部未见异常放射性浓聚。      右肺上叶见结节，放射性摄取增高，SUVmax：5.2。纵隔未见肿大淋巴结。      "
        "肝脏见低密度灶，未见异常放射性摄取增高。胰头见肿块，代谢增高。"
    )
    out = extractive(report)
    lines = out.splitlines()
    assert lines[0] == "1、右肺上叶见结节，放射性摄取增高，SUVmax：5.2。"
    assert lines[1] == "2、胰头见肿块，代谢增高。"
    assert lines[-1].startswith("余") and len(lines) == 3
    assert not raised_uptake("肝脏见低密度灶，未见异常放射性摄取增高。")
    assert extractive("脑部未见异常放射性浓聚。").endswith("未见明显异常代谢征象。")


def test_floor_command_scores_both_floors(tmp_path):
    data = tmp_path / "reports.csv"
    write_reports(data, 12)
    for kind in ("retrieval", "extractive"):
        preds = tmp_path / f"{kind}.jsonl"
        res = invoke(["floor", kind, "--train", str(data), "--data", str(data), "--json", "--out", str(preds)])
        assert res.exit_code == 0, res.output
        metrics = json.loads(res.output)
        assert metrics["n"] == 12 and 0 <= metrics["mr"] <= 100
        assert len(preds.read_text(encoding="utf-8").splitlines()) == 12
    # Retrieval over the same reports finds each report itself: a perfect score.
    assert (
        json.loads(invoke(["floor", "retrieval", "--train", str(data), "--data", str(data), "--json"]).output)["rougeL"]
        == 100.0
    )
    res = invoke(["floor", "retrieval", "--data", str(data)])
    assert res.exit_code == 2 and "needs --train" in res.output
