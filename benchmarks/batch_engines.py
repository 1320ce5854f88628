"""`petsum batch --engine ray` versus `--engine local`, side by side on the same reports and model.

Both engines go through `petsum.batch.local.batch_reports` (the code `petsum batch` runs) on a CSV of the
first N cPET reports. Timed end to end, as a user waits for them: the local engine's model
load, and Ray's start, worker start and per-worker model loads, count. Printed: seconds,
reports/s, the ratio, and whether the two outputs are byte for byte equal.

    python benchmarks/batch_engines.py --model runs/pet-usm [--reports 1000] [--num-workers 2] [--batch-size 32]

Reads ../shared/data/cpet/pet.csv (override with PETSUM_PET_CSV). Needs the ray extra.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(
    os.environ.get(
        "PETSUM_PET_CSV", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cpet" / "pet.csv"
    )
)


def first_reports(n: int, dest: Path) -> int:
    """The first `n` reports of the data set as a `question,qid` CSV; returns how many."""
    with DATA.open(encoding="utf-8", newline="") as f, dest.open("w", encoding="utf-8", newline="") as out:
        rows = csv.DictReader(f)
        writer = csv.writer(out)
        writer.writerow(["question", "qid"])
        count = 0
        for count, row in enumerate(rows, 1):
            writer.writerow([row["question"], row.get("qid") or count])
            if count == n:
                break
    return count


def timed(engine_factory, source: Path, out: Path, batch_size: int) -> float:
    """Seconds for one `run_batch`, engine construction (model load) included."""
    from rich.console import Console

    from petsum.batch.local import batch_reports

    start = time.perf_counter()
    batch_reports(engine_factory(), source, out, Console(stderr=True, quiet=True), batch_size=batch_size)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="Run, checkpoint or ONNX export folder.")
    ap.add_argument("--reports", type=int, default=1000)
    ap.add_argument("--num-workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    args = ap.parse_args()
    if not DATA.is_file():
        sys.exit(f"error: {DATA} not found (set PETSUM_PET_CSV)")

    from petsum.batch.local import local_engine
    from petsum.batch.ray_engine import RaySettings, ray_engine, require_ray
    from petsum.summarize.summarizer import Summarizer

    require_ray()
    model = str(Path(args.model).resolve())
    settings = RaySettings(None, args.num_workers, 0.0, model, args.backend, "cpu", args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "reports.csv"
        n = first_reports(args.reports, source)
        outs = {name: Path(tmp) / f"{name}.jsonl" for name in ("local", "ray")}
        seconds = {
            "local": timed(
                lambda: local_engine(Summarizer(model, args.backend, args.batch_size)),
                source,
                outs["local"],
                args.batch_size,
            ),
            "ray": timed(lambda: ray_engine(settings), source, outs["ray"], args.batch_size),
        }
        equal = outs["local"].read_bytes() == outs["ray"].read_bytes()
    print(f"{n} reports, batch {args.batch_size}, {os.cpu_count()} CPUs, model {args.model}")
    print(f"{'engine':<28} {'seconds':>8} {'reports/s':>10}")
    print(f"{'local (one process)':<28} {seconds['local']:>8.1f} {n / seconds['local']:>10.2f}")
    print(f"{f'ray ({args.num_workers} workers)':<28} {seconds['ray']:>8.1f} {n / seconds['ray']:>10.2f}")
    print(
        f"ray / local: {seconds['local'] / seconds['ray']:.2f}x   "
        f"outputs byte-for-byte equal: {'yes' if equal else 'NO'}"
    )


if __name__ == "__main__":
    main()
