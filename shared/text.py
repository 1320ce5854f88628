"""Sub-sentence splitting and joining, for Chinese clinical text and English math alike.

Pieces end *after* a break character. Breaks never fall inside a number (`2.5`, `1,000`,
`$3.50`, `1/2`), a value label (`SUVmax：3.6`) or `PET/CT`; numbered items (`1、`, `2.`)
start a new piece and stay attached to the text they number.
"""

from __future__ import annotations

import re

CN_BREAKS = set("，。；、！？")
COLONS = set("：:")
ASCII_BREAKS = set(".,;!?")
# An item number at the start of the text or after whitespace / a sentence end: `1、`, or
# `2.` / `3．` / `4)` directly followed by Chinese text (so English `is 72.` is no item).
_ITEM = re.compile(r"(?:(?<=^)|(?<=[\s。；;，：:]))\d{1,2}(?:、|[.．)）](?=[^\x00-\x7f]))")
_SPACE = " \u3000\t"


def _item_spans(text: str) -> dict[int, int]:
    """Start index → end index of each numbered-item marker."""
    return {m.start(): m.end() for m in _ITEM.finditer(text)}


def _is_break(text: str, i: int, items: dict[int, int]) -> bool:
    c = text[i]
    prev = text[i - 1] if i > 0 else ""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if c in CN_BREAKS:
        return True
    if c in COLONS:
        # `SUVmax：3.6` / `SUVmax: 3.6` label a value; any other colon ends a clause, and so
        # does one that introduces a numbered item (`印象：1、…`).
        after = text[i + 1 :].lstrip(_SPACE)
        return not after[:1].isdigit() or (len(text) - len(after)) in items
    if c in ASCII_BREAKS:
        if prev.isdigit() and nxt.isdigit():  # 2.5, 1,000
            return False
        return nxt == "" or nxt.isspace() or not nxt.isascii()
    return False


def split_subsentences(text: str) -> list[str]:
    """Split `text` into stripped, non-empty sub-sentences, punctuation kept on the piece it ends."""
    items = _item_spans(text)
    pieces: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        if i in items:
            if text[start:i].strip():
                pieces.append(text[start:i])
                start = i
            i = items[i]  # never break inside the marker itself
            continue
        if _is_break(text, i, items):
            pieces.append(text[start : i + 1])
            start = i + 1
        i += 1
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def join_with_spans(parts: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join pieces back into text, with each piece's (start, end) in the result.

    A space goes only between two ASCII characters (English words), none in Chinese, so
    `join(split(t))` equals `t` up to whitespace. An empty piece gets an empty span."""
    out = ""
    spans = []
    for part in parts:
        part = part.strip()
        if part and out and out[-1].isascii() and part[0].isascii():
            out += " "
        spans.append((len(out), len(out) + len(part)))
        out += part
    return out, spans


def join_segments(parts: list[str]) -> str:
    return join_with_spans(parts)[0]
