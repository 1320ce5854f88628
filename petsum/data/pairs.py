"""Loading PET/CT report → impression pairs and single reports."""

from __future__ import annotations

from pathlib import Path

from petsum.text.report import clean_report
from shared.schema import Example
from shared.textio import InputError, read_csv_rows


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
