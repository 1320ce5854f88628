"""Calculator decoding on real tiny T5s: identical to plain greedy decoding when no annotation
is opened, and, on a model that memorized WRONG annotation values, the calculator's values are
what comes out, batched, through the AS-ES loop too."""

import re

import pytest
import torch
from tinymodels import TINY_DIMS, one_torch_thread, tiny_model, tiny_tokenizer

from mwp.adapter import MwpAdapter
from mwp.calc_decoding import CalculatorGenerator, TorchStepper, splice_ids, use_calculator, writes_annotations
from mwp.calculator import calculate
from shared.batching import pad
from shared.config import GenerateConfig, ModelConfig
from shared.generate import ModelSet, TorchGenerator, generate
from shared.modeling import build_model
from shared.textio import InputError

pytestmark = pytest.mark.slow  # the models are trained to memorize their targets

# Targets whose annotations are wrong on purpose: a model that learned them writes 7, 9 and 9 by
# itself, so a right value in the output can only come from the calculator.
PAIRS = [
    ("She has 2 apples and 3 more.", "She has 2+3 = <<2+3=7>>7 apples."),
    ("Hello, world.", "Then 4*5 = <<4*5=9>>9 apples."),
    ("She has 5 apples.", "Then 4/0 = <<4/0=9>>9 apples."),  # refused: the model goes on unaided
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _greedy(model, sources, limit=30):
    return TorchGenerator(model, tiny_tokenizer().pad_token_id, tiny_tokenizer().eos_token_id).generate_tokens(
        sources, limit, 1
    )


def _calc(model, sources, limit=30, **kw):
    tok = tiny_tokenizer()
    return CalculatorGenerator(TorchStepper(model, tok.pad_token_id), tok, **kw).generate_tokens(sources, limit)


@pytest.fixture(scope="module")
def memorized():
    """A tiny T5 trained until greedy decoding reproduces PAIRS exactly (about a second)."""
    tok = tiny_tokenizer()
    model = build_model(ModelConfig(**TINY_DIMS, dropout=0.0), tok, seed=0).train()
    sources = [tok.encode(q) for q, _ in PAIRS]
    ids, mask = pad(sources, tok.pad_token_id)
    labels, _ = pad([tok.encode(a) for _, a in PAIRS], -100)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(600):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 19:
            model.eval()
            if tok.batch_decode(_greedy(model, sources), skip_special_tokens=True) == [a for _, a in PAIRS]:
                return model, sources
            model.train()
    pytest.fail("the tiny model did not memorize its targets")


def test_plain_greedy_tokens_when_no_annotation_opens():
    tok = tiny_tokenizer()
    sources = [tok.encode(t) for t in ("She has 5 apples.", "Hello, world. Hello", "胰头部见软组织肿块")]
    for seed in range(3):
        model = tiny_model(seed)
        assert _calc(model, sources, 20) == _greedy(model, sources, 20)


def test_calculator_values_replace_memorized_ones(memorized):
    model, sources = memorized
    texts = tiny_tokenizer().batch_decode(_calc(model, sources), skip_special_tokens=True)
    # Rows of one batch insert different lengths (`5>>`, `20>>`, nothing) and stay in lockstep.
    assert texts[0].startswith("She has 2+3 = <<2+3=5>>")
    assert texts[1].startswith("Then 4*5 = <<4*5=20>>")
    assert texts[2] == "Then 4/0 = <<4/0=9>>9 apples."  # division by zero: no value, the model's own text


def test_call_bound(memorized):
    model, sources = memorized
    tok = tiny_tokenizer()
    assert tok.batch_decode(_calc(model, sources, max_calls=0), skip_special_tokens=True) == [a for _, a in PAIRS]


def test_token_limit_holds_with_forced_tokens(memorized):
    model, sources = memorized
    tok = tiny_tokenizer()
    full = _calc(model, sources)
    prefix = len(tok.encode("She has 2+3 = <<2+3=", add_special_tokens=False))
    cut = _calc(model, sources, limit=prefix + 1)  # room for only the first token of `5>>`
    assert all(len(row) <= prefix + 1 for row in cut)
    assert cut[0] == full[0][: prefix + 1]


def test_through_the_ases_loop(memorized):
    model, sources = memorized
    tok = tiny_tokenizer()
    models = ModelSet("direct", tok, {"model": model}, 256)
    use_calculator(models)
    cfg = GenerateConfig(max_new_tokens=30, max_iters=1)
    results = generate(models, [q for q, _ in PAIRS], MwpAdapter(), cfg)
    assert results[0].segments[0].text.startswith("She has 2+3 = <<2+3=5>>")
    assert results[1].segments[0].text.startswith("Then 4*5 = <<4*5=20>>")


def test_splice_is_tokenized_in_context():
    tok = tiny_tokenizer()
    text = "She has 2+3 = <<2+3="
    ids = tok.encode(text, add_special_tokens=False)
    extra = splice_ids(tok, ids, text, "5>>")
    assert tok.decode(ids + extra) == text + "5>>"
    assert extra == tok.encode(text + "5>>", add_special_tokens=False)[len(ids) :]
    assert extra != tok.encode("5>>", add_special_tokens=False)  # alone, `5` would start a new word


def test_tokenizer_that_cannot_write_annotations_is_refused():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    inner = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2, "apples": 3}, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=inner, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    assert writes_annotations(tiny_tokenizer()) and not writes_annotations(tok)
    with pytest.raises(InputError, match="cannot write calculator annotations"):
        use_calculator(ModelSet("direct", tok, {"model": tiny_model()}))


