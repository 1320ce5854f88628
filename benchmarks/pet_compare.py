"""The equal-compute comparison of README "AS-ES versus direct", end to end and resumable:

1. `petsum split` of cPET into train/val/test (80/10/10 by qid, seed 42);
2. the floors on the test split: nearest-report retrieval and rule-based extraction;
3. one run per method with `configs/pet-compare.yaml` (the same token budget, model and
   tokenizer for all; `ent` is scored by the direct run's model, the fine-tuned direct model
   the paper prescribes, so the direct row's compute is also the scorer's);
4. each run exported to ONNX (fp32: the same tokens as torch, 3× faster on 2 cores) and scored
   on the test split with `petsum evaluate`.

    python benchmarks/pet_compare.py [--out runs/compare] [--rows direct,usm-inter] [--set train.max_train_tokens=...]

Every step is a `petsum` command, echoed before it runs, and skipped when its output exists.
Results: OUT/results.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PETSUM_PET_CSV", ROOT / ".." / "shared" / "data" / "cpet" / "pet.csv"))
ROWS = {  # name: (method, strategy)
    "direct": ("direct", None),
    "dsm-ent": ("dsm", "ent"),
    "usm-ent": ("usm", "ent"),
    "dsm-inter": ("dsm", "inter"),
    "usm-inter": ("usm", "inter"),
}


def run(args: list[str], stdout: Path | None = None) -> None:
    print("$", shlex.join(args) + (f" > {stdout}" if stdout else ""), file=sys.stderr, flush=True)
    if stdout is None:
        subprocess.run(args, check=True)
        return
    tmp = stdout.with_suffix(".tmp")
    with tmp.open("w") as f:
        subprocess.run(args, check=True, stdout=f)
    tmp.rename(stdout)


def served(run_dir: Path) -> Path:
    roles = json.loads((run_dir / "ases.json").read_text())["roles"]
    return run_dir / roles["model"]


def train_args(name: str, split: Path, out: Path, config: str, sets: list[str]) -> list[str]:
    method, strategy = ROWS[name]
    args = ["petsum", "train", "--data", str(split / "train.csv"), "--val", str(split / "val.csv"), "--config", config,
            "--method", method, "--out", str(out / name)]
    if strategy:
        args += ["--strategy", strategy]
    if strategy == "ent":
        args += ["--set", f"segment.scorer={served(out / 'direct')}"]
    for s in sets:
        args += ["--set", s]
    return args


def row(name: str, split: Path, out: Path, config: str, sets: list[str]) -> dict:
    run_dir = out / name
    if not (run_dir / "ases.json").is_file():
        run(train_args(name, split, out, config, sets))
    export = out / f"{name}-onnx"
    if not (export / "ases.json").is_file():
        run(["petsum", "export", "--model", str(run_dir), "--out", str(export)])
    result = out / f"{name}.metrics.json"
    if not result.is_file():
        run(["petsum", "evaluate", "--data", str(split / "test.csv"), "--model", str(export), "--json",
             "--out", str(out / f"{name}.preds.jsonl")], stdout=result)
    manifest = json.loads((run_dir / "ases.json").read_text())
    train = manifest["train"]
    return {"name": name, **json.loads(result.read_text()), "tokens": sum(t["tokens"] for t in train.values()),
            "train_s": sum(t["train_s"] for t in train.values()), "steps": {r: t["steps"] for r, t in train.items()}}


def floor(kind: str, split: Path, out: Path) -> dict:
    result = out / f"floor-{kind}.metrics.json"
    if not result.is_file():
        run(["petsum", "floor", kind, "--train", str(split / "train.csv"), "--data", str(split / "test.csv"), "--json",
             "--out", str(out / f"floor-{kind}.preds.jsonl")], stdout=result)
    return {"name": f"floor: {kind}", **json.loads(result.read_text())}


def pick_rows(arg: str, known: dict[str, tuple[str, str | None]], out: Path) -> list[str]:
    """The named rows, checked; `direct` first when an `ent` row needs its model as the scorer
    and no finished direct run is in OUT."""
    names = [n.strip() for n in arg.split(",") if n.strip()]
    if unknown := [n for n in names if n not in known]:
        sys.exit(f"error: unknown rows {unknown} (choose from {', '.join(known)})")
    if any(known[n][1] == "ent" for n in names) and "direct" not in names and not (out / "direct" / "ases.json").is_file():
        names.insert(0, "direct")
    return names


def cost_cells(r: dict) -> str:
    """A row's `train tokens | train time` cells; dashes for a floor, which does not train."""
    tokens = f"{r['tokens'] / 1e6:.2f}M" if "tokens" in r else "–"
    minutes = f"{r['train_s'] / 60:.1f} min" if "train_s" in r else "–"
    return f"{tokens} | {minutes}"


def table(rows: list[dict]) -> str:
    lines = ["| method | BLEU-zh | ROUGE-1 | ROUGE-2 | ROUGE-L | MR ↓ | train tokens | train time |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['bleu']:.1f} | {r['rouge1']:.1f} | {r['rouge2']:.1f} | {r['rougeL']:.1f} | {r['mr']:.1f} | {cost_cells(r)} |")
    return "\n".join(lines)


def parser(doc: str, out: str, config: str, rows: dict) -> argparse.ArgumentParser:
    """The options both comparison drivers take."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--config", default=str(ROOT / "configs" / config))
    ap.add_argument("--rows", default=",".join(rows), help="comma-separated subset of " + ", ".join(rows))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override for every run")
    return ap


def main() -> None:
    args = parser(__doc__, "runs/compare", "pet-compare.yaml", ROWS).parse_args()
    if not DATA.is_file():
        sys.exit(f"error: {DATA} not found (set PETSUM_PET_CSV)")
    names = pick_rows(args.rows, ROWS, args.out)
    split = args.out / "split"
    if not (split / "split.json").is_file():
        run(["petsum", "split", "--data", str(DATA), "--out", str(split)])
    rows = [floor("retrieval", split, args.out), floor("extractive", split, args.out)]
    rows += [row(name, split, args.out, args.config, args.sets) for name in names]
    (args.out / "results.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
