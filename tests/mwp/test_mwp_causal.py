"""Bring your own decoder-only model: tiny random GPT-2, Llama and Qwen2 folders (built here, saved
as any Hugging Face checkpoint is) decode batched and left-padded as they decode alone, with the
calculator, with seeded draws, and train through `mwp train --set model.pretrained=DIR`, then
solve through `mwp solve`."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import FIXTURES
from tinymodels import one_torch_thread, tiny_tokenizer

from mwp.calc_decoding import CalculatorGenerator, CausalStepper
from mwp.calculator import calculate
from mwp.cli import main as mwp
from shared.generate import Sampling, TorchGenerator, sample_key
from shared.modeling import is_causal, load_model

FAMILIES = ("gpt2", "llama", "qwen2")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def tiny_causal(family: str, seed: int = 0):
    """A random decoder-only model of `family` over the tiny tokenizer, in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tok = tiny_tokenizer()
    # A wide initialization: a default one predicts nearly uniformly, and its greedy answers are all EOS.
    ids = dict(
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
        initializer_range=0.4,
    )
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, **ids)
    torch.manual_seed(seed)
    if family == "gpt2":
        return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, **ids)).eval()
    if family == "llama":
        return LlamaForCausalLM(LlamaConfig(num_key_value_heads=2, max_position_embeddings=256, **small)).eval()
    return Qwen2ForCausalLM(Qwen2Config(num_key_value_heads=2, max_position_embeddings=256, **small)).eval()


def _sources(tok):
    texts = ["She has 5 apples.", "Hello, world. Hello, world. She has", "胰头部见软组织肿块"]
    return [tok.encode(t, add_special_tokens=False) + [tok.eos_token_id] for t in texts]


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_left_padded_greedy_is_each_row_alone(family):
    tok = tiny_tokenizer()
    model = tiny_causal(family)
    assert is_causal(model)
    gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id)
    sources = _sources(tok)
    batched = gen.generate_tokens(sources, 12, 1)
    assert batched == [gen.generate_tokens([s], 12, 1)[0] for s in sources]
    # …and each is what a plain loop over the whole sequence predicts, token by token
    for source, row in zip(sources, batched):
        seq = list(source)
        for _ in range(len(row)):
            with torch.no_grad():
                seq.append(int(model(input_ids=torch.tensor([seq])).logits[0, -1].argmax()))
        assert seq[len(source) :] == row


@pytest.mark.parametrize("family", FAMILIES)
def test_calculator_stepper_decodes_as_generate(family):
    """With no annotation opened, calculator decoding is plain greedy decoding; with the same keys
    its draws are the generator's draws; the n-gram ban bans alike."""
    tok = tiny_tokenizer()
    model = tiny_causal(family, seed=1)
    gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id)
    calc = CalculatorGenerator(CausalStepper(model, tok.pad_token_id), tok)
    sources = _sources(tok)
    assert calc.generate_tokens(sources, 12) == gen.generate_tokens(sources, 12, 1)
    assert calc.generate_tokens(sources, 12, no_repeat=2) == gen.generate_tokens(sources, 12, 1, no_repeat=2)
    keys = Sampling(tuple(sample_key(s, 0, 0) for s in sources), epsilon=0.005)
    drawn = calc.generate_tokens(sources, 12, sampling=keys)
    assert drawn == gen.generate_tokens(sources, 12, 1, sampling=keys)
    assert drawn != calc.generate_tokens(sources, 12)


def test_calculator_values_in_a_causal_models_text():
    """A GPT-2 that memorized a WRONG annotation value writes the calculator's value instead."""
    from shared.batching import Encoded, collate
    from shared.trainer import loss_sum

    tok = tiny_tokenizer()
    model = tiny_causal("gpt2").train()
    source = tok.encode("She has 2 apples and 3 more.", add_special_tokens=False) + [tok.eos_token_id]
    target = tok.encode("She has 2+3 = <<2+3=7>>7 apples.", add_special_tokens=False) + [tok.eos_token_id]
    batch = collate([Encoded(source, target)], tok.pad_token_id, causal=True)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = loss_sum(model, batch, 0.0) / len(target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id)
    assert gen.generate_tokens([source], 30, 1)[0] == target  # it memorized the wrong value
    text = tok.decode(CalculatorGenerator(CausalStepper(model, tok.pad_token_id), tok).generate_tokens([source], 30)[0])
    assert text.startswith("She has 2+3 = <<2+3=5>>") and calculate("2+3") == "5"


