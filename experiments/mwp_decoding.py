"""Score one mwp run under several decoding settings, on validation problems (never test), to
choose the settings a shipped model carries in its manifest (`generate` in `ases.json`).

    python experiments/mwp_decoding.py --model runs/mwp/eq-aug10 --data runs/mwp/val.jsonl \
        --set no_repeat_ngram_size=0 --set no_repeat_ngram_size=6 --set consensus_samples=8

Each `--set` is one row: `generate` fields, comma-separated (`consensus_samples=8,sample_epsilon=0.05`);
the first row is always the run's own settings. Prints a Markdown table (accuracy, no answer,
seconds) and, with `--json`, one JSON line per row.
"""

from __future__ import annotations

import argparse
import json
import time

from mwp.data import read_records
from mwp.solve import Solver, evaluate


def _parse(spec: str) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        out[key.strip()] = float(value) if "." in value or "e" in value else int(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="one row's generate settings")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if "test" in args.data.rsplit("/", 1)[-1]:
        raise SystemExit("error: choose decoding on validation problems, not on a test set")
    records = read_records(args.data, "test")[: args.limit]
    solver = Solver.load(args.model)
    base = solver.cfg
    print("| settings | accuracy | correct | no answer | seconds |\n|---|---|---|---|---|")
    for spec in ["", *args.sets]:
        solver.cfg = base.model_copy(update=_parse(spec))
        start = time.perf_counter()
        metrics = evaluate(solver, records)[1]
        took = time.perf_counter() - start
        print(f"| {spec or 'as the run has it'} | {metrics['accuracy']:.2f}% | {metrics['correct']}/{metrics['n']} "
              f"| {metrics['no_answer']} | {took:.0f} |", flush=True)  # fmt: skip
        if args.json:
            print(json.dumps({"settings": spec, **metrics, "seconds": round(took, 1)}), flush=True)


if __name__ == "__main__":
    main()
