"""A learned order for the impression's items: where radiologists put an item, from its words.

The model writes one item per finding, and the assembler has to put them in order. Radiologists
lead with the disease the scan is for, but the rest of their order is a habit of the house that no
short rule captures, and ROUGE-L rewards it: the shipped model's test items, put in the
reference's order, score ROUGE-L 56.7 instead of 47.2 (README, "What ROUGE-L misses"). `fit`
learns the habit from training reports: ridge regression from an item's character uni- and
bigrams and its `suspicion` rank to its relative position in its impression (0 first, 1 last).
The assembler sorts by the predicted position.

The items it learns from are the texts the model was trained to write (`ordered_items`): for a
model of finding instances, each finding's target (`petsum.findings`) placed where its first
piece stands in the impression, rather than the impression's own numbered items, which often
list several findings at once. On the shipped model that choice is worth ROUGE-L +0.6 on
validation and +0.45 on test over fitting on numbered items (`benchmarks/item_order.py`).

The fit lives in the model's `ases.json` (`"item_order"`), so it travels with the model into an
ONNX export; `petsum order` writes it there.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from petsum.assemble import suspicion
from petsum.metrics import ITEM_NUMBER

if TYPE_CHECKING:
    from shared.schema import Example

N_RANKS = 3  # suspicion ranks: malignancy, raised uptake, the rest


def reference_items(text: str) -> list[str]:
    """A written impression's numbered items; the whole text when it numbers none."""
    return [p.strip() for p in ITEM_NUMBER.split(text) if p.strip()]


def finding_items(report: Example) -> list[str]:
    """The targets of a report's finding instances (`petsum.instances.finding_instances`) in
    the order of the impression: each where its first piece stands."""
    from petsum.findings import align_findings, finding_target, findings, pieces
    from petsum.report import impression_items, split_sections

    units = [f for _, text in split_sections(report.question) for f in findings(text)]
    items, _closing = impression_items(report.target)
    where = {p: k for k, p in reversed(list(enumerate(p for item in items for p in pieces(item))))}  # first place
    aligned, _dropped = align_findings(units, items)
    placed = sorted((min(where[p] for p in found), finding_target(found)) for found in aligned if found)
    return [text for _, text in placed]


def ordered_items(reports: list[Example], source: str = "region") -> list[list[str]]:
    """Per report, the items a model of `source` instances writes, in the order its impression
    has them: finding targets for `finding`, the numbered items otherwise."""
    return [finding_items(r) if source == "finding" else reference_items(r.target) for r in reports]


def grams(text: str) -> set[str]:
    return {text[i : i + n] for n in (1, 2) for i in range(len(text) - n + 1)}


@dataclass(frozen=True)
class ItemOrder:
    weights: dict[str, float]  # n-gram → its share of the position
    ranks: tuple[float, ...]  # per suspicion rank
    bias: float

    def position(self, item: str) -> float:
        """Where the item goes: about 0 for an impression's first item, about 1 for its last."""
        return self.bias + self.ranks[suspicion(item)] + sum(self.weights.get(g, 0.0) for g in grams(item))

    def to_json(self) -> dict:
        # 6 decimals: positions run from 0 to 1, and the file stays readable
        return {"weights": {g: round(w, 6) for g, w in self.weights.items()}, "ranks": [round(r, 6) for r in self.ranks], "bias": round(self.bias, 6)}

    @classmethod
    def from_json(cls, data: dict) -> "ItemOrder":
        ranks = tuple(float(r) for r in data["ranks"])
        if len(ranks) != N_RANKS:
            raise ValueError(f"item_order: {len(ranks)} ranks, expected {N_RANKS}")
        return cls({str(g): float(w) for g, w in data["weights"].items()}, ranks, float(data["bias"]))


def fit(ordered: list[list[str]], n_grams: int = 3000, ridge: float = 10.0) -> tuple[ItemOrder, int]:
    """(the order, the number of items it was fitted on), from lists of items in their written
    order (`ordered_items`); lists of one item say nothing about order and are skipped. The
    `n_grams` most frequent uni/bigrams are the features; X'X is summed a chunk of rows at a
    time, so memory is the features squared, not the items times the features."""
    import torch

    texts: list[str] = []
    targets: list[float] = []
    for found in ordered:
        if len(found) > 1:
            texts += found
            targets += [k / (len(found) - 1) for k in range(len(found))]
    if not texts:
        raise ValueError("no impression with two or more items to learn an order from")
    vocab = [g for g, _ in Counter(g for t in texts for g in grams(t)).most_common(n_grams)]
    index = {g: i for i, g in enumerate(vocab)}
    width = len(vocab) + N_RANKS + 1  # n-grams, ranks, bias
    xtx = torch.zeros(width, width, dtype=torch.float64)
    xty = torch.zeros(width, dtype=torch.float64)
    for start in range(0, len(texts), 4096):
        chunk = texts[start : start + 4096]
        x = torch.zeros(len(chunk), width, dtype=torch.float64)
        for row, text in enumerate(chunk):
            x[row, [index[g] for g in grams(text) if g in index]] = 1.0
            x[row, len(vocab) + suspicion(text)] = 1.0
            x[row, -1] = 1.0
        xtx += x.T @ x
        xty += x.T @ torch.tensor(targets[start : start + 4096], dtype=torch.float64)
    w = torch.linalg.solve(xtx + ridge * torch.eye(width, dtype=torch.float64), xty).tolist()
    order = ItemOrder({g: w[i] for g, i in index.items()}, tuple(w[len(vocab) : len(vocab) + N_RANKS]), w[-1])
    return order, len(texts)


def save_order(model: str | Path, order: ItemOrder) -> Path:
    """Write `order` into the model's `ases.json` (kept whole otherwise; created for a plain Hugging
    Face folder), through a temporary file so that a failed write leaves the old one."""
    from shared.modeling import MANIFEST, read_manifest

    path = Path(model) / MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**read_manifest(model), "item_order": order.to_json()}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
