"""CPU training throughput of two checkouts' trainers, side by side: each trains the same direct
finding-instance run (the recipe's finding stage) for a fixed token budget, in turns A B A B …,
and the real tokens/s of their steps (from metrics.jsonl, the first interval left out as warm-up)
are compared round by round.

    python benchmarks/train_speed.py --data train.csv --val val.csv --a /path/to/old --b . --rounds 3

Each checkout runs in its own process with its own code first on the path (PYTHONPATH), so both
see the same interpreter and packages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def one_run(checkout: Path, data: str, val: str, tokens: int, threads: int, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "petsum.cli", "train", "--method", "direct", "--source", "finding",
           "--data", data, "--val", val, "--out", str(out),
           "--config", str(checkout / "configs" / "pet" / "finding-compare.yaml"),
           "--set", f"train.max_train_tokens={tokens}", "--set", "train.max_time_s=null",
           "--set", "train.eval_every=1000000", "--set", "train.eval_gen_samples=0", "--set", "train.eval_samples=8",
           "--set", f"train.threads={threads}", "--set", "train.log_every=10"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"error: {checkout}: training failed: {proc.stderr.strip().splitlines()[-1:]}")
    lines = [json.loads(x) for x in (out / "model" / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "tokens_per_s" in x][1:]  # the first interval holds the warm-up's allocations
    tokens = sum(x["tokens"] - y["tokens"] for x, y in zip(steps[1:], steps))
    seconds = sum(x["train_s"] - y["train_s"] for x, y in zip(steps[1:], steps))
    return tokens / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--val", required=True)
    p.add_argument("--a", required=True, type=Path, help="checkout A (e.g. a worktree of the previous commit)")
    p.add_argument("--b", required=True, type=Path, help="checkout B")
    p.add_argument("--tokens", type=int, default=200_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    a, b = [], []
    for r in range(args.rounds):
        a.append(one_run(args.a.resolve(), args.data, args.val, args.tokens, args.threads, tmp / "a"))
        b.append(one_run(args.b.resolve(), args.data, args.val, args.tokens, args.threads, tmp / "b"))
        print(f"round {r + 1}: A {a[-1]:,.0f} tokens/s, B {b[-1]:,.0f} tokens/s, B/A {b[-1] / a[-1]:.3f}", flush=True)
    ratios = [y / x for x, y in zip(a, b)]
    print(json.dumps({"a_tokens_per_s": a, "b_tokens_per_s": b, "b_over_a_median": statistics.median(ratios)}))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
