"""GSM8K-style math word problems as the AS-ES core sees them.

A solution becomes chain-of-thought text: calculator annotations `<<48/2=24>>` removed, one
step per sentence, and `The answer is N.` as the final sentence, which is the stop sign."""

from __future__ import annotations

import re

from shared.metrics import corpus_bleu
from shared.text import join_segments, split_subsentences

PROMPT_SUFFIX = " Let's think step by step"
_ANNOTATION = re.compile(r"<<[^<>]*>>")
_ANSWER = re.compile(r"The answer is\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?|-?\.\d+)")
_FINAL = re.compile(r"####\s*(.+?)\s*$")


def to_cot(solution: str) -> str:
    """GSM8K solution → `step. step. The answer is N.`"""
    lines = [line.strip() for line in _ANNOTATION.sub("", solution).splitlines() if line.strip()]
    steps, answer = [], None
    for line in lines:
        m = _FINAL.match(line)
        if m:
            answer = m.group(1).replace(",", "")
        else:
            steps.append(line if line[-1] in ".!?" else line + ".")
    if answer is None:
        raise ValueError("solution has no '#### N' line")
    return " ".join(steps + [f"The answer is {answer}."])


def normalize_number(text: str) -> str | None:
    """`1,000` → `1000`, `5.0` → `5`, `$3.50` → `3.5`; None when it is no number."""
    try:
        value = float(text.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None
    return str(int(value)) if value.is_integer() else repr(value)


class MwpAdapter:
    name = "mwp"
    bleu_tokenize = "13a"
    extra_tokens: list[str] = []

    def split_target(self, target: str) -> list[str]:
        return split_subsentences(target)

    def join(self, parts: list[str]) -> str:
        return join_segments(parts)

    def with_stop(self, last_segment: str) -> str:
        return last_segment  # the stop sign, `The answer is N.`, is already the last sentence

    def is_final(self, segment: str) -> bool:
        return "The answer is" in segment

    def strip_stop(self, segment: str) -> str:
        return segment.strip()

    def extract_answer(self, text: str) -> str | None:
        found = _ANSWER.findall(text)
        return normalize_number(found[-1]) if found else None  # never invent a value

    def score(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        got = [self.extract_answer(p) for p in predictions]
        gold = [self.extract_answer(r) for r in references]
        correct = sum(g is not None and p == g for p, g in zip(got, gold))
        n = len(predictions)
        return {
            "accuracy": 100 * correct / n if n else 0.0,
            "n": n,
            "correct": correct,
            "no_answer": sum(p is None for p in got),
            "bleu": corpus_bleu(predictions, references, self.bleu_tokenize),
        }
