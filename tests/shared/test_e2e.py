"""Train a tiny model for a few steps on CPU, check the saved files, reload, resume, generate."""

import json

import pytest
from conftest import TINY
from rich.console import Console

from petsum.adapter import PetAdapter
from petsum.data.pairs import load_pairs
from shared.config import load_config
from shared.generate import generate
from shared.pipeline import load_run, train_run

pytestmark = pytest.mark.slow  # every test trains a tiny model

HF_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "ases.json"}


def run(tmp_path, pet_csv, method, strategy, steps, **extra):
    cfg = load_config(
        None, {**TINY, "train.method": method, "segment.strategy": strategy, "train.max_steps": steps, **extra}
    )
    return train_run(load_pairs(pet_csv), PetAdapter(), cfg, tmp_path, Console(quiet=True))


def test_usm_trains_saves_resumes_and_generates(tmp_path, pet_csv):
    manifest = run(tmp_path, pet_csv, "usm", "inter", 6)
    run_dir = tmp_path / "model"
    for name in ("best_train", "best_loss", "best_bleu", "last"):
        assert HF_FILES <= {p.name for p in (run_dir / name).iterdir()}, name
    assert (run_dir / "last" / "optimizer.pt").is_file()
    assert json.loads((run_dir / "last" / "trainer_state.json").read_text())["step"] == 6
    best_bleu = json.loads((run_dir / "last" / "trainer_state.json").read_text())["best_bleu"]
    assert manifest["roles"] == {"model": "model/best_bleu" if best_bleu > 0 else "model/best_loss"}
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("tokens_per_s" in r for r in logged) and any("val_loss" in r for r in logged)

    # Resume: a larger budget continues from step 6, not from scratch.
    manifest = run(tmp_path, pet_csv, "usm", "inter", 10)
    state = json.loads((run_dir / "last" / "trainer_state.json").read_text())
    assert state["step"] == 10 and manifest["train"]["model"]["steps"] == 10
    evals = [
        r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if "val_loss" in r
    ]
    assert evals == [4, 6, 8, 10]

    models = load_run(tmp_path)
    assert models.method == "usm"
    cfg = load_config(None, TINY)
    results = generate(
        models, ["脑部未见异常。      胰头见肿块，SUVmax：6.1。", "肝右叶结节。"], PetAdapter(), cfg.generate
    )
    assert len(results) == 2
    for res in results:
        assert len(res.segments) <= cfg.generate.max_iters
        assert res.reason in {"stop", "max_iters", "max_tokens", "empty", "repeat"}
        assert all(s.tag in ("ES", "AS") for s in res.segments)


