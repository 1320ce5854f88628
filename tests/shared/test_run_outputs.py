"""What a training run leaves behind, and how it is served."""

import json

import pytest
from click.testing import CliRunner
from conftest import TINY
from rich.console import Console

from petsum.adapter import PetAdapter
from petsum.cli import main as petsum
from shared.config import load_config
from shared.pipeline import load_run, served_checkpoint, train_run
from shared.schema import Example

pytestmark = pytest.mark.slow  # every test trains a tiny model

EXAMPLES = [Example(f"e{i}", f"胰头部见肿块{i}，SUVmax：{i}.5。", f"胰头部肿块{i}，考虑恶性。") for i in range(12)]


def train(tmp_path, **extra):
    cfg = load_config(None, {**TINY, "train.max_steps": 8, **extra})
    return train_run(EXAMPLES, PetAdapter(), cfg, tmp_path, Console(quiet=True))


def test_served_checkpoint_prefers_bleu_only_when_it_was_ever_positive(tmp_path):
    for name in ("best_bleu", "best_loss", "best_train", "last"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"")
    assert served_checkpoint(tmp_path, 12.5) == "best_bleu"
    assert served_checkpoint(tmp_path, 0.0) == "best_loss"
    for name in ("best_bleu", "best_loss"):
        (tmp_path / name / "model.safetensors").unlink()
    assert served_checkpoint(tmp_path, 12.5) == "best_train"


def test_run_without_validation_rows_still_serves_a_model(tmp_path):
    """With val_fraction tiny every example trains: no validation, no best_loss — the run must
    still point at a checkpoint that exists and load."""
    manifest = train(tmp_path, **{"data.val_fraction": 0.0001})
    served = tmp_path / manifest["roles"]["model"]
    assert (served / "model.safetensors").is_file()
    assert load_run(tmp_path).method == "usm"


def test_run_decodes_with_its_own_generate_config(tmp_path):
    train(tmp_path, **{"generate.max_iters": 2, "generate.max_new_tokens": 5})
    gen = load_run(tmp_path).generate
    assert (gen.max_iters, gen.max_new_tokens) == (2, 5)


def test_metrics_have_no_duplicate_steps_after_resume_and_no_nan(tmp_path):
    train(tmp_path, **{"train.max_steps": 6})
    train(tmp_path, **{"train.max_steps": 10})
    lines = (tmp_path / "model" / "metrics.jsonl").read_text().splitlines()
    assert "NaN" not in "".join(lines)
    rows = [json.loads(x) for x in lines]
    evals = [r["step"] for r in rows if "val_loss" in r]
    assert evals == sorted(set(evals))


def test_broken_checkpoint_is_a_one_line_error(tmp_path):
    (tmp_path / "ases.json").write_text(json.dumps({"method": "usm", "roles": {"model": "model/best_loss"}}))
    report = tmp_path / "r.txt"
    report.write_text("胰头部见肿块。", encoding="utf-8")
    res = CliRunner().invoke(petsum, ["summarize", str(report), "--model", str(tmp_path)])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
