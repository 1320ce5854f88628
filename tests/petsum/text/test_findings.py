"""One finding at a time (`--source finding`): findings, the impression pieces aligned to them,
training on them, and a summarizer that asks the model about each finding and assembles regions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, LIVER, NORMAL_HEAD, PANCREAS, tiny_sets

from petsum.cli import main as petsum
from petsum.data.instances import NORMAL, build_instances
from petsum.summarize.summarizer import region_text
from petsum.text.findings import align_findings, finding_target, findings, pieces
from shared.schema import Example

LUNG = "右肺上叶见一结节影，边界清晰。病灶放射性摄取增高。SUVmax:3.0。"
REPORT = f"{NORMAL_HEAD}   两肺纹理清晰。{LUNG}   {PANCREAS}{LIVER}"
IMPRESSION = (
    "1、胰头癌；胰管扩张。  2、右肺上叶高代谢结节，考虑转移。建议随诊。  3、与2019-01-01 PET/CT检查比较。  "
    "余躯干PET/CT检查未见明显异常代谢征象。"
)


def test_a_finding_is_a_salient_sentence_with_the_organless_sentences_after_it():
    assert findings(PANCREAS) == ["胰头部明显肿大，形态欠规则并异常放射性摄取，SUVmax:12.4；", "胰管扩张。"]
    assert findings(LUNG) == [LUNG]  # `SUVmax:3.0。` qualifies the nodule before it
    assert findings(LIVER) == ["肝实质密度弥漫性减低，CT值约40HU，无异常放射性摄取。"]
    assert findings(NORMAL_HEAD) == []


def test_items_are_cut_into_pieces_with_advice_kept_with_its_finding():
    assert pieces("脂肪肝；前列腺增生。") == ["脂肪肝；", "前列腺增生。"]
    assert pieces("左肾囊肿。直肠末端高代谢，考虑炎症。建议随诊。") == [
        "左肾囊肿。",
        "直肠末端高代谢，考虑炎症。建议随诊。",
    ]
    assert finding_target(["胰头癌；", "胰管扩张。"]) == "胰头癌；胰管扩张。"
    assert finding_target([]) == ""


def test_pieces_go_to_the_finding_they_share_most_with_and_unmatched_ones_are_dropped():
    units = findings(PANCREAS) + findings(LUNG)
    aligned, dropped = align_findings(
        units, ["右肺上叶高代谢结节，考虑转移。", "胰头癌；胰管扩张。", "与2019-01-01 PET/CT检查比较。"]
    )
    assert aligned == [["胰头癌；"], ["胰管扩张。"], ["右肺上叶高代谢结节，考虑转移。"]]
    assert dropped == 1  # the comparison date matches no finding: not taught as something to invent


def test_finding_instances_span_regions_and_normal_findings_are_sampled_by_gamma():
    report = Example("r1", REPORT, IMPRESSION)
    instances, stats = build_instances([report], gamma=5.0, source="finding")
    got = {ex.id: (ex.question, ex.target, ex.tag) for ex in instances}
    assert got["r1#chest#0"] == (LUNG, "右肺上叶高代谢结节，考虑转移。建议随诊。", None)
    assert got["r1#abdomen#0"][1] == "胰头癌。" and got["r1#abdomen#1"][1] == "胰管扩张。"
    assert got["r1#abdomen#2"][1:] == (NORMAL, "ES")  # the fatty liver the impression does not mention
    assert not any(i.startswith("r1#head_neck") for i in got)  # a region with no finding is never asked
    assert stats == {
        "reports": 1,
        "abnormal_instances": 3,
        "normal_available": 1,
        "normal_used": 1,
        "gamma": 5.0,
        "source": "finding",
    }
    fewer, _ = build_instances([report], gamma=0.0, source="finding")
    assert len(fewer) == 3


def test_region_text_keeps_the_abnormal_outputs_of_a_region_in_order():
    assert region_text(["未见明显异常。"]) == "未见明显异常。"  # one call: its output as it is
    assert region_text(["胰头癌", "未见明显异常。", "胰管扩张。"]) == "胰头癌。胰管扩张。"
    assert region_text(["未见明显异常。", ""]) == NORMAL
    assert region_text([]) == NORMAL


@pytest.mark.slow
def test_a_finding_run_records_its_source_and_the_summarizer_asks_once_per_finding(tmp_path: Path, monkeypatch):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(FIXTURES / "pet_toy.csv"),
        "--out",
        str(out),
        "--method",
        "direct",
        "--source",
        "finding",
        *tiny_sets(**{"train.max_steps": 2}),
    ]
    res = CliRunner().invoke(petsum, args)
    assert res.exit_code == 0, res.output
    run = json.loads((out / "ases.json").read_text(encoding="utf-8"))
    assert run["source"] == "finding" and run["instances"] == "finding"

    import shared.generate
    from petsum.summarize.summarizer import Summarizer

    asked: list[str] = []
    real = shared.generate.generate

    def recording(models, questions, *rest):  # the real generator, with its inputs written down
        asked.extend(questions)
        return real(models, questions, *rest)

    monkeypatch.setattr(shared.generate, "generate", recording)
    [summary] = Summarizer(out).summarize([REPORT])
    assert asked == findings(LUNG) + findings(PANCREAS) + findings(LIVER)  # report order, one call per finding
    by_region = {r.region: r for r in summary.regions}
    assert set(by_region) == {"head_neck", "chest", "abdomen"}
    assert by_region["head_neck"].segments == [] and by_region["head_neck"].text == NORMAL  # never asked
    assert summary.impression.endswith("PET/CT检查未见明显异常代谢征象。")
