"""Follow-up exams against first exams: how the impressions open and whether they keep each
lesion's change (issue 35).

    # score a `petsum evaluate --out` file (JSONL: id, impression, reference) with its CSV
    python experiments/follow_up_check.py score --predictions /tmp/pred.jsonl --data runs/split/val.csv

    # decode once, then assemble each report with every opening rule and `keep_change` setting
    OMP_NUM_THREADS=1 python experiments/follow_up_check.py rerun --data runs/split/val.csv --consensus 0

For follow-ups (`petsum.text.rules.is_follow_up` on the findings) and first exams apart it prints
ROUGE-L, the share of impressions that open with a comparison line (generated and reference), and,
for follow-up findings that state a change, the share whose generated items (and, as the ceiling,
whose reference items) keep its direction; items are matched to findings as training matches them
(`petsum.text.findings.align_findings`). `rerun` reimplements the summarizer's assembly (decoding,
guard, `assemble`) so that the opening line and `petsum.assemble.follow_up.keep_change` can be tried
before they are wired into `petsum.summarize.summarizer`; its `old` rows are the system without
either. Only numbers are printed, never report text.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from petsum.assemble.fitted import class_scores
from petsum.assemble.follow_up import keep_change, stated
from petsum.assemble.opening import DEFAULT_LINE, OpeningLine, opening_for, opening_line
from petsum.data.pairs import load_pairs
from petsum.text.findings import align_findings, findings
from petsum.text.report import impression_items, normalize, split_sections
from petsum.text.rules import changes, is_follow_up


@dataclass
class Report:
    question: str
    reference: str
    hypothesis: str


def _directions(text: str) -> set[tuple[str, str]]:
    """Changes `text` states, by either reading (`rules.changes` and `follow_up.stated`), so that
    neither judges its own output alone."""
    return changes(text) | stated(text).changes


def change_kept(reports: list[Report], which: str) -> tuple[int, int, int]:
    """(follow-up findings that state a change, those `which` impression mentions, those whose
    matched items state one of its directions)."""
    n = mentioned = kept = 0
    for r in reports:
        units = [f for _, body in split_sections(r.question) for f in findings(body)]
        if not units:
            continue
        items, _ = impression_items(getattr(r, which))
        aligned, _ = align_findings(units, items)
        for finding, pieces in zip(units, aligned):
            direction = _directions(finding)
            if not direction:
                continue
            n += 1
            if pieces:
                mentioned += 1
                kept += bool(direction & _directions("；".join(pieces)))
    return n, mentioned, kept


def summary(reports: list[Report]) -> dict:
    """The numbers this experiment compares, for follow-ups and first exams apart."""
    from petsum.evaluation.metrics import rouge_scores

    out = {}
    for name, keep in (("follow_up", True), ("first_exam", False)):
        subset = [r for r in reports if is_follow_up(r.question) == keep]
        if not subset:
            continue
        row = {
            "n": len(subset),
            "rougeL": round(rouge_scores([r.hypothesis for r in subset], [r.reference for r in subset])["rougeL"], 2),
            "opens_generated": round(np.mean([opening_line(r.hypothesis) is not None for r in subset]), 3),
            "opens_reference": round(np.mean([opening_line(r.reference) is not None for r in subset]), 3),
        }
        if keep:
            n, gen_mentioned, gen_kept = change_kept(subset, "hypothesis")
            _, ref_mentioned, ref_kept = change_kept(subset, "reference")
            row |= {
                "changed_findings": n,
                "kept_generated": round(gen_kept / max(1, gen_mentioned), 3),
                "mentioned_generated": gen_mentioned,
                "kept_reference": round(ref_kept / max(1, ref_mentioned), 3),
                "mentioned_reference": ref_mentioned,
            }
        out[name] = row
    return out


def score(args: argparse.Namespace) -> None:
    by_id = {ex.id: ex for ex in load_pairs(args.data)}
    reports = []
    with open(args.predictions, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            if "impression" not in p:
                continue  # a failed record
            source = by_id.get(str(p["id"]))
            if source is None:
                raise SystemExit(f"error: a prediction id is not in {args.data}")
            reports.append(Report(normalize(source.question), p["reference"], p["impression"]))
    print(json.dumps(summary(reports), ensure_ascii=False))


def old_choose(fit: OpeningLine | None, sections: list[tuple[str, str]], threshold: float) -> str | None:
    """The opening rule before issue 35: a line only where the fit finds a comparison more likely
    than `1 - threshold` (0.5: the old rule; 1.0: always, as `OpeningLine.choose` does now)."""
    if fit is None:
        return opening_for(None, sections)
    line = fit.choose(sections)
    if line is None:
        return None
    logits = class_scores(fit.features, fit.weights, fit.bias, _features(sections))
    p = np.exp(logits - logits.max())
    return line if p[0] / p.sum() < threshold else None


def _features(sections: list[tuple[str, str]]) -> set[str]:
    from petsum.assemble.closing import features

    return features(sections)


def rerun(args: argparse.Namespace) -> None:
    from petsum.assemble.impression import assemble
    from petsum.assemble.order import Source
    from petsum.summarize.grounding import ground
    from petsum.summarize.summarizer import Summarizer, bounded_inputs, sections_of
    from shared.generate import generate
    from shared.textio import InputError

    summarizer = Summarizer.load(args.model, consensus=args.consensus)
    records = load_pairs(args.data)
    if args.follow_ups_only:
        records = [r for r in records if is_follow_up(normalize(r.question))]
    records = records[: args.limit] if args.limit else records
    reports, inputs = [], []
    for i, r in enumerate(records):
        try:
            sections, _ = sections_of(r.question)
        except InputError:
            continue
        reports.append((normalize(r.question), r.target, sections))
        asked = bounded_inputs(i, sections, summarizer.source, [])
        inputs += [(len(reports) - 1, region, questions) for _, region, questions in asked]
    results = iter(
        generate(
            summarizer.models,
            [q for _, _, qs in inputs for q in qs],
            summarizer.adapter,
            summarizer.models.generate,
            summarizer.vote,
            summarizer.references,
        )
    )
    # report → (region, finding, what the guard kept) per model call, in call order
    said: list[list[tuple[str, str, str]]] = [[] for _ in reports]
    for i, region, questions in inputs:
        for question in questions:
            res = next(results)
            text = summarizer.adapter.join([s.text for s in res.segments])
            said[i].append((region, question, ground(question, text, cut=summarizer.trim)[0]))

    openings: dict[str, Callable[[list[tuple[str, str]]], str | None]] = {
        "old": lambda s: old_choose(summarizer.opening, s, 0.5),
        "p0<0.8": lambda s: old_choose(summarizer.opening, s, 0.8),
        "always": lambda s: opening_for(summarizer.opening, s),
        "default": lambda s: DEFAULT_LINE if opening_for(None, s) else None,
    }
    keeps: dict[str, Callable[[str, str], str] | None] = {
        "none": None,
        "values+stable": keep_change,
        "stable": lambda f, i: keep_change(f, i, values=False),
        "changes": lambda f, i: keep_change(f, i, values=False, stable=False),
    }
    table = {}
    for o_name, open_rule in openings.items():
        for k_name, keep in keeps.items():
            if o_name not in ("always", "old") and k_name != "none":
                continue  # the wording alone is what these rows compare
            out = []
            for (question, reference, sections), calls in zip(reports, said):
                follow_up = any(is_follow_up(body) for _, body in sections)
                outputs = [
                    (region, keep(finding, text) if keep and follow_up else text) for region, finding, text in calls
                ]
                sources = [Source(region, finding, k) for k, (region, finding, _) in enumerate(calls)]
                closing = summarizer.closing.choose(sections) if summarizer.closing else None
                impression = assemble(
                    outputs, {r for r, _ in sections}, summarizer.item_order, closing, sources, open_rule(sections)
                )
                out.append(Report(question, reference, impression))
            table[f"{o_name} / {k_name}"] = summary(out)
    for name, row in table.items():
        print(name, json.dumps(row, ensure_ascii=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="score a `petsum evaluate --out` file")
    s.add_argument("--predictions", required=True)
    s.add_argument("--data", required=True, help="the CSV the predictions were made from")
    r = sub.add_parser("rerun", help="decode once, assemble with each opening rule and keep_change setting")
    r.add_argument("--data", required=True)
    r.add_argument("--model", default=None, help="a model folder (default: the shipped model)")
    r.add_argument("--consensus", type=int, default=0, help="draws per finding (0: greedy)")
    r.add_argument("--limit", type=int, default=0, help="the first N reports only")
    r.add_argument("--follow-ups-only", action="store_true", help="decode the follow-up reports only")
    args = ap.parse_args()
    score(args) if args.command == "score" else rerun(args)


if __name__ == "__main__":
    main()
