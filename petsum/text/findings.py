"""One finding at a time: a report's salient sentences as model inputs, each with the parts of
the impression that are about it.

A region holds several findings (`肝S8段低密度灶…SUVmax4.0。胰头部…`); a small model asked to
summarize them all at once writes frequent impressions about organs the region does not name.
Asked about one finding, it has one organ to copy. A *finding* is a sentence that
`petsum.text.salient` keeps, together with the kept sentences after it that name no organ
(`SUVmax:5.7。` qualifies the finding before it).

For training, the impression is cut into pieces at `；` and `。` (one item often lists several
findings: `脂肪肝；前列腺增生。`), and each piece goes to the finding of the report that shares the most
with it: organs first, then character bigrams. A piece that shares too little with every
finding (a comparison date, a diagnosis the findings do not support) is left out rather than
taught as something to invent.
"""

from __future__ import annotations

from collections import Counter

from petsum.text.lexicon import Lexicon, load_lexicon
from petsum.text.report import drop_headers
from petsum.text.rules import ADVICE, sentences
from petsum.text.salient import salient_sentence

ORGAN_WEIGHT = 10  # one shared organ outweighs any plausible count of shared bigrams in a short piece
MIN_SCORE = 3  # below this a piece matches no finding: three shared bigrams or an organ


def findings(section: str, lexicon: Lexicon | None = None) -> list[str]:
    """The findings of one region's text, in order; [] for a section that reports nothing. Section
    headers (`胸部：`) are left out: `split_sections` leaves none, a caller's own section may."""
    lex = lexicon or load_lexicon()
    out: list[str] = []
    for sentence in sentences(drop_headers(section)):
        kept = salient_sentence(sentence, lex)
        if not kept:
            continue
        if out and not lex.terms_in(kept):
            out[-1] += kept
        else:
            out.append(kept)
    return out


def pieces(item: str) -> list[str]:
    """An impression item cut at `；` and `。`: the findings it lists, one by one, advice
    (`建议随诊。`) kept with the finding before it."""
    out: list[str] = []
    for piece in (p.strip() for p in sentences(item)):
        if out and ADVICE.match(piece):
            out[-1] += piece
        else:
            out.append(piece)
    return out


def bigrams(text: str) -> Counter:
    """Character bigrams with their counts: the text overlap that alignment measures."""
    return Counter(text[i : i + 2] for i in range(len(text) - 1))


def _features(text: str, lex: Lexicon) -> tuple[set[str], Counter]:
    return lex.organs_in(text), bigrams(text)


def match_score(piece: tuple[set[str], Counter], finding: tuple[set[str], Counter]) -> int:
    """How much an impression piece and a finding (each as `_features`: organs, bigrams) have in
    common: shared organs, weighted, plus shared character bigrams (with multiplicity)."""
    return ORGAN_WEIGHT * len(piece[0] & finding[0]) + sum((piece[1] & finding[1]).values())


def align_findings(units: list[str], items: list[str], lexicon: Lexicon | None = None) -> tuple[list[list[str]], int]:
    """(pieces per finding, in impression order; number of pieces that matched no finding).
    Ties go to the earlier finding."""
    lex = lexicon or load_lexicon()
    out: list[list[str]] = [[] for _ in units]
    finding_features = [_features(u, lex) for u in units]  # once per finding, not once per piece
    dropped = 0
    for item in items:
        for piece in pieces(item):
            features = _features(piece, lex)
            scores = [match_score(features, f) for f in finding_features]
            best = max(range(len(units)), key=lambda i: scores[i], default=None)
            if best is None or scores[best] < MIN_SCORE:
                dropped += 1
            else:
                out[best].append(piece)
    return out, dropped


def finding_target(found: list[str]) -> str:
    """A finding's pieces as one target, `；`-separated and ending in `。`; "" for none."""
    if not found:
        return ""
    text = "；".join(p.rstrip("。；;") for p in found)  # advice inside a piece keeps its own `。`
    return text + "。"
