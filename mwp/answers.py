"""Numbers in math answers: reading them, comparing them, and finding a model's final answer.

Values are exact fractions, so `5.0` equals `5`, `1,000` equals `1000`, `.5` equals `1/2`, and
no float rounding ever makes two different answers equal. Each value has one canonical text
(`5`, `0.5`, `-1234.5`, or `1/3` for a value with no finite decimal), which is what predictions
files record and what accuracy compares.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

STOP_PHRASE = "The answer is"  # the stop sign: a segment with it is the last one
# Digits with optional thousands groups and decimals, or a bare decimal (`.5`).
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
# Sign and `$` in either order (`-$5`, `$-5`), then the number, then an optional `/denominator`.
_VALUE = rf"(-?)\s*\$?\s*(-?)\s*({_NUMBER})(?:\s*/\s*(\d+))?"
_AFTER_STOP = re.compile(rf"\s*:?\s*{_VALUE}", re.ASCII)
_WHOLE = re.compile(rf"\s*{_VALUE}\s*", re.ASCII)
_MAX_DIGITS = 64  # a longer "number" is noise (a model stuck writing digits), not an answer


def _value(m: re.Match) -> Fraction | None:
    neg_before, neg_after, number, denominator = m.groups()
    if len(number) > _MAX_DIGITS or denominator and (len(denominator) > _MAX_DIGITS or int(denominator) == 0):
        return None
    value = Fraction(number.replace(",", ""))
    if denominator:
        value /= int(denominator)
    return -value if bool(neg_before) != bool(neg_after) else value


def parse_number(value: object) -> Fraction | None:
    """A gold answer as a number: a JSON number, or text that is one number and nothing else
    (`42`, `1,000`, `$3.50`, `-3`, `.5`, `3/4`); None otherwise (booleans, NaN, `12 apples`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value)) if math.isfinite(value) else None  # repr: 0.1 is 1/10, not its binary double
    if isinstance(value, str):
        m = _WHOLE.fullmatch(value)
        return _value(m) if m else None
    return None


def canonical(value: Fraction) -> str:
    """`5`, `0.5`, `-1234.5`; `1/3` when the value has no finite decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    places = next((k for k in range(1, 40) if 10**k % value.denominator == 0), None)
    if places is None:
        return f"{value.numerator}/{value.denominator}"
    digits = str(abs(value.numerator) * (10**places // value.denominator)).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:].rstrip('0')}"


def normalize_number(value: object) -> str | None:
    """The canonical text of a gold answer, or None when it is no number."""
    number = parse_number(value)
    return None if number is None else canonical(number)


def extract_answer(text: str) -> str | None:
    """The number right after the LAST `The answer is` (canonical text), or None when there is
    none: an output without an extractable answer is wrong, never given a made-up value."""
    at = text.rfind(STOP_PHRASE)
    if at < 0:
        return None
    m = _AFTER_STOP.match(text, at + len(STOP_PHRASE))
    value = _value(m) if m else None
    return None if value is None else canonical(value)
