"""petsum: Chinese PET/CT findings → impression, with AS-ES trained seq2seq models.

from petsum import Summarizer

summarizer = Summarizer.load()  # the shipped default model, or Summarizer.load("runs/pet")
for summary in summarizer.summarize([findings]):
    print(summary.impression)  # an InputError stands in for a text that cannot be summarized
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from petsum.summarize.summarizer import Summarizer, Summary
    from shared.textio import InputError

__all__ = ["InputError", "Summarizer", "Summary"]


def __getattr__(name: str) -> Any:
    """Loaded on first use, so that `import petsum` stays cheap for the CLI and its tests."""
    if name in ("Summarizer", "Summary"):
        from petsum.summarize import summarizer

        return getattr(summarizer, name)
    if name == "InputError":
        from shared.textio import InputError

        return InputError
    raise AttributeError(f"module 'petsum' has no attribute {name!r}")
