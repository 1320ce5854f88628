"""`mwp train --calculator` and `mwp solve` end to end through click's CliRunner, on a tiny run
trained in a few seconds; and every way bad input ends in one `error:` line and exit 2 (or 3)."""

import json
import re

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, tiny_sets
from tinymodels import one_torch_thread

from mwp.calculator import calculate
from mwp.cli import main as mwp
from mwp.cot import ANNOTATION

pytestmark = pytest.mark.slow  # a tiny run trained once for the module

# The annotations in this fixture are wrong on purpose (7+5 = <<7+5=13>>13): a model that
# memorized them writes 13 itself, so `<<7+5=12>>` in the output shows the calculator at work.
CALC_DATA = FIXTURES / "math_calc.jsonl"
NUMERIC_DATA = FIXTURES / "math_numeric.jsonl"
CALL = re.compile(r"<<([^<>=]*)=")


def invoke(args, **kw):
    return CliRunner().invoke(mwp, [str(a) for a in args], **kw)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models on a busy machine: one torch thread is far faster (restored afterwards)."""
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def calc_run(tmp_path_factory, _one_thread):
    out = tmp_path_factory.mktemp("mwp") / "run"
    settings = {
        "train.max_steps": 60,
        "train.lr": 1e-2,
        "train.warmup_steps": 5,
        "train.eval_every": 1000,
        "train.eval_gen_samples": 0,
        "train.threads": 1,
        "generate.max_new_tokens": 32,
    }
    res = invoke(["train", "--data", CALC_DATA, "--out", out, "--calculator", *tiny_sets(**settings)])
    assert res.exit_code == 0, res.output
    return out


def _solve(run, tmp_path, *flags):
    pred = tmp_path / "pred.jsonl"
    res = invoke(["solve", "--data", CALC_DATA, "--model", run, "--json", "--out", pred, *flags])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), [json.loads(line) for line in pred.read_text().splitlines()]


def test_train_records_calculator_mode(calc_run):
    manifest = json.loads((calc_run / "ases.json").read_text())
    assert manifest["calculator"] is True and manifest["task"] == "mwp"
    rows = [json.loads(line) for line in (calc_run / "data" / "model_train.jsonl").read_text().splitlines()]
    assert any("<<" in r["target"] for r in rows)  # annotations kept in the targets


def test_solve_computes_annotations_by_default(calc_run, tmp_path):
    metrics, rows = _solve(calc_run, tmp_path)
    assert {"accuracy", "n", "correct", "no_answer", "bleu", "errors"} <= set(metrics)
    assert metrics["calculator"] is True and metrics["n"] == 5 and metrics["errors"] == 0
    calls = 0
    for row in rows:
        text = row["generated"]
        for m in CALL.finditer(text):
            value = calculate(m.group(1))
            if value is not None and m.end() < len(text):  # at the very end, the token limit cut it
                calls += 1
                assert text[m.end() :].startswith(value + ">>"), text
        assert not ANNOTATION.search(row["prediction"])  # the reasoning as read and scored has none
        assert set(row) == {"id", "prediction", "generated", "answer", "gold", "correct"}
        assert row["correct"] == (row["answer"] is not None and row["answer"] == row["gold"])
    assert calls > 0, [r["generated"] for r in rows]  # the model did open calculations
    assert any("<<7+5=12>>" in r["generated"] for r in rows)


def test_no_calculator_decodes_what_the_model_memorized(calc_run, tmp_path):
    metrics, rows = _solve(calc_run, tmp_path, "--no-calculator")
    assert metrics["calculator"] is False
    assert any("<<7+5=13>>" in r["generated"] for r in rows)


def test_solve_one_question(calc_run):
    question = "Tom has 7 marbles and wins 5 more. How many marbles does he have?"
    res = invoke(["solve", question, "--model", calc_run, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"reasoning", "answer", "generated", "calculator"} and out["calculator"] is True
    assert "<<7+5=12>>" in out["generated"] and "<<" not in out["reasoning"]
    res = invoke(["solve", question, "--model", calc_run])
    assert res.exit_code == 0 and res.stdout.splitlines()[0] == out["reasoning"]
    assert res.stdout.splitlines()[-1] == f"answer: {out['answer']}"


def test_limit(calc_run, tmp_path):
    res = invoke(
        ["solve", "--data", CALC_DATA, "--model", calc_run, "--limit", 2, "--json", "--out", tmp_path / "p.jsonl"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["n"] == 2
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 2


def test_unusable_records_are_error_rows_and_exit_3(calc_run, tmp_path):
    pred = tmp_path / "p.jsonl"
    res = invoke(["solve", "--data", NUMERIC_DATA, "--model", calc_run, "--json", "--out", pred])
    assert res.exit_code == 3, res.output
    metrics = json.loads(res.stdout)
    assert (metrics["errors"], metrics["n"]) == (2, 4)
    rows = {r["id"]: r for r in map(json.loads, pred.read_text().splitlines())}
    assert list(rows) == ["n1", "n2", "n3", "n4", "n5", "n6"]  # one line per record, in order
    assert rows["n3"] == {"id": "n3", "error": "the question is empty"}
    assert set(rows["n4"]) == {"id", "error"}
    assert [rows[k]["gold"] for k in ("n1", "n2", "n5", "n6")] == ["42", "20", "1250", "0.5"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "{tmp}/missing.jsonl"], "no such file"),
        (["--data", "{tmp}/bad.jsonl"], "line 2 is not valid JSON"),
        (["--data", "{tmp}/fields.jsonl"], "has no 'answer' field"),
        (["   "], "the question is empty"),
        (["A question?", "--data", "{tmp}/bad.jsonl"], "either a QUESTION or --data"),
        (["A question?", "--out", "{tmp}/p.jsonl"], "--limit and --out go with --data"),
        (["--data", str(CALC_DATA), "--out", "{tmp}/no/such/p.jsonl"], "its folder does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(calc_run, tmp_path, args, message):
    (tmp_path / "bad.jsonl").write_text('{"question": "Q?", "answer": 1}\n{"question": \n', encoding="utf-8")
    (tmp_path / "fields.jsonl").write_text('{"question": "Q?"}\n', encoding="utf-8")
    res = invoke(["solve", *[a.format(tmp=tmp_path) for a in args], "--model", calc_run])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error:") and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.output


def test_missing_model_is_one_line(tmp_path):
    res = invoke(["solve", "Q?", "--model", tmp_path / "nope"])
    assert res.exit_code == 2 and res.stderr.strip() == f"error: {tmp_path / 'nope'}: no such model folder"
    (tmp_path / "empty").mkdir()
    res = invoke(["solve", "Q?", "--model", tmp_path / "empty"])
    assert res.exit_code == 2 and res.stderr.startswith("error:") and len(res.stderr.strip().splitlines()) == 1


def test_train_refuses_unusable_records_and_a_mismatched_run(calc_run):
    res = invoke(["train", "--data", NUMERIC_DATA, "--out", calc_run.parent / "other", *tiny_sets()])
    assert res.exit_code == 2 and "record n3: the question is empty" in res.stderr
    res = invoke(["train", "--data", CALC_DATA, "--out", calc_run, *tiny_sets()])  # without --calculator
    assert res.exit_code == 2 and "trained with --calculator" in res.stderr


def test_train_help_documents_the_validation_split():
    res = invoke(["train", "--help"])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "data.val_fraction" in text and "data.split_seed" in text and "--calculator" in text


def test_solve_decodes_with_set_and_refuses_other_keys(calc_run, tmp_path):
    res = invoke(
        ["solve", "--data", CALC_DATA, "--model", calc_run, "--json", "--set", "generate.no_repeat_ngram_size=4"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == 5
    for bad in ("train.lr=1", "generate.no_repeat_ngram_size=-2", "generate.nope=1"):
        res = invoke(["solve", "--data", CALC_DATA, "--model", calc_run, "--set", bad])
        assert res.exit_code == 2 and res.output.startswith("error:") and len(res.output.splitlines()) == 1, res.output
