"""Iterative AS-ES generation (shared.generate) with tiny random T5s whose first tokens are
steered through their generation config, plus the per-segment bookkeeping in `_step`."""

from __future__ import annotations

import pytest
from tinymodels import one_torch_thread, tiny_model, tiny_tokenizer

from shared.adapter import StopTokenAdapter
from shared.config import GenerateConfig
from shared.generate import ModelSet, _step, generate, generate_batch
from shared.schema import AS, ES, GenerationResult, Segment

ZH = StopTokenAdapter(bleu_tokenize="zh")
REASONS = {"stop", "max_iters", "max_tokens", "empty", "repeat"}
QUESTIONS = [
    "胰头部见软组织肿块，放射性摄取增高。",
    "肝右叶见低密度结节，SUVmax：5.6。胆总管扩张。",
    "静脉注射18F-FDG后约60min行PET/CT显像。",
    "She has 5 apples.",
    "脑部未见异常。",
]
CFG = GenerateConfig(max_iters=3, max_new_tokens=4, max_total_tokens=10, batch_size=2)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def free_model(tok):
    """Never ends a segment by itself: EOS (and pad) suppressed, so every round runs to max_new_tokens."""
    model = tiny_model(seed=0)
    model.generation_config.suppress_tokens = [tok.pad_token_id, tok.eos_token_id]
    return model


@pytest.fixture(scope="module")
def eos_model(tok):
    """Ends every segment at once: every token but EOS suppressed."""
    model = tiny_model(seed=1)
    model.generation_config.suppress_tokens = [i for i in range(len(tok)) if i != tok.eos_token_id]
    return model


@pytest.fixture(scope="module")
def stop_model(tok):
    """Writes the stop token first: only <STOP> and EOS allowed, EOS not as the first token."""
    stop = tok.convert_tokens_to_ids("<STOP>")
    model = tiny_model(seed=2)
    model.generation_config.suppress_tokens = [i for i in range(len(tok)) if i not in (stop, tok.eos_token_id)]
    model.generation_config.begin_suppress_tokens = [tok.eos_token_id]
    return model


def check_bounds(results, cfg, method):
    assert len(results) == len(QUESTIONS)
    for res in results:
        assert len(res.segments) <= cfg.max_iters
        assert res.generated_tokens <= cfg.max_total_tokens  # each round is capped by what is left
        assert res.reason in REASONS
        assert all(s.text for s in res.segments)  # empty segments are never output
        if method != "direct":
            assert all(s.tag in (ES, AS) for s in res.segments)


# --- loop bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["usm", "dsm"])
def test_loop_bounds_with_a_model_that_never_stops(tok, free_model, method):
    models = {"model": free_model} if method == "usm" else {"esm": free_model, "asm": free_model}
    results = generate(ModelSet(method, tok, models, 64), QUESTIONS, ZH, CFG)
    check_bounds(results, CFG, method)
    assert any(len(r.segments) >= 2 for r in results)  # the loop really went round
    for res in results:
        assert not res.stopped
        assert res.reason in {"max_tokens", "max_iters", "repeat"}
        assert [s.tag for s in res.segments] == [ES, AS, ES][: len(res.segments)]
        if res.reason == "max_tokens":
            assert res.generated_tokens >= CFG.max_total_tokens
        if res.reason == "max_iters":
            assert len(res.segments) == CFG.max_iters


def test_max_iters_ends_the_loop(tok, free_model):
    cfg = GenerateConfig(max_iters=2, max_new_tokens=3, max_total_tokens=500)
    results = generate(ModelSet("usm", tok, {"model": free_model}, 64), QUESTIONS, ZH, cfg)
    check_bounds(results, cfg, "usm")
    assert {r.reason for r in results} <= {"max_iters", "repeat"}
    assert "max_iters" in {r.reason for r in results}
    for res in results:
        if res.reason == "max_iters":
            assert len(res.segments) == 2 and res.segments[0].text != res.segments[1].text


def test_token_budget_ends_the_loop(tok, free_model):
    cfg = GenerateConfig(max_iters=8, max_new_tokens=4, max_total_tokens=6)
    results = generate(ModelSet("usm", tok, {"model": free_model}, 64), QUESTIONS, ZH, cfg)
    check_bounds(results, cfg, "usm")
    for res in results:
        assert res.reason in {"max_tokens", "repeat"}
        assert len(res.segments) <= 2


def test_a_model_that_ends_at_once_gives_empty(tok, eos_model):
    results = generate(ModelSet("usm", tok, {"model": eos_model}, 64), QUESTIONS, ZH, CFG)
    check_bounds(results, CFG, "usm")
    for res in results:
        assert res.segments == [] and res.reason == "empty" and not res.stopped
        assert res.generated_tokens == 1  # the EOS alone


