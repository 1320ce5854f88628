"""The equal-compute GSM8K comparison of README "mwp results", end to end and resumable: one run
per method with `configs/mwp/compare.yaml` (`mwp train --calculator`: the same token budget,
model and tokenizer for all; `ent` is scored by the direct run's model), each scored on the
official test set with `mwp solve --data`, with the calculator and without it.

    python experiments/mwp_compare.py [--out runs/mwp-compare] [--rows direct,usm-inter] [--limit N]

Every step is an `mwp` command, echoed before it runs, and skipped when its output exists.
Results: OUT/results.json and a Markdown table on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pet_compare import cost_cells, parser, pick_rows, run, served  # noqa: E402  (the same step runner)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PETSUM_GSM8K", ROOT / ".." / "shared" / "data" / "gsm8k"))
ROWS = {
    "direct": ("direct", None),
    "usm-inter": ("usm", "inter"),
    "dsm-inter": ("dsm", "inter"),
    "usm-ent": ("usm", "ent"),
}


def train(name: str, out: Path, config: str, sets: list[str]) -> None:
    method, strategy = ROWS[name]
    args = [
        "mwp",
        "train",
        "--data",
        str(DATA / "train.jsonl"),
        "--calculator",
        "--config",
        config,
        "--method",
        method,
        "--out",
        str(out / name),
    ]
    if strategy:
        args += ["--strategy", strategy]
    if strategy == "ent":
        args += ["--set", f"segment.scorer={served(out / 'direct')}"]
    for s in sets:
        args += ["--set", s]
    run(args)


def score(name: str, out: Path, calculator: bool, limit: int | None) -> dict:
    mode = "calc" if calculator else "nocalc"
    result = out / f"{name}.{mode}.metrics.json"
    if not result.is_file():
        args = [
            "mwp",
            "solve",
            "--data",
            str(DATA / "test.jsonl"),
            "--model",
            str(out / name),
            "--json",
            "--calculator" if calculator else "--no-calculator",
            "--out",
            str(out / f"{name}.{mode}.preds.jsonl"),
        ]
        run(args + (["--limit", str(limit)] if limit else []), stdout=result)
    return json.loads(result.read_text())


def row(name: str, out: Path, config: str, sets: list[str], limit: int | None) -> list[dict]:
    if not (out / name / "ases.json").is_file():
        train(name, out, config, sets)
    stats = json.loads((out / name / "ases.json").read_text())["train"]
    facts = {"tokens": sum(t["tokens"] for t in stats.values()), "train_s": sum(t["train_s"] for t in stats.values())}
    return [
        {"name": f"{name} {'+ calculator' if calc else ''}".strip(), **score(name, out, calc, limit), **facts}
        for calc in (False, True)
    ]


def constant_floor(limit: int | None) -> dict:
    """The floor every model must beat: answer every test problem with the most frequent answer
    of the training set (no reasoning, so no BLEU)."""
    from collections import Counter

    from mwp.answers import extract_answer
    from mwp.data import load_problems, read_records

    common, _ = Counter(extract_answer(ex.target) for ex in load_problems(DATA / "train.jsonl")).most_common(1)[0]
    test = [r for r in read_records(DATA / "test.jsonl")[:limit] if hasattr(r, "target")]
    correct = sum(extract_answer(r.target) == common for r in test)
    return {
        "name": f"floor: always {common}",
        "accuracy": 100 * correct / len(test),
        "correct": correct,
        "n": len(test),
        "no_answer": 0,
    }


def table(rows: list[dict]) -> str:
    lines = ["| method | accuracy | no answer | BLEU | train tokens | train time |", "|---|---|---|---|---|---|"]
    for r in rows:
        bleu = f"{r['bleu']:.1f}" if "bleu" in r else "–"  # the floor writes no reasoning
        lines.append(
            f"| {r['name']} | {r['accuracy']:.2f}% ({r['correct']}/{r['n']}) | "
            f"{100 * r['no_answer'] / max(r['n'], 1):.1f}% | "
            f"{bleu} | {cost_cells(r)} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = parser(__doc__, "runs/mwp-compare", "mwp/compare.yaml", ROWS)
    ap.add_argument("--limit", type=int, help="score the first N test problems only")
    args = ap.parse_args()
    if not (DATA / "train.jsonl").is_file():
        sys.exit(f"error: {DATA}/train.jsonl not found (set PETSUM_GSM8K)")
    names = pick_rows(args.rows, ROWS.get, args.out, ", ".join(ROWS))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [constant_floor(args.limit)] + [
        r for name in names for r in row(name, args.out, args.config, args.sets, args.limit)
    ]
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
