"""Score an existing predictions file with today's metrics: a `petsum evaluate --out` file (JSONL
records with id, impression and reference) joined by id to the findings of the CSV it was made
from, so that a run scored before a metric existed (the contradiction rates, the follow-up and
first-exam subsets) can be compared with one scored after.

    python experiments/score_predictions.py --predictions PREDS.jsonl --data runs/split/test.csv

Prints the metrics as one JSON object, as `petsum evaluate --json` does. Report text is never
printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from petsum.evaluation.scoring import score_predictions
from shared.textio import InputError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predictions", required=True, help="a `petsum evaluate --out` file")
    ap.add_argument("--data", required=True, help="the CSV (or JSONL) the predictions were made from")
    ap.add_argument("--words", action="store_true", help="also word-level ROUGE (needs jieba)")
    args = ap.parse_args()
    try:
        metrics = score_predictions(args.predictions, args.data, args.words)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(metrics, ensure_ascii=False))


if __name__ == "__main__":
    main()
