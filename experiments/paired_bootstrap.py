"""Is a decoding's change in quality more than noise? Two `petsum evaluate --out` files made from
the same reports (A, the baseline; B, the candidate) are resampled together, report by report with
replacement, and each metric's difference B − A is recomputed on every resample: the 95% interval
of the difference says whether the change could be the draw of reports alone.

    python experiments/paired_bootstrap.py --a OLD.jsonl --b NEW.jsonl [--resamples 1000]

ROUGE-L, MR and ER are means over reports (MR over those whose reference names an organ, ER over
those whose impression does), so they resample from per-report values; BLEU is a corpus score, so
each resample rescored from its sentences (fewer resamples, `--bleu-resamples`). Prints one JSON
object: for each metric A, B, B − A and its 2.5 and 97.5 percentiles. Report text is never printed.
"""

from __future__ import annotations

import argparse
import json
import random

from petsum.evaluation.metrics import _bleu, extra_ratio, missing_ratio, rouge_scores
from petsum.text.lexicon import load_lexicon
from shared.textio import read_jsonl_rows


def per_report(pred: dict, lex) -> tuple[float, float | None, float | None]:
    """(ROUGE-L, MR, ER) of one prediction, by `petsum evaluate`'s own metrics on it alone; None
    where the ratio is undefined for it."""
    hyp, ref = [pred["impression"]], [pred["reference"]]
    mr, er = missing_ratio(hyp, ref, lex), extra_ratio(hyp, ref, lex)
    return rouge_scores(hyp, ref)["rougeL"], mr["mr"] if mr["mr_n"] else None, er["er"] if er["er_n"] else None


def mean_defined(values: list[float | None], idx: list[int]) -> float:
    """Mean of the defined values at `idx` (a resample's reports)."""
    got = [values[i] for i in idx if values[i] is not None]
    return sum(got) / len(got) if got else 0.0


def interval(diffs: list[float]) -> tuple[float, float]:
    """The 2.5 and 97.5 percentiles."""
    s = sorted(diffs)
    return s[int(0.025 * (len(s) - 1))], s[int(0.975 * (len(s) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="baseline predictions (petsum evaluate --out)")
    ap.add_argument("--b", required=True, help="candidate predictions, same reports")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--bleu-resamples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    a = {str(p["id"]): p for p in read_jsonl_rows(args.a)}
    b = {str(p["id"]): p for p in read_jsonl_rows(args.b)}
    if a.keys() != b.keys():
        raise SystemExit("error: the two files do not hold the same report ids")
    ids = sorted(a)
    lex = load_lexicon()
    cols = {name: [per_report(x[i], lex) for i in ids] for name, x in (("a", a), ("b", b))}
    rng = random.Random(args.seed)
    n = len(ids)
    out: dict[str, dict[str, float]] = {}
    for k, metric in enumerate(("rougeL", "mr", "er")):
        va = [row[k] for row in cols["a"]]
        vb = [row[k] for row in cols["b"]]
        full = list(range(n))
        diffs = []
        for _ in range(args.resamples):
            idx = [rng.randrange(n) for _ in range(n)]
            diffs.append(mean_defined(vb, idx) - mean_defined(va, idx))
        A, B = mean_defined(va, full), mean_defined(vb, full)
        lo, hi = interval(diffs)
        out[metric] = {"a": A, "b": B, "diff": B - A, "lo": lo, "hi": hi}
    hyps = {name: [x[i]["impression"] for i in ids] for name, x in (("a", a), ("b", b))}
    refs = [a[i]["reference"] for i in ids]
    diffs = []
    for _ in range(args.bleu_resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        r = [refs[i] for i in idx]
        diffs.append(_bleu([hyps["b"][i] for i in idx], r) - _bleu([hyps["a"][i] for i in idx], r))
    A, B = _bleu(hyps["a"], refs), _bleu(hyps["b"], refs)
    lo, hi = interval(diffs)
    out["bleu"] = {"a": A, "b": B, "diff": B - A, "lo": lo, "hi": hi}
    out["n"] = n
    print(json.dumps(out))


if __name__ == "__main__":
    main()
