"""Grounding: `petsum train --source salient` and the summarizer that honours it; the copy warm-up
(`petsum train --target copy`) and impression training started from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, LIVER, NORMAL_HEAD, PANCREAS, tiny_sets

from petsum.cli import main as petsum
from petsum.data.instances import NORMAL, build_instances
from petsum.text.inputs import model_inputs
from petsum.text.salient import salient_text
from shared.schema import Example


def test_salient_text_keeps_findings_and_drops_template_text():
    assert salient_text(LIVER) == "肝实质密度弥漫性减低，CT值约40HU，无异常放射性摄取。"
    assert salient_text(PANCREAS) == "胰头部明显肿大，形态欠规则并异常放射性摄取，SUVmax:12.4；胰管扩张。"
    assert salient_text(NORMAL_HEAD) == ""
    assert model_inputs(NORMAL_HEAD, "region") == [NORMAL_HEAD]
    assert model_inputs(NORMAL_HEAD, "salient") == [] and model_inputs(PANCREAS, "salient") == [salient_text(PANCREAS)]


def test_a_lesion_without_an_organ_keeps_the_organ_it_is_about():
    from petsum.text.salient import salient_sentence

    # the lesion clause names no organ: the clause that does comes with it, though it reads normal
    assert (
        salient_sentence("甲状腺两叶不大，形态可，右叶内可见结节伴钙化，无异常放射性摄取。")
        == "甲状腺两叶不大，形态可，右叶内可见结节伴钙化，无异常放射性摄取。"
    )
    assert salient_sentence("前列腺大小形态未见明显异常，左叶可见异常放射性摄取增高灶，SUVmax4.5。").startswith(
        "前列腺"
    )
    # negated 规则/均匀 report something; the plain words and 不扩张 still read normal
    assert salient_sentence("两肺显影清晰，右肺上叶见不规则密度增高影。") == "右肺上叶见不规则密度增高影。"
    assert salient_sentence("胰管不扩张。") == "" and salient_sentence("肝脏形态可，轮廓光整，密度均匀。") == ""


def test_salient_instances_leave_out_regions_with_nothing_to_report():
    report = Example("r1", f"{NORMAL_HEAD}   {PANCREAS}", "1、胰头癌。  余躯干PET/CT检查未见明显异常代谢征象。")
    instances, stats = build_instances([report], gamma=1.0, source="salient")
    assert [(ex.id, ex.question) for ex in instances] == [("r1#abdomen", salient_text(PANCREAS))]
    assert stats["source"] == "salient"
    whole, _ = build_instances([report], gamma=1.0)
    assert {ex.id for ex in whole} == {"r1#abdomen", "r1#head_neck"}


@pytest.mark.slow
def test_a_salient_run_records_its_source_and_the_summarizer_uses_it(tmp_path: Path):
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
        "salient",
        *tiny_sets(**{"train.max_steps": 2}),
    ]
    res = CliRunner().invoke(petsum, args)
    assert res.exit_code == 0, res.output
    run = json.loads((out / "ases.json").read_text(encoding="utf-8"))
    served = out / run["roles"]["model"]
    assert run["source"] == "salient"
    assert json.loads((served / "ases.json").read_text(encoding="utf-8"))["source"] == "salient"  # checkpoints carry it

    from petsum.summarize.summarizer import Summarizer

    for model in (out, served):
        [summary] = Summarizer(model).summarize([f"{NORMAL_HEAD}   {PANCREAS}"])
        by_region = {r.region: r for r in summary.regions}
        assert by_region["head_neck"].text == NORMAL and by_region["head_neck"].segments == []  # never asked
        asked = by_region["abdomen"]  # a 2-step model may write nothing, but then it runs to the loop bound
        assert asked.segments or not asked.stopped


def test_copy_instances_target_their_own_input():
    report = Example("r1", f"{NORMAL_HEAD}   {PANCREAS}", "1、胰头癌。  余躯干PET/CT检查未见明显异常代谢征象。")
    copies, stats = build_instances([report], gamma=0.0, source="salient", target="copy")
    assert [(ex.id, ex.question, ex.target) for ex in copies] == [
        ("r1#abdomen", salient_text(PANCREAS), salient_text(PANCREAS))
    ]
    assert stats["target"] == "copy" and stats["copy_instances"] == 1
    whole, _ = build_instances([report], gamma=0.0, target="copy")  # γ does not apply: every region is copied
    assert {ex.id for ex in whole} == {"r1#abdomen", "r1#head_neck"} and all(ex.question == ex.target for ex in whole)


@pytest.mark.slow
def test_impression_training_starts_from_a_copy_warm_up(tmp_path: Path):
    warm, out = tmp_path / "warm", tmp_path / "run"
    base = ["--data", str(FIXTURES / "pet_toy.csv"), "--method", "direct", "--source", "salient"]
    # The warm-up borrows a tokenizer trained on impressions too (it sees none itself): a first run's.
    res = CliRunner().invoke(
        petsum, ["train", *base, "--out", str(tmp_path / "first"), *tiny_sets(**{"train.max_steps": 1})]
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        petsum,
        [
            "train",
            *base,
            "--target",
            "copy",
            "--out",
            str(warm),
            *tiny_sets(**{"train.max_steps": 2, "model.tokenizer": str(tmp_path / "first" / "tokenizer")}),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (warm / "tokenizer" / "tokenizer.json").read_bytes() == (
        tmp_path / "first" / "tokenizer" / "tokenizer.json"
    ).read_bytes()
    run = json.loads((warm / "ases.json").read_text(encoding="utf-8"))
    assert run["target"] == "copy"
    rows = [json.loads(line) for line in (warm / "data" / "model_train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and all(r["target"] == r["question"] for r in rows)
    res = CliRunner().invoke(
        petsum,
        [
            "train",
            *base,
            "--out",
            str(out),
            *tiny_sets(**{"train.max_steps": 2, "model.pretrained": str(warm / "model" / "last")}),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "target" not in json.loads((out / "ases.json").read_text(encoding="utf-8"))  # an impression model


@pytest.mark.slow
def test_a_missing_tokenizer_folder_is_one_error_line(tmp_path: Path):
    res = CliRunner().invoke(
        petsum,
        [
            "train",
            "--data",
            str(FIXTURES / "pet_toy.csv"),
            "--out",
            str(tmp_path / "run"),
            "--method",
            "usm",
            *tiny_sets(**{"train.max_steps": 1, "model.tokenizer": str(tmp_path / "nowhere")}),
        ],
    )
    assert (
        res.exit_code != 0
        and "error:" in res.output
        and "model.tokenizer" in res.output
        and "Traceback" not in res.output
    )
