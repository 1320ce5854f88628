"""The contract between the AS-ES core and a task (PET summaries, math word problems)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from shared.text import join_segments, split_subsentences


@runtime_checkable
class TaskAdapter(Protocol):
    """What the core needs to know about a task, and nothing more: how targets are cut into
    segments and joined again, how the last one carries the stop sign, and how BLEU tokenizes the
    task's language. `petsum` and `mwp` each implement one; scoring a task's answers is the task's
    own business (`petsum.evaluation`, `mwp.solve`)."""

    name: str
    bleu_tokenize: str  # sacrebleu tokenizer for this language: "zh" or "13a"
    extra_tokens: list[str]  # tokens the tokenizer must keep whole (e.g. a stop token)

    def split_target(self, target: str) -> list[str]:
        """Sub-sentences of a target, in order."""
        ...

    def join(self, parts: list[str]) -> str:
        """Inverse of `split_target`, up to whitespace."""
        ...

    def with_stop(self, last_segment: str) -> str:
        """The last segment of a target as the model must learn to write it (stop sign included)."""
        ...

    def is_final(self, segment: str) -> bool:
        """Whether a generated segment carries the stop sign."""
        ...

    def strip_stop(self, segment: str) -> str:
        """A final segment as shown to the user."""
        ...


class StopTokenAdapter:
    """A minimal adapter whose last segment ends with an explicit stop token.

    Used by the core's tests and as a building block for text tasks without a natural stop."""

    def __init__(self, name: str = "text", stop: str = "<STOP>", bleu_tokenize: str = "13a") -> None:
        self.name = name
        self.stop = stop
        self.bleu_tokenize = bleu_tokenize
        self.extra_tokens = [stop]

    def split_target(self, target: str) -> list[str]:
        return split_subsentences(target)

    def join(self, parts: list[str]) -> str:
        return join_segments(parts)

    def with_stop(self, last_segment: str) -> str:
        return last_segment + self.stop

    def is_final(self, segment: str) -> bool:
        return self.stop in segment

    def strip_stop(self, segment: str) -> str:
        # Anything after the stop sign is noise the model wrote past its end.
        return segment.split(self.stop, 1)[0].strip()