def test_resumed_run_matches_uninterrupted_run(tmp_path, pet_csv, monkeypatch):
    """Interrupted after step 5 (last checkpoint: step 4) and resumed, a run ends with the same
    weights as one that was never interrupted."""
    import torch
    from safetensors.torch import load_file

    import shared.trainer

    run(tmp_path / "a", pet_csv, "direct", "inter", 8)

    real_collate, calls = shared.trainer.collate, []

    def interrupt_on_sixth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_collate(*args, **kwargs)

    monkeypatch.setattr(shared.trainer, "collate", interrupt_on_sixth)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", pet_csv, "direct", "inter", 8)
    monkeypatch.setattr(shared.trainer, "collate", real_collate)
    assert json.loads((tmp_path / "b" / "model" / "last" / "trainer_state.json").read_text())["step"] == 4
    run(tmp_path / "b", pet_csv, "direct", "inter", 8)

    a = load_file(tmp_path / "a" / "model" / "last" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "last" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_dsm_trains_two_models_on_one_budget(tmp_path, pet_csv):
    manifest = run(tmp_path, pet_csv, "dsm", "rouge", 8)
    assert set(manifest["roles"]) == {"esm", "asm"}
    steps = manifest["train"]
    assert steps["esm"]["steps"] + steps["asm"]["steps"] <= 8 + 1  # rounding up each share adds at most one
    esm_rows = [json.loads(x) for x in (tmp_path / "data" / "esm_train.jsonl").read_text().splitlines()]
    asm_rows = [json.loads(x) for x in (tmp_path / "data" / "asm_train.jsonl").read_text().splitlines()]
    assert {r["tag"] for r in esm_rows} == {"ES"} and {r["tag"] for r in asm_rows} == {"AS"}
    models = load_run(tmp_path)
    assert set(models.models) == {"esm", "asm"}
    assert len(generate(models, ["胰头见肿块。"], PetAdapter(), load_config(None, TINY).generate)) == 1


def test_ent_trains_its_scorer_first(tmp_path, pet_csv):
    manifest = run(tmp_path, pet_csv, "usm", "ent", 4, **{"segment.scorer_budget": 0.5})
    assert (tmp_path / "scorer" / "best_loss" / "model.safetensors").is_file()
    rows = [json.loads(x) for x in (tmp_path / "data" / "model_train.jsonl").read_text().splitlines()]
    assert {r["tag"] for r in rows} <= {"ES", "AS"}
    assert manifest["strategy"] == "ent"


def test_saved_checkpoint_loads_with_plain_transformers(tmp_path, pet_csv):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    run(tmp_path, pet_csv, "usm", "inter", 2)
    path = tmp_path / "model" / "best_loss"
    model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    ids = tok("胰头部见肿块，SUVmax：6.1。<STOP>").input_ids
    assert tok.convert_tokens_to_ids("<STOP>") in ids  # the stop sign is one token, kept whole
    assert "<STOP>" in tok.decode(ids, skip_special_tokens=True)
    assert model.config.vocab_size == len(tok)


def test_pretrained_local_checkpoint_is_fine_tuned(tmp_path, pet_csv):
    """`model.pretrained` starts from any local HF folder with its own tokenizer."""
    run(tmp_path / "base", pet_csv, "direct", "inter", 2)
    base = tmp_path / "base" / "model" / "best_loss"
    manifest = run(tmp_path / "ft", pet_csv, "usm", "inter", 2, **{"model.pretrained": str(base)})
    assert manifest["roles"]["model"].startswith("model/")
    assert (tmp_path / "ft" / "tokenizer" / "tokenizer.json").read_text() == (base / "tokenizer.json").read_text()


@pytest.mark.parametrize("method", ["direct"])
def test_direct_generation_is_one_untagged_segment(tmp_path, pet_csv, method):
    run(tmp_path, pet_csv, method, "inter", 2)
    res = generate(load_run(tmp_path), ["胰头见肿块。"], PetAdapter(), load_config(None, TINY).generate)[0]
    assert len(res.segments) <= 1 and all(s.tag is None for s in res.segments)


def test_token_budget_stops_training_and_sets_the_lr_schedule(tmp_path, pet_csv):
    budget = 20000  # about ten steps of the fixture's long reports
    manifest = run(
        tmp_path,
        pet_csv,
        "direct",
        "inter",
        None,
        **{"train.max_train_tokens": budget, "train.log_every": 1, "train.eval_every": 1000},
    )
    stats = manifest["train"]["model"]
    logs = [json.loads(x) for x in (tmp_path / "model" / "metrics.jsonl").read_text().splitlines() if '"lr"' in x]
    assert stats["tokens"] >= budget and logs[-2]["tokens"] < budget  # stops at the first step past the budget
    peak = load_config(None, {}).train.lr
    # The linear decay targets 10% of the peak at the expected end: the last rate is close to it.
    assert logs[-1]["lr"] < 0.35 * peak and max(x["lr"] for x in logs) <= peak


def test_validation_file_replaces_the_seeded_share(tmp_path, pet_csv):
    from click.testing import CliRunner
    from conftest import tiny_sets

    from petsum.cli import main as petsum

    out = tmp_path / "run"
    res = CliRunner().invoke(
        petsum,
        [
            "train",
            "--data",
            str(pet_csv),
            "--val",
            str(pet_csv),
            "--out",
            str(out),
            "--method",
            "direct",
            *tiny_sets(**{"train.max_steps": 2}),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "ases.json").read_text())["validation"] == "separate file"
    train_ids = {json.loads(x)["id"] for x in (out / "data" / "model_train.jsonl").read_text().splitlines()}
    val_ids = {json.loads(x)["id"] for x in (out / "data" / "model_val.jsonl").read_text().splitlines()}
    assert val_ids and val_ids <= train_ids  # the file given, not a share carved out of --data
