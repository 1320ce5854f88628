"""Shared test settings: fixture paths and a model small enough to train in seconds on 2 cores."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PETSUM_SHARED_DATA", REPO.parent / "shared" / "data"))



def load_benchmark(name: str) -> ModuleType:
    """`benchmarks/{name}.py` or `experiments/{name}.py` as a module (they are scripts, not a
    package), registered under `name` so that its dataclasses and pickles resolve."""
    folder = "benchmarks" if (REPO / "benchmarks" / f"{name}.py").is_file() else "experiments"
    spec = importlib.util.spec_from_file_location(name, REPO / folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


TINY = {
    "model.vocab_size": 400,
    "model.d_model": 32,
    "model.d_ff": 64,
    "model.num_layers": 2,
    "model.num_heads": 2,
    "model.dropout": 0.0,
    "train.batch_size": 8,
    "train.warmup_steps": 2,
    "train.eval_every": 4,
    "train.log_every": 2,
    "train.eval_gen_samples": 2,
    "data.max_source_len": 256,
    "data.max_target_len": 48,
    "generate.max_new_tokens": 12,
    "generate.max_iters": 4,
}


def tiny_sets(**extra) -> list[str]:
    """TINY (plus `extra`) as repeated `--set key=value` CLI arguments."""
    args = []
    for k, v in {**TINY, **extra}.items():
        args += ["--set", f"{k}={v}"]
    return args


@pytest.fixture
def pet_csv() -> Path:
    return FIXTURES / "pet_toy.csv"


@pytest.fixture
def math_jsonl() -> Path:
    return FIXTURES / "math_toy.jsonl"


@pytest.fixture(scope="session")
def pet_run(tmp_path_factory) -> Path:
    """A tiny region-level USM run trained once for every CLI test."""
    from click.testing import CliRunner

    from petsum.cli import main as petsum

    out = tmp_path_factory.mktemp("pet") / "run"
    args = ["train", "--data", str(FIXTURES / "pet_toy.csv"), "--out", str(out), "--method", "usm", *tiny_sets(**{"train.max_steps": 4})]
    res = CliRunner().invoke(petsum, args)
    assert res.exit_code == 0, res.output
    return out
