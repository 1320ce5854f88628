"""Instruction-tuning on a teacher's demonstrations (Ranaldi and Freitas, *Aligning Large and Small
Language Models via Chain-of-Thought Reasoning*): a teacher model solves the training problems, and
the student learns from the teacher's solutions that reach the right answer instead of the gold
ones; the problems the teacher gets wrong are left out. The teacher is any local folder `mwp solve`
loads (a run, a checkpoint, an export, a Hugging Face seq2seq or decoder-only model).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from mwp.answers import extract_answer
from mwp.cot import strip_annotations

if TYPE_CHECKING:
    from mwp.solve import Solver
    from shared.schema import Example


def demonstrations(teacher: "Solver", examples: list["Example"], calculator: bool) -> tuple[list["Example"], Counter]:
    """The examples whose teacher solution is right, with that solution as the target (calculator
    annotations kept only for a `calculator` student), in order; and counts (never any text)."""
    from mwp.solve import solve_all

    kept: list[Example] = []
    for ex, sol in zip(examples, solve_all(teacher, [ex.question for ex in examples])):
        gold = extract_answer(strip_annotations(ex.target))
        if sol.answer is not None and sol.answer == gold:
            kept.append(replace(ex, target=sol.generated if calculator else sol.reasoning, contrast=None))
    return kept, Counter({"problems solved": len(examples), "demonstrations kept": len(kept)})
