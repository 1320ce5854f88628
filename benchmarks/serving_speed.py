"""How fast one model serves, as a user meets it: per-report latency (one report at a time through
`Summarizer.summarize`, after the model is loaded) and `petsum batch` throughput on the same
reports, in one process.

    python benchmarks/serving_speed.py [--model petsum/models/default [OTHER ...]] [--data runs/compare/split/test.csv]
        [--reports 200] [--backend auto] [--threads 2] [--no-repeat-ngram 4 0] [--normal-penalty 3 0] [--consensus 12 0]

Prints latency median / mean / p90 / max, and batch reports/s (model load excluded: the batch
engine is built on the already loaded model), for each n-gram ban, "no anomaly" penalty and
number of consensus draws given (default: the model's own), for each model given, one after the
other in one process. Report text is never printed.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def latencies(summarizer, reports: list[str]) -> list[float]:
    out = []
    for text in reports:
        start = time.perf_counter()
        summarizer.summarize([text])
        out.append(time.perf_counter() - start)
    return out


def batch_rate(summarizer, source: Path) -> tuple[int, float]:
    """(records written, reports/s) of `petsum batch`'s local engine over `source`."""
    from rich.console import Console

    from petsum.batch.local import batch_reports, local_engine

    with tempfile.TemporaryDirectory() as tmp:
        stats = batch_reports(local_engine(summarizer), source, Path(tmp) / "out.jsonl", Console(quiet=True))
    return stats.written, stats.written / stats.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model",
        nargs="+",
        default=[str(ROOT / "petsum" / "models" / "default")],
        help="one or more models, measured in turn",
    )
    ap.add_argument("--data", type=Path, default=ROOT / "runs" / "compare" / "split" / "test.csv")
    ap.add_argument("--reports", type=int, default=200)
    ap.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-repeat-ngram", type=int, nargs="+", help="decode with each of these bans in turn")
    ap.add_argument(
        "--normal-penalty", type=float, nargs="+", help="and each of these penalties on the 'no anomaly' answer"
    )
    ap.add_argument(
        "--consensus",
        type=int,
        nargs="+",
        help="and each of these numbers of consensus draws (generate.consensus_samples)",
    )
    args = ap.parse_args()

    import csv

    import torch

    from petsum.summarize.summarizer import Summarizer

    torch.set_num_threads(args.threads)
    with args.data.open(encoding="utf-8", newline="") as f:
        rows = [r for _, r in zip(range(args.reports), csv.DictReader(f))]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "reports.csv"
        with source.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["question", "qid"])
            w.writerows([r["question"], r["qid"]] for r in rows)
        for model in args.model:
            measure(
                Summarizer(Path(model), args.backend, None, "cpu", args.threads),
                model,
                [r["question"] for r in rows],
                source,
                args,
            )


def measure(summarizer, name: str, reports: list[str], source: Path, args: argparse.Namespace) -> None:
    own = summarizer.models.generate
    print(f"model {name} ({summarizer.models.backend}, {args.threads} threads), {len(reports)} reports")
    for ban, penalty, draws in itertools.product(
        args.no_repeat_ngram or [None], args.normal_penalty or [None], args.consensus or [None]
    ):
        summarizer.models.generate = own
        summarizer.tune(penalty, no_repeat_ngram_size=ban, consensus_samples=draws)
        report_speed(summarizer, reports, source)


def report_speed(summarizer, reports: list[str], source: Path) -> None:
    cfg = summarizer.models.generate
    lat = sorted(latencies(summarizer, reports))
    n, rate = batch_rate(summarizer, source)
    p90 = lat[min(len(lat) - 1, int(0.9 * len(lat)))]
    print(
        f"  no_repeat_ngram_size {cfg.no_repeat_ngram_size}, first_token_bias {cfg.first_token_bias}, "
        f"eos_bias {cfg.eos_bias}, "
        f"consensus_samples {cfg.consensus_samples}: "
        f"latency median {statistics.median(lat):.3f} s, mean {statistics.mean(lat):.3f} s, "
        f"p90 {p90:.3f} s, max {lat[-1]:.3f} s; "
        f"petsum batch {n} records, {rate:.2f} reports/s"
    )


if __name__ == "__main__":
    main()
