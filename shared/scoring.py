"""Per-piece scores for the model-based strategies (`ent`, `ent_pre`, `loss`).

The scorer reads each target teacher-forced, as the direct model was trained: input = the
question, decoder = the whole target, so every token is scored with its preceding context.
Pieces get the mean score of the tokens that start inside them. Batched, in eval mode, under
no_grad: the same model and data always give the same tags."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from shared.batching import encode_source, pad

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ScoreKind = Literal["entropy", "loss"]


def piece_scores(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    questions: list[str],
    targets: list[str],
    spans: list[list[tuple[int, int]]],
    kind: ScoreKind,
    batch_size: int = 32,
    max_source_len: int = 512,
    max_target_len: int = 128,
) -> list[list[float]]:
    """Mean token entropy (or loss) of each piece `spans[i][j]` of `targets[i]`, under a seq2seq
    model (a decoder-only one is refused: its scores would need the prompt's positions)."""
    import torch

    from shared.modeling import is_causal
    from shared.textio import InputError

    if is_causal(model):
        raise InputError("the ent, ent_pre and loss strategies score with seq2seq models; use inter, bleu or rouge")

    enc = tokenizer(targets, add_special_tokens=False, return_offsets_mapping=True)
    labels = [ids[: max_target_len - 1] + [tokenizer.eos_token_id] for ids in enc["input_ids"]]
    offsets = [off[: max_target_len - 1] for off in enc["offset_mapping"]]
    q_ids = tokenizer(questions, add_special_tokens=False)["input_ids"]
    sources = [encode_source(q, [], max_source_len, tokenizer.eos_token_id) for q in q_ids]

    token_scores: list[list[float]] = [[] for _ in targets]
    order = sorted(range(len(targets)), key=lambda i: (len(sources[i]), len(labels[i])))
    model.eval()
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            src, mask = pad([sources[i] for i in idx], tokenizer.pad_token_id)
            lab, _ = pad([labels[i] for i in idx], -100)
            logits = model(input_ids=src, attention_mask=mask, labels=lab).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            if kind == "entropy":
                per_tok = -(logp.exp() * logp).sum(-1)
            else:
                per_tok = -logp.gather(-1, lab.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            for row, i in enumerate(idx):
                token_scores[i] = per_tok[row, : len(offsets[i])].tolist()

    out = []
    for i, piece_spans in enumerate(spans):
        sums = [0.0] * len(piece_spans)
        counts = [0] * len(piece_spans)
        text = targets[i]
        for score, (start, end) in zip(token_scores[i], offsets[i]):
            while start < end and text[start].isspace():  # Metaspace tokens start on the space before a word
                start += 1
            for j, (ps, pe) in enumerate(piece_spans):
                if ps <= start < pe:
                    sums[j] += score
                    counts[j] += 1
                    break
        # A piece cut off by max_target_len has no tokens: give it NaN, tagged by the others' mean.
        out.append([s / c if c else math.nan for s, c in zip(sums, counts)])
    return out
