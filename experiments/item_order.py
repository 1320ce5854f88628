"""What item order costs ROUGE-L: the impressions of a `petsum evaluate --out` file scored as written,
with their items in the reference's order (an oracle: it reads the reference, so it is a bound, not
a method), and in the orders `petsum order` learns from training reports (`petsum.assemble.order`): fitted on
the impressions' numbered items, and on the finding targets (what a `--source finding` model writes),
the latter also with a score per item alone (`--rank 0`: no pair term).

    python experiments/item_order.py PREDS.jsonl [--train runs/compare/split/train.csv] [--grams 3000]
        [--rank 32] [--swap 0.2]

A noisy oracle says how good an order has to be: the reference's order with each adjacent pair of
items then swapped with probability `--swap` (seeded, so the row is reproducible).

Run on the impressions of a model without an order of its own, so "as written" is the rule's
order. The learned orders here read the items' words only: an `--out` file does not say which
finding each item was written from, so the context features a finding model's order also has
(`petsum.assemble.order.context`) are measured end to end instead, by `petsum evaluate` of a model that
carries them. Only the numbered items move; the closing line stays last. BLEU, ROUGE and MR/ER are
petsum's. Report text is never printed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from pathlib import Path

from petsum.assemble.order import fit, ordered_items
from petsum.data.pairs import load_pairs
from petsum.evaluation.metrics import evaluate_texts
from petsum.text.findings import bigrams

_OUR_ITEM = re.compile(r"^\d+、")  # the assembler writes one numbered item per line


def reorder(impression: str, arrange: Callable[[list[str]], list[str]]) -> str:
    """The impression with its numbered items put in `arrange`'s order and renumbered."""
    lines = impression.split("\n")
    first = next((k for k, line in enumerate(lines) if _OUR_ITEM.match(line)), len(lines))
    found = [_OUR_ITEM.sub("", line) for line in lines if _OUR_ITEM.match(line)]
    rest = [line for line in lines[first:] if not _OUR_ITEM.match(line)]
    if len(found) > 1:
        found = arrange(found)
    return "\n".join(
        lines[:first] + [f"{k}、{item}" for k, item in enumerate(found, 1)] + rest
    )  # an opening line stays first


def oracle_order(reference: str) -> Callable[[list[str]], list[str]]:
    """Each item at the start of the reference window of its own length that shares most character
    bigrams with it (the first such); an item that shares none goes last (stable)."""

    def position(item: str) -> float:
        b = bigrams(item).keys()
        overlap = [len(b & bigrams(reference[i : i + len(item)]).keys()) for i in range(len(reference))]
        best = max(overlap, default=0)
        return float(overlap.index(best)) if best else float(len(reference))

    return lambda found: sorted(found, key=position)


def noisy_order(reference: str, swap: float, seed: int) -> Callable[[list[str]], list[str]]:
    """The oracle's order, then one pass that swaps each adjacent pair with probability `swap`."""
    oracle = oracle_order(reference)

    def arrange(found: list[str]) -> list[str]:
        ranked = oracle(found)
        rng = random.Random(seed)
        for k in range(len(ranked) - 1):
            if rng.random() < swap:
                ranked[k], ranked[k + 1] = ranked[k + 1], ranked[k]
        return ranked

    return arrange


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preds", type=Path, help="a `petsum evaluate --out` file")
    ap.add_argument("--train", type=Path, default=Path("runs/compare/split/train.csv"))
    ap.add_argument("--grams", type=int, default=3000)
    ap.add_argument("--rank", type=int, default=32, help="width of the pair term of the learned orders")
    ap.add_argument("--swap", type=float, default=0.2, help="swap probability of the noisy oracle's adjacent pairs")
    args = ap.parse_args()
    preds = [json.loads(line) for line in args.preds.read_text(encoding="utf-8").splitlines() if line.strip()]
    hyps, refs = [p["impression"] for p in preds], [p["reference"] for p in preds]
    train = load_pairs(str(args.train))
    rows = {
        "as written": hyps,
        "oracle order (reads the reference)": [reorder(h, oracle_order(r)) for h, r in zip(hyps, refs)],
        f"oracle order, adjacent pairs swapped with p={args.swap}": [
            reorder(h, noisy_order(r, args.swap, k)) for k, (h, r) in enumerate(zip(hyps, refs))
        ],
    }
    for source, kind, rank in (
        ("region", "numbered items", args.rank),
        ("finding", "finding targets", 0),
        ("finding", "finding targets", args.rank),
    ):
        learned, n_items = fit(ordered_items(train, source), args.grams, rank)
        rows[f"learned order ({n_items:,} training {kind}, rank {rank})"] = [reorder(h, learned.arrange) for h in hyps]
    print(
        f"{len(preds)} reports\n"
        "| order | BLEU-zh | ROUGE-1 | ROUGE-2 | ROUGE-L | MR | ER |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name, texts in rows.items():
        m = evaluate_texts(texts, refs)
        print(
            f"| {name} | "
            + " | ".join(f"{m[k]:.1f}" for k in ("bleu", "rouge1", "rouge2", "rougeL", "mr", "er"))
            + " |"
        )


if __name__ == "__main__":
    main()
