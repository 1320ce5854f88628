"""Does an item's `confidence` tell the reader where to look? Items of a `petsum batch` output
(the structured records, docs/serve.md) are split at `--threshold`, and each item is scored by its
best character ROUGE-L F1 (the metrics' characters: punctuation left out) against the pieces of
the radiologist's impression for that report (its items cut at `；` and `。`). A confidence worth
marking gives the low items a clearly lower score.

    petsum batch runs/split/val.csv --out val_greedy.jsonl --consensus 0
    python experiments/confidence_check.py --predictions val_greedy.jsonl --data runs/split/val.csv

Prints one JSON object: per side of the threshold, the item count and mean best ROUGE-L; copies
(confidence null) are counted apart. Report text is never printed.
"""

from __future__ import annotations

import argparse
import json
import statistics

from petsum.data.pairs import load_pairs
from petsum.text.report import impression_items
from petsum.text.rules import chars, sentences
from shared.metrics import rouge_l


def reference_pieces(impression: str) -> list[list[str]]:
    items, _ = impression_items(impression)
    return [chars(p) for item in items for p in sentences(item.replace("。", "；")) if chars(p)]


def check(predictions: str, data: str, threshold: float) -> dict:
    references = {pair.id: pair.target for pair in load_pairs(data)}
    scored: dict[str, list[float]] = {"low": [], "high": []}
    copies = 0
    with open(predictions, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if "items" not in record or str(record["id"]) not in references:
                continue
            pieces = reference_pieces(references[str(record["id"])])
            for item in record["items"]:
                if item["confidence"] is None:
                    copies += 1
                    continue
                best = max((rouge_l(chars(item["text"]), p) for p in pieces), default=0.0)
                scored["low" if item["confidence"] < threshold else "high"].append(best)
    return {
        "threshold": threshold,
        **{
            side: {"items": len(v), "mean_best_rouge_l": round(statistics.mean(v), 2) if v else None}
            for side, v in scored.items()
        },
        "copies": copies,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predictions", required=True, help="a `petsum batch` output (JSONL)")
    ap.add_argument("--data", required=True, help="the CSV (or JSONL) it was made from, with its impressions")
    ap.add_argument("--threshold", type=float, default=0.5, help="the review page's low-confidence mark")
    args = ap.parse_args()
    print(json.dumps(check(args.predictions, args.data, args.threshold)))


if __name__ == "__main__":
    main()
