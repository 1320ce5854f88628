"""The equal-compute comparison of README "AS-ES versus direct", end to end and resumable:

1. `petsum split` of cPET into train/val/test (80/10/10 by qid, seed 42);
2. the floors on the test split: nearest-report retrieval and rule-based extraction;
3. one run per method with `configs/pet/compare.yaml` (the same token budget, model and
   tokenizer for all; `ent` is scored by the direct run's model, the fine-tuned direct model
   the paper prescribes, so the direct row's compute is also the scorer's);
4. each run exported to ONNX (fp32: the same tokens as torch, 3× faster on 2 cores) and scored
   on the test split with `petsum evaluate`.

    python experiments/pet_compare.py [--out runs/compare] [--rows direct,usm-inter] [--set train.max_train_tokens=...]

A row is named `METHOD[-STRATEGY][-bBETA][-gGAMMA]`: `usm-ent-b1.2` is USM with `ent` at β = 1.2,
`usm-inter-g0.5` USM with `inter` at γ = 0.5 (the sweeps). The comparison on finding instances
(README, "AS-ES versus direct, one finding at a time") is the same driver with its own config,
start checkpoint, source and decoding:

    python experiments/pet_compare.py --out runs/fc --config configs/pet/finding-compare.yaml \
        --source finding --set model.pretrained=runs/cw/stage1/model/last --backend torch \
        --eval-arg=--normal-penalty=2 --eval-arg=--no-guard

Every step is a `petsum` command, echoed before it runs, and skipped when its output exists.
Results: OUT/results.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PETSUM_PET_CSV", ROOT / ".." / "shared" / "data" / "cpet" / "pet.csv"))
ROWS = {  # name: (method, strategy); the default rows
    "direct": ("direct", None),
    "dsm-ent": ("dsm", "ent"),
    "usm-ent": ("usm", "ent"),
    "dsm-inter": ("dsm", "inter"),
    "usm-inter": ("usm", "inter"),
}
_ROW = re.compile(
    r"(direct|dsm|usm)(?:-(inter|ent|ent_pre|loss|bleu|rouge))?(?:-b(\d+(?:\.\d+)?))?(?:-g(\d+(?:\.\d+)?))?"
)
ROW_FORMS = "METHOD[-STRATEGY][-bBETA][-gGAMMA], e.g. " + ", ".join(ROWS) + ", usm-ent-b1.2, usm-inter-g0.5"


def row_spec(name: str) -> tuple[str, str | None, str | None, str | None] | None:
    """(method, strategy, beta, gamma) of a row name, None where it is not one; direct takes no
    strategy and AS-ES rows need one."""
    m = _ROW.fullmatch(name)
    if m is None or (m[1] == "direct") != (m[2] is None):
        return None
    return m[1], m[2], m[3], m[4]


def executable(name: str) -> str:
    """The console script `name` of the environment running this driver (its interpreter's bin
    folder), so a driver started as `venv/bin/python benchmarks/...` needs no activated venv."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else (shutil.which(name) or name)


def run(args: list[str], stdout: Path | None = None) -> None:
    """Run one step (echoed); a failing step ends the driver with a one-line error, and a step
    with a `stdout` file writes it only when it succeeds, so a rerun retries it."""
    print("$", shlex.join(args) + (f" > {stdout}" if stdout else ""), file=sys.stderr, flush=True)
    cmd = [executable(args[0]), *args[1:]]
    try:
        if stdout is None:
            subprocess.run(cmd, check=True)
            return
        tmp = stdout.with_suffix(".tmp")
        with tmp.open("w") as f:
            subprocess.run(cmd, check=True, stdout=f)
        tmp.rename(stdout)
    except FileNotFoundError:
        sys.exit(f"error: {args[0]} not found; install petsum in the environment that runs this driver")
    except subprocess.CalledProcessError as e:
        sys.exit(f"error: step failed (exit {e.returncode}): {shlex.join(args)}")


def served(run_dir: Path) -> Path:
    roles = json.loads((run_dir / "ases.json").read_text())["roles"]
    return run_dir / roles["model"]


def train_args(name: str, split: Path, out: Path, config: str, sets: list[str], source: str = "region") -> list[str]:
    spec = row_spec(name)
    if spec is None:
        raise ValueError(f"not a row name: {name!r} ({ROW_FORMS})")
    method, strategy, beta, gamma = spec
    args = [
        "petsum",
        "train",
        "--data",
        str(split / "train.csv"),
        "--val",
        str(split / "val.csv"),
        "--config",
        config,
        "--method",
        method,
        "--out",
        str(out / name),
    ]
    if source != "region":
        args += ["--source", source]
    for flag, value in (("--strategy", strategy), ("--beta", beta), ("--gamma", gamma)):
        if value is not None:
            args += [flag, value]
    if strategy in ("ent", "loss"):  # scored by the fine-tuned direct model; ent_pre by the start checkpoint
        args += ["--set", f"segment.scorer={served(out / 'direct')}"]
    for s in sets:
        args += ["--set", s]
    return args


