"""`petsum order`: learn how a house writes its impressions (item order, closing line, comparison
opening line) from its reports, and store the fits in the model folder's `fitted.json`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from petsum.assemble import closing, opening, pointer
from petsum.assemble.order import fit as fit_pairs
from petsum.assemble.order import ordered_entries
from petsum.data.pairs import load_pairs
from petsum.summarize.folder import input_kind, write_fitted
from petsum.text.inputs import InputKind
from shared.modeling import read_manifest
from shared.schema import Example


def fit_house_style(
    data: str | list[Example],
    model_dir: str | Path,
    kind: str = "pointer",
    grams: int = 3000,
    rank: int = 32,
    epochs: int | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> str:
    """Fit the order, closing and opening line on the impressions of `data` (a CSV path, or the reports
    themselves); returns what was learned, in words."""
    model = Path(model_dir)
    source = input_kind(model, read_manifest(model))  # learn from the items this model writes
    reports = load_pairs(data) if isinstance(data, str) else data
    items, sources = ordered_entries(reports, source)  # a finding model's items also say what they were written from
    if kind == "pointer":
        learned, n_items = pointer.fit(items, sources, grams, epochs=epochs or 10, log=log)  # minutes: say how far
    else:
        learned, n_items = fit_pairs(items, grams, rank, epochs or 8, sources=sources)
    line, n_closed = closing.fit(reports)
    first, n_opened = opening.fit(reports)
    path = write_fitted(
        model,
        {
            "item_order": learned.to_json(),
            "closing_line": line.to_json() if line else None,
            "opening_line": first.to_json() if first else None,
        },
    )
    what = "finding targets" if source == InputKind.FINDING else "impression items"
    said = (
        f"the closing line from {n_closed} impressions"
        if line
        else "no closing line (no impression has one: the rule's line stays)"
    )
    said += (
        f", the opening line from {n_opened} that compare with an earlier exam"
        if first
        else ", no opening line (no impression opens with a comparison)"
    )
    return f"learned the item order ({kind}) from {n_items} {what}, {said}; written to {path}"