def test_dsm_yields_one_empty_es_then_stops_on_two_empties(tok, eos_model):
    results = generate(ModelSet("dsm", tok, {"esm": eos_model, "asm": eos_model}, 64), QUESTIONS, ZH, CFG)
    check_bounds(results, CFG, "dsm")
    for res in results:
        assert res.segments == [] and res.reason == "empty"
        assert res.generated_tokens == 2  # two rounds: the empty ES is allowed once


def test_stop_token_ends_generation(tok, stop_model):
    results = generate(ModelSet("usm", tok, {"model": stop_model}, 64), QUESTIONS, ZH, CFG)
    check_bounds(results, CFG, "usm")
    for res in results:
        assert res.stopped and res.reason == "stop"
        assert res.segments == []  # only the stop sign: nothing left to show
        assert res.generated_tokens <= CFG.max_new_tokens + 1


@pytest.mark.parametrize("fixture", ["free_model", "eos_model", "stop_model"])
def test_direct_returns_at_most_one_untagged_segment(tok, request, fixture):
    model = request.getfixturevalue(fixture)
    results = generate(ModelSet("direct", tok, {"model": model}, 64), QUESTIONS, ZH, CFG)
    assert len(results) == len(QUESTIONS)
    for res in results:
        # An answer that is only EOS (eos_model) or only the stop sign leaves nothing to show.
        assert len(res.segments) == (0 if fixture in ("eos_model", "stop_model") else 1)
        assert all(s.tag is None and s.text and "<STOP>" not in s.text for s in res.segments)
        assert res.generated_tokens <= CFG.max_total_tokens + 1
        assert res.reason in REASONS


def test_no_questions_no_results(tok, free_model):
    assert generate(ModelSet("usm", tok, {"model": free_model}, 64), [], ZH, CFG) == []


def test_generation_is_deterministic(tok, free_model):
    ms = ModelSet("usm", tok, {"model": free_model}, 64)
    assert generate(ms, QUESTIONS, ZH, CFG) == generate(ms, QUESTIONS, ZH, CFG)


def test_batch_size_does_not_change_results(tok, free_model):
    ms = ModelSet("usm", tok, {"model": free_model}, 64)
    one = generate(ms, QUESTIONS, ZH, GenerateConfig(max_iters=3, max_new_tokens=4, max_total_tokens=10, batch_size=1))
    many = generate(ms, QUESTIONS, ZH, GenerateConfig(max_iters=3, max_new_tokens=4, max_total_tokens=10, batch_size=8))
    assert one == many


def test_model_set_rounds():
    ms = ModelSet("dsm", None, {"esm": "E", "asm": "A"})
    assert [ms.for_round(i) for i in range(4)] == ["E", "A", "E", "A"]
    assert ModelSet("usm", None, {"model": "M"}).for_round(3) == "M"


def test_generate_batch_keeps_input_order(tok, free_model):
    sources = [[5, 6, 7, 8, 9, tok.eos_token_id], [8, tok.eos_token_id], [10, 11, 12, tok.eos_token_id]]
    texts, counts, _ = generate_batch(free_model, tok, sources, GenerateConfig(max_new_tokens=4, batch_size=2))
    for i, src in enumerate(sources):
        alone, n, _ = generate_batch(free_model, tok, [src], GenerateConfig(max_new_tokens=4))
        assert texts[i] == alone[0] and counts[i] == n[0]


def test_generate_batch_counts_only_generated_tokens(tok, free_model):
    _, counts, _ = generate_batch(free_model, tok, [[5, 6, tok.eos_token_id]], GenerateConfig(max_new_tokens=4))
    assert counts == [4]


def test_direct_cut_by_budget_is_not_reported_as_stopped(tok, free_model):
    res = generate(ModelSet("direct", tok, {"model": free_model}, 64), QUESTIONS[:1], ZH, CFG)[0]
    assert not res.stopped and res.reason == "max_tokens"


# --- _step -------------------------------------------------------------------------------------

STEP_CFG = GenerateConfig(max_total_tokens=10)


def test_strip_stop():
    assert ZH.strip_stop("abc<STOP>junk") == "abc"
    assert ZH.strip_stop("  abc <STOP>") == "abc"
    assert ZH.strip_stop("abc") == "abc"
    assert ZH.is_final("x<STOP>") and not ZH.is_final("x")
    assert ZH.with_stop("abc") == "abc<STOP>"


def test_step_stop_sign():
    res = GenerationResult()
    assert _step(res, "胰头部肿块。<STOP>多余", ES, ZH, "usm", STEP_CFG) is False
    assert res.stopped and res.reason == "stop"
    assert res.segments == [Segment(ES, "胰头部肿块。")]


def test_step_stop_sign_alone_appends_nothing():
    res = GenerationResult(segments=[Segment(ES, "甲。")])
    assert _step(res, "<STOP>", AS, ZH, "usm", STEP_CFG) is False
    assert res.stopped and res.reason == "stop" and res.segments == [Segment(ES, "甲。")]


