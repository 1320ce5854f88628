"""GSM8K solutions as chain-of-thought targets, and questions as the model's prompts.

A GSM8K solution is one step per line, with calculator annotations (`48/2 = <<48/2=24>>24`) and
a last line `#### 24`. Its CoT target is the steps as sentences, then `The answer is 24.`, the
stop sign (Xi et al. follow the CoT format of Wei et al.: a step per sentence, the answer last).
Annotations are removed, except in calculator mode, where the model learns to write them so that
decoding can compute them (`mwp.calc_decoding`).
"""

from __future__ import annotations

import re

from mwp.answers import STOP_PHRASE, normalize_number

PROMPT_SUFFIX = " Let's think step by step"  # the paper's zero-shot CoT trigger, appended to every question
ANNOTATION = re.compile(r"<<[^<>]*>>")
_FINAL = "####"


def prompt(question: str) -> str:
    """The model's input: the question on one line (GSM8K has double spaces), then the trigger."""
    return " ".join(question.split()) + PROMPT_SUFFIX


def strip_annotations(text: str) -> str:
    """`= $<<9*2=18>>18` → `= $18`: the text a reader (and BLEU) sees."""
    return ANNOTATION.sub("", text)


def stop_sentence(answer: str) -> str:
    return f"{STOP_PHRASE} {answer}."


def _sentence(line: str) -> str:
    """A solution line as one step: single spaces, ending in a full stop. The stop phrase is
    lower-cased inside steps: the model must only ever write it to finish."""
    line = " ".join(line.split()).rstrip(",;: ").replace(STOP_PHRASE, STOP_PHRASE.lower())
    if not line or line.endswith((".", "!", "?")):
        return line  # "" for a blank line (or one of only punctuation): no step
    return line + "."


def _body_and_answer(solution: str) -> tuple[str, str]:
    """(the steps, the canonical final number) of a GSM8K solution; ValueError without `#### N`."""
    body, sep, final = solution.rpartition(_FINAL)
    if not sep:
        raise ValueError("solution has no '#### N' line")
    answer = normalize_number(final.strip())
    if answer is None:
        raise ValueError("the '####' line holds no number")
    return body, answer


def final_answer(answer: object) -> str | None:
    """The canonical final number of a record's `answer`: a GSM8K solution's `#### N`, or the
    number it is; None when it has neither."""
    if isinstance(answer, str) and _FINAL in answer:
        try:
            return _body_and_answer(answer)[1]
        except ValueError:
            return None
    return normalize_number(answer)


def to_cot(solution: str, calculator: bool = False) -> str:
    """GSM8K solution → `step. step. The answer is N.` (annotations kept with `calculator`).
    ValueError when there is no `#### N` with a number."""
    body, answer = _body_and_answer(solution)
    if not calculator:
        body = strip_annotations(body)
    steps = [step for step in map(_sentence, body.splitlines()) if step]
    return " ".join([*steps, stop_sentence(answer)])


TARGETS = ("cot", "equations")  # `mwp train --target`: what a solution is taught as


def to_equations(solution: str, calculator: bool = False) -> str:
    """GSM8K solution → its steps' equations alone, then the stop sentence: `<<48/2=24>>.
    <<48+24=72>>. The answer is 72.` with `calculator` (the model writes `<<48/2=`, the calculator
    the rest), `48/2=24. 48+24=72. The answer is 72.` without. A short target a small model can
    learn: the prose around the equations is most of a CoT's tokens and none of its arithmetic.
    ValueError when there is no `#### N` with a number or no annotation."""
    body, answer = _body_and_answer(solution)
    steps = [m.group(0) if calculator else m.group(0)[2:-2] for m in ANNOTATION.finditer(body)]
    if not steps:
        raise ValueError("the solution has no <<expr=result>> annotation to make equations of")
    return " ".join([*(f"{step}." for step in steps), stop_sentence(answer)])
