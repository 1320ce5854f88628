"""ES/AS tagging and merging (shared.segment) and the model-based piece scores (shared.scoring)."""

from __future__ import annotations

import math
import re

import pytest
from tinymodels import one_torch_thread, tiny_model, tiny_tokenizer

from shared.adapter import StopTokenAdapter
from shared.config import SegmentConfig
from shared.schema import AS, ES, Example, Segment
from shared.segment import alternate, merge, segment_examples, similarity_scores, tag_by_scores
from shared.text import join_segments, join_with_spans

NAN = float("nan")
ZH = StopTokenAdapter(bleu_tokenize="zh")

# --- tag_by_scores -----------------------------------------------------------------------------


def test_high_is_abstractive_beta_one():
    # mean 2: AS where s > 2
    assert tag_by_scores([1, 3, 2], 1.0, True) == [ES, AS, ES]


def test_high_is_abstractive_small_beta_makes_everything_as():
    # threshold 0.4 * 2 = 0.8: every score is above it
    assert tag_by_scores([1, 3, 2], 0.4, True) == [AS, AS, AS]


def test_high_is_abstractive_large_beta_makes_everything_es():
    # threshold 1.6 * 2 = 3.2
    assert tag_by_scores([1, 3, 2], 1.6, True) == [ES, ES, ES]


def test_high_is_abstractive_beta_between():
    # threshold 0.75 * 2 = 1.5: 1 is ES, 3 and 2 are AS
    assert tag_by_scores([1, 3, 2], 0.75, True) == [ES, AS, AS]


def test_low_is_abstractive():
    # mean 2: AS where s < 2
    assert tag_by_scores([1, 3, 2], 1.0, False) == [AS, ES, ES]
    # threshold 1.25 * 2 = 2.5: 1 and 2 below
    assert tag_by_scores([1, 3, 2], 1.25, False) == [AS, ES, AS]
    # threshold 0.4 * 2 = 0.8: nothing below
    assert tag_by_scores([1, 3, 2], 0.4, False) == [ES, ES, ES]


def test_nan_counts_as_the_mean_of_the_others():
    # known mean (1 + 3) / 2 = 2; the NaN piece scores 2 and is not above 2
    assert tag_by_scores([1, NAN, 3], 1.0, True) == [ES, ES, AS]
    assert tag_by_scores([1, NAN, 3], 1.0, False) == [AS, ES, ES]
    # beta 0.9: threshold 1.8 and the NaN piece (2) is above it
    assert tag_by_scores([1, NAN, 3], 0.9, True) == [ES, AS, AS]


def test_nan_does_not_shift_the_mean():
    # known mean (1 + 2 + 3) / 3 = 2, so the 2 is not above it; were the NaN counted as 0 the
    # mean would be 1.5 and the 2 would turn AS
    assert tag_by_scores([1, 2, NAN, 3], 1.0, True) == [ES, ES, ES, AS]


def test_all_nan_and_empty():
    assert tag_by_scores([NAN, NAN], 1.0, True) == [ES, ES]
    assert tag_by_scores([], 1.0, True) == []


def test_equal_scores_are_es_at_beta_one():
    assert tag_by_scores([2, 2, 2], 1.0, True) == [ES, ES, ES]
    assert tag_by_scores([2, 2, 2], 1.0, False) == [ES, ES, ES]


# --- alternate / merge -------------------------------------------------------------------------


def test_alternate():
    assert alternate(5) == [ES, AS, ES, AS, ES]
    assert alternate(1) == [ES]
    assert alternate(0) == []


def test_merge_joins_adjacent_equal_tags():
    pieces = ["甲，", "乙，", "丙。", "丁，", "戊。"]
    got = merge(pieces, [ES, ES, AS, ES, ES], join_segments)
    assert got == [Segment(ES, "甲，乙，"), Segment(AS, "丙。"), Segment(ES, "丁，戊。")]


def test_merge_uses_the_join_function():
    got = merge(["a,", "b.", "c."], [AS, AS, ES], lambda parts: "+".join(parts))
    assert got == [Segment(AS, "a,+b."), Segment(ES, "c.")]


def test_merge_english_join_spaces():
    got = merge(["Hello,", "world.", "Yes."], [ES, ES, AS], join_segments)
    assert got == [Segment(ES, "Hello, world."), Segment(AS, "Yes.")]


