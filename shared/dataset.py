"""AS-ES datasets: from tagged segments to seq2seq rows, and JSONL in/out.

For a target segmented into s_1 … s_n, row i has source `Q | s_1 … s_{i-1}` and target s_i;
the last target carries the task's stop sign. A `direct` row maps Q to the whole target.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shared.schema import ES, SEP, Example, Sample, Segment

if TYPE_CHECKING:
    from shared.adapter import TaskAdapter


def prefix_text(adapter: "TaskAdapter", previous: list[str]) -> str:
    """What follows the question in the source: the separator and the segments so far."""
    return (SEP + adapter.join(previous)).rstrip()


def ases_samples(
    example: Example, segments: list[Segment], adapter: "TaskAdapter", lead_es: bool = False
) -> list[Sample]:
    """One row per segment. With `lead_es` (DSM), a target that opens with an AS segment gets an
    empty ES row first, so the ESM learns to yield at once and generation can always start with
    the ESM and alternate."""
    segs = list(segments)
    if lead_es and segs and segs[0].tag != ES:
        segs.insert(0, Segment(ES, ""))
    rows = []
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        rows.append(
            Sample(
                id=example.id,
                step=i,
                tag=seg.tag,
                question=example.question,
                prefix=prefix_text(adapter, [s.text for s in segs[:i]]),
                target=adapter.with_stop(seg.text) if last else seg.text,
            )
        )
    return rows


def direct_sample(example: Example, adapter: "TaskAdapter") -> Sample:
    """Q → whole target, written as the AS-ES rows would join it (same text, same spacing); an
    example's wrong answer (`contrast`) goes with it."""
    target = adapter.join(adapter.split_target(example.target))
    contrast = adapter.join(adapter.split_target(example.contrast)) if example.contrast else None
    return Sample(example.id, 0, None, example.question, "", target, contrast)


def build_datasets(
    examples: list[Example], segmented: list[list[Segment]], adapter: "TaskAdapter", method: str
) -> dict[str, list[Sample]]:
    """Training rows per model: {"model": …} for direct/usm, {"esm": …, "asm": …} for dsm."""
    if method == "direct":
        return {"model": [direct_sample(ex, adapter) for ex in examples]}
    rows = [
        r for ex, segs in zip(examples, segmented) for r in ases_samples(ex, segs, adapter, lead_es=method == "dsm")
    ]
    if method == "usm":
        return {"model": rows}
    return {"esm": [r for r in rows if r.tag == ES], "asm": [r for r in rows if r.tag != ES]}


def write_jsonl(rows: Iterable[Sample | dict], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            data = row.to_json() if isinstance(row, Sample) else row
            f.write(json.dumps(data, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_samples(path: Path) -> Iterator[Sample]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield Sample.from_json(json.loads(line))
