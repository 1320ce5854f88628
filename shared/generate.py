"""Iterative AS-ES generation (the paper's Algorithms 1 and 2), batched.

Each round generates one segment for every unfinished input, appends it to that input
(`Q | s_1 … s_i`) and goes again, until the stop sign, `max_iters` rounds, or
`max_total_tokens` generated tokens. USM uses one model every round; DSM alternates ESM and
ASM, starting with the ESM; a direct model answers in one round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from shared.batching import encode_source, pad
from shared.config import GenerateConfig
from shared.dataset import prefix_text
from shared.modeling import is_causal, position_limit
from shared.schema import AS, ES, GenerationResult, Segment

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from shared.adapter import TaskAdapter


class TokenGenerator(Protocol):
    """What the iterative loop needs from a model, whatever runs it (torch, onnxruntime): a batch of
    encoded sources in, each source's generated token ids out, without the decoder start token and
    through EOS when one was produced; with `sampling` (and one beam), each row's draw instead."""

    def generate_tokens(
        self,
        sources: list[list[int]],
        max_new_tokens: int,
        num_beams: int,
        no_repeat: int = 0,
        bias: LogitBias | None = None,
        sampling: Sampling | None = None,
    ) -> list[list[int]]: ...


def banned_tokens(history: list[int], n: int) -> list[int]:
    """The tokens that would repeat an n-gram of `history` (the decoder's tokens so far, its start
    token included) if they came next: Hugging Face's `no_repeat_ngram_size`, so every backend bans
    the same tokens. A loop is what an undertrained model does most; banning it costs one scan."""
    if n <= 0 or len(history) < n - 1:
        return []
    tail = history[len(history) - n + 1 :]
    return [history[i + n - 1] for i in range(len(history) - n + 1) if history[i : i + n - 1] == tail]


def ban_repeats(scores: np.ndarray, histories: Iterable[list[int]], n: int) -> None:
    """In place: -inf for each row's `banned_tokens` (rows of `scores` in the order of `histories`).
    For the decoding loops written here (onnxruntime, calculator); torch `generate` bans its own."""
    if n:
        for row, history in enumerate(histories):
            scores[row, banned_tokens(history, n)] = -np.inf


def first_token_ids(tokenizer: "PreTrainedTokenizerBase", biases: dict[str, float]) -> dict[int, float]:
    """`generate.first_token_bias` as token id → bias: each text's first token (texts that share
    one add up). Biasing a whole answer's first token is enough when the answer is a fixed text,
    as PET's `未见明显异常。` is: greedy decoding commits to it at that step."""
    out: dict[int, float] = {}
    for text, bias in biases.items():
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids:
            out[ids[0]] = out.get(ids[0], 0.0) + bias
    return out


@dataclass(frozen=True)
class LogitBias:
    """Additive logit biases, applied alike by every decoding loop (torch `generate` through
    `_bias_processor`, onnxruntime greedy and beam, calculator decoding): `first` at a segment's
    first step only, `every` at each step. Beam search adds them after the log-softmax, as
    Hugging Face applies its logits processors there."""

    first: dict[int, float] = field(default_factory=dict)
    every: dict[int, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.first or self.every)

    def apply(self, scores, step: int) -> None:
        """In place, on every row of `scores` (a numpy array or a torch tensor) at decoding step `step`
        (0: the first)."""
        for token, bias in self.first.items() if step == 0 else ():
            scores[:, token] += bias
        for token, bias in self.every.items():
            scores[:, token] += bias


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64s: a counter in, 64 well-mixed bits out (wraps mod 2**64)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def gumbel_noise(keys: np.ndarray, step: int, tokens: np.ndarray) -> np.ndarray:
    """Gumbel(0, 1) noise as a function of (row key, step, token) alone: a counter-based draw, so
    it needs no generator state and costs only the tokens that can be drawn."""
    bits = _mix(keys.astype(np.uint64) ^ _mix((np.uint64(step) << np.uint64(32)) | tokens.astype(np.uint64)))
    uniform = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # in (0, 1)
    return -np.log(-np.log(uniform))


