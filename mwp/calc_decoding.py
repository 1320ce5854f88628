"""Calculator decoding: generation that computes the model's calculator annotations.

A model trained with `mwp train --calculator` writes `… = <<48/2=24>>24 …`. Here every row is
watched while it decodes: when its text ends with an unclosed `<<expr=`, the safe calculator
(`mwp.calculator`) evaluates `expr`, and the value and `>>` become that row's next tokens, forced;
then the model goes on, conditioned on a correct value. When the calculator refuses (division by
zero, anything that is not arithmetic), nothing is inserted and the model continues unaided.

Decoding is greedy (or each row's seeded draw, `shared.generate.Sampling`, for answer voting),
batched and in lockstep: every row advances one token per step through the KV cache, and a row
with forced tokens takes them instead of its prediction, so a row that calls the calculator never
stalls or re-pads the others. Without any `<<expr=` the tokens are exactly those of plain
decoding. It runs a torch model (seq2seq or decoder-only) or an onnxruntime export (the encoder
and decoder step of `deploy.runtime.OnnxSeq2Seq`) behind the `TokenGenerator` interface, so the
AS-ES loop (`shared.generate`) runs unchanged on top of it.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mwp.calculator import calculate
from shared.generate import LogitBias, Sampling, ban_repeats
from shared.modeling import is_causal, position_limit
from shared.textio import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from shared.generate import ModelSet

OPEN_CALL = re.compile(r"<<([^<>=]*)=$")  # a row's text ending in an unclosed `<<expr=`
MAX_CALLS = 16  # calculator calls per row and segment; the token limit bounds them too
_PROBE = "<<2+3=5>>"


class Stepper(Protocol):
    """One model, decoding a batch one token per row per step."""

    start_id: int
    room: int | None  # most tokens the model can add to the batch `start` was given (None: no limit)

    def start(self, sources: list[list[int]]) -> None:
        """Encode a batch of sources (once) and reset the cache."""

    def step(self, tokens: list[int]) -> np.ndarray:
        """Feed each row's latest token; each row's next-token logits, (rows, vocab)."""


class TorchStepper:
    """A Hugging Face seq2seq model: the encoder once, then the decoder with its KV cache."""

    room = None

    def __init__(self, model: Any, pad_id: int) -> None:
        self.model, self.pad_id = model, pad_id
        start = model.generation_config.decoder_start_token_id
        self.start_id = model.config.decoder_start_token_id if start is None else start  # as `generate` picks it

    def start(self, sources: list[list[int]]) -> None:
        import torch

        from shared.batching import pad

        ids, mask = pad(sources, self.pad_id)
        self.mask = mask.to(self.model.device)
        with torch.no_grad():
            self.encoded = self.model.get_encoder()(input_ids=ids.to(self.model.device), attention_mask=self.mask)
        self.past = None

    def step(self, tokens: list[int]) -> np.ndarray:
        import torch

        step_ids = torch.tensor(tokens, dtype=torch.long, device=self.model.device)[:, None]
        with torch.no_grad():
            out = self.model(
                encoder_outputs=self.encoded,
                attention_mask=self.mask,
                decoder_input_ids=step_ids,
                past_key_values=self.past,
                use_cache=True,
            )
        self.past = out.past_key_values
        return out.logits[:, -1].float().numpy(force=True)


class CausalStepper:
    """A Hugging Face decoder-only model (GPT-2, Llama, Qwen2): the prompts left-padded and run
    once, then one token per row per step through its KV cache. The prompt's run already gives the
    first step's logits, so the first `step` call's tokens (the start ids) are not fed; `start_id`
    is the pad id, which a seq2seq model's start token also is, so the n-gram ban sees the same
    history whatever the model."""

    def __init__(self, model: Any, pad_id: int) -> None:
        self.model, self.pad_id, self.start_id = model, pad_id, pad_id
        self.room: int | None = None

    def start(self, sources: list[list[int]]) -> None:
        import torch

        from shared.batching import pad

        ids, mask = pad(sources, self.pad_id, left=True)
        self.mask = mask.to(self.model.device)
        with torch.no_grad():
            out = self.model(
                input_ids=ids.to(self.model.device),
                attention_mask=self.mask,
                position_ids=(self.mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=True,
            )
        self.past, self.pending = out.past_key_values, out.logits[:, -1]
        limit = position_limit(self.model)
        self.room = max(1, limit - ids.shape[1]) if limit else None  # the prompt and answer share the positions

    def step(self, tokens: list[int]) -> np.ndarray:
        import torch

        if self.pending is not None:  # the prompt's own next-token logits
            logits, self.pending = self.pending, None
            return logits.float().numpy(force=True)
        position = self.mask.sum(-1, keepdim=True)  # a new token's position: the row's real tokens before it
        self.mask = torch.cat([self.mask, torch.ones_like(position)], dim=-1)
        step_ids = torch.tensor(tokens, dtype=torch.long, device=self.model.device)[:, None]
        with torch.no_grad():
            out = self.model(
                input_ids=step_ids,
                attention_mask=self.mask,
                position_ids=position,
                past_key_values=self.past,
                use_cache=True,
            )
        self.past = out.past_key_values
        return out.logits[:, -1].float().numpy(force=True)


class OnnxStepper:
    """An exported model (`deploy.runtime.OnnxSeq2Seq`), through its public encode and step."""

    room = None

    def __init__(self, model: Any) -> None:
        self.model, self.start_id = model, model.start

    def start(self, sources: list[list[int]]) -> None:
        _, self.cross, self.mask = self.model.encode(sources)
        self.past = self.model.empty_past(len(sources))

    def step(self, tokens: list[int]) -> np.ndarray:
        logits, self.past = self.model.step(np.asarray(tokens, dtype=np.int64), self.mask, self.past, self.cross)
        return logits


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)
    forced: deque = field(default_factory=deque)
    calls: int = 0
    done: bool = False


def splice_ids(tokenizer: "PreTrainedTokenizerBase", ids: list[int], text: str, insert: str) -> list[int]:
    """Tokens that extend `ids` (which decode to `text`) to decode as `text + insert`, tokenized
    in context as training tokenized the annotation (on its own, `5>>` would start a new word);
    [] when this tokenizer cannot extend the text that way."""
    base = tokenizer.encode(text, add_special_tokens=False)
    full = tokenizer.encode(text + insert, add_special_tokens=False)
    extra = full[len(base) :]
    if full[: len(base)] != base or tokenizer.decode(ids + extra, skip_special_tokens=True) != text + insert:
        return []
    return extra


@dataclass
class CalculatorGenerator:
    """A `TokenGenerator` (see `shared.generate`) that decodes greedily with the calculator."""

    stepper: Stepper
    tokenizer: "PreTrainedTokenizerBase"
    max_calls: int = MAX_CALLS

    def generate_tokens(
        self,
        sources: list[list[int]],
        max_new_tokens: int,
        num_beams: int = 1,
        no_repeat: int = 0,
        bias: LogitBias | None = None,
        sampling: Sampling | None = None,
    ) -> list[list[int]]:
        """Each source's tokens through EOS (forced ones included); greedy whatever `num_beams`,
        or each row's seeded draw with `sampling` (the draws `mwp solve --samples` votes over).
        `no_repeat`, `bias` and `sampling` act as in `TorchGenerator`; forced tokens pass."""
        if not sources:
            return []
        rows = [_Row() for _ in sources]
        self.stepper.start(sources)
        if self.stepper.room:
            max_new_tokens = min(max_new_tokens, self.stepper.room)
        tokens = [self.stepper.start_id] * len(sources)
        for i in range(max_new_tokens):
            logits = self.stepper.step(tokens)
            if bias:
                bias.apply(logits, i)
            ban_repeats(logits, ([self.stepper.start_id, *row.ids] for row in rows), no_repeat)
            if sampling is not None:
                sampling.apply(logits, range(len(rows)), i)
            predicted = logits.argmax(-1).tolist()
            tokens = [self._advance(row, tok) for row, tok in zip(rows, predicted)]
            if all(row.done for row in rows):
                break
        return [row.ids for row in rows]

    def _advance(self, row: _Row, predicted: int) -> int:
        """The row's next token (a forced one before its own prediction); pad once it is done."""
        if row.done:
            return self.tokenizer.pad_token_id
        tok = row.forced.popleft() if row.forced else predicted
        row.ids.append(tok)
        if tok == self.tokenizer.eos_token_id:
            row.done = True
        elif not row.forced:
            row.forced.extend(self._calculation(row))
        return tok

    def _calculation(self, row: _Row) -> list[int]:
        """The tokens of `value>>` when the row has just written `<<expr=` and expr computes."""
        piece = self.tokenizer.convert_ids_to_tokens(row.ids[-1]) or ""  # None for an id past the vocabulary
        if row.calls >= self.max_calls or "=" not in piece:
            return []  # cheap test first: only a token with `=` can open a calculation
        text = self.tokenizer.decode(row.ids, skip_special_tokens=True)
        call = OPEN_CALL.search(text)
        if call is None:
            return []
        row.calls += 1
        value = calculate(call.group(1))
        return [] if value is None else splice_ids(self.tokenizer, row.ids, text, value + ">>")


