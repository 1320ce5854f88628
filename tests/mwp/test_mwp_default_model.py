"""The shipped default GSM8K model: a plain Hugging Face folder within the size limit, with its
model card, used by `mwp solve` when no --model is given."""

import json

import pytest
from click.testing import CliRunner
from conftest import FIXTURES
from tinymodels import one_torch_thread

from mwp.cli import main as mwp
from mwp.solve import DEFAULT_MODEL
from shared.modeling import read_manifest

QUESTION = "A box holds 12 pens. How many pens are in 4 boxes?"
OTHER = "Tom has 3 apples and buys 5 more. How many apples does he have?"


def _model_folders() -> list:
    roles = read_manifest(DEFAULT_MODEL).get("roles")
    return [DEFAULT_MODEL / sub for sub in roles.values()] if roles else [DEFAULT_MODEL]


def test_default_model_is_plain_hf_under_40_mb():
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    files = [p for p in DEFAULT_MODEL.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20
    for folder in _model_folders():
        assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
            p.name for p in folder.iterdir()
        }
        model, tok = AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
        with one_torch_thread():
            texts = [
                tok.decode(
                    model.generate(tok(q, return_tensors="pt").input_ids, max_new_tokens=16)[0],
                    skip_special_tokens=True,
                )
                for q in (QUESTION, OTHER)
            ]
        # plain transformers decoding writes an answer, and a different one for a different question
        assert all(t.startswith("The answer is ") and t.endswith(".") for t in texts) and texts[0] != texts[1], texts


def test_model_card_states_data_recipe_accuracy_and_limits():
    card = (DEFAULT_MODEL / "README.md").read_text(encoding="utf-8").lower()
    for needed in ("gsm8k", "mwp train", "mwp solve", "accuracy", "calculator", "limits"):
        assert needed in card, needed


def test_solve_uses_the_default_model():
    res = CliRunner().invoke(mwp, ["solve", QUESTION, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"reasoning", "answer", "generated", "calculator"}
    assert out["answer"] is not None and f"The answer is {out['answer']}" in out["generated"], (
        out
    )  # it guesses, but it answers
    float(out["answer"])  # a canonical number
    assert out["calculator"] is bool(read_manifest(DEFAULT_MODEL).get("calculator"))
    res = CliRunner().invoke(mwp, ["solve", "--data", str(FIXTURES / "math_calc.jsonl"), "--limit", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == 2


@pytest.mark.slow
def test_an_export_of_the_default_model_keeps_calculator_mode(tmp_path):
    pytest.importorskip("onnxruntime")
    res = CliRunner().invoke(mwp, ["export", "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(mwp, ["solve", QUESTION, "--model", str(tmp_path / "x"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["calculator"] is bool(read_manifest(DEFAULT_MODEL).get("calculator"))
