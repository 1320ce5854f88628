"""ONNX export and onnxruntime inference: numerical parity with torch, identical decoding, and the
CLI paths (`export`, `--backend onnx`, `--device cuda` on a machine without one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from click.testing import CliRunner  # noqa: E402
from conftest import tiny_sets  # noqa: E402
from tinymodels import tiny_tokenizer  # noqa: E402

pytestmark = pytest.mark.slow  # ONNX export and onnxruntime on every test

# Sources of different lengths, so every batch is padded.
SOURCES = [[5, 6, 7, 8, 9, 10, 11, 1], [12, 13, 1], [14, 15, 16, 17, 1], [20, 1], [1]]


def _model(seed: int = 0, scale: float = 1.0, **dims):
    import torch

    from shared.config import ModelConfig
    from shared.modeling import build_model

    cfg = ModelConfig(**{"d_model": 32, "d_ff": 64, "num_layers": 2, "num_heads": 2, **dims})
    model = build_model(cfg, tiny_tokenizer(), seed).eval()
    with torch.no_grad():  # a T5 at init is nearly flat; larger weights make varied, decisive outputs
        for p in model.parameters():
            p.mul_(scale)
    return model


def _save_and_export(model, root: Path) -> tuple[Path, Path]:
    from deploy.export import export_run
    from shared.modeling import save_checkpoint

    save_checkpoint(model, tiny_tokenizer(), root / "model", {"method": "usm", "role": "model"})
    export_run(root / "model", root / "export")
    return root / "model", root / "export"


@pytest.fixture(scope="module")
def random_t5(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, export) of a tiny T5 as initialised."""
    return _save_and_export(_model(), tmp_path_factory.mktemp("init"))


