"""`petsum train`'s recipe end to end at toy scale (configs/recipes/toy.yaml): the folder it leaves is
a model every command serves, a kill -9 between or inside stages resumes to the same model, `--init`
fine-tunes a model and keeps its decoding, and bad requests are one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, GOOD, REPO, SECRET

from petsum.cli import main as petsum

pytestmark = pytest.mark.slow
TOY = str(REPO / "configs" / "recipes" / "toy.yaml")
DATA = str(FIXTURES / "pet_toy.csv")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "petsum.cli", "train", "--data", DATA, "--out", str(out), "--config", TOY, *extra]


def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(command(out, *extra), capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def killed_when(out: Path, ready, timeout: float = 120) -> None:
    """Start the command and kill -9 it the moment `ready(out)` holds."""
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    t0 = time.monotonic()
    try:
        while not ready(out):
            assert proc.poll() is None, "the run ended before the moment to kill it"
            assert time.monotonic() - t0 < timeout
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recipe") / "whole"
    t0 = time.monotonic()
    run(out)
    assert time.monotonic() - t0 < 60  # the whole recipe at toy scale, under a minute
    return out


def test_the_recipe_leaves_a_servable_model(whole):
    stages = ["tokenizer", "warmup", "finding", "continue-1", "continue-2", "average", "model"]
    for name in stages:
        assert (whole / "stages" / name / "done.json").is_file(), name
    for name in ("warmup", "finding", "continue-1", "continue-2"):
        metrics = (whole / "stages" / name / "model" / "metrics.jsonl").read_text().splitlines()
        assert any("tokens_per_s" in line for line in metrics)  # every training stage logs its progress
    manifest = json.loads((whole / "ases.json").read_text())
    assert manifest["source"] == "finding" and manifest["checkpoint"] == "recipe"
    assert manifest["generate"]["consensus_samples"] == 2  # the recipe's decoding, kept in the model
    assert manifest["generate"]["first_token_bias"] == {"未见明显异常。": -1.0}
    assert set(manifest["recipe"]["stages"]) == {"warmup", "finding", "continue-1", "continue-2"}
    fitted = json.loads((whole / "fitted.json").read_text())
    assert fitted["item_order"] and fitted["closing_line"]

    from petsum.summarize.summarizer import Summarizer

    summary = Summarizer.load(whole, consensus=0).summarize([GOOD])[0]
    assert summary.impression  # the model folder serves

    r = CliRunner().invoke(petsum, ["evaluate", "--data", DATA, "--model", str(whole), "--consensus", "0", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["n"] > 0


def test_export_works_on_the_recipes_folder(whole, tmp_path):
    r = CliRunner().invoke(petsum, ["export", "--model", str(whole), "--out", str(tmp_path / "onnx")])
    assert r.exit_code == 0, r.output


def test_rerun_of_a_finished_run_redoes_nothing(whole):
    before = (whole / "model.safetensors").stat().st_mtime_ns
    proc = run(whole)
    assert "done before" in proc.stderr and "stage 7/7 model: done before" in proc.stderr
    assert (whole / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "moment",
    [
        "between",  # the warm-up has just finished
        "inside",  # the finding stage has saved its resumable state and is training on
    ],
)
def test_kill_9_then_resume_gives_the_same_model(whole, tmp_path, moment):
    out = tmp_path / moment

    def ready(folder: Path) -> bool:
        stage = folder / "stages" / ("warmup" if moment == "between" else "finding")
        if moment == "between":
            return (stage / "done.json").is_file()
        return (stage / "model" / "last" / "trainer_state.json").is_file() and not (stage / "done.json").exists()

    killed_when(out, ready)
    assert not (out / "stages" / "model" / "done.json").exists()
    proc = run(out)
    if moment == "inside":
        assert "resuming at step" in proc.stderr  # the stage went on from its state, not from zero
    assert "warmup: done before" in proc.stderr  # a finished stage is never redone
    a, b = weights(whole), weights(out)
    assert a.keys() == b.keys()
    for k in a:  # the same batches, rates and dropout draws: the same weights
        assert (a[k] - b[k]).abs().max().item() <= 1e-6, k
    state = json.loads((out / "stages" / "finding" / "done.json").read_text())
    assert state["tokens"] == json.loads((whole / "stages" / "finding" / "done.json").read_text())["tokens"]


def test_init_fine_tunes_a_model_and_keeps_its_decoding(whole, tmp_path):
    out = tmp_path / "tuned"
    proc = run(out, "--init", str(whole), "--token-budget", "20000")
    assert "stage 2/3 finding" in proc.stderr and "warmup" not in proc.stderr
    manifest = json.loads((out / "ases.json").read_text())
    assert manifest["generate"] == json.loads((whole / "ases.json").read_text())["generate"]
    assert (out / "tokenizer.json").read_bytes() == (whole / "tokenizer.json").read_bytes()
    assert (out / "fitted.json").is_file()
    assert weights(out).keys() == weights(whole).keys()


def test_resume_with_other_settings_is_refused(whole):
    proc = subprocess.run(command(whole, "--token-budget", "12345"), capture_output=True, text=True, env=ENV)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "another budget" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_one_line_errors(tmp_path):
    cli = CliRunner()
    r = cli.invoke(petsum, ["train", "--data", DATA, "--out", str(tmp_path / "x"), "--strategy", "ent"])
    assert r.exit_code == 2 and "give --method too" in r.output
    r = cli.invoke(petsum, ["train", "--data", DATA, "--out", str(tmp_path / "x"), "--time-budget", "soon"])
    assert r.exit_code == 2 and "error: --time-budget" in r.output
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    r = cli.invoke(petsum, ["train", "--data", DATA, "--out", str(tmp_path / "taken"), "--config", TOY])
    assert r.exit_code == 2 and "holds no recipe run" in r.output
    r = cli.invoke(petsum, ["train", "--data", DATA, "--out", str(tmp_path / "y"), "--init", str(FIXTURES)])
    assert r.exit_code == 2 and "not a model folder" in r.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_exits_2(tmp_path):
    proc = subprocess.run(
        command(tmp_path / "gpu", "--device", "cuda"), capture_output=True, text=True, env=ENV, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --device cuda: no CUDA device is available on this machine (use --device cpu or auto)"
    ]
    assert not (tmp_path / "gpu").exists()  # nothing was started


def test_logs_never_hold_report_text(tmp_path):
    csv = tmp_path / "secret.csv"
    text = (FIXTURES / "pet_toy.csv").read_text(encoding="utf-8")
    csv.write_text(text.replace("脑部：", SECRET + "。脑部：", 1), encoding="utf-8")
    args = ["train", "--data", str(csv), "--out", str(tmp_path / "s"), "--config", TOY, "--token-budget", "8000"]
    proc = subprocess.run(
        [sys.executable, "-m", "petsum.cli", *args], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert SECRET not in proc.stdout + proc.stderr


def test_the_cli_default_is_the_shipped_recipe(tmp_path):
    """No option but the data and the folder: the shipped recipe (here with a budget of a few steps)."""
    from petsum.training.recipe import load_recipe

    out = tmp_path / "plain"
    args = ["train", "--data", DATA, "--out", str(out), "--token-budget", "400"]
    proc = subprocess.run([sys.executable, "-m", "petsum.cli", *args], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = json.loads((out / "recipe.json").read_text())
    assert state["recipe"] == load_recipe(None, ()).model_dump(mode="json")
    assert [p.name for p in sorted((out / "stages").iterdir())] == ["finding", "model", "tokenizer", "warmup"]
    assert json.loads((out / "config.json").read_text())["d_model"] == 256  # the shipped architecture
    assert proc.stdout.strip() == f"model ready: petsum summarize --model {out} REPORT.txt"