def test_merge_nothing():
    assert merge([], [], join_segments) == []


# --- segment_examples: inter / bleu / rouge -----------------------------------------------------

COPY_THEN_NEW = Example("p1", "胰头部见软组织肿块，放射性摄取增高。", "胰头部软组织肿块，考虑恶性肿瘤。")
NEW_THEN_COPY = Example(
    "p2", "胰头部见软组织肿块，放射性摄取增高。", "考虑恶性肿瘤，胰头部软组织肿块，放射性摄取增高。"
)


def test_similarity_scores_hand_checked():
    pieces = ["胰头部软组织肿块，", "考虑恶性肿瘤。"]
    rouge = similarity_scores("rouge", COPY_THEN_NEW.question, pieces)
    assert rouge == pytest.approx([1.0, 2 / 7])
    bleu = similarity_scores("bleu", COPY_THEN_NEW.question, pieces)
    assert bleu[0] > bleu[1]


def test_inter_alternates_and_merges_nothing():
    got = segment_examples([COPY_THEN_NEW, NEW_THEN_COPY], ZH, SegmentConfig(strategy="inter"))
    assert got == [
        [Segment(ES, "胰头部软组织肿块，"), Segment(AS, "考虑恶性肿瘤。")],
        [Segment(ES, "考虑恶性肿瘤，"), Segment(AS, "胰头部软组织肿块，"), Segment(ES, "放射性摄取增高。")],
    ]


@pytest.mark.parametrize("strategy", ["rouge", "bleu"])
def test_similarity_copied_piece_is_es_new_content_is_as(strategy):
    got = segment_examples([COPY_THEN_NEW, NEW_THEN_COPY], ZH, SegmentConfig(strategy=strategy))
    assert got == [
        [Segment(ES, "胰头部软组织肿块，"), Segment(AS, "考虑恶性肿瘤。")],
        # the two copied pieces merge into one ES segment
        [Segment(AS, "考虑恶性肿瘤，"), Segment(ES, "胰头部软组织肿块，放射性摄取增高。")],
    ]


def test_rouge_scores_with_numbered_items():
    ex = Example(
        "p3", "肝右叶见低密度结节，SUVmax：5.6。胆总管扩张。", "1、肝右叶低密度结节，转移可能大。  2、胆总管扩张。"
    )
    # rouge-L precision: 9/11, 1/6 (only 。), 6/8 → mean 0.578; only the middle piece is below it
    got = segment_examples([ex], ZH, SegmentConfig(strategy="rouge"))
    assert got == [[Segment(ES, "1、肝右叶低密度结节，"), Segment(AS, "转移可能大。"), Segment(ES, "2、胆总管扩张。")]]


def test_rouge_beta_moves_the_threshold():
    # scores 1.0 and 2/7, mean 0.643; beta 2 → threshold 1.29: both pieces AS, merged into one
    got = segment_examples([COPY_THEN_NEW], ZH, SegmentConfig(strategy="rouge", beta=2.0))
    assert got == [[Segment(AS, "胰头部软组织肿块，考虑恶性肿瘤。")]]


def test_empty_target_gives_no_segments():
    got = segment_examples([Example("e", "胰头部", "")], ZH, SegmentConfig(strategy="rouge"))
    assert got == [[]]


# --- model strategies --------------------------------------------------------------------------

