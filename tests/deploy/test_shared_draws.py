"""Seeded draws in onnxruntime share a decoder row per distinct (source, prefix so far): the same
tokens, row for row, as decoding each draw on its own, with fewer decoder rows run."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from tinymodels import tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.slow  # ONNX export and onnxruntime

SOURCES = [[5, 6, 7, 8, 9, 10, 11, 1], [12, 13, 1], [14, 15, 16, 17, 1], [20, 1], [1]]


def _export(root: Path, seed: int, scale: float) -> Path:
    import torch

    from deploy.export import export_run
    from shared.config import ModelConfig
    from shared.modeling import build_model, save_checkpoint

    cfg = ModelConfig(d_model=32, d_ff=64, num_layers=2, num_heads=2)
    model = build_model(cfg, tiny_tokenizer(), seed).eval()
    with torch.no_grad():  # larger weights: varied, decisive outputs that stop
        for p in model.parameters():
            p.mul_(scale)
    save_checkpoint(model, tiny_tokenizer(), root / "model", {"method": "usm", "role": "model"})
    export_run(root / "model", root / "export")
    return root / "export" / "model"


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> list[Path]:
    """A decisive tiny T5 (draws mostly agree) and a flatter one (draws split early)."""
    return [
        _export(tmp_path_factory.mktemp("decisive"), 7, 3.0),
        _export(tmp_path_factory.mktemp("flat"), 3, 1.5),
    ]


def _draws(model, sources, limit, epsilon, shared, **kw):
    from shared.generate import Sampling, sample_key

    rows = [s for s in sources for _ in range(8)]  # as `generate` asks: each source repeated, one key each
    keys = tuple(sample_key(s, i % 8, 0) for i, s in enumerate(rows))
    model.share_draws, model.rows_decoded = shared, 0
    out = model.generate_tokens(rows, limit, 1, sampling=Sampling(keys, epsilon), **kw)
    return out, model.rows_decoded


@pytest.mark.parametrize("epsilon", [0.02, 0.001])
def test_shared_draws_equal_per_row_draws(exports, epsilon):
    from deploy.runtime import OnnxSeq2Seq
    from shared.generate import LogitBias

    tok = tiny_tokenizer()
    seen = []
    for folder in exports:
        model = OnnxSeq2Seq(folder)
        for kw in ({}, {"no_repeat": 2, "bias": LogitBias({7: 1.5}, {tok.eos_token_id: -0.5})}):
            for limit in (1, 12):
                ref, per_row = _draws(model, SOURCES, limit, epsilon, False, **kw)
                out, shared = _draws(model, SOURCES, limit, epsilon, True, **kw)
                assert out == ref, (folder, kw, limit)
                assert out.probability is None and per_row == sum(len(r) for r in ref)
                assert shared < per_row  # repeated sources and agreeing draws share decoder rows
                seen.append(ref)
    # The comparison covers draws that differ, some ended by EOS and some by the limit.
    assert all(len({tuple(r) for r in ref}) > len(SOURCES) for ref in seen[1::2])
    assert any(r[-1] == tok.eos_token_id for r in seen[1]) and any(len(r) == 12 for r in seen[1])


def test_shared_draws_match_in_any_order_and_alone(exports):
    """A draw depends on its source and key alone: interleaved rows, or a source on its own."""
    from deploy.runtime import OnnxSeq2Seq
    from shared.generate import Sampling, sample_key

    model = OnnxSeq2Seq(exports[1])
    rows = [SOURCES[i % 3] for i in range(9)]  # sources interleaved, not in runs
    keys = tuple(sample_key(s, i, 1) for i, s in enumerate(rows))
    model.share_draws = False
    ref = model.generate_tokens(rows, 12, 1, sampling=Sampling(keys))
    model.share_draws = True
    assert model.generate_tokens(rows, 12, 1, sampling=Sampling(keys)) == ref
    alone = [model.generate_tokens([s], 12, 1, sampling=Sampling((k,)))[0] for s, k in zip(rows, keys)]
    assert alone == ref
