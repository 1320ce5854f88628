"""Training tokens/s of a 4-layer d=256 T5: length bucketing vs padding to max length.

Both modes train the same model size on the same AS-ES rows (USM, `inter`, cPET reports) with
the same rows per batch, interleaved in one process (bucket, pad, bucket, pad, …) so machine
noise hits both alike. Reported: real (non-pad) tokens per second of training-step time.

    python benchmarks/train_throughput.py [--reports 2000] [--steps 30] [--rounds 2]

Reads ../shared/data/cpet/pet.csv (override with PETSUM_PET_CSV).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

DATA = Path(
    os.environ.get(
        "PETSUM_PET_CSV", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cpet" / "pet.csv"
    )
)


def run(reports: int, steps: int, rounds: int, batch_size: int) -> None:
    import torch
    from rich.console import Console

    from petsum.adapter import PetAdapter
    from petsum.data.pairs import load_pairs
    from shared.config import load_config
    from shared.dataset import build_datasets
    from shared.modeling import build_model, train_tokenizer
    from shared.segment import segment_examples
    from shared.trainer import train_model

    torch.set_num_threads(os.cpu_count() or 2)
    adapter = PetAdapter()
    examples = load_pairs(DATA)[:reports]
    cfg = load_config(
        None,
        {
            "model.vocab_size": 4000,
            "model.d_model": 256,
            "model.d_ff": 1024,
            "model.num_layers": 4,
            "model.num_heads": 4,
            "train.max_steps": steps,
            "train.eval_every": 10**6,
            "train.eval_samples": 8,
            "train.eval_gen_samples": 0,
            "train.batch_size": batch_size,
            "train.max_tokens": None,
            "train.warmup_steps": 0,
        },
    )
    tok = train_tokenizer([t for ex in examples for t in (ex.question, ex.target)], 4000, adapter.extra_tokens)
    rows = build_datasets(examples, segment_examples(examples, adapter, cfg.segment), adapter, "usm")["model"]
    quiet = Console(stderr=True, quiet=True)
    results: dict[str, list[tuple[int, int, float]]] = {"bucket": [], "pad_max": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for mode in ("bucket", "pad_max"):
                cfg.train.batching = mode
                out = Path(tmp) / f"{mode}{r}"
                _, st = train_model(build_model(cfg.model, tok, 0), tok, rows, rows[:8], cfg, out, {}, "zh", 1.0, quiet)
                results[mode].append((st.tokens, st.padded_tokens, st.train_s))
                print(
                    f"round {r} {mode:8s} {st.tokens / st.train_s:9.0f} real tok/s  "
                    f"({st.tokens / st.padded_tokens:.0%} of computed tokens are real)",
                    flush=True,
                )
    tps = {m: sum(t for t, _, _ in v) / sum(s for _, _, s in v) for m, v in results.items()}
    print(
        f"rows: {len(rows)} from {len(examples)} reports; "
        f"batch {batch_size} rows; {steps} steps × {rounds} rounds per mode"
    )
    print(
        f"bucket  {tps['bucket']:.0f} real tok/s\n"
        f"pad_max {tps['pad_max']:.0f} real tok/s\n"
        f"ratio bucket/pad_max = {tps['bucket'] / tps['pad_max']:.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"error: {DATA} not found (set PETSUM_PET_CSV)")
    run(a.reports, a.steps, a.rounds, a.batch_size)


if __name__ == "__main__":
    main()
