"""What item order costs ROUGE-L: the impressions of a `petsum evaluate --out` file scored as written,
with their items in the reference's order (an oracle: it reads the reference, so it is a bound, not
a method), and in the order of a position regressor learned from training references (a probe of
what a learned order could win; petsum does not ship it yet).

    python benchmarks/item_order.py PREDS.jsonl [--train runs/compare/split/train.csv] [--grams 3000] [--ridge 10]

The regressor: ridge regression from an item's character uni/bigrams (the `grams` most frequent in
training items) and its `suspicion` rank to its relative position (0 first, 1 last) in the training
reference impressions with two or more numbered items. Only the numbered items move; the closing
line stays last. BLEU, ROUGE and MR/ER are petsum's. Report text is never printed.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from petsum.assemble import suspicion
from petsum.data import load_pairs
from petsum.metrics import evaluate_texts

_REF_ITEM = re.compile(r"(?:^|\s|(?<=[。；;]))\d{1,2}[、.．](?!\d)")  # a reference's item numbers: `1、`, `。2.`
_OUR_ITEM = re.compile(r"^\d+、")  # the assembler writes one numbered item per line


def reference_items(text: str) -> list[str]:
    return [p.strip() for p in _REF_ITEM.split(text) if p.strip()]


def grams(text: str) -> set[str]:
    return {text[i : i + n] for n in (1, 2) for i in range(len(text) - n + 1)}


def reorder(impression: str, key: Callable[[list[str]], list[float]]) -> str:
    """The impression with its numbered items sorted by `key` (stable) and renumbered."""
    lines = impression.split("\n")
    found = [_OUR_ITEM.sub("", line) for line in lines if _OUR_ITEM.match(line)]
    rest = [line for line in lines if not _OUR_ITEM.match(line)]
    if len(found) > 1:
        scores = key(found)
        found = [found[i] for i in sorted(range(len(found)), key=lambda i: scores[i])]
    return "\n".join([f"{k}、{item}" for k, item in enumerate(found, 1)] + rest)


def bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def oracle_key(reference: str) -> Callable[[list[str]], list[float]]:
    """Each item at the start of the reference window of its own length that shares most character
    bigrams with it (the first such); an item that shares none goes last."""

    def position(item: str) -> float:
        b = bigrams(item)
        overlap = [len(b & bigrams(reference[i : i + len(item)])) for i in range(len(reference))]
        best = max(overlap, default=0)
        return float(overlap.index(best)) if best else float(len(reference))

    return lambda found: [position(item) for item in found]


class PositionRegressor:
    """Ridge regression from an item's text to its relative position in an impression."""

    def __init__(self, impressions: list[str], n_grams: int, ridge: float) -> None:
        texts, positions = [], []
        for impression in impressions:
            found = reference_items(impression)
            if len(found) > 1:
                texts += found
                positions += [k / (len(found) - 1) for k in range(len(found))]
        counts = Counter(g for t in texts for g in grams(t))
        self.index = {g: i for i, (g, _) in enumerate(counts.most_common(n_grams))}
        x = self.features(texts)
        self.w = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ np.array(positions))
        self.n_items = len(texts)

    def features(self, texts: list[str]) -> np.ndarray:
        x = np.zeros((len(texts), len(self.index) + 4))
        for row, text in enumerate(texts):
            for g in grams(text) & self.index.keys():
                x[row, self.index[g]] = 1.0
            x[row, len(self.index) + suspicion(text)] = 1.0  # ranks 0-2
            x[row, -1] = 1.0  # bias
        return x

    def __call__(self, found: list[str]) -> list[float]:
        return list(self.features(found) @ self.w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preds", type=Path, help="a `petsum evaluate --out` file")
    ap.add_argument("--train", type=Path, default=Path("runs/compare/split/train.csv"))
    ap.add_argument("--grams", type=int, default=3000)
    ap.add_argument("--ridge", type=float, default=10.0)
    args = ap.parse_args()
    preds = [json.loads(line) for line in args.preds.read_text(encoding="utf-8").splitlines() if line.strip()]
    hyps, refs = [p["impression"] for p in preds], [p["reference"] for p in preds]
    learned = PositionRegressor([ex.target for ex in load_pairs(str(args.train))], args.grams, args.ridge)
    rows = {
        "as written": hyps,
        "oracle order (reads the reference)": [reorder(h, oracle_key(r)) for h, r in zip(hyps, refs)],
        f"learned order ({learned.n_items:,} training items)": [reorder(h, learned) for h in hyps],
    }
    print(f"{len(preds)} reports\n| order | BLEU-zh | ROUGE-1 | ROUGE-2 | ROUGE-L | MR | ER |\n|---|---|---|---|---|---|---|")
    for name, texts in rows.items():
        m = evaluate_texts(texts, refs)
        print(f"| {name} | " + " | ".join(f"{m[k]:.1f}" for k in ("bleu", "rouge1", "rouge2", "rougeL", "mr", "er")) + " |")


if __name__ == "__main__":
    main()
