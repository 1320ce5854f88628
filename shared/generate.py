"""Iterative AS-ES generation (the paper's Algorithms 1 and 2), batched.

Each round generates one segment for every unfinished input, appends it to that input
(`Q | s_1 … s_i`) and goes again, until the stop sign, `max_iters` rounds, or
`max_total_tokens` generated tokens. USM uses one model every round; DSM alternates ESM and
ASM, starting with the ESM; a direct model answers in one round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.batching import encode_source, pad
from shared.config import GenerateConfig
from shared.dataset import prefix_text
from shared.schema import AS, ES, GenerationResult, Segment

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from shared.adapter import TaskAdapter


@dataclass
class ModelSet:
    """The model(s) of one trained run. `models` maps role → model: {"model"} or {"esm", "asm"}."""

    method: str
    tokenizer: "PreTrainedTokenizerBase"
    models: dict[str, "PreTrainedModel"] = field(default_factory=dict)
    max_source_len: int = 512
    name: str = ""
    generate: GenerateConfig = field(default_factory=GenerateConfig)  # the run's own decoding settings

    def for_round(self, i: int) -> "PreTrainedModel":
        if self.method == "dsm":
            return self.models["esm" if i % 2 == 0 else "asm"]
        return self.models["model"]


def generate_batch(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    sources: list[list[int]],
    cfg: GenerateConfig,
    max_new_tokens: int | None = None,
) -> tuple[list[str], list[int], list[bool]]:
    """Decode a batch of encoded sources: (texts, generated token counts, whether each ended
    with EOS rather than running into the token limit)."""
    import torch

    texts: list[str] = [""] * len(sources)
    counts: list[int] = [0] * len(sources)
    ended: list[bool] = [False] * len(sources)
    eos, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))  # less padding per batch
    with torch.no_grad():
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            ids, mask = pad([sources[i] for i in idx], pad_id)
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens or cfg.max_new_tokens,
                num_beams=cfg.num_beams,
                do_sample=False,
                early_stopping=cfg.num_beams > 1,
            )
            out = out[:, 1:]  # drop the decoder start token
            decoded = tokenizer.batch_decode(out, skip_special_tokens=True)
            for row, i in enumerate(idx):
                toks = out[row].tolist()
                texts[i] = decoded[row].strip()
                ended[i] = eos in toks
                # Tokens the model produced: through its EOS, or all of them when it was cut off.
                counts[i] = toks.index(eos) + 1 if ended[i] else sum(1 for t in toks if t != pad_id)
    return texts, counts, ended


def generate(
    models: ModelSet, questions: list[str], adapter: "TaskAdapter", cfg: GenerateConfig
) -> list[GenerationResult]:
    tok = models.tokenizer
    results = [GenerationResult() for _ in questions]
    if not questions:
        return results
    q_ids = tok(questions, add_special_tokens=False)["input_ids"]

    if models.method == "direct":
        sources = [encode_source(q, [], models.max_source_len, tok.eos_token_id) for q in q_ids]
        budget = min(cfg.max_new_tokens * cfg.max_iters, cfg.max_total_tokens)
        texts, counts, ended = generate_batch(models.models["model"], tok, sources, cfg, budget)
        for res, text, n, done in zip(results, texts, counts, ended):
            final, clean = _read_segment(adapter, text)
            res.segments = [Segment(None, clean)] if clean else []
            res.stopped = done or final
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
