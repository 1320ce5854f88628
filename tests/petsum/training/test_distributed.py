"""Multi-process training: `petsum train --nproc 2` (DDP over gloo on the CPU) reproduces one
process on the same global batches, writes from rank 0 only, and resumes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, TINY, tiny_sets
from rich.console import Console

from petsum.cli import main as petsum

# Dropout 0 (TINY) and no evaluation until the budget ends: the logged losses are the steps'.
STEPS = {"train.log_every": 1, "train.eval_every": 3, "train.eval_gen_samples": 0}


def losses(run: Path) -> dict[int, float]:
    logged = [json.loads(line) for line in (run / "model" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in logged if "loss" in r]
    assert len(steps) == len(set(steps)), "a step was logged twice: only rank 0 may write"
    return {r["step"]: r["loss"] for r in logged if "loss" in r}


def weights(one: Path, two: Path) -> None:
    """The same weights after the same steps: the gradients were the global batch's."""
    import torch
    from safetensors.torch import load_file

    a, b = (load_file(run / "model" / "last" / "model.safetensors") for run in (one, two))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)


def single_process(pet_csv: Path, out: Path, steps: int) -> dict:
    import torch

    from petsum.adapter import PetAdapter
    from petsum.data.pairs import load_pairs
    from petsum.training.config import PetRunConfig
    from petsum.training.prepare import prepare
    from shared.config import load_config
    from shared.pipeline import train_run

    cfg = load_config(None, {**TINY, **STEPS, "train.method": "usm", "train.max_steps": steps}, PetRunConfig)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the two ranks runs; also fast on a busy 2-core machine
    try:
        instances, extra = prepare(load_pairs(pet_csv), cfg)
        return train_run(instances, PetAdapter(), cfg, out, Console(quiet=True), extra)
    finally:
        torch.set_num_threads(threads)


def two_processes(pet_csv: Path, out: Path, steps: int) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-c",
        "from petsum.cli import main; main()",
        "train",
        "--data",
        str(pet_csv),
        "--out",
        str(out),
        "--method",
        "usm",
        "--nproc",
        "2",
        *tiny_sets(**STEPS, **{"train.max_steps": steps}),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_processes_reproduce_one_and_resume(pet_csv, tmp_path):
    """3 steps, then resumed to 5 (all ranks load `last`), on 2 gloo ranks and in one process."""
    one, two = tmp_path / "one", tmp_path / "two"
    single_process(pet_csv, one, 3)
    manifest = single_process(pet_csv, one, 5)

    first = two_processes(pet_csv, two, 3)
    assert first.returncode == 0, first.stderr
    resumed = two_processes(pet_csv, two, 5)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step 3" in resumed.stderr
    assert len(resumed.stdout.strip().splitlines()) == 1  # rank 0 alone prints the manifest
    assert json.loads(resumed.stdout)["train"]["model"]["tokens"] == manifest["train"]["model"]["tokens"]

    a, b = losses(one), losses(two)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5]
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-4), step
    weights(one, two)
    state = json.loads((two / "model" / "last" / "trainer_state.json").read_text())
    assert (
        state["step"] == 5
        and state["tokens"] == json.loads((one / "model" / "last" / "trainer_state.json").read_text())["tokens"]
    )
    assert (two / "data" / "model_train.jsonl").read_text() == (one / "data" / "model_train.jsonl").read_text()
    assert (two / "tokenizer" / "tokenizer.json").read_text() == (one / "tokenizer" / "tokenizer.json").read_text()


def test_nproc_checks_the_config_before_starting_processes(pet_csv, tmp_path):
    res = CliRunner().invoke(
        petsum,
        [
            "train",
            "--data",
            str(pet_csv),
            "--out",
            str(tmp_path / "r"),
            "--nproc",
            "2",
            "--method",
            "usm",
            "--set",
            "train.nope=1",
        ],
    )
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_module_entry_point_is_petsum_train(pet_csv, tmp_path, monkeypatch):
    """What `torchrun … -m petsum.cli train OPTIONS` runs in every process: `petsum train OPTIONS`."""
    from petsum.training import run
    from petsum.training.prepare import torchrun_args

    res = subprocess.run(
        [sys.executable, "-m", "petsum.cli", "train", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert (
        res.returncode == 0
        and "Usage: petsum train" in res.stdout
        and "--data" in res.stdout
        and "--nproc" in res.stdout
    ), res.stderr
    sets = ("train.lr=1e-3", "train.device=auto")
    launched = []
    monkeypatch.setattr(run, "launch_training", lambda module, nproc, args: launched.append((module, nproc, args)))
    out = str(tmp_path / "x")
    res = CliRunner().invoke(
        petsum,
        ["train", "--data", str(pet_csv), "--out", out, "--nproc", "2", "--method", "usm", "--set", "train.lr=1e-3"],
    )
    assert res.exit_code == 0, res.output
    assert launched == [
        (
            "petsum.cli",
            2,
            # --device reaches every process as an override (auto: CUDA where the process has one)
            ["train", *torchrun_args(str(pet_csv), None, None, "usm", None, None, out, None, sets)],
        )
    ]
    args = torchrun_args("d.csv", None, 0.5, "usm", None, None, "runs/x", None, ("train.lr=1e-3",))
    assert args == [
        "--data",
        "d.csv",
        "--out",
        "runs/x",
        "--source",
        "region",
        "--target",
        "impression",
        "--gamma",
        "0.5",
        "--method",
        "usm",
        "--set",
        "train.lr=1e-3",
    ]
    assert torchrun_args("d.csv", None, None, None, None, None, "runs/x", None, (), "salient", "copy")[4:8] == [
        "--source",
        "salient",
        "--target",
        "copy",
    ]
