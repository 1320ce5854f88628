"""Where a PET model's missed organs come from: per region, how often it answers "no anomaly"
for a region whose reference impression has items, and how often, when it does report such a
region, it names one of the reference's organs.

    python experiments/region_calls.py --data runs/compare/split/val.csv [--model petsum/models/default]
        [--limit 300] [--normal-penalty P]

The model reads each region as `petsum` serves it (its own source and decoding settings; a
salient-source model is not asked about a region with nothing to report, which counts as a
normal answer). Prints one row of counts per region; report text is never printed.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def region_calls(summarizer, reports) -> dict[str, Counter]:
    """region → counts: `abnormal` (reference has items), `called_normal`, `reported`, `named`
    (reported and naming a reference organ), `normal` (reference has none), `false_call`."""
    from petsum.assemble.impression import is_normal
    from petsum.data.instances import NORMAL, report_instances
    from petsum.text.lexicon import load_lexicon

    lex = load_lexicon()
    counts: dict[str, Counter] = {}
    for report, summary in zip(reports, summarizer.summarize([r.question for r in reports])):
        if isinstance(summary, Exception):
            continue
        abnormal, normal = report_instances(report)  # region-level references, whatever the model reads
        refs = {ex.id.split("#", 1)[1]: ex.target for ex in abnormal + normal}
        for region in summary.regions:
            ref = refs.get(region.region)
            if ref is None:
                continue
            c = counts.setdefault(region.region, Counter())
            said_normal = is_normal(region.text)
            if ref == NORMAL:
                c["normal"] += 1
                c["false_call"] += not said_normal
            else:
                c["abnormal"] += 1
                c["called_normal"] += said_normal
                c["reported"] += not said_normal
                c["named"] += not said_normal and bool(lex.organs_in(ref) & lex.organs_in(region.text))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="CSV with question and answer (e.g. val.csv of petsum split)")
    parser.add_argument("--model", default=str(ROOT / "petsum" / "models" / "default"))
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--normal-penalty", type=float, help="instead of the model's own (0: none)")
    args = parser.parse_args()

    from petsum.data.pairs import load_pairs
    from petsum.summarize.summarizer import Summarizer

    summarizer = Summarizer(Path(args.model))
    summarizer.tune(args.normal_penalty)
    counts = region_calls(summarizer, load_pairs(args.data)[: args.limit])
    print(
        "region | reference abnormal | called normal | reported, naming a reference organ | "
        "reference normal | reported anyway"
    )
    total = Counter()
    for region, c in sorted(counts.items()):
        total.update(c)
        print(
            f"{region} | {c['abnormal']} | {c['called_normal']} | "
            f"{c['named']} of {c['reported']} | {c['normal']} | {c['false_call']}"
        )
    print(
        f"all | {total['abnormal']} | {total['called_normal']} | "
        f"{total['named']} of {total['reported']} | {total['normal']} | {total['false_call']}"
    )


if __name__ == "__main__":
    main()
