"""Loading PET/CT report → impression pairs and single reports."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from petsum.text.report import clean_report, impression_items
from shared.schema import Example
from shared.textio import InputError, open_text, read_csv_rows

# A model trained on fewer reports than this learns little beyond the house phrases: too few
# findings → impression pairs to see each region's normal and abnormal wording. The training CLI
# warns below it and trains anyway (a pilot run, a smoke test).
MIN_SENSIBLE_REPORTS = 500

# Why a training row was skipped, in the order the checks run: the first that applies counts.
SKIP_REASONS = ("malformed", "empty", "binary", "no_chinese", "duplicate_id", "no_items")
_REASON_WORDS = {
    "malformed": "malformed JSON",
    "empty": "empty",
    "binary": "binary",
    "no_chinese": "without Chinese",
    "duplicate_id": "duplicate id",
    "no_items": "without impression items",
}
_JSONL = {".jsonl", ".ndjson"}
# CJK unified ideographs: extension A, the basic block, compatibility ideographs, extensions B-H.
_CHINESE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U000323af]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_TEXT_KINDS = ("Cc", "Cn")  # controls, unassigned code points
# What reports are made of: printable ASCII, tab and line ends, CJK punctuation, the basic ideographs,
# full-width ASCII. None of it is a control or unassigned; only the rest is looked up, character by character.
_PLAIN_TEXT = re.compile("[\t\n\r\u0020-\u007e\u3000-\u303f\u4e00-\u9fff\uff01-\uff5e]+")
_MAX_NOT_TEXT = 0.10


def load_pairs(
    path: str | Path, question: str = "question", answer: str = "answer", id_column: str = "qid"
) -> list[Example]:
    """Rows with findings and impression; rows missing either are skipped, ids default to the row number."""
    rows = read_csv_rows(path, [question, answer])
    out = []
    for n, row in enumerate(rows, 1):
        q, a = clean_report(row.get(question) or ""), clean_report(row.get(answer) or "")
        if q and a:
            out.append(Example(str(row.get(id_column) or n), q, a))
    if not out:
        raise InputError(f"{path}: no rows with both {question} and {answer}")
    return out


def is_binary(text: str) -> bool:
    """Text that is mostly not text: it holds a NUL or a lone surrogate (never in a report, and not
    writable as UTF-8), or more than 10% of its characters are controls other than tab, newline
    and carriage return (Unicode category Cc), unassigned code points (Cn) or U+FFFD, the mark a
    lossy conversion leaves. A stray invisible character or one replaced byte keeps a report."""
    if "\x00" in text or _SURROGATE.search(text):
        return True
    rest = _PLAIN_TEXT.sub("", text)
    odd = sum(1 for ch in rest if ch == "\ufffd" or unicodedata.category(ch) in _NOT_TEXT_KINDS)
    return odd > _MAX_NOT_TEXT * len(text)


def load_training_pairs(
    path: str | Path, question: str = "question", answer: str = "answer", id_column: str = "qid"
) -> tuple[list[Example], dict[str, int]]:
    """The usable training pairs of a CSV (JSONL when the name ends in .jsonl or .ndjson: one
    object per line with the same keys), and how many rows were skipped for each reason.

    `question` holds the findings, `answer` the impression, `id_column` an optional id; a row
    without one (no such column, an empty value) gets its row number: the CSV data row counting
    from 1 after the header, the JSONL line. The encoding is detected as for every input
    (`shared.textio.open_text`: a byte order mark, UTF-8, GB18030/GBK, then detection); bytes the
    detected encoding cannot decode still stop the read with an InputError.

    A row is skipped for the first of these that applies, counted under its key (the counts hold
    every key of SKIP_REASONS, in this order, zeros included):

    - "malformed": a JSONL line that is not valid JSON (one holding a NUL is binary; CSV rows are
      never malformed: a broken CSV stops the read);
    - "empty": findings or impression empty once stripped, or missing (a JSONL line that is not an
      object, or whose field is absent or not a string);
    - "binary": the row holds a NUL character anywhere, or either field is mostly not text (see
      `is_binary`: a lone surrogate, or over 10% controls, unassigned code points or U+FFFD);
    - "no_chinese": findings or impression without a single CJK ideograph (an English or
      numbers-only row, a placeholder such as "N/A");
    - "duplicate_id": the id of a row already kept. The first usable row with an id is kept: a row
      skipped for a reason above does not claim its id;
    - "no_items": the impression yields no items (`impression_items`: a closing line only).

    Ids of kept rows are unique. If no row is usable this raises InputError with the counts.
    Neither the counts nor any message quote report text: only reasons, counts, row numbers."""
    counts = dict.fromkeys(SKIP_REASONS, 0)
    out: list[Example] = []
    kept: set[str] = set()
    for row in _training_rows(Path(path), question, answer, id_column):
        reason = row if isinstance(row, str) else _check(row, kept)
        if reason:
            counts[reason] += 1
            continue
        rid, q, a, _ = row
        out.append(Example(rid, clean_report(q), clean_report(a)))
        kept.add(rid)
    if not out:
        raise InputError(f"{path}: no usable training rows ({_count_words(counts) or 'the file has no rows'})")
    return out, counts


# (id, findings, impression, whether the row holds a NUL anywhere): a row as read, not yet checked.
_Row = tuple[str, str, str, bool]


def _check(row: _Row, kept: set[str]) -> str | None:
    rid, q, a, nul = row
    fq, fa = clean_report(q), clean_report(a)
    if not fq or not fa:
        return "empty"
    if nul or is_binary(q) or is_binary(a):
        return "binary"
    if not _CHINESE.search(fq) or not _CHINESE.search(fa):
        return "no_chinese"
    if rid in kept:
        return "duplicate_id"
    if not impression_items(fa)[0]:
        return "no_items"
    return None


def _training_rows(path: Path, question: str, answer: str, id_column: str) -> Iterator[_Row | str]:
    """Each row as read, or the reason a JSONL line cannot be one. An empty id is the row number."""
    if path.suffix.lower() in _JSONL:
        yield from _jsonl_rows(path, question, answer, id_column)
        return
    for n, row in enumerate(read_csv_rows(path, [question, answer], nul_rows=True), 1):
        nul = any("\x00" in v for v in row.values() if isinstance(v, str))
        yield (row.get(id_column) or "").strip() or str(n), row.get(question) or "", row.get(answer) or "", nul


def _jsonl_rows(path: Path, question: str, answer: str, id_column: str) -> Iterator[_Row | str]:
    """Lines are numbered from 1, blank lines included. Control characters inside strings are
    allowed (`strict=False`): a raw NUL there makes the row binary, not malformed."""
    with open_text(path, nul_lines=True) as f:
        n = 0
        while True:
            try:
                line = f.readline()
            except UnicodeDecodeError:
                raise InputError(f"{path}: not valid {f.encoding} after line {n}") from None
            if not line:
                return
            n += 1
            if not line.strip():
                continue
            try:
                row = json.loads(line, strict=False)
            except (json.JSONDecodeError, RecursionError):
                yield "binary" if "\x00" in line else "malformed"
                continue
            if not isinstance(row, dict) or not isinstance(q := row.get(question), str):
                yield "empty"
                continue
            if not isinstance(a := row.get(answer), str):
                yield "empty"
                continue
            rid = row.get(id_column)
            rid = str(rid).strip() if isinstance(rid, str | int) and not isinstance(rid, bool) else ""
            yield rid or str(n), q, a, "\x00" in line or "\x00" in rid


def _count_words(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {_REASON_WORDS.get(r, r.replace('_', ' '))}" for r, k in counts.items() if k)


def describe_skipped(counts: dict[str, int]) -> str:
    """One line for the log, e.g. `skipped 3 rows: 1 empty, 2 duplicate id`; "" when none was skipped."""
    total = sum(counts.values())
    if not total:
        return ""
    return f"skipped {total} row{'s' if total != 1 else ''}: {_count_words(counts)}"