@dataclass(frozen=True)
class Sampling:
    """Draw tokens instead of taking the best, the same draws in every decoding loop (torch
    `generate` through `_sampling_processor`, onnxruntime greedy): at each step the tokens with
    probability ≥ `epsilon` (epsilon sampling; the best always stays) get Gumbel noise keyed by
    (`keys[row]`, step, token), and the best of them is taken, which draws from their renormalized
    probabilities. A row's draws depend on its key alone, never on the batch it is in, so a draw is
    reproducible, and torch and onnxruntime draw alike wherever their logits agree to rounding."""

    keys: tuple[int, ...]  # per row of the batch
    epsilon: float = 0.02

    def apply(self, scores: np.ndarray, rows: Iterable[int], step: int) -> None:
        """In place: `scores` (float32, the batch rows `rows` in order, after biases and bans)
        become -inf but for the drawable tokens' noisy log-probabilities, whose argmax is the draw."""
        top = scores.max(axis=1, keepdims=True)
        logp = scores - top - np.log(np.exp(scores - top).sum(axis=1, keepdims=True))
        keep = logp >= np.float32(np.log(self.epsilon))
        keep[np.arange(len(scores)), logp.argmax(axis=1)] = True
        r, t = np.nonzero(keep)
        keys = np.array([self.keys[row] for row in rows], dtype=np.uint64)
        scores[:] = -np.inf
        scores[r, t] = logp[r, t] + gumbel_noise(keys[r], step, t)


