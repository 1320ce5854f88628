"""Facts an impression states that its report does not give: numbers (comparison dates, vertebra
levels) and sides (`左肾` for a report that names only the right kidney), counted over the
impressions of a `petsum evaluate --out` file against the whole findings text of each report.

    python experiments/invented_facts.py PREDS.jsonl --data runs/compare/split/test.csv

The guard (`petsum.summarize.grounding`) checks each answer against its own finding; this counts what is
left at the level of the report, so that a run without the guard (`--no-guard`) and one with it
can be compared. The reference impressions are counted the same way, as a yardstick: a
radiologist knows the prior exam's date, the model does not. Report text is never printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from petsum.data.pairs import load_pairs
from petsum.summarize.grounding import invented_numbers, invented_sides
from petsum.text.report import normalize
from petsum.text.rules import comparable


def count(texts: list[str], reports: list[str]) -> dict[str, int]:
    """Impressions with an invented number, with an invented side, and the invented sides in all."""
    numbers = sides = sides_total = 0
    for text, report in zip(texts, reports):
        body, found = comparable(normalize(text)), normalize(report)
        numbers += bool(invented_numbers(found, body))
        wrong = invented_sides(found, body)
        sides += bool(wrong)
        sides_total += len(wrong)
    return {
        "impressions": len(texts),
        "with an invented number": numbers,
        "with an invented side": sides,
        "invented sides": sides_total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preds", type=Path, help="a `petsum evaluate --out` file")
    ap.add_argument("--data", type=Path, required=True, help="the CSV the predictions were made from")
    args = ap.parse_args()
    preds = [json.loads(line) for line in args.preds.read_text(encoding="utf-8").splitlines() if line.strip()]
    question = {ex.id: ex.question for ex in load_pairs(str(args.data))}
    reports = [question[p["id"]] for p in preds]
    rows = {
        "generated": count([p["impression"] for p in preds], reports),
        "reference": count([p["reference"] for p in preds], reports),
    }
    keys = list(rows["generated"])
    print("| texts | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
