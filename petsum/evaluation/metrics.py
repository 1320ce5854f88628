"""Impression metrics: BLEU (sacrebleu, Chinese tokenizer), character ROUGE-1/2/L, optional
jieba word ROUGE, the missing ratio (MR, the paper's Eq. 10) with a per-region breakdown, and
its converse, the extra ratio (ER): the share of organs an impression reports that the reference
does not. MR alone rewards naming every organ; ER is what that costs.

Given the findings, also the contradiction rates (`petsum.text.contradiction`): impression items per
100 that assert what their findings negate, of the generated impressions and, as the rule's
yardstick, of the references; and ROUGE-L, BLEU, MR and those rates on the follow-up exams (findings
that compare with an earlier exam) and on the first exams apart, whose impressions differ in kind.

Texts are compared without item numbers and whitespace: `1、` versus `1.` is house style, not
content. Character units leave punctuation out, so `，` matches don't inflate ROUGE.
"""

from __future__ import annotations

from collections import defaultdict

from petsum.text.contradiction import impression_contradictions
from petsum.text.lexicon import REGIONS, Lexicon, load_lexicon
from petsum.text.rules import chars, comparable, finding_organs, is_follow_up
from shared.metrics import corpus_bleu, rouge_l, rouge_n


def rouge_scores(hyps: list[str], refs: list[str], tokens=chars) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 (×100) over pairs, on `tokens(text)` units."""
    if not hyps:
        return {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for h, r in zip(hyps, refs):
        hu, ru = tokens(h), tokens(r)
        sums["rouge1"] += rouge_n(hu, ru, 1)
        sums["rouge2"] += rouge_n(hu, ru, 2)
        sums["rougeL"] += rouge_l(hu, ru)
    return {k: v / len(hyps) for k, v in sums.items()}


def missing_ratio(hyps: list[str], refs: list[str], lexicon: Lexicon | None = None) -> dict:
    """MR = mean over reports of |organs(ref) − organs(hyp)| / |organs(ref)|, organs taken from
    the clauses that report findings. Reports whose reference names no organ are left out
    (the ratio is undefined) and counted in `mr_n`. `by_region` applies the same formula to
    each region's organs, over the reports whose reference has that region."""
    lex = lexicon or load_lexicon()
    total, n = 0.0, 0
    region_sum: dict[str, float] = defaultdict(float)
    region_n: dict[str, int] = defaultdict(int)
    for h, r in zip(hyps, refs):
        ref, got = finding_organs(r, lex), finding_organs(h, lex)
        if not ref:
            continue
        total += len(ref - got) / len(ref)
        n += 1
        for region in REGIONS:
            organs = {o for o in ref if lex.region_of[o] == region}
            if organs:
                region_sum[region] += len(organs - got) / len(organs)
                region_n[region] += 1
    by_region = {r: {"mr": 100 * region_sum[r] / region_n[r], "n": region_n[r]} for r in REGIONS if region_n[r]}
    return {"mr": 100 * total / n if n else 0.0, "mr_n": n, "by_region": by_region}


def extra_ratio(hyps: list[str], refs: list[str], lexicon: Lexicon | None = None) -> dict:
    """ER = mean over reports of |organs(hyp) − organs(ref)| / |organs(hyp)|: the organs reported
    with a finding that the reference does not report. Reports whose generated impression names
    no organ are left out (nothing was claimed) and counted in `er_n`."""
    lex = lexicon or load_lexicon()
    total, n = 0.0, 0
    for h, r in zip(hyps, refs):
        got = finding_organs(h, lex)
        if got:
            total += len(got - finding_organs(r, lex)) / len(got)
            n += 1
    return {"er": 100 * total / n if n else 0.0, "er_n": n}


def _bleu(hyps: list[str], refs: list[str]) -> float:
    """Corpus BLEU (sacrebleu's Chinese tokenizer) without item numbers and whitespace."""
    return corpus_bleu([comparable(h) for h in hyps], [comparable(r) for r in refs], "zh")