def test_step_repeat_is_not_appended():
    res = GenerationResult(segments=[Segment(ES, "甲。")])
    assert _step(res, "甲。", AS, ZH, "usm", STEP_CFG) is False
    assert res.reason == "repeat" and not res.stopped
    assert res.segments == [Segment(ES, "甲。")]


def test_step_repeat_with_stop_is_still_a_repeat():
    res = GenerationResult(segments=[Segment(ES, "甲。")])
    assert _step(res, "甲。<STOP>", AS, ZH, "usm", STEP_CFG) is False
    assert res.reason == "repeat" and res.segments == [Segment(ES, "甲。")]


def test_step_repeat_of_an_older_segment_is_allowed():
    res = GenerationResult(segments=[Segment(ES, "甲。"), Segment(AS, "乙。")])
    assert _step(res, "甲。", ES, ZH, "usm", STEP_CFG) is True
    assert res.segments[-1] == Segment(ES, "甲。") and res.reason == ""


def test_step_new_text_continues():
    res = GenerationResult(segments=[Segment(ES, "甲。")], generated_tokens=3)
    assert _step(res, "乙。", AS, ZH, "usm", STEP_CFG) is True
    assert res.segments == [Segment(ES, "甲。"), Segment(AS, "乙。")]
    assert res.reason == "" and not res.stopped


def test_step_empty_usm_stops():
    res = GenerationResult()
    assert _step(res, "", ES, ZH, "usm", STEP_CFG) is False
    assert res.reason == "empty" and res.segments == []


def test_step_dsm_allows_one_empty_es():
    res = GenerationResult()
    assert _step(res, "", ES, ZH, "dsm", STEP_CFG) is True
    assert res.segments == [Segment(ES, "")] and res.reason == ""
    assert _step(res, "乙。", AS, ZH, "dsm", STEP_CFG) is True
    assert _step(res, "", ES, ZH, "dsm", STEP_CFG) is True  # the previous one was not empty
    assert res.segments == [Segment(ES, ""), Segment(AS, "乙。"), Segment(ES, "")]


def test_step_dsm_stops_on_two_consecutive_empties():
    res = GenerationResult()
    assert _step(res, "", ES, ZH, "dsm", STEP_CFG) is True
    assert _step(res, "", AS, ZH, "dsm", STEP_CFG) is False
    assert res.reason == "empty"


def test_step_token_budget():
    res = GenerationResult(segments=[Segment(ES, "甲。")], generated_tokens=10)
    assert _step(res, "乙。", AS, ZH, "usm", STEP_CFG) is False
    assert res.reason == "max_tokens" and not res.stopped
    assert res.segments[-1] == Segment(AS, "乙。")  # the segment is kept
    res = GenerationResult(generated_tokens=9)
    assert _step(res, "乙。", ES, ZH, "usm", STEP_CFG) is True


def test_step_stop_wins_over_the_budget():
    res = GenerationResult(generated_tokens=50)
    assert _step(res, "乙。<STOP>", ES, ZH, "usm", STEP_CFG) is False
    assert res.reason == "stop" and res.stopped


def test_dsm_detects_a_repeat_across_its_empty_es_segments(tok, eos_model, free_model):
    """ESM always yields nothing, ASM writes the same text every round: that is a loop."""
    res = generate(
        ModelSet("dsm", tok, {"esm": eos_model, "asm": free_model}, 64),
        QUESTIONS[:1],
        ZH,
        GenerateConfig(max_iters=8, max_new_tokens=4, max_total_tokens=100),
    )[0]
    texts = [s.text for s in res.segments]
    assert res.reason == "repeat" and len(texts) == len(set(texts))  # stopped before writing any text twice


def test_each_input_keeps_its_own_token_budget(tok, free_model):
    """A nearly spent input must not borrow room from the others in its batch."""
    cfg = GenerateConfig(max_iters=4, max_new_tokens=10, max_total_tokens=15, batch_size=8)
    for res in generate(ModelSet("usm", tok, {"model": free_model}, 64), QUESTIONS, ZH, cfg):
        assert res.generated_tokens <= 15 and res.reason in ("max_tokens", "repeat")


def test_beam_search_respects_bounds_and_batching(tok, free_model):
    cfg = GenerateConfig(max_iters=3, max_new_tokens=4, max_total_tokens=10, batch_size=2, num_beams=3)
    results = generate(ModelSet("usm", tok, {"model": free_model}, 64), QUESTIONS, ZH, cfg)
    check_bounds(results, cfg, "usm")
    alone = [generate(ModelSet("usm", tok, {"model": free_model}, 64), [q], ZH, cfg)[0] for q in QUESTIONS]
    assert [r.segments for r in results] == [r.segments for r in alone]  # a batch-mate never changes an output
