"""shared.average and `petsum average`: the mean of checkpoints' weights, as a loadable folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from tinymodels import tiny_model, tiny_tokenizer

from petsum.cli import main as petsum
from shared.modeling import MANIFEST, load_model, save_checkpoint


def _saved(tmp_path: Path, name: str, seed: int, **dims) -> Path:
    model = tiny_model(seed) if not dims else _other_model(seed, **dims)
    path = tmp_path / name
    save_checkpoint(
        model, tiny_tokenizer(), path, {"method": "direct", "step": 7, "val_loss": 1.5, "checkpoint": "last"}
    )
    return path


def _other_model(seed: int, **dims):
    from tinymodels import TINY_DIMS

    from shared.config import ModelConfig
    from shared.modeling import build_model

    return build_model(ModelConfig(**{**TINY_DIMS, **dims}), tiny_tokenizer(), seed=seed).eval()


def test_average_writes_the_mean_of_the_weights_as_a_plain_folder(tmp_path: Path):
    a, b, c = (_saved(tmp_path, n, s) for n, s in (("a", 0), ("b", 1), ("c", 2)))
    res = CliRunner().invoke(petsum, ["average", str(a), str(b), str(c), "--out", str(tmp_path / "soup")])
    assert res.exit_code == 0, res.output
    soup = load_model(tmp_path / "soup")
    parts = [dict(load_model(p).named_parameters()) for p in (a, b, c)]
    for name, p in soup.named_parameters():
        assert torch.allclose(p, sum(part[name] for part in parts) / 3, atol=1e-6), name
    manifest = json.loads((tmp_path / "soup" / MANIFEST).read_text(encoding="utf-8"))
    assert (
        manifest["method"] == "direct"
        and manifest["checkpoint"] == "average"
        and "step" not in manifest
        and "val_loss" not in manifest
    )
    assert manifest["averaged"] == [str(a), str(b), str(c)]
    assert (tmp_path / "soup" / "tokenizer.json").is_file() and not (tmp_path / "soup.tmp").exists()


def _corrupt(tmp_path: Path) -> Path:
    path = _saved(tmp_path, "corrupt", 1)
    (path / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes()[:100])  # a truncated copy
    return path


@pytest.mark.parametrize(
    "case", ["one", "other architecture", "out exists", "not a checkpoint", "named twice", "corrupt"]
)
def test_bad_average_input_is_one_line(tmp_path: Path, case: str):
    a = _saved(tmp_path, "a", 0)
    other = {
        "one": [],
        "other architecture": [str(_saved(tmp_path, "wide", 1, d_model=48))],
        "out exists": [str(_saved(tmp_path, "b", 1))],
        "not a checkpoint": [str(tmp_path)],
        "named twice": [str(tmp_path / "." / "a")],
        "corrupt": [str(_corrupt(tmp_path))],
    }[case]
    out = a if case == "out exists" else tmp_path / "soup"
    res = CliRunner().invoke(petsum, ["average", str(a), *other, "--out", str(out)])
    assert res.exit_code == 2 and res.output.startswith("error: ") and len(res.output.strip().splitlines()) == 1, (
        res.output
    )
    assert not (tmp_path / "soup").exists() and not (tmp_path / "soup.tmp").exists()


def test_an_average_that_carries_a_memory_says_so(tmp_path: Path):
    from conftest import FIXTURES

    a, b = _saved(tmp_path, "a", 0), _saved(tmp_path, "b", 1)
    assert (
        res := CliRunner().invoke(petsum, ["memory", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(a)])
    ).exit_code == 0, res.output
    res = CliRunner().invoke(petsum, ["average", str(a), str(b), "--out", str(tmp_path / "soup")])
    assert res.exit_code == 0 and "holds report text" in res.stderr and "--drop" in res.stderr, res.output
    assert (tmp_path / "soup" / "memory.json").is_file()  # the first folder's files come along
    assert "memory" not in json.loads(
        (tmp_path / "soup" / MANIFEST).read_text(encoding="utf-8")
    )  # beside the manifest, not in it
    res = CliRunner().invoke(petsum, ["average", str(b), str(a), "--out", str(tmp_path / "plain")])
    assert res.exit_code == 0 and "report text" not in res.output
