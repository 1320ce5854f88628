"""The CTranslate2 backend decodes as torch does: greedy with the n-gram ban and the first-token
bias (lowered and raised), beam search, and draws (handed to the export's onnxruntime model); auto
picks it for an export made with --ct2; the export's tokenizer loads without transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("ctranslate2")

from tinymodels import tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.slow  # export, conversion and three engines

SOURCES = [[5, 6, 7, 8, 9, 10, 11, 1], [12, 13, 1], [14, 15, 16, 17, 1], [20, 1], [7, 7, 7, 7, 7, 7, 1]]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, export with a CTranslate2 conversion) of a tiny T5 with decisive outputs that stop."""
    import torch

    from deploy.export import export_run
    from shared.config import ModelConfig
    from shared.modeling import build_model, save_checkpoint

    root = tmp_path_factory.mktemp("ct2")
    model = build_model(ModelConfig(d_model=32, d_ff=64, num_layers=2, num_heads=2), tiny_tokenizer(), 7).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    save_checkpoint(model, tiny_tokenizer(), root / "model", {"method": "direct", "role": "model"})
    export_run(root / "model", root / "export", ct2=True)
    return root / "model", root / "export"


def _torch(checkpoint: Path):
    from shared.generate import TorchGenerator
    from shared.modeling import load_model

    tok = tiny_tokenizer()
    return TorchGenerator(load_model(checkpoint).eval(), tok.pad_token_id, tok.eos_token_id)


def _first_tokens(gen, limit: int = 12) -> list[int]:
    return [row[0] for row in gen.generate_tokens(SOURCES, limit, 1) if row]


@pytest.mark.parametrize("no_repeat", [0, 2])
def test_greedy_equals_torch_with_ban_and_both_biases(built, no_repeat):
    from deploy.ct2 import Ct2Seq2Seq
    from deploy.export import CT2_DIR
    from shared.generate import LogitBias

    checkpoint, export = built
    ct2, ref = Ct2Seq2Seq(export / "model" / CT2_DIR, threads=1), _torch(checkpoint)
    firsts = _first_tokens(ref)
    lowered = LogitBias({firsts[0]: -4.0})  # the most common first answer gets rarer: some rows turn
    raised = LogitBias({(firsts[0] + 3) % 40 + 3: 6.0})  # a token no row starts with gets chosen
    for bias in (None, lowered, raised):
        got = ct2.generate_tokens(SOURCES, 12, 1, no_repeat, bias)
        want = ref.generate_tokens(SOURCES, 12, 1, no_repeat, bias)
        assert [list(r) for r in got] == [list(r) for r in want]
        np.testing.assert_allclose(got.probability, want.probability, rtol=1e-4)
    assert ct2.generate_tokens(SOURCES, 12, 1, no_repeat, lowered) != ct2.generate_tokens(SOURCES, 12, 1, no_repeat)


def test_beam_equals_torch(built):
    from deploy.ct2 import Ct2Seq2Seq
    from deploy.export import CT2_DIR

    checkpoint, export = built
    ct2, ref = Ct2Seq2Seq(export / "model" / CT2_DIR, threads=1), _torch(checkpoint)
    assert [list(r) for r in ct2.generate_tokens(SOURCES, 10, 3)] == [
        list(r) for r in ref.generate_tokens(SOURCES, 10, 3)
    ]


def test_draws_and_biased_beams_go_to_onnxruntime(built):
    from deploy.backend import load_models
    from deploy.runtime import OnnxSeq2Seq
    from shared.generate import LogitBias, Sampling, sample_key

    _, export = built
    models = load_models(export)  # auto: the conversion is there and ctranslate2 is installed
    assert models.backend == "ct2" and "ctranslate2" in models.providers[0]
    ort = OnnxSeq2Seq(export / "model")
    keys = Sampling(tuple(sample_key(s, 0, 0) for s in SOURCES))
    gen = models.models["model"]
    assert gen.generate_tokens(SOURCES, 12, 1, 2, sampling=keys) == ort.generate_tokens(
        SOURCES, 12, 1, 2, sampling=keys
    )
    bias = LogitBias({5: -2.0})
    assert gen.generate_tokens(SOURCES, 8, 2, 0, bias) == ort.generate_tokens(SOURCES, 8, 2, 0, bias)
    # A source of EOS alone, which CTranslate2 answers with nothing, is decoded by onnxruntime.
    assert gen.generate_tokens([[1], *SOURCES], 8, 1) == ort.generate_tokens([[1], *SOURCES], 8, 1)


def test_without_a_conversion_ct2_is_refused_and_auto_is_onnx(tmp_path, built):
    import shutil

    from deploy.backend import load_models
    from deploy.export import CT2_DIR
    from shared.textio import InputError

    _, export = built
    plain = tmp_path / "plain"
    shutil.copytree(export, plain)
    shutil.rmtree(plain / "model" / CT2_DIR)
    assert load_models(plain).backend == "onnx"
    with pytest.raises(InputError, match="export --ct2"):
        load_models(plain, backend="ct2")


def test_the_export_tokenizer_loads_without_transformers_and_matches_it(built):
    from shared.fast_tokenizer import FastTokenizer, load_fast_tokenizer
    from shared.modeling import load_tokenizer

    _, export = built
    fast, slow = load_fast_tokenizer(export / "model"), load_tokenizer(export / "model")
    assert isinstance(fast, FastTokenizer)
    texts = ["左肺上叶结节，代谢增高。", "abc 12.5 cm", ""]
    assert fast(texts, add_special_tokens=False)["input_ids"] == slow(texts, add_special_tokens=False)["input_ids"]
    rows = [[5, 6, 1], [1, 7, 0, 8], []]
    assert fast.batch_decode(rows, skip_special_tokens=True) == slow.batch_decode(rows, skip_special_tokens=True)
    assert (fast.eos_token_id, fast.pad_token_id) == (slow.eos_token_id, slow.pad_token_id)


def test_cuda_without_a_gpu_runs_on_the_cpu_and_says_so(built):
    import ctranslate2

    from deploy.backend import device_warning, load_models

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("a GPU is active here")
    _, export = built
    models = load_models(export, device="cuda")
    assert models.backend == "ct2" and "cpu" in models.providers[0]
    assert "not active" in device_warning(models, "cuda")
    assert models.models["model"].generate_tokens(SOURCES, 4, 1)  # and it decodes


def test_benchmark_anchor_decodes_as_the_backend_without_bias(built):
    """benchmarks/engines.py holds the end-to-end path to CTranslate2 alone: that anchor must decode
    what our backend decodes when no bias applies (int8: both on the same conversion)."""
    from conftest import load_benchmark

    from deploy.ct2 import Ct2Seq2Seq
    from deploy.export import CT2_DIR, export_run
    from shared.generate import GenerateConfig, generate_batch

    checkpoint, export = built
    int8 = export.parent / "export8"
    if not int8.exists():
        export_run(checkpoint, int8, int8=True, ct2=True)
    cfg = GenerateConfig(batch_size=2, max_new_tokens=12, no_repeat_ngram_size=2)
    decode, texts = load_benchmark("engines").bare_ct2(int8, 1, cfg)
    ours = Ct2Seq2Seq(int8 / "model" / CT2_DIR, workers_threads=(1, 1))
    assert texts(decode(SOURCES)) == generate_batch(ours, tiny_tokenizer(), SOURCES, cfg)[0]
