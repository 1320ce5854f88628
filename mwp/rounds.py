"""Tailored multi-round learning (Wang et al., *Democratizing Reasoning Ability*, 2310.13332),
with GSM8K's gold solutions as the teacher, since no LLM is reachable: after a round, the student
solves its own training problems, and its mistakes steer the next round's data.

The next round's data (`mwp mistakes`) holds every problem the student got wrong together with all
of its `mwp augment` variants (the same reasoning with other numbers: more practice exactly where
it failed), and every problem it solved once, without variants, so that it is not forgotten. A
wrong original also carries the student's own solution as `contrast`, which EDIT's key-token
weights use (`train.key_weight`, `shared.keysteps`); with the weight at 1 it is ignored. Only
the originals are solved; a variant shares its original's verdict (`group`). The next round trains
from the last one's weights (`mwp train --set model.pretrained=RUN/model/last`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from mwp.cot import final_answer, prompt

if TYPE_CHECKING:
    from mwp.solve import Solver


def group_of(row: dict) -> str:
    """The problem a row belongs to: its original's question (`mwp augment` writes it as `group`)."""
    return str(row.get("group") or row["question"])


def next_round(solver: "Solver", rows: list[dict]) -> tuple[list[dict], Counter]:
    """The next round's rows, in the input's order, and counts (never any text). An original that
    the student answers wrong, or not at all, keeps all its rows; one it answers right keeps itself."""
    from mwp.solve import solve_all

    originals = [r for r in rows if "variant_of" not in r]
    solutions = solve_all(solver, [prompt(str(r["question"])) for r in originals])
    missed = {
        id(r): s.generated
        for r, s in zip(originals, solutions)
        if s.answer is None or s.answer != final_answer(r["answer"])
    }
    wrong = {group_of(r) for r in originals if id(r) in missed}
    # A wrong original carries the student's solution as `contrast`: EDIT's key tokens (`train.key_weight`).
    kept = [
        {**r, "contrast": missed[id(r)]} if missed.get(id(r)) else r
        for r in rows
        if group_of(r) in wrong or "variant_of" not in r
    ]
    counts = Counter(
        {
            "problems solved": len(originals),
            "problems wrong": len(wrong),
            "rows written": len(kept),
            "variants written": sum("variant_of" in r for r in kept),
        }
    )
    return kept, counts


def check_paths(data: str | Path, out: str | Path) -> None:
    """Mistakes in the paths, caught before the model loads: a test set as data, a non-empty --out."""
    from shared.textio import InputError

    if Path(data).name.startswith("test"):
        raise InputError(f"{data}: a round's data comes from training problems, never a test set")
    if Path(out).exists() and Path(out).stat().st_size:
        raise InputError(f"{out} exists and is not empty: choose another --out")


def next_round_file(solver: "Solver", data: str | Path, out: str | Path) -> Counter:
    """`next_round` from one JSONL file (`mwp augment`'s output, or any GSM8K training file) to another."""
    from shared.textio import InputError, read_jsonl_rows

    check_paths(data, out)
    rows = list(read_jsonl_rows(Path(data)))
    if not rows or any(not isinstance(r.get("question"), str) or "answer" not in r for r in rows):
        raise InputError(f"{data}: every record needs a question and an answer")
    kept, counts = next_round(solver, rows)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with Path(out).open("w", encoding="utf-8") as f:
        for row in kept:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return counts
