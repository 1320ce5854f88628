"""Write the GSM8K training problems that `mwp train` holds out for validation, as JSONL, so that
`mwp solve --data` can score a run on them: model choice on validation, never on test.

    python experiments/mwp_val_split.py --data ../shared/data/gsm8k/train.jsonl --out runs/mwp/val.jsonl

The split is `shared.pipeline.split_examples` by question (an augmented variant keeps its
original's question as its group, so holding out by the originals holds out their variants too);
the defaults are configs/mwp/*.yaml's (val_fraction 0.05, split_seed 42).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mwp.data import load_problems
from shared.pipeline import split_examples
from shared.textio import read_jsonl_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the training JSONL given to `mwp train` (originals only)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    _, val = split_examples(load_problems(args.data), args.val_fraction, args.seed)
    held = {ex.id for ex in val}
    rows = [row for n, row in enumerate(read_jsonl_rows(Path(args.data)), 1) if str(row.get("id", n)) in held]
    Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} held-out problems -> {args.out}")


if __name__ == "__main__":
    main()
