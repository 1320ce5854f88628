"""Augmentation from GSM8K's annotations (`mwp.augment`): other numbers, every step recomputed."""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction

import pytest
from click.testing import CliRunner

from mwp.augment import augment, augment_file, masked, read_program, reevaluates, variant
from mwp.calculator import evaluate
from mwp.cli import main as mwp

CLIPS = {
    "id": "clips",
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
}
WAGE = {
    "id": "wage",
    "question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?",
    "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = "
    "$<<0.2*50=10>>10.\n#### 10",
}
_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")


def numbers(text: str) -> list[Fraction]:
    return [Fraction(t.replace(",", "")) for t in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", text)]


def test_variants_recompute_every_step_and_the_answer():
    out = augment([CLIPS, WAGE], variants=5, seed=3)
    variants = [r for r in out.rows if "variant_of" in r]
    assert out.rows[0] is CLIPS and out.counts["problems augmented"] == 2
    assert len(variants) == out.counts["variants written"] >= 5
    assert {r["variant_of"] for r in variants} == {"clips", "wage"}
    for row in variants:
        assert reevaluates(row["answer"])
        steps = [evaluate(m.group(1)) for m in _ANNOTATION.finditer(row["answer"])]
        final = Fraction(row["answer"].split("####")[1].strip())
        if row["variant_of"] == "clips":  # April's n, May's n/2, both together 3n/2
            n = numbers(row["question"])[0]
            assert steps == [n / 2, n + n / 2] and final == n * 3 / 2 and (n / 2).denominator == 1
        else:  # wage w an hour for m minutes: w/60 a minute, w*m/60 in all, a whole number as in the original
            w, m = numbers(row["question"])[:2]
            assert steps == [w / 60, w / 60 * m] and final == w * m / 60 and final.denominator == 1
        assert all(s > 0 for s in steps)


def test_question_values_stay_of_their_kind_and_near_the_original():
    for row in (r for r in augment([CLIPS], variants=20, seed=1).rows if "variant_of" in r):
        n = numbers(row["question"])[0]
        assert n.denominator == 1 and 24 <= n <= 96 and n != 48  # an integer within a factor of two


def test_variants_are_reproducible_by_seed():
    assert augment([CLIPS, WAGE], 3, seed=7).rows == augment([CLIPS, WAGE], 3, seed=7).rows
    assert augment([CLIPS, WAGE], 3, seed=7).rows != augment([CLIPS, WAGE], 3, seed=8).rows


def test_a_draw_that_breaks_a_step_is_rejected_not_written():
    """`x/1000` is whole only at multiples of 1000: most draws make it a fraction, and those are
    rejected; whatever is written is whole, and re-evaluates."""
    hard = {
        "question": "A farm sells 3000 grams of honey. How many kilograms is that?",
        "answer": "That is 3000/1000 = <<3000/1000=3>>3 kilograms.\n#### 3",
    }
    program, _ = read_program(hard["question"], hard["answer"])
    assert program is not None
    got = [variant(program, random.Random(seed)) for seed in range(20)]
    assert any(g is None for g in got)
    for g in (g for g in got if g is not None):
        assert Fraction(g[1].split("####")[1].strip()).denominator == 1 and reevaluates(g[1])
    assert augment([hard], 5).counts["variants rejected"] >= 1


def test_reevaluates_catches_a_wrong_step():
    assert reevaluates(CLIPS["answer"])
    assert not reevaluates(CLIPS["answer"].replace("<<48+24=72>>", "<<48+24=73>>"))
    assert not reevaluates("He has 5 apples.\n#### 5")  # no annotation to check


@pytest.mark.parametrize(
    ("question", "answer", "why"),
    [
        (  # a step's result equal to a question number: the rewrite could not tell them apart
            "Tom has 4 apples and buys 2 pears twice.",
            "He buys 2*2 = <<2*2=4>>4 pears.\nHe has 4+4 = <<4+4=8>>8 fruits.\n#### 8",
            "two values that are equal",
        ),
        (
            "A box holds 4 pens.",
            "That is 4*2 = <<4*2=8>>8.\n#### 9",
            "a final answer that is not the last step's result",
        ),
        ("A box holds 4 pens.", "That is 4*2 = <<4*2=9>>9.\n#### 9", "a step that does not compute its stated result"),
        ("A box holds 4 pens.", "That is 8.\n#### 8", "no annotations"),
        (
            "It costs 1,000 or 1000 dollars.",
            "Half is <<1000/2=500>>500.\n#### 500",
            "a question number written several",
        ),
    ],
)
def test_problems_that_do_not_read_as_a_program_are_skipped_with_a_reason(question, answer, why):
    program, reason = read_program(question, answer)
    assert program is None and reason.startswith(why)


def test_augment_file_refuses_a_test_set_and_holds_test_questions_out(tmp_path):
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    twin = {**CLIPS, "question": CLIPS["question"].replace("48", "60")}  # a test problem: the same with 60
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in (CLIPS, WAGE)) + "\n", encoding="utf-8")
    (folder / "test.jsonl").write_text(json.dumps(twin) + "\n", encoding="utf-8")
    from shared.textio import InputError

    with pytest.raises(InputError, match="never reads a test set"):
        augment_file(folder / "test.jsonl", tmp_path / "x.jsonl", 2)
    counts = augment_file(folder, tmp_path / "aug.jsonl", 4)
    rows = [json.loads(line) for line in (tmp_path / "aug.jsonl").read_text(encoding="utf-8").splitlines()]
    assert counts["problem skipped: a test question with other numbers"] == 1  # CLIPS: no variant could leak
    assert {r.get("variant_of") for r in rows} == {None, "wage"}
    test_masks = {masked(twin["question"])}
    assert not any(masked(r["question"]) in test_masks for r in rows if "variant_of" in r)


def test_mwp_augment_command(tmp_path):
    src = tmp_path / "train.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in (CLIPS, WAGE)) + "\n", encoding="utf-8")
    out = tmp_path / "aug.jsonl"
    res = CliRunner().invoke(mwp, ["augment", "--data", str(src), "--out", str(out), "--variants", "2"])
    assert res.exit_code == 0, res.output
    assert "variants written: 4" in res.output
    again = CliRunner().invoke(mwp, ["augment", "--data", str(src), "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output


def test_the_equations_target_keeps_each_step_for_the_calculator_and_falls_back_to_the_steps():
    from mwp.cot import to_equations

    assert to_equations(CLIPS["answer"], calculator=True) == "<<48/2=24>>. <<48+24=72>>. The answer is 72."
    assert to_equations(CLIPS["answer"]) == "48/2=24. 48+24=72. The answer is 72."
    with pytest.raises(ValueError, match="annotation"):
        to_equations("He has 5 apples.\n#### 5")


def test_variants_share_their_originals_group_and_load_as_equations(tmp_path):
    from mwp.data import load_problems

    plain = {"question": "Tom has 5 apples. How many?", "answer": "He has 5 apples.\n#### 5"}
    out = augment([CLIPS, plain], variants=2)
    path = tmp_path / "aug.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in out.rows) + "\n", encoding="utf-8")
    examples = load_problems(path, calculator=True, target="equations")
    clips = [e for e in examples if e.id.startswith("clips")]
    assert len(clips) == 3 and len({e.group for e in clips}) == 1  # the split keeps them together
    assert all(e.target.startswith("<<") for e in clips)
    assert examples[-1].target == "He has 5 apples. The answer is 5."  # no annotation: its steps
