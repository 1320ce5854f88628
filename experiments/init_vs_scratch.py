"""What `petsum train --init` buys a hospital: fine-tuning the shipped default on a hospital-sized
set against the recipe from scratch on the same reports, within the same training time.

    python experiments/init_vs_scratch.py --split runs/split --out runs/ivs --budget 10m

The "hospital" is cPET's validation and test reports, which the default never trained on: they
are split by a hash of their id into a training share (about 1,800 reports) and a held-out share
(about 330). Three models are scored on the held-out share with `petsum evaluate --consensus 0`
(greedy, to keep the driver short): the default as it is, the default fine-tuned on the training
share (`--init`), and the recipe trained from scratch on it; the two trainings run one after the
other with the same `--time-budget` (so that neither shares the machine) or `--token-budget`. Prints a table; report
text is never printed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "petsum" / "models" / "default"


def hospital(split: Path, out: Path, held_out: float) -> tuple[Path, Path]:
    """train.csv and heldout.csv of the hospital: val + test rows, by a SHA-256 of `ivs:qid`."""
    rows: list[dict] = []
    for name in ("val.csv", "test.csv"):
        with open(split / name, encoding="utf-8", newline="") as f:
            rows += list(csv.DictReader(f))
    out.mkdir(parents=True, exist_ok=True)
    sides: dict[str, list[dict]] = {"train": [], "heldout": []}
    for row in rows:
        h = int.from_bytes(hashlib.sha256(f"ivs:{row['qid']}".encode()).digest()[:8], "big") / 2**64
        sides["heldout" if h < held_out else "train"].append(row)
    paths = []
    for side, part in sides.items():
        path = out / f"{side}.csv"
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(part)
        paths.append(path)
    return paths[0], paths[1]


def petsum(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "petsum.cli", *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"error: petsum {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True, type=Path, help="a `petsum split` folder (val.csv, test.csv)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--budget", default="10m", help="each training's --time-budget")
    p.add_argument(
        "--tokens", type=int, help="each training's --token-budget instead (equal compute on a shared machine)"
    )
    p.add_argument("--held-out", type=float, default=0.155, help="share of the hospital's reports held out")
    args = p.parse_args()
    train, heldout = hospital(args.split, args.out, args.held_out)
    rows = {}
    for name, extra in (("tuned", ["--init", str(DEFAULT)]), ("scratch", [])):
        t0 = time.perf_counter()
        budget = ["--token-budget", str(args.tokens)] if args.tokens else ["--time-budget", args.budget]
        petsum("train", "--data", str(train), "--out", str(args.out / name), *budget, *extra)
        rows[name] = {"wall_s": round(time.perf_counter() - t0)}
    for name, model in (("default", DEFAULT), ("tuned", args.out / "tuned"), ("scratch", args.out / "scratch")):
        metrics = json.loads(
            petsum("evaluate", "--data", str(heldout), "--model", str(model), "--consensus", "0", "--json")
        )
        rows.setdefault(name, {}).update({k: metrics[k] for k in ("n", "bleu", "rougeL", "mr", "er")})
    print("| model | BLEU | ROUGE-L | MR | ER | wall s |\n|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['bleu']:.1f} | {r['rougeL']:.1f} | {r['mr']:.1f} | {r['er']:.1f} | {r.get('wall_s', '–')} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