@pytest.fixture(scope="module")
def decisive_t5(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, export) of a tiny T5 with scaled-up weights: it writes varied tokens and stops."""
    return _save_and_export(_model(seed=7, scale=3.0), tmp_path_factory.mktemp("scaled"))


def _torch(checkpoint: Path):
    from shared.modeling import load_model

    return load_model(checkpoint)


def test_export_writes_checked_graphs_and_manifest(random_t5):
    import onnx

    _, exported = random_t5
    from deploy.export import OPSET

    role = exported / "model"
    for name in ("encoder.onnx", "decoder.onnx"):
        graph = onnx.load(str(role / name))
        onnx.checker.check_model(graph, full_check=True)
        assert graph.opset_import[0].version == OPSET
    info = json.loads((role / "onnx.json").read_text())
    assert info["opset"] == OPSET and info["dtype"] == "fp32"
    assert set(info["versions"]) == {"torch", "transformers", "onnx", "onnxscript", "onnxruntime"}
    assert (role / "tokenizer.json").is_file() and (role / "config.json").is_file()
    top = json.loads((exported / "ases.json").read_text())
    assert top["backend"] == "onnx" and top["roles"] == {"model": "model"} and top["method"] == "usm"


def test_encoder_and_step_logits_match_torch(random_t5):
    import torch

    from deploy.runtime import OnnxSeq2Seq
    from shared.batching import pad

    checkpoint, exported = random_t5
    model, onnx_model = _torch(checkpoint), OnnxSeq2Seq(exported / "model")
    ids, mask = pad(SOURCES, 0)
    hidden, cross, _ = onnx_model.encode(SOURCES)
    with torch.no_grad():
        ref = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    real = mask.numpy().astype(bool)  # padded positions are never read
    assert np.abs(hidden[real] - ref[real]).max() < 1e-4

    decoder_ids = torch.tensor(
        [[0, 7, 9, 4, 4, 3], [0, 5, 5, 5, 8, 2], [0, 1, 0, 0, 0, 0], [0, 3, 11, 12, 13, 14], [0, 2, 2, 2, 2, 2]]
    )
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits.numpy()
    past = onnx_model.empty_past(len(SOURCES))
    for t in range(decoder_ids.shape[1]):
        step, past = onnx_model.step(decoder_ids[:, t].numpy(), mask.numpy(), past, cross)
        assert np.abs(step - logits[:, t]).max() < 1e-4, f"step {t}"


@pytest.mark.parametrize("beams", [1, 2, 3, 4])
def test_batched_decoding_gives_torch_tokens(decisive_t5, beams):
    from deploy.runtime import OnnxSeq2Seq
    from shared.generate import TorchGenerator

    checkpoint, exported = decisive_t5
    tok = tiny_tokenizer()
    torch_gen, onnx_gen = (
        TorchGenerator(_torch(checkpoint), tok.pad_token_id, tok.eos_token_id),
        OnnxSeq2Seq(exported / "model"),
    )
    ref = torch_gen.generate_tokens(SOURCES, 12, beams)
    assert onnx_gen.generate_tokens(SOURCES, 12, beams) == ref
    # The comparison covers varied multi-token outputs, some ended by EOS and some by the limit.
    assert len({t for r in ref for t in r}) > 3 and {len(r) for r in ref} != {12}
    assert any(r and r[-1] == tok.eos_token_id for r in ref)
    # Alone or in a batch, and at a limit of one token, the same tokens.
    assert [onnx_gen.generate_tokens([src], 12, beams)[0] for src in SOURCES] == ref
    assert onnx_gen.generate_tokens(SOURCES, 1, beams) == torch_gen.generate_tokens(SOURCES, 1, beams)


def test_mt5_logits_and_beams_match_torch(tmp_path):
    """mT5 (and Flan-T5) use gated-gelu; mT5 does not rescale the decoder output."""
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration

    from deploy.export import export_run
    from deploy.runtime import OnnxSeq2Seq
    from shared.batching import pad
    from shared.generate import TorchGenerator

    tok = tiny_tokenizer()
    torch.manual_seed(5)
    model = MT5ForConditionalGeneration(
        MT5Config(
            vocab_size=len(tok),
            d_model=32,
            d_ff=64,
            d_kv=16,
            num_layers=2,
            num_decoder_layers=1,
            num_heads=2,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    ).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    model.save_pretrained(str(tmp_path / "m"))
    tok.save_pretrained(str(tmp_path / "m"))
    export_run(tmp_path / "m", tmp_path / "x")
    onnx_model = OnnxSeq2Seq(tmp_path / "x" / "model")
    ids, mask = pad(SOURCES, 0)
    _, cross, _ = onnx_model.encode(SOURCES)
    decoder_ids = torch.tensor([[0, 7, 9]] * len(SOURCES))
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits.numpy()
    past = onnx_model.empty_past(len(SOURCES))
    for t in range(3):
        step, past = onnx_model.step(decoder_ids[:, t].numpy(), mask.numpy(), past, cross)
        assert np.abs(step - logits[:, t]).max() < 1e-4 * max(1.0, np.abs(logits).max())
    gen = TorchGenerator(model, 0, 1)
    for beams in (1, 3):
        assert onnx_model.generate_tokens(SOURCES, 10, beams) == gen.generate_tokens(SOURCES, 10, beams)


def test_gated_untied_checkpoints_export_too(tmp_path):
    """mT5 / Flan-T5 use gated-gelu and an untied head."""
    from deploy.export import export_run
    from deploy.runtime import OnnxSeq2Seq
    from shared.generate import TorchGenerator
    from shared.modeling import save_checkpoint

    tok = tiny_tokenizer()
    model = _model(seed=1, scale=3.0, feed_forward_proj="gated-gelu", tie_embeddings=False, num_layers=1)
    save_checkpoint(model, tok, tmp_path / "m", {})
    export_run(tmp_path / "m", tmp_path / "x")
    ref = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id).generate_tokens(SOURCES, 10, 1)
    assert OnnxSeq2Seq(tmp_path / "x" / "model").generate_tokens(SOURCES, 10, 1) == ref


def test_int8_export_is_quantized_and_decodes(random_t5, tmp_path):
    import onnx

    from deploy.export import export_run
    from deploy.runtime import OnnxSeq2Seq

    export_run(random_t5[0], tmp_path / "q", int8=True)
    graph = onnx.load(str(tmp_path / "q" / "model" / "decoder.onnx"))
    assert any(n.op_type in {"MatMulInteger", "DynamicQuantizeMatMul"} for n in graph.graph.node)
    assert json.loads((tmp_path / "q" / "ases.json").read_text())["dtype"] == "int8"
    int8, fp32 = OnnxSeq2Seq(tmp_path / "q" / "model"), OnnxSeq2Seq(random_t5[1] / "model")
    assert int8.dtype == "int8" and fp32.dtype == "fp32"
    # int8 weights perturb the logits a little, not the model: compare the first step's.
    steps = []
    for m in (int8, fp32):
        _, cross, mask = m.encode(SOURCES)
        steps.append(m.step(np.zeros(len(SOURCES), dtype=np.int64), mask, m.empty_past(len(SOURCES)), cross)[0])
    spread = steps[1].std()
    assert 0 < np.abs(steps[0] - steps[1]).mean() < 0.1 * spread
    rows = int8.generate_tokens(SOURCES, 8, 1)
    assert len(rows) == len(SOURCES) and all(1 <= len(r) <= 8 for r in rows)


def test_export_refuses_non_t5_and_a_used_folder(random_t5, tmp_path):
    from transformers import BartConfig, BartForConditionalGeneration

    from deploy.export import export_run

    bart = BartForConditionalGeneration(
        BartConfig(
            vocab_size=300,
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
        )
    )
    bart.save_pretrained(str(tmp_path / "bart"))
    tiny_tokenizer().save_pretrained(str(tmp_path / "bart"))
    with pytest.raises(ValueError, match="T5-family"):
        export_run(tmp_path / "bart", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tmp").exists()  # nothing half-written
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("keep me")
    with pytest.raises(FileExistsError):
        export_run(random_t5[0], tmp_path / "used")
    assert (tmp_path / "used" / "x").read_text() == "keep me"


# ---- the AS-ES loop and the CLIs on top of the ONNX backend ----


@pytest.fixture(scope="module")
def pet_export(pet_run, tmp_path_factory) -> Path:
    from petsum.cli import main as petsum

    out = tmp_path_factory.mktemp("petx") / "onnx"
    res = CliRunner().invoke(petsum, ["export", "--model", str(pet_run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["backend"] == "onnx"
    return out


def test_summarize_onnx_matches_torch(pet_run, pet_export):
    from petsum.cli import main as petsum

    text = "脑实质内未见异常放射性摄取。肝右叶见低密度结节，SUVmax：5.6。胰头部见软组织肿块，放射性摄取增高。"
    runner = CliRunner()
    torch_out = runner.invoke(petsum, ["summarize", "-", "--model", str(pet_run), "--json"], input=text)
    onnx_out = runner.invoke(petsum, ["summarize", "-", "--model", str(pet_export), "--json"], input=text)
    assert torch_out.exit_code == 0 and onnx_out.exit_code == 0, onnx_out.output
    t, o = json.loads(torch_out.stdout), json.loads(onnx_out.stdout)
    assert o["backend"] == "onnx" and o["providers"] == ["CPUExecutionProvider"]
    assert t["backend"] == "torch"
    assert o["impression"] == t["impression"] and o["regions"] == t["regions"]


def test_batch_onnx_matches_torch(pet_run, pet_export, pet_csv, tmp_path):
    from petsum.cli import main as petsum

    runner = CliRunner()
    for name, model in (("t", pet_run), ("o", pet_export)):
        res = runner.invoke(
            petsum, ["batch", str(pet_csv), "--out", str(tmp_path / f"{name}.jsonl"), "--model", str(model)]
        )
        assert res.exit_code == 0, res.output
    rows = [[json.loads(line) for line in (tmp_path / f"{n}.jsonl").read_text().splitlines()] for n in "to"]
    assert len(rows[0]) > 0 and all(r.get("impression") for r in rows[0])
    assert rows[0] == rows[1]  # ids, impressions and warnings, record for record


def test_backend_mismatch_and_missing_cuda_are_one_line(pet_run, pet_export):
    import onnxruntime

    from petsum.cli import main as petsum

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA: the fallback warning cannot be provoked")

    text = "肝右叶见低密度结节，SUVmax：5.6。"
    runner = CliRunner()
    res = runner.invoke(petsum, ["summarize", "-", "--model", str(pet_run), "--backend", "onnx"], input=text)
    assert res.exit_code == 2 and res.output.startswith("error:") and "petsum export" in res.output
    res = runner.invoke(petsum, ["summarize", "-", "--model", str(pet_export), "--backend", "torch"], input=text)
    assert res.exit_code == 2 and "--backend onnx" in res.output
    res = runner.invoke(
        petsum, ["summarize", "-", "--model", str(pet_export), "--device", "cuda", "--json"], input=text
    )
    assert res.exit_code == 0, res.output
    assert "CUDA was requested but is not active" in res.stderr
    assert json.loads(res.stdout)["providers"] == ["CPUExecutionProvider"]


def test_mwp_solve_onnx_matches_torch(tmp_path, math_jsonl):
    from mwp.cli import main as mwp

    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(
        mwp,
        [
            "train",
            "--data",
            str(math_jsonl),
            "--out",
            str(run),
            "--method",
            "dsm",
            *tiny_sets(**{"train.max_steps": 2}),
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(mwp, ["export", "--model", str(run), "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.stdout)["roles"]) == {"esm", "asm"}
    outs = []
    for model, backend in ((run, "torch"), (tmp_path / "x", "onnx")):
        res = runner.invoke(
            mwp,
            [
                "solve",
                "--data",
                str(math_jsonl),
                "--model",
                str(model),
                "--backend",
                backend,
                "--json",
                "--out",
                str(tmp_path / f"{backend}.jsonl"),
            ],
        )
        assert res.exit_code == 0, res.output
        outs.append(
            [json.loads(line)["prediction"] for line in (tmp_path / f"{backend}.jsonl").read_text().splitlines()]
        )
    assert outs[0] == outs[1]


def test_broken_export_is_one_line(pet_export, tmp_path):
    import shutil

    from petsum.cli import main as petsum

    broken = tmp_path / "broken"
    shutil.copytree(pet_export, broken)
    (broken / "model" / "decoder.onnx").write_bytes(b"not a protobuf")
    res = CliRunner().invoke(petsum, ["summarize", "-", "--model", str(broken)], input="肝右叶见低密度结节。")
    assert res.exit_code == 2 and res.output.startswith("error:") and "cannot load the export" in res.output
    assert len(res.output.strip().splitlines()) == 1
    (broken / "model" / "onnx.json").unlink()
    res = CliRunner().invoke(petsum, ["summarize", "-", "--model", str(broken)], input="肝右叶见低密度结节。")
    assert res.exit_code == 2 and "onnx.json" in res.output


def test_a_role_folder_serves_alone(pet_run, pet_export):
    """One model of an export serves like the checkpoint it came from (default decoding settings:
    the run's own live in the top folder)."""
    from petsum.cli import main as petsum

    text = "肝右叶见低密度结节，SUVmax：5.6。"
    checkpoint = pet_run / json.loads((pet_run / "ases.json").read_text())["roles"]["model"]
    torch_out = CliRunner().invoke(petsum, ["summarize", "-", "--model", str(checkpoint)], input=text)
    onnx_out = CliRunner().invoke(petsum, ["summarize", "-", "--model", str(pet_export / "model")], input=text)
    assert torch_out.exit_code == onnx_out.exit_code == 0, onnx_out.output
    assert torch_out.stdout == onnx_out.stdout