def _sampling(sources, sample=0):
    from shared.generate import Sampling, sample_key

    return Sampling(tuple(sample_key(s, sample, 0) for s in sources), epsilon=0.02)


def test_draws_are_torch_draws_when_no_annotation_opens():
    """Seeded draws (`mwp solve --samples`) are the same tokens as the torch generator's draws with
    the same keys, and a row's draw does not depend on the rows beside it."""
    tok = tiny_tokenizer()
    sources = [tok.encode(t) for t in ("She has 5 apples.", "Hello, world. Hello", "胰头部见软组织肿块")]
    model = tiny_model(1)
    torch_gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id)
    calc = CalculatorGenerator(TorchStepper(model, tok.pad_token_id), tok)
    drawn = calc.generate_tokens(sources, 20, sampling=_sampling(sources))
    assert drawn == torch_gen.generate_tokens(sources, 20, 1, sampling=_sampling(sources))
    assert drawn != calc.generate_tokens(sources, 20)  # a random model's draws leave its greedy path
    assert calc.generate_tokens(sources[1:2], 20, sampling=_sampling(sources[1:2])) == drawn[1:2]
    assert calc.generate_tokens(sources, 20, sampling=_sampling(sources, 1)) != drawn


def test_draws_get_the_calculators_values(memorized):
    model, sources = memorized
    tok = tiny_tokenizer()
    calc = CalculatorGenerator(TorchStepper(model, tok.pad_token_id), tok)
    for sample in range(4):
        texts = tok.batch_decode(
            calc.generate_tokens(sources, 30, sampling=_sampling(sources, sample)), skip_special_tokens=True
        )
        for text in texts:  # whatever a draw writes, every closed annotation holds the calculator's value
            for expr, value in re.findall(r"<<([^<>=]*)=([^<>]*)>>", text):
                assert calculate(expr) in (value, None), text


def test_answer_votes_agree_only_on_the_same_number():
    from mwp.solve import answer_vote
    from shared.generate import consensus

    texts = ["The answer is 720.", "<<8*9=72>>. The answer is 72.", "The answer is 7.2.", "x. The answer is 72."]
    votes = [answer_vote("q", t) for t in texts]
    assert len(set(votes)) == 3 and votes[1] == votes[3]
    assert consensus(votes) == 1  # 72 twice beats 720, 7.2 once each, though they share digits
    assert consensus([answer_vote("q", t) for t in ("The answer is 5.", "The answer is 6.")]) == 0  # tie: the first
    assert consensus([answer_vote("q", t) for t in ("no answer", "nor here", "The answer is 5.")]) == 0  # none agree
    assert consensus([answer_vote("q", t) for t in ("no answer", "The answer is 5.", "The answer is 5.")]) == 1


def test_voting_through_the_ases_loop():
    """Every question gets its draws, even one whose greedy solution has no answer (a random tiny
    model's never has): they are counted in its generated tokens, and with nothing agreeing the
    greedy solution stands."""
    from mwp.solve import answer_vote

    tok = tiny_tokenizer()
    models = ModelSet("direct", tok, {"model": tiny_model(1)}, 256)
    use_calculator(models)
    questions = [q for q, _ in PAIRS]
    cfg = GenerateConfig(max_new_tokens=12, max_iters=1)
    greedy = generate(models, questions, MwpAdapter(), cfg)
    voted = generate(models, questions, MwpAdapter(), cfg.model_copy(update={"consensus_samples": 3}), answer_vote)
    assert all(v.generated_tokens > g.generated_tokens for v, g in zip(voted, greedy))
    assert [v.segments for v in voted] == [g.segments for g in greedy]


def test_solver_tune_validates_and_refuses_votes_for_iterative_runs():
    from mwp.solve import Solver
    from shared.config import ConfigError

    tok = tiny_tokenizer()
    solver = Solver(ModelSet("usm", tok, {"model": tiny_model()}), GenerateConfig(), False, MwpAdapter())
    solver.tune(no_repeat_ngram_size=6)
    assert solver.cfg.no_repeat_ngram_size == 6
    with pytest.raises(ConfigError, match="no_repeat_ngram_size"):
        solver.tune(no_repeat_ngram_size=-1)
    with pytest.raises(ConfigError, match="for direct runs; this is a usm run"):
        solver.tune(consensus_samples=4)