def sample_key(source: list[int], sample: int, seed: int) -> int:
    """A stable key (`Sampling.keys`) for the `sample`-th draw from an encoded source."""
    digest = hashlib.sha256(f"{seed}:{sample}:{','.join(map(str, source))}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def logit_bias(tokenizer: "PreTrainedTokenizerBase", cfg: GenerateConfig) -> LogitBias | None:
    """A run's `first_token_bias` and `eos_bias` as token ids; None when it has neither."""
    every = {tokenizer.eos_token_id: cfg.eos_bias} if cfg.eos_bias else {}
    bias = LogitBias(first_token_ids(tokenizer, cfg.first_token_bias), every)
    return bias or None


def _bias_processor(bias: LogitBias, offset: int = 1):
    """A Hugging Face logits processor applying `bias` (the decoder's length tells the step: it
    holds `offset` tokens, the start token or a causal model's prompt, and those generated so far)."""
    import torch
    from transformers import LogitsProcessor

    class BiasLogits(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            scores = scores.clone()
            bias.apply(scores, input_ids.shape[-1] - offset)
            return scores

    return BiasLogits()


def _ban_processor(n: int, offset: int, start_id: int):
    """A Hugging Face logits processor banning each row's repeated n-grams (`ban_repeats`) over
    what it generated after its first `offset` tokens, with `start_id` first as a seq2seq
    decoder's start token: a causal model's prompt is not part of the answer it must not repeat."""
    import torch
    from transformers import LogitsProcessor

    class BanRepeats(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            scores = scores.clone()
            for row, toks in enumerate(input_ids[:, offset:].tolist()):
                scores[row, banned_tokens([start_id, *toks], n)] = -torch.inf
            return scores

    return BanRepeats()


def _recording_processor(steps: list):
    """A Hugging Face logits processor, last in the list, that appends each step's per-row
    log-probability of the greedy token (the top of the final scores) to `steps` and changes
    nothing: the greedy confidence without keeping every step's scores."""
    import torch
    from transformers import LogitsProcessor

    class RecordTop(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            top = scores.float()
            steps.append((top.max(-1).values - torch.logsumexp(top, -1)).cpu().numpy().astype(np.float64))
            return scores

    return RecordTop()


def _sampling_processor(sampling: Sampling, offset: int = 1):
    """A Hugging Face logits processor applying `sampling` last, after its own bans and our biases,
    so that greedy search takes the draw."""
    import torch
    from transformers import LogitsProcessor

    class SampleLogits(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            noisy = scores.float().cpu().numpy().copy()
            sampling.apply(noisy, range(noisy.shape[0]), input_ids.shape[-1] - offset)
            return torch.from_numpy(noisy).to(scores.device, scores.dtype)

    return SampleLogits()


@dataclass
class ModelSet:
    """The model(s) of one trained run. `models` maps role → model: {"model"} or {"esm", "asm"};
    a model is a Hugging Face seq2seq model or any `TokenGenerator`."""

    method: str
    tokenizer: "PreTrainedTokenizerBase"
    models: dict[str, "PreTrainedModel | TokenGenerator"] = field(default_factory=dict)
    max_source_len: int = 512
    name: str = ""
    generate: GenerateConfig = field(default_factory=GenerateConfig)  # the run's own decoding settings
    backend: str = "torch"
    providers: list[str] = field(
        default_factory=lambda: ["cpu"]
    )  # where it really runs (torch device or ORT providers)

    def for_round(self, i: int) -> "PreTrainedModel | TokenGenerator":
        if self.method == "dsm":
            return self.models["esm" if i % 2 == 0 else "asm"]
        return self.models["model"]


@dataclass
class TorchGenerator:
    """`TokenGenerator` over a Hugging Face model, through its own `generate` (greedy or beam)."""

    model: "PreTrainedModel"
    pad_id: int
    eos_id: int

    def generate_tokens(
        self,
        sources: list[list[int]],
        max_new_tokens: int,
        num_beams: int,
        no_repeat: int = 0,
        bias: LogitBias | None = None,
        sampling: Sampling | None = None,
    ) -> list[list[int]]:
        import torch
        from transformers import LogitsProcessorList

        causal = is_causal(self.model)
        ids, mask = pad(sources, self.pad_id, left=causal)
        # The decoder's tokens before the first generated one: the start token, or a causal model's prompt.
        offset = ids.shape[1] if causal else 1
        if causal and (limit := position_limit(self.model)):
            max_new_tokens = max(1, min(max_new_tokens, limit - offset))  # the prompt and answer share the positions
        greedy = num_beams == 1 and sampling is None  # only then is the top score the answer's own token
        steps: list[np.ndarray] = []  # per step, every row's log-probability of its greedy token
        processors = LogitsProcessorList(
            ([_bias_processor(bias, offset)] if bias else [])
            # Hugging Face's ban would span a causal model's prompt too: ours spans what is generated.
            + ([_ban_processor(no_repeat, offset, self.pad_id)] if causal and no_repeat else [])
            + ([_sampling_processor(sampling, offset)] if sampling else [])
            + ([_recording_processor(steps)] if greedy else [])
        )
        ids_for_causal = {"pad_token_id": self.pad_id, "eos_token_id": self.eos_id} if causal else {}
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids.to(self.model.device),
                attention_mask=mask.to(self.model.device),
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                do_sample=False,
                early_stopping=num_beams > 1,
                no_repeat_ngram_size=0 if causal else no_repeat,  # ours, not the checkpoint's: every backend alike
                logits_processor=processors,
                **ids_for_causal,
            )
        # Drop the decoder start token (a causal model's prompt), and the padding after EOS (a row
        # without EOS ran to the limit, and then every token is the model's own, even a generated pad).
        rows = Decoded(
            toks[: toks.index(self.eos_id) + 1] if self.eos_id in toks else toks for toks in out[:, offset:].tolist()
        )
        if greedy and steps:
            logp = np.stack(steps, axis=1)  # rows × steps; a row's steps after its EOS are not its own
            rows.probability = [
                float(np.exp(logp[r, : len(toks)].mean())) if toks else None for r, toks in enumerate(rows)
            ]
        return rows


class Decoded(list):
    """A generator's token rows (a plain list of rows), with each row's geometric-mean token
    probability where the generator measured it (greedy decoding), else None."""

    probability: list[float] | None = None


def mean_probability(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Each row's log-probability of its chosen token under `logits` (after bias and bans), as float64."""
    top = logits.max(-1, keepdims=True)
    log_norm = np.log(np.exp((logits - top).astype(np.float64)).sum(-1)) + top[:, 0]
    return logits[np.arange(len(tokens)), tokens].astype(np.float64) - log_norm


def generate_batch(
    model: "PreTrainedModel | TokenGenerator",
    tokenizer: "PreTrainedTokenizerBase",
    sources: list[list[int]],
    cfg: GenerateConfig,
    max_new_tokens: int | None = None,
    keys: list[int] | None = None,
    probabilities: list[float | None] | None = None,
) -> tuple[list[str], list[int], list[bool]]:
    """Decode a batch of encoded sources: (texts, generated token counts, whether each ended
    with EOS rather than running into the token limit). With `keys` (one per source, `sample_key`),
    each source's draw (`Sampling`) instead of its greedy or beam answer. `probabilities`, where
    given, is filled with each answer's geometric-mean token probability (None where the generator
    did not measure it)."""
    texts: list[str] = [""] * len(sources)
    counts: list[int] = [0] * len(sources)
    ended: list[bool] = [False] * len(sources)
    if probabilities is not None:
        probabilities[:] = [None] * len(sources)
    limit = max_new_tokens or cfg.max_new_tokens
    gen = (
        model
        if hasattr(model, "generate_tokens")
        else TorchGenerator(model, tokenizer.pad_token_id, tokenizer.eos_token_id)
    )
    bias = logit_bias(tokenizer, cfg)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))  # less padding per batch
    # A generator with several workers (CTranslate2) splits a call into one batch per worker and
    # decodes them at once: hand it a batch for each.
    step = cfg.batch_size * getattr(gen, "workers", 1)
    for b in range(0, len(order), step):
        idx = order[b : b + step]
        batch = [sources[i] for i in idx]
        if keys is None:
            rows = gen.generate_tokens(batch, limit, cfg.num_beams, cfg.no_repeat_ngram_size, bias)
        else:
            sampling = Sampling(tuple(keys[i] for i in idx), cfg.sample_epsilon)
            rows = gen.generate_tokens(batch, limit, 1, cfg.no_repeat_ngram_size, bias, sampling=sampling)
        decoded = tokenizer.batch_decode(rows, skip_special_tokens=True)
        measured = getattr(rows, "probability", None)
        for k, (toks, text, i) in enumerate(zip(rows, decoded, idx)):
            texts[i], counts[i] = text.strip(), len(toks)
            if probabilities is not None and measured is not None:
                probabilities[i] = measured[k]
            ended[i] = tokenizer.eos_token_id in toks
    return texts, counts, ended


def consensus(texts: list[str], references: Sequence[tuple[str, float]] = ()) -> int:
    """The index of the text that agrees most with the others: the highest sum of ROUGE-L F1
    over `units` against each other text (minimum Bayes risk); ties go to the earliest.
    `references` (text, weight) vote without standing: a weight of 1 counts as much as all the
    other texts together (a task's memory of what was written for inputs like this one)."""
    from shared.metrics import lcs_length, rouge_l, rouge_l_of, units

    toks = [units(t) for t in texts]
    refs = [(units(t), w) for t, w in references]
    # Once per pair of distinct texts: most draws repeat another candidate word for word.
    seen: dict[tuple[str, str], int] = {}
    common = {}
    for i in range(len(toks)):
        for j in range(i + 1, len(toks)):
            key = (min(texts[i], texts[j]), max(texts[i], texts[j]))
            if key not in seen:
                seen[key] = len(toks[i]) if texts[i] == texts[j] else lcs_length(toks[i], toks[j])
            common[i, j] = seen[key]
    agreement = [
        sum(rouge_l_of(common[min(i, j), max(i, j)], len(a), len(toks[j])) for j in range(len(toks)) if j != i)
        for i, a in enumerate(toks)
    ]
    if refs:  # scaled by the others' count, not the sum divided by it: without references the floats are as before
        agreement = [s + (len(toks) - 1) * sum(w * rouge_l(a, b) for b, w in refs) for s, a in zip(agreement, toks)]
    return max(range(len(texts)), key=lambda i: (agreement[i], -i))


def agreement(votes: "Sequence[str | None]", chosen: int) -> float | None:
    """How much the other candidates agree with the chosen one: its mean ROUGE-L F1 (over `units`)
    against each of them, 0..1, a candidate that does not vote (None: the task reads it as saying
    nothing, e.g. normal) agreeing 0; None when it stood alone. The memory's references do not
    count: they are not draws of this model."""
    from shared.metrics import rouge_l, units

    others = [v for k, v in enumerate(votes) if k != chosen]
    if not others:
        return None
    mine = units(votes[chosen] or "")
    return sum(rouge_l(mine, units(o)) for o in others if o is not None) / len(others) / 100


def generate(
    models: ModelSet,
    questions: list[str],
    adapter: "TaskAdapter",
    cfg: GenerateConfig,
    vote: Callable[[str, str], str | None] | None = None,
    references: Callable[[str], Sequence[tuple[str, float]]] | None = None,
) -> list[GenerationResult]:
    """With `cfg.consensus_samples` (direct models), each question's answer is, among its greedy
    answer (first) and its draws, the one whose vote agrees most with the others' (`consensus`).
    `vote(question, text)` is what a task will make of a text, or None for a text that does not
    take part; a greedy answer that does not take part stands, and gets no draws. Default: every
    text votes as it is. `references(question)`, where given, adds (vote, weight) pairs that vote
    but are not candidates (`consensus`); asked only for questions that get draws."""
    tok = models.tokenizer
    results = [GenerationResult() for _ in questions]
    if not questions:
        return results
    q_ids = tok(questions, add_special_tokens=False)["input_ids"]
    if cfg.consensus_samples and models.method != "direct":
        raise ValueError(f"generate.consensus_samples is for direct models; this is a {models.method} run")

    if models.method == "direct":
        sources = [encode_source(q, [], models.max_source_len, tok.eos_token_id) for q in q_ids]
        budget = min(cfg.max_new_tokens * cfg.max_iters, cfg.max_total_tokens)
        confidence: list[float | None] = []
        texts, counts, ended = generate_batch(models.models["model"], tok, sources, cfg, budget, None, confidence)
        if cfg.consensus_samples:
            as_voted = vote or (lambda _question, text: text)
            greedy = [as_voted(q, _read_segment(adapter, t)[1]) for q, t in zip(questions, texts)]
            # The others stand as greedy decoding wrote them: answers that do not vote, and, below 1, sure ones.
            sure = [cfg.consensus_below < 1 and c is not None and c >= cfg.consensus_below for c in confidence]
            open_ = [i for i, v in enumerate(greedy) if v is not None and not sure[i]]
            n = cfg.consensus_samples  # all draws in one call: longer batches of equal-length rows
            keys = [sample_key(sources[i], k, cfg.sample_seed) for i in open_ for k in range(n)]
            drawn = generate_batch(
                models.models["model"], tok, [sources[i] for i in open_ for _ in range(n)], cfg, budget, keys
            )
            for v, i in enumerate(open_):
                candidates = [(texts[i], counts[i], ended[i])] + [
                    (drawn[0][j], drawn[1][j], drawn[2][j]) for j in range(v * n, (v + 1) * n)
                ]
                votes = [greedy[i]] + [as_voted(questions[i], _read_segment(adapter, c[0])[1]) for c in candidates[1:]]
                eligible = [k for k, text in enumerate(votes) if text is not None]
                known = references(questions[i]) if references else ()
                chosen = eligible[consensus([votes[k] for k in eligible], known)]
                texts[i], _, ended[i] = candidates[chosen]
                confidence[i] = agreement(votes, chosen)
                counts[i] += sum(c[1] for c in candidates[1:])  # every token generated for this answer, draws included
        for res, text, n, done, sure in zip(results, texts, counts, ended, confidence):
            final, clean = _read_segment(adapter, text)
            res.segments = [Segment(None, clean)] if clean else []
            res.stopped = done or final
            res.confidence = sure
            res.reason, res.generated_tokens = ("stop" if res.stopped else "max_tokens"), n
        return results

    active = list(range(len(questions)))
    for rnd in range(cfg.max_iters):
        if not active:
            break
        prefixes = [prefix_text(adapter, [s.text for s in results[i].segments]) for i in active]
        p_ids = tok(prefixes, add_special_tokens=False)["input_ids"]
        sources = [encode_source(q_ids[i], p, models.max_source_len, tok.eos_token_id) for i, p in zip(active, p_ids)]
        # Each input may generate only what its own budget has left: group inputs by that cap.
        caps = [max(1, min(cfg.max_new_tokens, cfg.max_total_tokens - results[i].generated_tokens)) for i in active]
        texts, counts = [""] * len(active), [0] * len(active)
        for cap in sorted(set(caps)):
            group = [k for k, c in enumerate(caps) if c == cap]
            got, n, _ = generate_batch(models.for_round(rnd), tok, [sources[k] for k in group], cfg, cap)
            for k, t, c in zip(group, got, n):
                texts[k], counts[k] = t, c
        tag = ES if rnd % 2 == 0 else AS  # segments alternate once equal tags are merged
        still = []
        for i, text, n in zip(active, texts, counts):
            res = results[i]
            res.generated_tokens += n
            if _step(res, text, tag, adapter, models.method, cfg):
                still.append(i)
        active = still
    for i in active:
        results[i].reason = "max_iters"
    for res in results:  # DSM's deliberate empty ES segments are not output
        res.segments = [s for s in res.segments if s.text]
    return results


def result_text(adapter: "TaskAdapter", res: GenerationResult) -> str:
    """The whole generated text (an impression, a solution) as the user sees it."""
    return adapter.join([s.text for s in res.segments])


def _read_segment(adapter: "TaskAdapter", text: str) -> tuple[bool, str]:
    """(whether the segment carries the stop sign, its text as shown)."""
    final = adapter.is_final(text)
    return final, adapter.strip_stop(text) if final else text


def _step(res: GenerationResult, text: str, tag, adapter: "TaskAdapter", method: str, cfg: GenerateConfig) -> bool:
    """Record one generated segment; False when this input is finished."""
    final, clean = _read_segment(adapter, text)
    # Compare with the last non-empty segment: DSM's empty ES segments sit between repeats.
    previous = next((s.text for s in reversed(res.segments) if s.text), None)
    if clean and clean == previous:  # a loop: the model is repeating its last segment
        res.reason = "repeat"
        return False
    if clean or method == "dsm":  # DSM's ESM may yield an empty segment on purpose
        res.segments.append(Segment(tag, clean))
    if final:
        res.stopped, res.reason = True, "stop"
        return False
    if not clean and (method != "dsm" or (len(res.segments) > 1 and not res.segments[-2].text)):
        res.reason = "empty"  # nothing new and the input would not change: stop rather than loop
        return False
    if res.generated_tokens >= cfg.max_total_tokens:
        res.reason = "max_tokens"
        return False
    return True
