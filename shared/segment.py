"""Tag each sub-sentence ES (extractive) or AS (abstractive) and merge runs of equal tags.

Strategies (the paper's Eq. 1–2 and 5–6), each giving per-piece scores s_j of one target:
  inter            alternate ES, AS, ES, …
  ent / ent_pre    mean token entropy (fine-tuned / not fine-tuned model); AS where s_j > β·mean(s)
  loss             mean token loss under the fine-tuned model;            AS where s_j > β·mean(s)
  bleu / rouge     similarity of the piece to the input;                  AS where s_j < β·mean(s)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from shared.config import SegmentConfig, Strategy
from shared.metrics import ngram_precision, rouge_l_precision
from shared.schema import AS, ES, Example, Segment, Tag
from shared.text import join_with_spans

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from shared.adapter import TaskAdapter

MODEL_STRATEGIES: dict[str, str] = {"ent": "entropy", "ent_pre": "entropy", "loss": "loss"}


def tag_by_scores(scores: list[float], beta: float, high_is_abstractive: bool) -> list[Tag]:
    known = [s for s in scores if not math.isnan(s)]
    mean = sum(known) / len(known) if known else 0.0
    filled = [mean if math.isnan(s) else s for s in scores]
    if high_is_abstractive:
        return [AS if s > beta * mean else ES for s in filled]
    return [AS if s < beta * mean else ES for s in filled]


def alternate(n: int) -> list[Tag]:
    return [ES if j % 2 == 0 else AS for j in range(n)]


def merge(pieces: list[str], tags: list[Tag], join) -> list[Segment]:
    """Adjacent pieces with the same tag become one segment."""
    runs: list[tuple[Tag, list[str]]] = []
    for piece, tag in zip(pieces, tags):
        if runs and runs[-1][0] == tag:
            runs[-1][1].append(piece)
        else:
            runs.append((tag, [piece]))
    return [Segment(tag, join(parts)) for tag, parts in runs]


def similarity_scores(strategy: Strategy, question: str, pieces: list[str]) -> list[float]:
    fn = ngram_precision if strategy == "bleu" else rouge_l_precision
    return [fn(p, question) for p in pieces]


def segment_examples(
    examples: list[Example],
    adapter: "TaskAdapter",
    cfg: SegmentConfig,
    scorer: "PreTrainedModel | None" = None,
    tokenizer: "PreTrainedTokenizerBase | None" = None,
    max_source_len: int = 512,
    max_target_len: int = 128,
) -> list[list[Segment]]:
    """Split every target into sub-sentences, tag them with `cfg.strategy`, merge equal runs.
    An example with a fixed `tag` is one segment with that tag, whatever the strategy."""
    free = [i for i, ex in enumerate(examples) if ex.tag is None]
    out: list[list[Segment]] = [[Segment(ex.tag, ex.target)] if ex.tag else [] for ex in examples]
    tagged = _segment_free([examples[i] for i in free], adapter, cfg, scorer, tokenizer, max_source_len, max_target_len)
    for i, segs in zip(free, tagged):
        out[i] = segs
    return out


def _segment_free(examples, adapter, cfg, scorer, tokenizer, max_source_len, max_target_len) -> list[list[Segment]]:
    pieces = [adapter.split_target(ex.target) for ex in examples]
    if cfg.strategy == "inter":
        tags = [alternate(len(p)) for p in pieces]
    elif cfg.strategy in MODEL_STRATEGIES:
        if scorer is None or tokenizer is None:
            raise ValueError(f"strategy {cfg.strategy!r} needs a scoring model")
        joined = [join_with_spans(p) for p in pieces]
        scores = _score_nonempty(examples, joined, scorer, tokenizer, cfg, max_source_len, max_target_len)
        tags = [tag_by_scores(s, cfg.beta, True) for s in scores]
    else:
        tags = [
            tag_by_scores(similarity_scores(cfg.strategy, ex.question, p), cfg.beta, False)
            for ex, p in zip(examples, pieces)
        ]
    return [merge(p, t, adapter.join) for p, t in zip(pieces, tags)]


def _score_nonempty(examples, joined, scorer, tokenizer, cfg, max_source_len, max_target_len) -> list[list[float]]:
    from shared.scoring import piece_scores

    keep = [i for i, (text, _) in enumerate(joined) if text]
    got = piece_scores(
        scorer,
        tokenizer,
        [examples[i].question for i in keep],
        [joined[i][0] for i in keep],
        [joined[i][1] for i in keep],
        kind=MODEL_STRATEGIES[cfg.strategy],  # type: ignore[arg-type]
        batch_size=cfg.score_batch_size,
        max_source_len=max_source_len,
        max_target_len=max_target_len,
    )
    out: list[list[float]] = [[] for _ in joined]
    for i, s in zip(keep, got):
        out[i] = s
    return out
