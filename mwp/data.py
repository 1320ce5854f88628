"""Loading math word problems: GSM8K JSONL, or any JSONL with `question` and a numeric `answer`.

A record's `answer` is either a GSM8K solution (steps, then `#### N`), which becomes a CoT target,
or one number (`42`, `"1,000"`, `"$3.50"`), which becomes just `The answer is N.` (other math
sets bring no reasoning to learn). Records are examples for the AS-ES core; each one's `group` is
its question text, so the seeded validation split (`shared.pipeline.split_examples`) never
depends on file order and a question repeated in the file stays on one side of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mwp.answers import normalize_number
from mwp.cot import ANNOTATION, prompt, stop_sentence, to_cot, to_equations
from shared.schema import Example
from shared.textio import InputError, read_jsonl_rows


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot be used (empty question, no numeric answer): `mwp solve` reports it
    in its output and goes on. The error never quotes the record's text."""

    id: str
    error: str


def _target(answer: object, calculator: bool, target: str = "cot") -> str:
    if isinstance(answer, str) and "####" in answer:
        if target == "equations" and ANNOTATION.search(answer):
            return to_equations(answer, calculator)
        return to_cot(answer, calculator)  # a solution without annotations has no equations: its steps
    number = normalize_number(answer)
    if number is None:
        raise ValueError("the answer is neither a '#### N' solution nor a number")
    return stop_sentence(number)


def question_error(question: object) -> str | None:
    """Why `question` cannot be solved, or None. A lone surrogate (`"\\ud800"` in JSON, or an
    undecodable byte in a command-line argument, which Python keeps as one) is not text the
    tokenizer can read."""
    if not isinstance(question, str):
        return "the question is not text"
    if not question.strip():
        return "the question is empty"
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:
        return "the question is not valid Unicode (a lone surrogate, or a byte that is not UTF-8)"
    return None


def _record(row: dict, n: int, calculator: bool, target_form: str = "cot") -> Example | BadRecord:
    rid = str(row.get("id", n))
    question = row["question"]
    if problem := question_error(question):
        return BadRecord(rid, problem)
    try:
        target = _target(row["answer"], calculator, target_form)
    except ValueError as e:
        return BadRecord(rid, str(e))
    # A variant (`mwp augment`) is grouped with its original, so the validation split holds both or neither.
    group = row["group"] if isinstance(row.get("group"), str) else question
    # A wrong solution of the student's (`mwp mistakes`), for EDIT's key-token weights (`train.key_weight`).
    contrast = row["contrast"] if isinstance(row.get("contrast"), str) and row["contrast"].strip() else None
    return Example(rid, prompt(question), target, group=" ".join(group.split()), contrast=contrast)


def read_records(
    path: str | Path, split: str = "test", calculator: bool = False, target: str = "cot"
) -> list[Example | BadRecord]:
    """Every record of a JSONL file, or of `{split}.jsonl` in a folder, in file order. A record
    without a `question` or `answer` field stops the load (InputError): the file is not a math set."""
    p = Path(path)
    if p.is_dir():
        p = p / f"{split}.jsonl"
    out: list[Example | BadRecord] = []
    for n, row in enumerate(read_jsonl_rows(p), 1):
        missing = [k for k in ("question", "answer") if k not in row]
        if missing:
            raise InputError(f"{p}: record {n} has no {' or '.join(repr(k) for k in missing)} field")
        out.append(_record(row, n, calculator, target))
    if not out:
        raise InputError(f"{p}: no problems")
    return out


def load_problems(
    path: str | Path, split: str = "train", calculator: bool = False, target: str = "cot"
) -> list[Example]:
    """Training problems: every record must be usable (the first bad one is an InputError).
    `target`: `cot` (the solution's steps) or `equations` (`mwp.cot.to_equations`)."""
    records = read_records(path, split, calculator, target)
    bad = next((r for r in records if isinstance(r, BadRecord)), None)
    if bad is not None:
        raise InputError(f"{path}: record {bad.id}: {bad.error}")
    return records  # type: ignore[return-value]