def writes_annotations(tokenizer: "PreTrainedTokenizerBase") -> bool:
    """Whether a tokenizer can write `<<2+3=5>>` at all (T5's own vocabulary has no `<`)."""
    ids = tokenizer.encode(_PROBE, add_special_tokens=False)
    return tokenizer.decode(ids, skip_special_tokens=True) == _PROBE


def _stepper(model: Any, tokenizer: "PreTrainedTokenizerBase") -> Stepper:
    if getattr(model, "sampler", None) is not None:  # a CTranslate2 export: its onnxruntime model steps
        model = model.sampler
    if all(hasattr(model, a) for a in ("encode", "step", "empty_past")):  # an onnxruntime export
        return OnnxStepper(model)
    if hasattr(model, "generate_tokens"):
        raise InputError("calculator mode runs torch models and ONNX exports only; pass --no-calculator")
    if is_causal(model):
        return CausalStepper(model, tokenizer.pad_token_id)
    return TorchStepper(model, tokenizer.pad_token_id)


def use_calculator(models: "ModelSet") -> None:
    """Make every model of a run decode with the calculator."""
    if not writes_annotations(models.tokenizer):
        raise InputError("this model's tokenizer cannot write calculator annotations <<…>>; pass --no-calculator")
    models.models = {
        role: CalculatorGenerator(_stepper(m, models.tokenizer), models.tokenizer) for role, m in models.models.items()
    }
