"""Text-similarity scores used by the `bleu`/`rouge` strategies and by validation.

`units` splits text into CJK characters and ASCII words/numbers, so Chinese and English are
scored the same way without a word segmenter (rouge_score's default tokenizer drops CJK).
"""

from __future__ import annotations

import math
import re
from collections import Counter

_UNIT = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z]+|\d+(?:[.,]\d+)*|[^\sA-Za-z\d]")


def units(text: str) -> list[str]:
    return _UNIT.findall(text)


def _ngrams(toks: list[str], n: int) -> Counter:
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def ngram_precision(hyp: str, ref: str, max_n: int = 4) -> float:
    """Smoothed geometric mean of clipped n-gram precisions of `hyp` against `ref`, in [0, 1].

    This is BLEU without the brevity penalty. Segmentation compares a short piece with a long
    input, where the penalty would push every piece's BLEU to ~0 and erase the signal."""
    h, r = units(hyp), units(ref)
    if not h:
        return 0.0
    logs = []
    for n in range(1, max_n + 1):
        hn = _ngrams(h, n)
        total = sum(hn.values())
        if total == 0:
            break  # piece shorter than n: average over the orders it has
        rn = _ngrams(r, n)
        match = sum(min(c, rn[g]) for g, c in hn.items())
        logs.append(math.log((match + 1) / (total + 1)) if n > 1 else math.log(max(match, 1e-9) / total))
    return math.exp(sum(logs) / len(logs))


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence; the same whichever text comes first."""
    if len(a) > len(b):
        a, b = b, a
    prev = [0] * (len(a) + 1)
    for y in b:
        cur = [0]
        for j, x in enumerate(a):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_precision(hyp: str, ref: str) -> float:
    """Share of the piece's units that lie on a common subsequence with the input.

    Precision, not F: a piece is 'extractive' when its content comes from the input, and the
    input's length must not dilute that."""
    h = units(hyp)
    return lcs_length(h, units(ref)) / len(h) if h else 0.0


def rouge_n(hyp_units: list[str], ref_units: list[str], n: int) -> float:
    """ROUGE-N F1 (×100) over pre-split units."""
    h, r = _ngrams(hyp_units, n), _ngrams(ref_units, n)
    match = sum((h & r).values())
    if not match:
        return 0.0
    p, rc = match / sum(h.values()), match / sum(r.values())
    return 100 * 2 * p * rc / (p + rc)


def rouge_l(hyp_units: list[str], ref_units: list[str]) -> float:
    """ROUGE-L F1 (×100) over pre-split units."""
    return rouge_l_of(lcs_length(hyp_units, ref_units), len(hyp_units), len(ref_units))


def rouge_l_of(lcs: int, hyp_len: int, ref_len: int) -> float:
    """ROUGE-L F1 (×100) from a common subsequence's length, for callers that reuse one LCS for
    both directions: the float is exactly `rouge_l`'s."""
    if not lcs:
        return 0.0
    p, r = lcs / hyp_len, lcs / ref_len
    return 100 * 2 * p * r / (p + r)


def corpus_bleu(hyps: list[str], refs: list[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (×100) by sacrebleu; `tokenize="zh"` for Chinese."""
    from sacrebleu.metrics import BLEU

    if not hyps:
        return 0.0
    return float(BLEU(tokenize=tokenize).corpus_score(hyps, [refs]).score)