def test_causal_labels_are_the_targets_tokens_shifted_by_the_loss():
    """`collate(causal=True)`: one sequence per row, labels only on the target; `loss_sum` equals
    the model's own (shifted) loss, summed."""
    from shared.batching import Encoded, collate
    from shared.trainer import loss_sum

    tok = tiny_tokenizer()
    model = tiny_causal("llama")
    rows = [Encoded([5, 6, 7, 1], [8, 9, 1]), Encoded([5, 1], [10, 1])]
    batch = collate(rows, tok.pad_token_id, causal=True)
    assert batch["input_ids"].tolist()[1][:4] == [5, 1, 10, 1] and batch["attention_mask"].sum() == 7 + 4
    assert batch["labels"].tolist()[0] == [-100, -100, -100, -100, 8, 9, 1]
    with torch.no_grad():
        assert float(loss_sum(model, batch, 0.0)) == pytest.approx(float(model(**batch).loss) * 5, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gpt2", "qwen2"])
def test_train_and_solve_a_local_causal_folder(family, tmp_path):
    """`mwp train` from a decoder-only folder, with the calculator, then `mwp solve` on the run:
    its answers come from a causal model loaded by `AutoModelForCausalLM`."""
    base = tmp_path / "base"
    tiny_causal(family).save_pretrained(base)
    tiny_tokenizer().save_pretrained(base)
    out = tmp_path / "run"
    sets = {
        "model.pretrained": base,
        "train.method": "direct",
        "train.max_steps": 20,
        "train.lr": 3e-3,
        "train.warmup_steps": 2,
        "train.eval_every": 10,
        "train.eval_gen_samples": 2,
        "train.threads": 1,
        "data.max_source_len": 96,
        "data.max_target_len": 48,
        "generate.max_new_tokens": 24,
    }
    args = ["train", "--data", FIXTURES / "math_calc.jsonl", "--out", out, "--calculator"]
    args += [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    res = CliRunner().invoke(mwp, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    assert is_causal(load_model(out / "model" / "last"))
    pred = tmp_path / "pred.jsonl"
    res = CliRunner().invoke(
        mwp, ["solve", "--data", str(FIXTURES / "math_calc.jsonl"), "--model", str(out), "--json", "--out", str(pred)]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert metrics["n"] == len(pred.read_text().splitlines()) > 0 and metrics["calculator"] is True
    # A plain folder, never trained here, solves as it is; export stays seq2seq-only, with one line.
    res = CliRunner().invoke(mwp, ["solve", "A box holds 12 pens. How many pens in 4 boxes?", "--model", str(base)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(mwp, ["export", "--model", str(out), "--out", str(tmp_path / "onnx")])
    assert res.exit_code != 0 and res.output.startswith("error:") and "T5" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1


def test_a_source_and_target_that_overflow_the_positions_are_refused(tmp_path):
    from shared.config import RunConfig
    from shared.pipeline import base_model
    from shared.textio import InputError

    base = tmp_path / "base"
    tiny_causal("gpt2").save_pretrained(base)  # 256 positions
    cfg = RunConfig.model_validate(
        {"model": {"pretrained": str(base)}, "data": {"max_source_len": 200, "max_target_len": 100}}
    )
    with pytest.raises(InputError, match="256 positions.*is 300"):
        base_model(cfg, tiny_tokenizer(), [])
    cfg = RunConfig.model_validate({"model": {"pretrained": str(base)}, "data": {"max_source_len": 128}})
    assert is_causal(base_model(cfg, tiny_tokenizer(), []))
