"""Plain records passed between the stages of the AS-ES pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Tag = Literal["ES", "AS"]
ES: Tag = "ES"
AS: Tag = "AS"
SEP = " | "  # between the question and the segments generated so far: `Q | seg_1 … seg_{i-1}`


@dataclass(frozen=True)
class Example:
    """One training instance: a question (report findings, math problem) and its full target."""

    id: str
    question: str
    target: str
    group: str | None = None  # examples of one group (a report's regions) stay on one side of the split
    tag: Tag | None = None  # a fixed tag for the whole target (PET's normal regions are ES), else segmented
    contrast: str | None = None  # a wrong answer to the question (EDIT, `shared.keysteps`): direct training only


@dataclass(frozen=True)
class Segment:
    tag: Tag | None  # None for a direct model, which has no notion of ES/AS
    text: str


@dataclass(frozen=True)
class Sample:
    """One seq2seq training row. `source` is `question + prefix`; they are kept apart so that
    truncation can keep the head of the question *and* the tail of the generated prefix."""

    id: str
    step: int
    tag: Tag | None
    question: str
    prefix: str
    target: str
    contrast: str | None = None  # a wrong answer: the target's tokens it lacks weigh more (`shared.keysteps`)

    @property
    def source(self) -> str:
        return self.question + self.prefix

    def to_json(self) -> dict:
        row = asdict(self)
        if self.contrast is None:
            del row["contrast"]  # rows without one read and write as they always have
        row["source"] = self.source
        return row

    @classmethod
    def from_json(cls, row: dict) -> "Sample":
        return cls(
            **{k: row[k] for k in ("id", "step", "tag", "question", "prefix", "target")}, contrast=row.get("contrast")
        )


@dataclass
class GenerationResult:
    segments: list[Segment] = field(default_factory=list)
    stopped: bool = False  # the stop sign was produced
    reason: str = ""  # "stop", "max_iters", "max_tokens", "empty", "repeat"
    generated_tokens: int = 0
    # How sure the decoding was of this answer, 0..1: under consensus decoding, the chosen answer's mean
    # ROUGE-L F1 against the other candidates (its agreement); under greedy decoding a stand-in, the
    # geometric mean of its tokens' probabilities; None where neither was measured (beam search, iterative methods).
    confidence: float | None = None
