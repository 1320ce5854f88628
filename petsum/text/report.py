"""The structure of a PET/CT report: normalized text, anatomical-region sections, impression items."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter

from petsum.text.lexicon import REGIONS, Lexicon, load_lexicon
from petsum.text.rules import CLOSING, HEADER, HEADER_REGIONS, ITEM_START

# Full-width ASCII (Ｆ, ２, ％, ．) → half-width, except the punctuation Chinese text keeps
# full-width: clinical content is unchanged, only its encoding of Latin letters and digits.
_KEEP_FULL = set("，。；：！？（）、")
_HALF = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F) if chr(cp) not in _KEEP_FULL}
_SECTION_BREAK = re.compile(r"[ \t]{3,}|\n+")
_LINE_ENDS = re.compile(r"\r\n?")
# A section header (`胸部：`, `【胸部】`) where a section can start: at the start of the report, after a
# sentence's end or after a break. Other hospitals write one before each region, on its own line,
# at the start of a line, or inline in one paragraph (`…未见异常。胸部：右肺…`).
_HEADER_AT = re.compile(rf"(?<![^。；;\s]){HEADER.pattern}")


def clean_report(text: str) -> str:
    """Line endings unified and outer whitespace stripped. Inner runs of spaces are kept:
    cPET reports separate anatomical sections with them."""
    return _LINE_ENDS.sub("\n", text).strip()


# Characters a reader never sees: format characters (zero-width spaces and joiners, U+2060, the
# BOM, a soft hyphen, bidi marks), controls other than tab and newline (a NUL in a CSV field) and
# lone surrogates (a JSON `\ud800` escape: no character, and no UTF-8 encoding).
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
        if kind in ("Cf", "Cc", "Cs") and chr(cp) not in "\t\n\r":
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

    Sections are separated by runs of spaces or newlines, or start at a section header (`胸部：`,
    `【腹部】`, anywhere a sentence may start), which names their region and is left out of their
    text. A report with neither (one paragraph) is split into sentences, each assigned by its
    organs; a part without organ terms stays with the one before it."""
    return sections_of_normalized(normalize(report), lexicon)


def drop_headers(text: str) -> str:
    """`text` without the section headers in it: structure, never something a model reads."""
    return _HEADER_AT.sub("", text)


def header_section_region(body: str, named: str | None, lexicon: Lexicon | None = None) -> str | None:
    """The region of a section written under a header naming `named` (None for `其他：`): the
    header's, unless the section names no organ of that region and organs of another (a `胸部：`
    section about bones alone), where its organs decide as they do without a header."""
    lex = lexicon or load_lexicon()
    voted = section_region(body, lex)
    if named is None or voted is None or voted == named:
        return named or voted
    return named if named in lex.regions_in(body) else voted


def _parts(report: str, lex: Lexicon) -> list[tuple[str, str | None]]:
    """(text, region or None) of each part of a normalized report, in order: what
    `sections_of_normalized` assigns and merges. A part's region is known here only when a
    header names it; else its organs decide there."""
    headers = list(_HEADER_AT.finditer(report))
    if not headers:  # cPET: space runs or newlines, or one paragraph cut into sentences
        parts = [p.strip() for p in _SECTION_BREAK.split(report) if p.strip()]
        if len(parts) <= 1:
            return _paragraph_parts(parts[0] if parts else "", lex)
        return [(p, None) for p in parts]
    # Text before the first header (the tracer preamble) is read as a report without headers.
    out = [(p, None) for p in (q.strip() for q in _SECTION_BREAK.split(report[: headers[0].start()])) if p]
    for m, end in zip(headers, [h.start() for h in headers[1:]] + [len(report)]):
        named = HEADER_REGIONS[m.group("name")]
        body: list[str] = []
        for part in (p.strip() for p in _SECTION_BREAK.split(report[m.end() : end])):
            if not part:
                continue
            voted = section_region(part, lex)
            if body and voted not in (None, named, *_GENERIC) and named not in lex.regions_in(part):
                # a later section of another region with no header of its own (headers on some sections only)
                out.append(("".join(body), header_section_region("".join(body), named, lex) or named))
                body, named = [], None
                out.append((part, None))
                continue
            body.append(part)
        if body:
            joined = "".join(body)
            out.append((joined, header_section_region(joined, named, lex) or named))
    return out


_GENERIC = ("lymph", "soft_tissue")
WHOLE_BODY = 5  # regions besides the generic ones that make a paragraph a whole-body report


def _paragraph_parts(report: str, lex: Lexicon) -> list[tuple[str, str | None]]:
    """The sentences of a one-paragraph report, with the region of those whose organs alone do
    not decide it. In a whole-body paragraph (`WHOLE_BODY` regions or more) a sentence about
    lymph nodes or soft tissue alone (`腹壁软组织未见明显异常影像。`) is part of the region written
    before it, as in a report with sections. cPET writes its abdominal scans as one paragraph,
    with such sentences as sections of their own: those are read as they always were."""
    parts = [s for s in re.split(r"(?<=。)", report) if s.strip()]
    voted = [section_region(p, lex) for p in parts]
    if len(set(voted) - {None, *_GENERIC}) < WHOLE_BODY:
        return [(p, None) for p in parts]
    out: list[tuple[str, str | None]] = []
    last = None
    for part, region in zip(parts, voted):
        if region in _GENERIC and last is not None:
            region = last
        last = region or last
        out.append((part, region))
    return out


def sections_of_normalized(report: str, lexicon: Lexicon | None = None) -> list[tuple[str, str]]:
    """`split_sections` of a report already through `normalize` (the summarizer normalizes once)."""
    lex = lexicon or load_lexicon()
    out: list[tuple[str, list[str]]] = []  # parts collected in lists: long reports stay linear
    pending: list[str] = []  # text before the first organ term (the tracer preamble) joins the first section
    for part, named in _parts(report, lex):
        region = named or section_region(part, lex) or (out[-1][0] if out else None)
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