def row(
    name: str,
    split: Path,
    out: Path,
    config: str,
    sets: list[str],
    source: str = "region",
    backend: str = "onnx",
    eval_args: tuple[str, ...] = (),
) -> dict:
    """Train, export (backend onnx) and score one row, each step skipped when its output exists."""
    run_dir = out / name
    if not (run_dir / "ases.json").is_file():
        run(train_args(name, split, out, config, sets, source))
    scored = run_dir
    if backend == "onnx":
        scored = out / f"{name}-onnx"
        if not (scored / "ases.json").is_file():
            run(["petsum", "export", "--model", str(run_dir), "--out", str(scored)])
    result = out / f"{name}.metrics.json"
    if not result.is_file():
        run(
            [
                "petsum",
                "evaluate",
                "--data",
                str(split / "test.csv"),
                "--model",
                str(scored),
                "--json",
                "--out",
                str(out / f"{name}.preds.jsonl"),
                *eval_args,
            ],
            stdout=result,
        )
    manifest = json.loads((run_dir / "ases.json").read_text())
    train = manifest["train"]
    return {
        "name": name,
        **json.loads(result.read_text()),
        "tokens": sum(t["tokens"] for t in train.values()),
        "train_s": sum(t["train_s"] for t in train.values()),
        "steps": {r: t["steps"] for r, t in train.items()},
    }


def floor(kind: str, split: Path, out: Path) -> dict:
    result = out / f"floor-{kind}.metrics.json"
    if not result.is_file():
        run(
            [
                "petsum",
                "floor",
                kind,
                "--train",
                str(split / "train.csv"),
                "--data",
                str(split / "test.csv"),
                "--json",
                "--out",
                str(out / f"floor-{kind}.preds.jsonl"),
            ],
            stdout=result,
        )
    return {"name": f"floor: {kind}", **json.loads(result.read_text())}


def pick_rows(arg: str, known: Callable[[str], tuple | None], out: Path, forms: str) -> list[str]:
    """The named rows, checked by `known` (name -> (method, strategy, ...) or None; `forms` says
    what it accepts); `direct` first when an `ent`/`loss` row needs its model as the scorer and
    no finished direct run is in OUT."""
    names = [n.strip() for n in arg.split(",") if n.strip()]
    if unknown := [n for n in names if known(n) is None]:
        sys.exit(f"error: unknown rows {unknown} (choose from {forms})")
    scored = any(known(n)[1] in ("ent", "loss") for n in names)
    if scored and "direct" not in names and not (out / "direct" / "ases.json").is_file():
        names.insert(0, "direct")
    return names


def cost_cells(r: dict) -> str:
    """A row's `train tokens | train time` cells; dashes for a floor, which does not train."""
    tokens = f"{r['tokens'] / 1e6:.2f}M" if "tokens" in r else "–"
    minutes = f"{r['train_s'] / 60:.1f} min" if "train_s" in r else "–"
    return f"{tokens} | {minutes}"


def table(rows: list[dict]) -> str:
    lines = [
        "| method | BLEU-zh | ROUGE-1 | ROUGE-2 | ROUGE-L | MR ↓ | ER ↓ | train tokens | train time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        er = f"{r['er']:.1f}" if "er" in r else "–"  # metrics files written before ER existed lack it
        lines.append(
            f"| {r['name']} | {r['bleu']:.1f} | {r['rouge1']:.1f} | "
            f"{r['rouge2']:.1f} | {r['rougeL']:.1f} | {r['mr']:.1f} "
            f"| {er} | {cost_cells(r)} |"
        )
    return "\n".join(lines)


def parser(doc: str, out: str, config: str, rows: dict) -> argparse.ArgumentParser:
    """The options both comparison drivers take."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--config", default=str(ROOT / "configs" / config))
    ap.add_argument("--rows", default=",".join(rows), help="comma-separated rows (default: " + ", ".join(rows) + ")")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override for every run")
    return ap


def main() -> None:
    ap = parser(__doc__, "runs/compare", "pet/compare.yaml", ROWS)
    ap.add_argument(
        "--source", choices=("region", "salient", "finding"), default="region", help="petsum train --source"
    )
    ap.add_argument(
        "--backend", choices=("onnx", "torch"), default="onnx", help="score the ONNX export or the run itself"
    )
    ap.add_argument(
        "--eval-arg", dest="eval_args", action="append", default=[], help="extra petsum evaluate option (repeat)"
    )
    args = ap.parse_args()
    if not DATA.is_file():
        sys.exit(f"error: {DATA} not found (set PETSUM_PET_CSV)")
    names = pick_rows(args.rows, row_spec, args.out, ROW_FORMS)
    split = args.out / "split"
    if not (split / "split.json").is_file():
        run(["petsum", "split", "--data", str(DATA), "--out", str(split)])
    rows = [floor("retrieval", split, args.out), floor("extractive", split, args.out)]
    rows += [
        row(name, split, args.out, args.config, args.sets, args.source, args.backend, tuple(args.eval_args))
        for name in names
    ]
    (args.out / "results.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
