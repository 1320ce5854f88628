"""Consensus decoding (`generate.consensus_samples`): reproducible draws, the same in torch and
onnxruntime, and the answer that agrees most with the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from tinymodels import one_torch_thread, tiny_tokenizer

from shared.config import ConfigError, GenerateConfig, validated_update
from shared.generate import LogitBias, Sampling, TorchGenerator, consensus, sample_key

SOURCES = [[5, 6, 7, 8, 9, 10, 11, 1], [12, 13, 1], [14, 15, 16, 17, 1], [20, 1], [1]]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[object, Path]:
    """A tiny T5 whose next-token distributions are spread (small weights), and its export."""
    pytest.importorskip("onnxruntime")
    from deploy.export import export_run
    from shared.config import ModelConfig
    from shared.modeling import build_model, save_checkpoint

    tok = tiny_tokenizer()
    model = build_model(ModelConfig(d_model=32, d_ff=64, num_layers=2, num_heads=2), tok, 11).eval()
    root = tmp_path_factory.mktemp("draws")
    save_checkpoint(model, tok, root / "model", {"method": "direct", "role": "model"})
    export_run(root / "model", root / "export")
    return model, root / "export" / "model"


def _sampling(sources: list[list[int]], sample: int, epsilon: float = 0.02) -> Sampling:
    return Sampling(tuple(sample_key(s, sample, 0) for s in sources), epsilon)


@pytest.mark.slow  # an ONNX export
def test_draws_are_reproducible_differ_by_key_and_match_in_both_backends(tiny):
    from deploy.runtime import OnnxSeq2Seq

    model, export = tiny
    tok = tiny_tokenizer()
    torch_gen, onnx_gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id), OnnxSeq2Seq(export)
    greedy = torch_gen.generate_tokens(SOURCES, 10, 1, 2)
    draws = [torch_gen.generate_tokens(SOURCES, 10, 1, 2, sampling=_sampling(SOURCES, k)) for k in range(4)]
    assert draws[0] == torch_gen.generate_tokens(
        SOURCES, 10, 1, 2, sampling=_sampling(SOURCES, 0)
    )  # the same key draws the same
    assert len({tuple(map(tuple, d)) for d in draws}) == 4 and any(
        d != greedy for d in draws
    )  # other keys, other draws
    for k, d in enumerate(draws):
        assert onnx_gen.generate_tokens(SOURCES, 10, 1, 2, sampling=_sampling(SOURCES, k)) == d, k
    # a row draws the same alone as in a batch: its key, not its place, seeds it
    assert [torch_gen.generate_tokens([s], 10, 1, 2, sampling=_sampling([s], 1))[0] for s in SOURCES] == draws[1]
    # biases and bans act before the draw: a banned-for-ever end token is never drawn
    never = torch_gen.generate_tokens(
        SOURCES, 10, 1, 0, LogitBias(every={tok.eos_token_id: -1e4}), sampling=_sampling(SOURCES, 2)
    )
    assert all(tok.eos_token_id not in row and len(row) == 10 for row in never)
    # epsilon near 1 keeps only the best token: the draw is the greedy answer
    assert torch_gen.generate_tokens(SOURCES, 10, 1, 2, sampling=_sampling(SOURCES, 3, 0.999)) == greedy


def test_consensus_picks_the_answer_that_agrees_most_and_ties_go_first():
    assert consensus(["右肺结节", "肝囊肿，考虑良性", "肝囊肿，良性可能", "肝囊肿，考虑良性"]) == 1
    assert consensus(["肝囊肿", "胆囊结石"]) == 0  # no agreement at all: the first (the greedy answer)
    assert consensus(["肝囊肿"]) == 0


def test_references_vote_without_standing():
    texts = ["胆囊结石", "肝囊肿", "肝多发囊肿"]
    assert consensus(texts) == 1  # 肝囊肿 and 肝多发囊肿 agree alike: the earlier
    assert consensus(texts, [("肝多发囊肿", 1.0)]) == 2  # a reference breaks the tie
    assert consensus(texts, [("肝多发囊肿", 0.0)]) == 1  # a reference of weight 0 does nothing
    assert (
        consensus(texts, [("胆囊结石", 0.1)]) == 1 and consensus(texts, [("胆囊结石", 1.0)]) == 0
    )  # weight 1: as much as the others
    assert consensus(["肝囊肿"], [("胆囊结石", 5.0)]) == 0  # one candidate: it stands
    assert consensus(texts, [("胆囊结石", 0.4), ("肝多发囊肿", 0.4)]) == consensus(
        texts, [("肝多发囊肿", 0.4), ("胆囊结石", 0.4)]
    )


@pytest.mark.slow  # an ONNX export
def test_generate_with_consensus_returns_the_candidate_that_agrees_most(tiny):
    from petsum.adapter import PetAdapter
    from shared.generate import ModelSet, generate

    model, _ = tiny
    tok = tiny_tokenizer()
    questions = ["肝脏见低密度灶", "右肺上叶结节", "胆囊结石"]
    cfg = GenerateConfig(max_new_tokens=8, max_total_tokens=8, no_repeat_ngram_size=2)
    models = ModelSet("direct", tok, {"model": model}, generate=cfg)
    text = lambda r: " ".join(s.text for s in r.segments)  # noqa: E731
    greedy = generate(models, questions, PetAdapter(), cfg)
    seen: dict[str, list[str]] = {q: [] for q in questions}

    def vote(question: str, candidate: str) -> str:
        seen[question].append(candidate)
        return candidate

    voted = generate(models, questions, PetAdapter(), validated_update(cfg, {"consensus_samples": 3}), vote)
    assert [len(seen[q]) for q in questions] == [4, 4, 4]  # the greedy answer and three draws, per question
    assert [seen[q][0] for q in questions] == [text(r) for r in greedy]  # the greedy answer first
    assert [text(r) for r in voted] == [seen[q][consensus(seen[q])] for q in questions]
    assert all(r.generated_tokens >= g.generated_tokens for r, g in zip(voted, greedy))  # every draw's tokens counted
    # references vote: asked once per question with draws, the winner is consensus's with them
    asked: list[str] = []

    def references(question: str) -> list[tuple[str, float]]:
        asked.append(question)
        return [(seen[question][-1], 50.0)]  # the last draw, heavily: it wins unless another says the same

    seen = {q: [] for q in questions}
    referred = generate(
        models, questions, PetAdapter(), validated_update(cfg, {"consensus_samples": 3}), vote, references
    )
    assert asked == questions
    assert [text(r) for r in referred] == [seen[q][consensus(seen[q], [(seen[q][-1], 50.0)])] for q in questions]
    assert [text(r) for r in referred] == [seen[q][seen[q].index(seen[q][-1])] for q in questions]
    # a greedy answer that does not vote stands, and gets no draws
    standing = generate(
        models, questions, PetAdapter(), validated_update(cfg, {"consensus_samples": 3}), lambda q, t: None
    )
    assert [(text(r), r.generated_tokens) for r in standing] == [(text(r), r.generated_tokens) for r in greedy]
    usm = ModelSet("usm", tok, {"model": model}, generate=cfg)
    with pytest.raises(ValueError, match="direct models"):
        generate(usm, questions, PetAdapter(), validated_update(cfg, {"consensus_samples": 2}))


def test_bad_consensus_settings_are_refused():
    with pytest.raises(ConfigError, match="consensus_samples"):
        validated_update(GenerateConfig(), {"consensus_samples": -1})
    with pytest.raises(ConfigError, match="sample_epsilon"):
        validated_update(GenerateConfig(), {"sample_epsilon": 1.5})


@pytest.mark.slow
def test_petsum_consensus_option_on_a_direct_model_and_a_one_line_refusal_elsewhere(pet_run: Path, tmp_path: Path):
    import json

    from click.testing import CliRunner
    from conftest import FIXTURES, REPO, tiny_sets

    from petsum.cli import main as petsum

    run = tmp_path / "direct"
    args = [
        "train",
        "--data",
        str(FIXTURES / "pet_toy.csv"),
        "--out",
        str(run),
        "--method",
        "direct",
        "--source",
        "finding",
        *tiny_sets(**{"train.max_steps": 3}),
    ]
    assert (res := CliRunner().invoke(petsum, args)).exit_code == 0, res.output
    report = str(REPO / "examples" / "report.txt")
    once = CliRunner().invoke(petsum, ["summarize", report, "--model", str(run), "--consensus", "3", "--json"])
    again = CliRunner().invoke(petsum, ["summarize", report, "--model", str(run), "--consensus", "3", "--json"])
    assert once.exit_code == 0, once.output
    assert (
        json.loads(once.stdout)["impression"] == json.loads(again.stdout)["impression"]
    )  # draws are seeded: the same answer
    res = CliRunner().invoke(
        petsum, ["evaluate", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run), "--consensus", "2", "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["n"] > 0, res.output
    res = CliRunner().invoke(petsum, ["summarize", report, "--model", str(pet_run), "--consensus", "2"])  # a USM run
    assert (
        res.exit_code != 0
        and res.output.startswith("error: ")
        and "direct models" in res.output
        and "Traceback" not in res.output
    )


def test_petsum_votes_on_what_an_answer_says_not_on_its_punctuation():
    from petsum.summarize.folder import DEFAULT_MODEL
    from petsum.summarize.summarizer import Summarizer

    summarizer = Summarizer(DEFAULT_MODEL)
    finding = "右肺上叶见结节，放射性摄取增高，SUVmax5.2。"
    comma, semicolon = (
        summarizer.vote(finding, "右肺上叶高代谢结节，SUVmax 5.2，考虑转移。"),
        summarizer.vote(finding, "右肺上叶高代谢结节；SUVmax 5.2；考虑转移"),
    )
    assert comma == semicolon and "5.2" in comma.split() and "，" not in comma
    assert summarizer.vote(finding, "未见明显异常。") is None  # a normal answer does not vote


@pytest.mark.slow  # an ONNX export
def test_greedy_confidence_is_the_answers_geometric_mean_token_probability_in_both_backends(tiny):
    """The greedy stand-in for confidence, checked against a teacher-forced forward pass of the same
    model; onnxruntime measures the same within rounding; draws and beams measure nothing."""
    import numpy as np
    import torch

    from deploy.runtime import OnnxSeq2Seq
    from shared.generate import mean_probability

    model, export = tiny
    tok = tiny_tokenizer()
    torch_gen, onnx_gen = TorchGenerator(model, tok.pad_token_id, tok.eos_token_id), OnnxSeq2Seq(export)
    rows = torch_gen.generate_tokens(SOURCES, 10, 1, 2)
    assert rows.probability is not None and len(rows.probability) == len(SOURCES)
    for source, toks, p in zip(SOURCES, rows, rows.probability):
        decoder = torch.tensor([[model.config.decoder_start_token_id, *toks[:-1]]])
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([source]), decoder_input_ids=decoder).logits[0].numpy()
        # the same 2-gram ban the decoding applied, step by step
        from shared.generate import ban_repeats

        history = [model.config.decoder_start_token_id]
        logp = []
        for t, tok_id in enumerate(toks):
            step = logits[t : t + 1].copy()
            ban_repeats(step, [history], 2)
            logp.append(mean_probability(step, np.array([tok_id]))[0])
            history.append(tok_id)
        assert 0 < p <= 1
        assert p == pytest.approx(float(np.exp(np.mean(logp))), rel=1e-4)
    onnx_rows = onnx_gen.generate_tokens(SOURCES, 10, 1, 2)
    assert onnx_rows == rows
    assert onnx_rows.probability == pytest.approx(rows.probability, rel=1e-3)
    drawn = torch_gen.generate_tokens(SOURCES, 10, 1, 2, sampling=_sampling(SOURCES, 0))
    assert getattr(drawn, "probability", None) is None
    assert getattr(torch_gen.generate_tokens(SOURCES, 10, 2, 2), "probability", None) is None


@pytest.mark.slow  # an ONNX export
def test_consensus_confidence_is_the_chosen_answers_agreement_with_the_draws(tiny):
    from petsum.adapter import PetAdapter
    from shared.generate import ModelSet, agreement, generate

    model, _ = tiny
    tok = tiny_tokenizer()
    questions = ["肝脏见低密度灶", "右肺上叶结节", "胆囊结石"]
    cfg = GenerateConfig(max_new_tokens=8, max_total_tokens=8, no_repeat_ngram_size=2)
    models = ModelSet("direct", tok, {"model": model}, generate=cfg)
    seen: dict[str, list[str]] = {q: [] for q in questions}

    def vote(question: str, candidate: str) -> str:
        seen[question].append(candidate)
        return candidate

    voted = generate(models, questions, PetAdapter(), validated_update(cfg, {"consensus_samples": 3}), vote)
    for q, res in zip(questions, voted):
        chosen = consensus(seen[q])
        assert res.confidence == pytest.approx(agreement(seen[q], chosen))
        assert 0 <= res.confidence <= 1
    # draws that say nothing (the task's vote None: normal) count against the chosen answer
    silent: dict[str, list[str | None]] = {q: [] for q in questions}

    def vote_some(question: str, candidate: str) -> str | None:
        said = candidate if len(silent[question]) % 2 == 0 else None  # the greedy answer and every other draw
        silent[question].append(said)
        return said

    halved = generate(models, questions, PetAdapter(), validated_update(cfg, {"consensus_samples": 3}), vote_some)
    for q, res in zip(questions, halved):
        assert silent[q][1] is None and silent[q][3] is None
        chosen = [0, 2][consensus([silent[q][0], silent[q][2]])]
        assert res.confidence == pytest.approx(agreement(silent[q], chosen))
        assert res.confidence <= 1 / 3 + 1e-9  # two of the three others said nothing
    assert agreement(["肝囊肿", "肝囊肿", "肝囊肿"], 0) == 1.0
    assert agreement(["肝囊肿", None, "肝囊肿", None], 0) == pytest.approx(1 / 3)
    assert agreement(["肝囊肿", "胆囊结石"], 0) == pytest.approx(2 / 7)  # 囊 in common: P 1/3, R 1/4
    assert agreement(["肝囊肿"], 0) is None


def test_consensus_below_draws_only_for_unsure_greedy_answers(tiny):
    """`generate.consensus_below`: an input whose greedy answer's confidence reaches it keeps that
    answer and its confidence, and draws nothing; the others get exactly the ungated result."""
    from petsum.adapter import PetAdapter
    from shared.generate import ModelSet, generate

    model, _ = tiny
    tok = tiny_tokenizer()
    questions = ["肝脏见低密度灶", "右肺上叶结节", "胆囊结石", "脾脏增大", "左肾囊肿"]
    cfg = GenerateConfig(max_new_tokens=8, max_total_tokens=8, no_repeat_ngram_size=2)
    models = ModelSet("direct", tok, {"model": model}, generate=cfg)
    greedy = generate(models, questions, PetAdapter(), cfg)
    sure = sorted(r.confidence for r in greedy)
    below = (sure[1] + sure[2]) / 2  # two inputs are below it, three reach it
    drawn: list[str] = []

    def vote(question: str, text: str) -> str:
        drawn.append(question)
        return text

    full = generate(models, questions, PetAdapter(), validated_update(cfg, {"consensus_samples": 4}))
    gated_cfg = validated_update(cfg, {"consensus_samples": 4, "consensus_below": below})
    gated = generate(models, questions, PetAdapter(), gated_cfg, vote)
    for q, g, f, r in zip(questions, greedy, full, gated):
        if g.confidence >= below:
            assert r.segments == g.segments and r.confidence == g.confidence and drawn.count(q) == 1  # greedy only
        else:
            assert r.segments == f.segments and r.confidence == f.confidence and drawn.count(q) == 5
    assert sum(g.confidence >= below for g in greedy) == 3
    with pytest.raises(ConfigError):
        validated_update(cfg, {"consensus_below": 0})
