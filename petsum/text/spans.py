"""Where a model input came from in its report: character spans into the normalized report text.

A finding (`petsum.text.findings`) is made of clauses of the report, with section headers, normal
clauses and a final `。` left out or added, and sometimes two sections' texts joined. So it is not
always one substring of the report: it is located as the fewest, earliest runs of it that occur in
the report in order, each run as long as it can be. The review page highlights these spans, and the
service's contract says each one holds text of its finding.
"""

from __future__ import annotations

import re

Span = tuple[int, int]

_FILLER = re.compile(r"[\s，。；;,、：:]*")  # what may lie between two runs of one finding and still join them
_MARKS = "，。；;,、：: \t\n"
MIN_RUN = 2  # a run of one character (`。`, `左`) is found anywhere: it places nothing, even at a finding's end


def _longest_run(text: str, piece: str, start: int) -> tuple[int, int]:
    """(where, length) of the longest prefix of `piece` found in `text` at or after `start`; length 0
    when none of two characters or more is. A prefix that occurs means every shorter one does:
    the length is found by bisection."""
    lo, hi, where = 0, len(piece), -1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        at = text.find(piece[:mid], start)
        if at >= 0:
            lo, where = mid, at
        else:
            hi = mid - 1
    return (where, lo) if lo >= MIN_RUN and where >= 0 else (-1, 0)


def _content(text: str) -> int:
    """Characters of `text` that are not punctuation or space: what placing a finding counts."""
    return sum(ch not in _MARKS for ch in text)


def _runs(text: str, piece: str, start: int) -> tuple[list[Span], int]:
    """(spans of `piece` in `text` from `start` on, in order; `_content` characters of it placed)."""
    spans: list[Span] = []
    rest, pos, placed = piece, start, 0
    while rest:
        at, length = _longest_run(text, rest, pos)
        if not length:  # a character the report does not have here (an added `。`), or a last one: skip it
            rest = rest[1:]
            continue
        spans.append((at, at + length))
        placed += _content(rest[:length])
        pos, rest = at + length, rest[length:]
    return spans, placed


def _joined(text: str, spans: list[Span]) -> list[Span]:
    """Spans with only punctuation or space between them as one; spans of punctuation alone dropped."""
    out: list[Span] = []
    for s, e in spans:
        while s < e and text[s] in _MARKS:
            s += 1
        while e > s and text[e - 1] in _MARKS:
            e -= 1
        if s >= e:
            continue
        if out and s >= out[-1][1] and _FILLER.fullmatch(text, out[-1][1], s):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def source_spans(text: str, finding: str, start: int = 0) -> list[Span]:
    """Spans `[start, end)` of `text` that hold `finding`, searched from `start` on (the end of the
    finding before it: findings come in report order), else from the report's start where that
    places more of it. Each span's text occurs in `finding`; [] when nothing of it is found."""
    finding = finding.strip()
    ahead, placed = _runs(text, finding, start)
    if start and placed < _content(finding):
        again, placed_again = _runs(text, finding, 0)
        if placed_again > placed:
            ahead = again
    return _joined(text, ahead)


def merged(spans: list[Span]) -> list[Span]:
    """Spans sorted, overlapping and touching ones as one."""
    out: list[Span] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out
