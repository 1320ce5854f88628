"""Impression metrics: BLEU (sacrebleu, Chinese tokenizer), character ROUGE-1/2/L, optional
jieba word ROUGE, the missing ratio (MR, the paper's Eq. 10) with a per-region breakdown, and
its converse, the extra ratio (ER): the share of organs an impression reports that the reference
does not. MR alone rewards naming every organ; ER is what that costs.

Texts are compared without item numbers and whitespace: `1、` versus `1.` is house style, not
content. Character units leave punctuation out, so `，` matches don't inflate ROUGE.
"""

from __future__ import annotations

from collections import defaultdict

from petsum.text.lexicon import REGIONS, Lexicon, load_lexicon
from petsum.text.rules import chars, comparable, finding_organs
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


def evaluate_texts(hyps: list[str], refs: list[str], word_rouge: bool = False) -> dict:
    """All metrics (percentages) of generated impressions against references."""
    metrics = {
        "n": len(hyps),
        "bleu": corpus_bleu([comparable(h) for h in hyps], [comparable(r) for r in refs], "zh"),
        **rouge_scores(hyps, refs),
    }
    if word_rouge:
        from petsum.text.words import words

        metrics.update({f"word_{k}": v for k, v in rouge_scores(hyps, refs, lambda t: words(comparable(t))).items()})
    mr = missing_ratio(hyps, refs)
    metrics["mr"], metrics["mr_n"], metrics["mr_by_region"] = mr["mr"], mr["mr_n"], mr["by_region"]
    metrics.update(extra_ratio(hyps, refs))
    return metrics
