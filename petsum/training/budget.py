"""A recipe's budget: tokens (reproducible) or training seconds (`--time-budget 30m`), and each stage's share of it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shared.config import MAX_TIME_S
from shared.textio import InputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `30m`, `4h`, `1h30m` or a plain number of seconds; `InputError` otherwise."""
    s = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        seconds = float(s)
    elif s and _PART.sub("", s) == "":
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(s))
    else:
        raise InputError(f"--time-budget {text!r}: not a duration (e.g. 90s, 30m, 4h, 1h30m)")
    if not 0 < seconds <= MAX_TIME_S:
        raise InputError(f"--time-budget {text!r}: must be more than 0 and at most 30 days")
    return seconds


@dataclass(frozen=True)
class Budget:
    """Exactly one of `tokens` (real source + target tokens trained on) and `seconds` (training time)."""

    tokens: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.tokens is None) == (self.seconds is None):
            raise InputError("give one budget: --time-budget or --token-budget, not both")

    def share(self, part: float) -> "Budget":
        """`part` of this budget, in its own unit (at least one token or one second)."""
        if self.tokens is not None:
            return Budget(tokens=max(1, math.floor(self.tokens * part)))
        return Budget(seconds=max(1.0, self.seconds * part))  # type: ignore[operator]

    def at_least(self, tokens: int, seconds: float) -> bool:
        return self.tokens >= tokens if self.tokens is not None else self.seconds >= seconds  # type: ignore[operator]

    def describe(self) -> str:
        if self.tokens is not None:
            return f"{self.tokens / 1e6:.2f}M tokens" if self.tokens >= 10_000 else f"{self.tokens} tokens"
        return f"{self.seconds / 60:.1f} min of training" if self.seconds >= 60 else f"{self.seconds:.0f} s of training"  # type: ignore[operator]

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "seconds": self.seconds}
