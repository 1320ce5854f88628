"""The structure of a PET/CT report: normalized text, anatomical-region sections, impression items."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter

from petsum.text.lexicon import REGIONS, Lexicon, load_lexicon
from petsum.text.rules import CLOSING, ITEM_START

# Full-width ASCII (Ｆ, ２, ％, ．) → half-width, except the punctuation Chinese text keeps
# full-width: clinical content is unchanged, only its encoding of Latin letters and digits.
_KEEP_FULL = set("，。；：！？（）、")
_HALF = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if chr(cp) not in _KEEP_FULL}
_SECTION_BREAK = re.compile(r"[ \t]{3,}|\n+")
_LINE_ENDS = re.compile(r"\r\n?")


def clean_report(text: str) -> str:
    """Line endings unified and outer whitespace stripped. Inner runs of spaces are kept:
    cPET reports separate anatomical sections with them."""
    return _LINE_ENDS.sub("\n", text).strip()


# Characters a reader never sees: format characters (zero-width spaces and joiners, U+2060, the
# BOM, a soft hyphen, bidi marks) and controls other than tab and newline (a NUL in a CSV field).
# Inside `未\u200b见` one of them hides the negation from every rule and from the model, and a
# fully normal report reads as malignant, so they go before anything reads the text.
# Every other kind of space (NBSP, U+3000, thin spaces) is a plain space, and a line or paragraph
# separator a newline. The tables are built at the first call, where such characters live (the
# Basic and Supplementary Multilingual Planes and the tag block): a test checks that nothing
# elsewhere in Unicode is of these kinds.
_SCANNED = (range(0x20000), range(0xE0000, 0xE1000))


@functools.cache
def _folding() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in (cp for block in _SCANNED for cp in block):
        kind = unicodedata.category(chr(cp))
        if kind in ("Cf", "Cc") and chr(cp) not in "\t\n\r":
            table[cp] = None
        elif kind == "Zs" and cp != 0x20:
            table[cp] = " "
    table.update({0x2028: "\n", 0x2029: "\n"})
    return table


_CJK = "\u3400-\u9fff\uf900-\ufaff"
# One space between two Chinese characters is a typing slip (`未 见`) that would hide a negation.
# Two or more are structure: impressions separate their items with two, cPET its sections with
# three or more.
_STRAY_SPACE = re.compile(f"(?<=[{_CJK}])[ \t](?=[{_CJK}])")


def normalize(text: str) -> str:
    """What every rule and the model read: invisible characters removed, spaces of every kind
    folded to a plain space, a lone space between Chinese characters removed, full-width Latin letters and
    digits folded to ASCII, line endings unified, no trailing spaces on lines. Runs of three or
    more spaces stay: cPET separates sections with them. Idempotent, and linear in the text."""
    text = text.translate(_folding()).translate(_HALF)
    text = _STRAY_SPACE.sub("", clean_report(text))
    return "\n".join(line.rstrip(" \t") for line in text.split("\n"))


def section_region(section: str, lexicon: Lexicon | None = None) -> str | None:
    """The region a section is about: the one most of its organ terms belong to."""
    lex = lexicon or load_lexicon()
    votes = Counter(lex.region_of[lex.organ_of[t]] for t in lex.terms_in(section))
    for generic in ("lymph", "soft_tissue"):  # these occur in every region's text
        if len(votes) > 1:
            votes.pop(generic, None)
    if not votes:
        return None
    best = max(votes.values())
    return min((r for r, v in votes.items() if v == best), key=REGIONS.index)


def split_sections(report: str, lexicon: Lexicon | None = None) -> list[tuple[str, str]]:
    """(region, text) per anatomical section, in report order; sections of one region merge.

    Sections are separated by runs of spaces or newlines; a report without separators (or a
    section spanning several regions) is split into sentences, each assigned by its organs,
    and a sentence without organ terms stays with the one before it."""
    return sections_of_normalized(normalize(report), lexicon)


def sections_of_normalized(report: str, lexicon: Lexicon | None = None) -> list[tuple[str, str]]:
    """`split_sections` of a report already through `normalize` (the summarizer normalizes once)."""
    lex = lexicon or load_lexicon()
    parts = [p.strip() for p in _SECTION_BREAK.split(report) if p.strip()]
    if len(parts) <= 1:
        parts = [s for s in re.split(r"(?<=。)", parts[0] if parts else "") if s.strip()]
    out: list[tuple[str, list[str]]] = []  # parts collected in lists: long reports stay linear
    pending: list[str] = []  # text before the first organ term (the tracer preamble) joins the first section
    for part in parts:
        region = section_region(part, lex) or (out[-1][0] if out else None)
        if region is None:
            pending.append(part)
        elif out and out[-1][0] == region:
            out[-1][1].append(part)
        else:
            out.append((region, pending + [part]))
            pending = []
    if pending:  # no organ anywhere: one section of unknown region
        out.append((REGIONS[0] if not out else out[-1][0], pending))
    merged: dict[str, list[str]] = {}
    for region, texts in out:  # a region met twice (rare) becomes one instance
        merged.setdefault(region, []).extend(texts)
    return [(region, "".join(texts)) for region, texts in merged.items()]


def impression_items(impression: str) -> tuple[list[str], str | None]:
    """(numbered items without their numbers, closing line or None)."""
    text = normalize(impression)
    starts = [m.start() for m in ITEM_START.finditer(text)]
    chunks = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])] if starts else [text]
    head = text[: starts[0]].strip() if starts else ""
    items, closing = [], None
    if not starts:  # unnumbered impression: one item per sentence
        chunks = [s for s in re.split(r"(?<=。)\s*", text) if s.strip()]
    elif head:
        items.append(head.rstrip("：:"))
    for chunk in chunks:
        body = ITEM_START.sub("", chunk, count=1).strip()
        for line in [s.strip() for s in re.split(r"\s{2,}|\n", body) if s.strip()]:
            if CLOSING.match(line):
                closing = line
            else:
                items.append(line)
    return items, closing
