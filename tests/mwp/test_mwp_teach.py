"""`mwp train --teacher DIR`: a small teacher trained here solves the training problems; the
student's targets are exactly the teacher's right solutions (checked against `mwp solve`'s verdicts
on the same problems), and a teacher that solves nothing is a one-line error."""

import json

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, tiny_sets
from tinymodels import one_torch_thread

from mwp.cli import main as mwp

pytestmark = pytest.mark.slow  # a teacher is trained

DATA = FIXTURES / "math_toy.jsonl"


def invoke(args):
    return CliRunner().invoke(mwp, [str(a) for a in args])


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def test_student_learns_the_teachers_right_solutions(tmp_path):
    settings = {"train.method": "direct", "train.lr": 1e-2, "generate.max_new_tokens": 48}
    teacher = tmp_path / "teacher"
    args = ["train", "--data", DATA, "--out", teacher, "--calculator", "--target", "equations"]
    res = invoke([*args, *tiny_sets(**settings, **{"train.max_steps": 150, "data.val_fraction": 0.01})])
    assert res.exit_code == 0, res.output
    pred = tmp_path / "pred.jsonl"
    assert invoke(["solve", "--data", DATA, "--model", teacher, "--out", pred]).exit_code in (0, 3)
    right = {r["generated"] for r in map(json.loads, pred.read_text().splitlines()) if r["correct"]}
    assert right, "the teacher memorized some of its 16 problems"

    student = tmp_path / "student"
    res = invoke(
        ["train", "--data", DATA, "--out", student, "--calculator", "--teacher", teacher,
         *tiny_sets(**settings, **{"train.max_steps": 4})]
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"demonstrations kept: {len(right)}" in res.output
    data = student / "data"
    targets = {json.loads(line)["target"] for f in data.glob("*.jsonl") for line in f.read_text().splitlines()}
    assert targets == right


def test_a_teacher_that_solves_nothing_is_an_error(tmp_path):
    teacher = tmp_path / "teacher"
    args = ["train", "--data", DATA, "--out", teacher, "--calculator", "--target", "equations"]
    assert invoke([*args, *tiny_sets(**{"train.max_steps": 1, "train.method": "direct"})]).exit_code == 0
    res = invoke(["train", "--data", DATA, "--out", tmp_path / "s", "--teacher", teacher, *tiny_sets()])
    assert res.exit_code != 0 and res.output.strip().splitlines()[-1].startswith("error:")
    assert "solved none" in res.output
