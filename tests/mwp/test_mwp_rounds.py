"""Tailored multi-round learning at toy scale, through the CLI: augment a handful of problems,
train a tiny run, let `mwp mistakes` write the next round's data from its own mistakes (checked
against `mwp solve`'s verdicts on the same problems), and train the next round from the last
round's weights."""

import json
import re

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, tiny_sets
from tinymodels import one_torch_thread

from mwp.calculator import calculate
from mwp.cli import main as mwp
from mwp.rounds import group_of

pytestmark = pytest.mark.slow  # two tiny runs


def invoke(args):
    res = CliRunner().invoke(mwp, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def test_mistakes_steer_the_next_round(tmp_path):
    aug = tmp_path / "aug.jsonl"
    invoke(["augment", "--data", FIXTURES / "math_toy.jsonl", "--out", aug, "--variants", "3"])
    rows = [json.loads(line) for line in aug.read_text().splitlines()]
    assert any("variant_of" in r for r in rows)
    settings = {"train.method": "direct", "train.max_steps": 80, "train.lr": 1e-2, "generate.max_new_tokens": 24}
    first = tmp_path / "r1"
    invoke(["train", "--data", aug, "--out", first, "--calculator", "--target", "equations", *tiny_sets(**settings)])

    nxt = tmp_path / "r2.jsonl"
    res = invoke(["mistakes", "--model", first, "--data", aug, "--out", nxt])
    kept = [json.loads(line) for line in nxt.read_text().splitlines()]

    originals = tmp_path / "originals.jsonl"
    originals.write_text("".join(json.dumps(r) + "\n" for r in rows if "variant_of" not in r))
    pred = tmp_path / "pred.jsonl"
    invoke(["solve", "--data", originals, "--model", first, "--out", pred])
    solved_rows = [json.loads(line) for line in pred.read_text().splitlines()]
    verdicts = [r["correct"] for r in solved_rows]
    # Equation chains decode with the calculator: every closed annotation holds its computed value.
    calls = [m for r in solved_rows for m in re.finditer(r"<<([^<>=]*)=([^<>]*)>>", r["generated"])]
    assert calls and all(calculate(m.group(1)) in (m.group(2), None) for m in calls)
    wrong = {group_of(r) for r, ok in zip((r for r in rows if "variant_of" not in r), verdicts) if not ok}
    expected = [r for r in rows if group_of(r) in wrong or "variant_of" not in r]  # in order, none lost
    assert [{k: v for k, v in r.items() if k != "contrast"} for r in kept] == expected
    by_question = {json.loads(line)["id"]: json.loads(line) for line in pred.read_text().splitlines()}
    solved = dict(zip((r["question"] for r in rows if "variant_of" not in r), by_question.values()))
    for r in kept:  # the student's own wrong solution rides with each wrong original, for EDIT
        if "contrast" in r:
            assert "variant_of" not in r and r["contrast"] == solved[r["question"]]["generated"]
            assert not solved[r["question"]]["correct"]
    assert any("contrast" in r for r in kept), [r["generated"] for r in solved.values()]
    assert f"problems wrong: {len(wrong)}" in res.output and f"rows written: {len(kept)}" in res.output
    assert wrong, "an 80-step toy run gets some wrong: the round has mistakes to steer by"

    second = {"model.pretrained": first / "model" / "last", "train.key_weight": 3}  # EDIT's weights too
    invoke(["train", "--data", nxt, "--out", tmp_path / "r2", "--calculator", "--target", "equations",
            *tiny_sets(**settings, **second)])  # fmt: skip
    assert (tmp_path / "r2" / "model" / "last" / "model.safetensors").is_file()
    rows2 = [json.loads(line) for line in (tmp_path / "r2" / "data" / "model_train.jsonl").read_text().splitlines()]
    assert any(r.get("contrast") for r in rows2)


def test_a_test_set_is_refused(tmp_path):
    test = tmp_path / "test.jsonl"
    test.write_text('{"question": "q", "answer": "#### 1"}\n')
    res = CliRunner().invoke(mwp, ["mistakes", "--data", str(test), "--out", str(tmp_path / "o.jsonl")])
    assert res.exit_code != 0 and res.output.startswith("error:") and "test set" in res.output
