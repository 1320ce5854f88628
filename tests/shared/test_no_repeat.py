"""The decoding rules of `generate`: `no_repeat_ngram_size` (the same tokens banned by every
backend: torch `generate`, the onnxruntime greedy and beam loops, calculator decoding) and
`first_token_bias` and `eos_bias` (the same logits moved everywhere), and these settings travel
with a checkpoint and its export, so a shipped model decodes the way it was validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tinymodels import one_torch_thread, tiny_tokenizer

from shared.config import GenerateConfig
from shared.generate import LogitBias, TorchGenerator, banned_tokens, first_token_ids, logit_bias

SOURCES = [[5, 6, 7, 8, 9, 10, 11, 1], [12, 13, 1], [14, 15, 16, 17, 1], [20, 1], [1]]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _repeats(tokens: list[int], n: int) -> bool:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def test_banned_tokens_follow_hugging_face():
    assert banned_tokens([0, 5, 6, 7, 5, 6], 3) == [7]  # 5 6 7 exists: after 5 6, 7 would repeat it
    assert banned_tokens([0, 5, 6, 7, 5, 6], 2) == [7]  # after 6 only 7 has followed
    assert sorted(banned_tokens([0, 5, 6, 5], 2)) == [6]
    assert sorted(set(banned_tokens([0, 5, 6], 1))) == [0, 5, 6]
    assert banned_tokens([0, 5, 6, 7, 5, 6], 0) == []
    assert banned_tokens([0, 5], 4) == []  # too short to complete any 4-gram


@pytest.fixture(scope="module")
def looping(tmp_path_factory) -> tuple[object, Path]:
    """A tiny T5 with scaled-up weights, which loops under plain greedy decoding, and its export."""
    import torch

    pytest.importorskip("onnxruntime")
    from deploy.export import export_run
    from shared.config import ModelConfig
    from shared.modeling import build_model, save_checkpoint

    tok = tiny_tokenizer()
    model = build_model(ModelConfig(d_model=32, d_ff=64, num_layers=2, num_heads=2), tok, 7).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    root = tmp_path_factory.mktemp("loop")
    save_checkpoint(model, tok, root / "model", {"method": "direct", "role": "model"})
    export_run(root / "model", root / "export")
    return model, root / "export" / "model"


@pytest.mark.slow
def test_onnx_greedy_and_beams_ban_what_torch_bans(looping):
    from deploy.runtime import OnnxSeq2Seq

    model, export = looping
    tok = tiny_tokenizer()
    torch_gen, onnx_gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id), OnnxSeq2Seq(export)
    plain = torch_gen.generate_tokens(SOURCES, 24, 1)
    assert any(_repeats(row, 2) for row in plain)  # otherwise there is nothing to ban
    for n in (2, 3):
        for beams in (1, 3):
            ref = torch_gen.generate_tokens(SOURCES, 24, beams, n)
            assert onnx_gen.generate_tokens(SOURCES, 24, beams, n) == ref, (n, beams)
            assert not any(_repeats([0, *row], n) for row in ref)
    assert torch_gen.generate_tokens(SOURCES, 24, 1, 2) != plain


@pytest.mark.slow
def test_calculator_decoding_bans_the_same_tokens(looping):
    from deploy.runtime import OnnxSeq2Seq
    from mwp.calc_decoding import CalculatorGenerator, OnnxStepper, TorchStepper

    model, export = looping
    tok = tiny_tokenizer()
    ref = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id).generate_tokens(SOURCES, 24, 1, 2)
    assert CalculatorGenerator(TorchStepper(model, tok.pad_token_id), tok).generate_tokens(SOURCES, 24, 1, 2) == ref
    assert CalculatorGenerator(OnnxStepper(OnnxSeq2Seq(export)), tok).generate_tokens(SOURCES, 24, 1, 2) == ref


@pytest.mark.slow
def test_the_setting_travels_with_checkpoints_and_exports(looping, tmp_path):
    from deploy.export import export_run
    from deploy.runtime import load_onnx_run
    from shared.modeling import save_checkpoint
    from shared.pipeline import decoding_settings, load_run

    model, _ = looping
    tok = tiny_tokenizer()
    ours = GenerateConfig(no_repeat_ngram_size=4, max_iters=3, first_token_bias={"肝脏": -2.5}, eos_bias=-1.5)
    save_checkpoint(model, tok, tmp_path / "ours", {"method": "direct", "role": "model", "generate": ours.model_dump()})
    assert load_run(tmp_path / "ours").generate == ours
    export_run(tmp_path / "ours", tmp_path / "ours-onnx")
    assert load_onnx_run(tmp_path / "ours-onnx").generate == ours
    assert load_onnx_run(tmp_path / "ours-onnx" / "model").generate == ours

    # A plain HF folder (a user's own checkpoint): its generation_config.json's setting is honoured.
    model.generation_config.no_repeat_ngram_size = 3
    model.save_pretrained(str(tmp_path / "plain"))
    tok.save_pretrained(str(tmp_path / "plain"))
    assert decoding_settings(tmp_path / "plain").no_repeat_ngram_size == 3
    model.generation_config.no_repeat_ngram_size = None
    assert decoding_settings(tmp_path / "ours").no_repeat_ngram_size == 4


@pytest.mark.slow
def test_trained_checkpoints_record_the_runs_decoding(pet_run):
    """A checkpoint copied out of a run (as the default model is shipped) decodes as the run did."""
    from shared.pipeline import decoding_settings

    checkpoint = pet_run / json.loads((pet_run / "ases.json").read_text())["roles"]["model"]
    assert decoding_settings(checkpoint) == decoding_settings(pet_run)
    assert json.loads((checkpoint / "ases.json").read_text())["generate"] == decoding_settings(pet_run).model_dump()


def test_negative_sizes_are_refused():
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        GenerateConfig(no_repeat_ngram_size=-1)


def _same_in_every_backend(looping, biases: list[LogitBias]) -> None:
    """Each bias decodes to the same tokens in torch, onnxruntime (greedy and beams) and calculator decoding."""
    from deploy.runtime import OnnxSeq2Seq
    from mwp.calc_decoding import CalculatorGenerator, OnnxStepper, TorchStepper

    model, export = looping
    tok = tiny_tokenizer()
    torch_gen, onnx_gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id), OnnxSeq2Seq(export)
    for bias in biases:
        for beams in (1, 3):
            ref = torch_gen.generate_tokens(SOURCES, 12, beams, 2, bias)
            assert onnx_gen.generate_tokens(SOURCES, 12, beams, 2, bias) == ref, (bias, beams)
        ref = torch_gen.generate_tokens(SOURCES, 12, 1, 2, bias)
        assert (
            CalculatorGenerator(TorchStepper(model, tok.pad_token_id), tok).generate_tokens(SOURCES, 12, 1, 2, bias)
            == ref
        )
        assert CalculatorGenerator(OnnxStepper(onnx_gen), tok).generate_tokens(SOURCES, 12, 1, 2, bias) == ref


@pytest.mark.slow
def test_first_token_bias_moves_the_first_step_only_in_every_backend(looping):
    model, _ = looping
    tok = tiny_tokenizer()
    torch_gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id)
    plain = torch_gen.generate_tokens(SOURCES, 12, 1)
    common = max({row[0] for row in plain}, key=[row[0] for row in plain].count)
    away = torch_gen.generate_tokens(SOURCES, 12, 1, 0, LogitBias({common: -1e4}))
    assert all(row[0] != common for row in away)
    target = next(t for t in range(5, tok.vocab_size) if t not in {row[0] for row in plain})
    toward = torch_gen.generate_tokens(SOURCES, 12, 1, 0, LogitBias({target: 1e4}))
    assert all(row[0] == target for row in toward)
    assert any(t != target for row in toward for t in row[1:])  # later steps are the model's own
    _same_in_every_backend(
        looping, [LogitBias({common: -1e4}), LogitBias({target: 1e4}), LogitBias({common: -1.5, target: 0.7})]
    )


@pytest.mark.slow
def test_eos_bias_lengthens_or_ends_segments_alike_in_every_backend(looping):
    model, _ = looping
    tok = tiny_tokenizer()
    eos = tok.eos_token_id
    torch_gen = TorchGenerator(model, tok.pad_token_id, eos)
    never = torch_gen.generate_tokens(SOURCES, 12, 1, 0, LogitBias(every={eos: -1e4}))
    assert all(len(row) == 12 and eos not in row for row in never)  # no row may end: each runs to the limit
    at_once = torch_gen.generate_tokens(SOURCES, 12, 1, 0, LogitBias(every={eos: 1e4}))
    assert at_once == [[eos]] * len(SOURCES)
    _same_in_every_backend(looping, [LogitBias(every={eos: -2.0}), LogitBias({7: -1.0}, {eos: 1.5})])


def test_logit_bias_of_a_config():
    tok = tiny_tokenizer()
    assert logit_bias(tok, GenerateConfig()) is None
    bias = logit_bias(tok, GenerateConfig(eos_bias=-2.0, first_token_bias={"肝脏": -1.0}))
    assert bias == LogitBias({tok("肝脏", add_special_tokens=False)["input_ids"][0]: -1.0}, {tok.eos_token_id: -2.0})


def test_first_token_ids_bias_each_texts_first_token():
    tok = tiny_tokenizer()
    a, b = "肝脏", "肝脏代谢增高"
    first = tok(a, add_special_tokens=False)["input_ids"][0]
    assert tok(b, add_special_tokens=False)["input_ids"][0] == first  # the two texts share it
    assert first_token_ids(tok, {a: -1.0, b: -0.5}) == {first: -1.5}
    assert first_token_ids(tok, {}) == {}


def test_bad_biases_are_refused():
    with pytest.raises(ValueError, match="first_token_bias"):
        GenerateConfig(first_token_bias={" ": -1.0})
    with pytest.raises(ValueError, match="first_token_bias"):
        GenerateConfig(first_token_bias={"肝脏": float("inf")})
    with pytest.raises(ValueError, match="eos_bias"):
        GenerateConfig(eos_bias=float("-inf"))