MODEL_EXAMPLES = [
    COPY_THEN_NEW,
    NEW_THEN_COPY,
    Example(
        "p3", "肝右叶见低密度结节，SUVmax：5.6。胆总管扩张。", "1、肝右叶低密度结节，转移可能大。  2、胆总管扩张。"
    ),
    Example(
        "p4", "静脉注射18F-FDG后约60min行PET/CT显像。", "行PET/CT显像，胆总管扩张；胰头部软组织肿块，考虑恶性肿瘤。"
    ),
    Example("p5", "空", ""),
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def scorer():
    return tiny_model(seed=0), tiny_tokenizer()


@pytest.mark.parametrize("strategy", ["ent", "loss", "ent_pre"])
def test_model_strategies_give_valid_alternating_segments(scorer, strategy):
    model, tok = scorer
    got = segment_examples(MODEL_EXAMPLES, ZH, SegmentConfig(strategy=strategy, score_batch_size=2), model, tok)
    assert len(got) == len(MODEL_EXAMPLES)
    assert got[-1] == []  # an empty target is skipped, not scored
    for ex, segs in zip(MODEL_EXAMPLES[:-1], got[:-1]):
        assert segs, ex.id
        assert {s.tag for s in segs} <= {ES, AS}
        assert all(a.tag != b.tag for a, b in zip(segs, segs[1:])), segs
        assert all(s.text for s in segs)
        assert ZH.join([s.text for s in segs]) == re.sub(r"\s+", "", ex.target)


@pytest.mark.parametrize("strategy", ["ent", "loss"])
def test_model_strategies_are_deterministic(scorer, strategy):
    model, tok = scorer
    cfg = SegmentConfig(strategy=strategy, score_batch_size=3)
    first = segment_examples(MODEL_EXAMPLES, ZH, cfg, model, tok)
    second = segment_examples(MODEL_EXAMPLES, ZH, cfg, model, tok)
    assert first == second


def test_model_strategy_puts_the_model_in_eval_mode(scorer):
    model, tok = scorer
    model.train()  # dropout on: scoring must switch it off itself
    a = segment_examples(MODEL_EXAMPLES, ZH, SegmentConfig(strategy="ent"), model, tok)
    assert not model.training
    model.train()
    b = segment_examples(MODEL_EXAMPLES, ZH, SegmentConfig(strategy="ent"), model, tok)
    assert a == b
    model.eval()


@pytest.mark.parametrize("strategy", ["ent", "ent_pre", "loss"])
def test_model_strategy_without_scorer_raises(strategy):
    with pytest.raises(ValueError, match="scoring model"):
        segment_examples(MODEL_EXAMPLES, ZH, SegmentConfig(strategy=strategy))
    with pytest.raises(ValueError):
        segment_examples(MODEL_EXAMPLES, ZH, SegmentConfig(strategy=strategy), scorer=object())


def _score(model, tok, examples, kind, batch_size, **kw):
    from shared.scoring import piece_scores

    joined = [join_with_spans(ZH.split_target(ex.target)) for ex in examples]
    return piece_scores(
        model,
        tok,
        [ex.question for ex in examples],
        [t for t, _ in joined],
        [s for _, s in joined],
        kind,
        batch_size=batch_size,
        **kw,
    )


@pytest.mark.parametrize("kind", ["entropy", "loss"])
def test_piece_scores_one_finite_score_per_piece(scorer, kind):
    model, tok = scorer
    examples = MODEL_EXAMPLES[:-1]
    scores = _score(model, tok, examples, kind, 8)
    assert [len(s) for s in scores] == [len(ZH.split_target(ex.target)) for ex in examples]
    for row in scores:
        assert all(math.isfinite(x) and x > 0 for x in row), row
    if kind == "entropy":  # entropy is at most log(vocab)
        assert all(x <= math.log(len(tok)) + 1e-4 for row in scores for x in row)


@pytest.mark.parametrize("kind", ["entropy", "loss"])
def test_piece_scores_do_not_depend_on_padding(scorer, kind):
    model, tok = scorer
    examples = MODEL_EXAMPLES[:-1]  # different source and target lengths: batching pads them
    one = _score(model, tok, examples, kind, 1)
    eight = _score(model, tok, examples, kind, 8)
    assert len(one) == len(eight)
    for a, b in zip(one, eight):
        assert a == pytest.approx(b, abs=1e-5)


def test_piece_cut_off_by_max_target_len_is_nan_and_tagged_by_mean(scorer):
    model, tok = scorer
    ex = MODEL_EXAMPLES[3]
    scores = _score(model, tok, [ex], "entropy", 4, max_target_len=4)[0]
    assert math.isfinite(scores[0])
    assert math.isnan(scores[-1])
    tags = tag_by_scores(scores, 1.0, True)
    assert len(tags) == len(scores)


def test_english_piece_keeps_its_first_word_token(scorer):
    model, tok = scorer
    text, spans = join_with_spans(["Hello,", "world"])
    assert (text, spans) == ("Hello, world", [(0, 6), (7, 12)])
    from shared.scoring import piece_scores

    scores = piece_scores(model, tok, ["Q"], [text], [spans], "entropy")[0]
    assert all(math.isfinite(x) for x in scores), scores
