"""EDIT's key tokens (`shared.keysteps`) on hand-made pairs, and their weights through encoding,
batching and the loss."""

import pytest
import torch
from tinymodels import tiny_model, tiny_tokenizer

from shared.batching import Encoded, collate, encode_samples, model_inputs
from shared.keysteps import key_tokens, token_weights
from shared.schema import Sample
from shared.trainer import loss_sum


@pytest.mark.parametrize(
    ("target", "wrong", "key"),
    [
        ("a b c d", "a b c d", "0000"),  # the same answer: nothing is key
        ("a b c d", "a b x d", "0010"),  # one substitution
        ("a b c d", "a b d", "0010"),  # the wrong answer skipped a step
        ("a b c", "a x y z b c", "000"),  # it added steps: every target token still matched
        ("a b c", "", "111"),  # nothing to compare with: all key
        ("x y", "a b c d", "11"),
    ],
)
def test_key_tokens_by_minimum_edit_distance(target, wrong, key):
    assert key_tokens(target.split(), wrong.split()) == [c == "1" for c in key]


def test_key_tokens_of_two_equation_chains():
    """The right chain multiplies where the wrong one adds: the operator and the digits of the result
    that differ (digits are single tokens: 1152 against 72 keeps its 2) are key, in the chain and in
    the answer; the shared first step and the closing words are not."""
    tok = tiny_tokenizer()
    right = tok.encode("<<48/2=24>>. <<48*24=1152>>. The answer is 1152.", add_special_tokens=False)
    wrong = tok.encode("<<48/2=24>>. <<48+24=72>>. The answer is 72.", add_special_tokens=False)
    key = key_tokens(right, wrong)
    marked = tok.decode([t for t, k in zip(right, key) if k])
    assert marked.replace(" ", "") == "*115" + "115"
    assert tok.decode([t for t, k in zip(right, key) if not k]).replace(" ", "").startswith("<<48/2=24>>.<<48")
    assert token_weights(right, wrong, 3.0) == [3.0 if k else 1.0 for k in key]


def test_weights_only_for_rows_with_a_wrong_answer_and_a_weight():
    tok = tiny_tokenizer()
    rows = [
        Sample("1", 0, None, "She has 5 apples.", "", "The answer is 8.", contrast="The answer is 5."),
        Sample("2", 0, None, "She has 5 apples.", "", "The answer is 8."),
    ]
    enc = encode_samples(tok, rows, 64, 32, key_weight=4.0)
    assert enc[1].weights is None and len(enc[0].weights) == len(enc[0].target)
    assert 4.0 in enc[0].weights and enc[0].weights[0] == 1.0  # "The" is shared
    assert all(e.weights is None for e in encode_samples(tok, rows, 64, 32))  # weight 1: off
    assert Sample.from_json(rows[0].to_json()) == rows[0] and "contrast" not in rows[1].to_json()


@pytest.mark.parametrize("causal", [False, True])
def test_weighted_loss_is_the_weighted_sum_of_token_losses(causal):
    rows = [Encoded([5, 6, 1], [7, 8, 1], [1.0, 3.0, 1.0]), Encoded([5, 1], [9, 1])]
    batch = collate(rows, 0, causal=causal)
    plain = collate([Encoded(r.source, r.target) for r in rows], 0, causal=causal)
    assert "weights" in batch and "weights" not in plain and "weights" not in model_inputs(batch)
    if causal:
        assert batch["weights"][0].tolist() == [1.0, 1.0, 1.0, 1.0, 3.0, 1.0]
        return  # the causal shift is covered with a real decoder-only model in tests/mwp/test_mwp_causal.py
    model = tiny_model()
    with torch.no_grad():
        logits = model(**model_inputs(plain)).logits
        token = torch.nn.functional.cross_entropy(logits.flatten(0, 1), plain["labels"].flatten(), reduction="none")
        expected = (token.view(2, -1) * batch["weights"]).sum()
        assert float(loss_sum(model, batch, 0.0)) == pytest.approx(float(expected), rel=1e-5)
        assert float(loss_sum(model, plain, 0.0)) == pytest.approx(float(token.sum()), rel=1e-5)
