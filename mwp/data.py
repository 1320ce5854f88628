"""Loading math word problems: GSM8K JSONL, or any JSONL with `question` and a numeric `answer`."""

from __future__ import annotations

from pathlib import Path

from mwp.adapter import PROMPT_SUFFIX, normalize_number, to_cot
from shared.schema import Example
from shared.textio import InputError, read_jsonl_rows


def _target(answer: object, n: int, path: Path) -> str:
    text = str(answer)
    if "####" in text:
        return to_cot(text)
    number = normalize_number(text)
    if number is None:
        raise InputError(f"{path}: line {n} has no '#### N' solution and no numeric answer")
    return f"The answer is {number}."


def load_problems(path: str | Path, split: str = "train") -> list[Example]:
    """A JSONL file, or a folder holding `{split}.jsonl`."""
    p = Path(path)
    if p.is_dir():
        p = p / f"{split}.jsonl"
    out = []
    for n, row in enumerate(read_jsonl_rows(p), 1):
        if not str(row.get("question", "")).strip() or "answer" not in row:
            raise InputError(f"{p}: line {n} needs 'question' and 'answer'")
        out.append(Example(str(row.get("id", n)), str(row["question"]).strip() + PROMPT_SUFFIX, _target(row["answer"], n, p)))
    if not out:
        raise InputError(f"{p}: no problems")
    return out
