"""Which consensus decoding keeps the 24-draw quality at a fraction of its cost? Scores, on
validation reports, greedy decoding, today's default (24 draws for every finding that votes) and
gated policies: draws only for findings whose greedy confidence is below `--below`, `--draws`
of them. A draw is a function of its input, its index and the seed alone (`shared.generate.
sample_key`), so the first n of 24 draws are exactly what n-draw decoding draws: each token row is
decoded once and cached, and every policy is scored on the same draws.

    python experiments/consensus_gate.py --model EXPORT --data runs/split/val.csv --reports 500 \\
        --below 1,0.9,0.8,0.7 --draws 24,12,8

Prints one JSON line per policy: the metrics (BLEU, ROUGE-L, MR, ER), the share of findings that
drew, and the draws decoded per report. Report text is never printed.
"""

from __future__ import annotations

import argparse
import json
import time

from petsum.data.pairs import load_pairs
from petsum.evaluation.scoring import evaluate_texts
from petsum.summarize.summarizer import Summarizer
from shared.generate import Decoded


class Cached:
    """A `TokenGenerator` that decodes each (source, draw key) once: greedy rows by source, draws
    by their key. Counts the rows it was asked for, decoded or not."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.rows: dict = {}
        self.asked = {"greedy": 0, "draws": 0}

    def generate_tokens(self, sources, max_new_tokens, num_beams, no_repeat=0, bias=None, sampling=None):
        keys = [(tuple(s), None if sampling is None else sampling.keys[r]) for r, s in enumerate(sources)]
        self.asked["draws" if sampling else "greedy"] += len(sources)
        todo = [r for r, k in enumerate(keys) if k not in self.rows]
        if todo:
            sub = None
            if sampling is not None:
                from shared.generate import Sampling

                sub = Sampling(tuple(sampling.keys[r] for r in todo), sampling.epsilon)
            got = self.inner.generate_tokens(
                [sources[r] for r in todo], max_new_tokens, num_beams, no_repeat, bias, sub
            )
            probability = getattr(got, "probability", None)
            for k, (r, row) in enumerate(zip(todo, got)):
                self.rows[keys[r]] = (row, None if probability is None else probability[k])
        out = Decoded(self.rows[k][0] for k in keys)
        if sampling is None:
            out.probability = [self.rows[k][1] for k in keys]
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--reports", type=int, default=500)
    ap.add_argument("--below", default="1,0.9,0.8,0.7")
    ap.add_argument("--draws", default="24,12,8")
    args = ap.parse_args()
    reports = load_pairs(args.data)[: args.reports]
    summarizer = Summarizer(args.model)
    cached = Cached(summarizer.models.models["model"])
    summarizer.models.models["model"] = cached
    questions, refs = [r.question for r in reports], [r.target for r in reports]

    def run(draws: int, below: float) -> None:
        summarizer.tune(consensus_samples=draws, consensus_below=below)
        cached.asked = {"greedy": 0, "draws": 0}
        start = time.perf_counter()
        texts = []
        for i in range(0, len(questions), 32):
            texts += [getattr(s, "impression", "") for s in summarizer.summarize(questions[i : i + 32])]
        seconds = time.perf_counter() - start
        metrics = evaluate_texts(texts, refs, False, questions)
        keep = {k: metrics[k] for k in ("bleu", "rougeL", "mr", "er", "contradictions") if k in metrics}
        line = {
            "draws": draws,
            "below": below,
            **keep,
            "drawing_findings": round(cached.asked["draws"] / max(1, draws) / max(1, cached.asked["greedy"]), 3),
            "draws_per_report": round(cached.asked["draws"] / len(questions), 1),
            "seconds_cached": round(seconds, 1),
        }
        print(json.dumps(line), flush=True)

    run(0, 1.0)
    for draws in [int(d) for d in args.draws.split(",")]:
        for below in [float(b) for b in args.below.split(",")]:
            run(draws, below)


if __name__ == "__main__":
    main()
