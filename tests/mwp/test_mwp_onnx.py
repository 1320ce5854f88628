"""Calculator mode on an ONNX export: the export keeps the run's `calculator` fact, so `mwp solve`
turns the calculator on by default there too, and onnxruntime (also behind `--backend ct2`) writes the
same tokens as torch."""

import json

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, tiny_sets
from tinymodels import one_torch_thread

from mwp.cli import main as mwp

pytestmark = pytest.mark.slow  # trains a tiny model and exports it to ONNX

pytest.importorskip("onnxruntime")
pytest.importorskip("ctranslate2")

# Wrong annotations on purpose (see test_mwp_cli.py): `<<7+5=12>>` can only come from the calculator.
CALC_DATA = FIXTURES / "math_calc.jsonl"


def test_calculator_on_an_onnx_export_matches_torch(tmp_path):
    runner = CliRunner()
    run, export = tmp_path / "run", tmp_path / "export"
    settings = {
        "train.max_steps": 60,
        "train.lr": 1e-2,
        "train.warmup_steps": 5,
        "train.eval_every": 1000,
        "train.eval_gen_samples": 0,
        "train.threads": 1,
        "generate.max_new_tokens": 32,
    }
    with one_torch_thread():
        res = runner.invoke(
            mwp, ["train", "--data", str(CALC_DATA), "--out", str(run), "--calculator", *tiny_sets(**settings)]
        )
        assert res.exit_code == 0, res.output
        res = runner.invoke(mwp, ["export", "--model", str(run), "--out", str(export), "--ct2"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["calculator"] is True
        outs = {}
        for model, backend in ((run, "torch"), (export, "onnx"), (export, "ct2")):
            pred = tmp_path / f"{backend}.jsonl"
            res = runner.invoke(
                mwp,
                [
                    "solve",
                    "--data",
                    str(CALC_DATA),
                    "--model",
                    str(model),
                    "--backend",
                    backend,
                    "--json",
                    "--out",
                    str(pred),
                ],
            )
            assert res.exit_code == 0, res.output
            assert json.loads(res.stdout)["calculator"] is True
            outs[backend] = [json.loads(line)["generated"] for line in pred.read_text().splitlines()]
    assert outs["onnx"] == outs["torch"] == outs["ct2"]  # ct2: its export's onnxruntime model steps the calculator
    assert any("<<7+5=12>>" in text for text in outs["onnx"])