def _contradicted_items(texts: list[str], questions: list[str], lex: Lexicon) -> list[tuple[int, int]]:
    """(items, contradicted items) of each impression against its findings."""
    return [impression_contradictions(q, t, lex) for t, q in zip(texts, questions)]


def _per_100(counts: list[tuple[int, int]]) -> tuple[float, int]:
    """(contradicted items per 100 items, items) over (items, contradicted) pairs."""
    items = sum(n for n, _ in counts)
    return (100 * sum(bad for _, bad in counts) / items if items else 0.0), items


def _rates(generated: list[tuple[int, int]], reference: list[tuple[int, int]]) -> dict[str, float | int]:
    rate, n = _per_100(generated)
    ref_rate, ref_n = _per_100(reference)
    return {
        "contradictions": rate,
        "contradiction_n": n,
        "reference_contradictions": ref_rate,
        "reference_contradiction_n": ref_n,
    }


def contradiction_rates(
    hyps: list[str], refs: list[str], questions: list[str], lexicon: Lexicon | None = None
) -> dict[str, float | int]:
    """Generated and reference impression items per 100 that contradict their findings, with the
    item counts (`contradiction_n`, `reference_contradiction_n`). The references' rate bounds the
    rule's false alarms: what it flags there is a false alarm or a report that contradicts itself."""
    lex = lexicon or load_lexicon()
    return _rates(_contradicted_items(hyps, questions, lex), _contradicted_items(refs, questions, lex))


def _subset(
    keep: list[bool],
    hyps: list[str],
    refs: list[str],
    generated: list[tuple[int, int]],
    reference: list[tuple[int, int]],
) -> dict[str, float | int]:
    """n, ROUGE-L, BLEU, MR and the contradiction rates of the reports `keep` marks (zeros when it
    marks none)."""
    pick = [i for i, k in enumerate(keep) if k]
    h, r = [hyps[i] for i in pick], [refs[i] for i in pick]
    rates = _rates([generated[i] for i in pick], [reference[i] for i in pick])
    return {
        "n": len(pick),
        "rougeL": rouge_scores(h, r)["rougeL"],
        "bleu": _bleu(h, r) if pick else 0.0,
        "mr": missing_ratio(h, r)["mr"],
        "contradictions": rates["contradictions"],
        "reference_contradictions": rates["reference_contradictions"],
    }


def evaluate_texts(
    hyps: list[str], refs: list[str], word_rouge: bool = False, questions: list[str] | None = None
) -> dict:
    """All metrics (percentages) of generated impressions against references; with `questions`
    (the findings of each report, in the same order), also the contradiction rates and the
    `follow_up` and `first_exam` subsets."""
    metrics = {
        "n": len(hyps),
        "bleu": _bleu(hyps, refs),
        **rouge_scores(hyps, refs),
    }
    if word_rouge:
        from petsum.text.words import words

        metrics.update({f"word_{k}": v for k, v in rouge_scores(hyps, refs, lambda t: words(comparable(t))).items()})
    mr = missing_ratio(hyps, refs)
    metrics["mr"], metrics["mr_n"], metrics["mr_by_region"] = mr["mr"], mr["mr_n"], mr["by_region"]
    metrics.update(extra_ratio(hyps, refs))
    if questions is not None:
        if len(questions) != len(hyps):
            raise ValueError(f"{len(questions)} findings for {len(hyps)} impressions")
        lex = load_lexicon()
        generated, reference = _contradicted_items(hyps, questions, lex), _contradicted_items(refs, questions, lex)
        metrics.update(_rates(generated, reference))
        follow_up = [is_follow_up(q) for q in questions]
        metrics["follow_up"] = _subset(follow_up, hyps, refs, generated, reference)
        metrics["first_exam"] = _subset([not f for f in follow_up], hyps, refs, generated, reference)
    return metrics
