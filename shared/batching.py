"""Token encoding, dynamic padding and length-bucketed batches.

Batches are padded only to their own longest row. Bucketing sorts rows by length inside large
shuffled pools before cutting batches, so rows of similar length travel together and little
compute is spent on padding; batch order is shuffled again so training sees no length curriculum.
`batching="pad_max"` (pad everything to the configured maximum, random batches) exists only as
the baseline the benchmark compares against.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from shared.schema import Sample


def encode_source(q_ids: list[int], p_ids: list[int], max_len: int, eos_id: int) -> list[int]:
    """Question ids + prefix ids + EOS within `max_len`.

    When too long, keep the question's head and the prefix's tail (the prefix ends where the next
    segment begins; losing it would make the model repeat itself), each given at least half."""
    budget = max_len - 1
    if len(q_ids) + len(p_ids) > budget:
        keep_p = min(len(p_ids), max(budget - len(q_ids), budget // 2))
        q_ids = q_ids[: budget - keep_p]
        p_ids = p_ids[len(p_ids) - keep_p :]
    return q_ids + p_ids + [eos_id]


@dataclass(frozen=True)
class Encoded:
    source: list[int]
    target: list[int]
    weights: list[float] | None = None  # per target token (EDIT's key tokens weigh more); None: all 1

    @property
    def n_tokens(self) -> int:
        return len(self.source) + len(self.target)


def encode_samples(
    tokenizer: "PreTrainedTokenizerBase",
    samples: Sequence["Sample"],
    max_source_len: int,
    max_target_len: int,
    key_weight: float = 1.0,
) -> list[Encoded]:
    """Token rows. A sample with a wrong answer (`contrast`) gets per-token weights when
    `key_weight` is not 1: its key tokens against that answer weigh `key_weight` (`shared.keysteps`)."""
    from shared.keysteps import token_weights

    def ids(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    eos = tokenizer.eos_token_id
    qs = ids([s.question for s in samples])
    ps = ids([s.prefix for s in samples])
    ts = [t[: max_target_len - 1] + [eos] for t in ids([s.target for s in samples])]
    weighted = [i for i, s in enumerate(samples) if s.contrast and key_weight != 1.0]
    wrong = dict(zip(weighted, ids([samples[i].contrast or "" for i in weighted])))
    return [
        Encoded(
            encode_source(q, p, max_source_len, eos),
            t,
            token_weights(t, wrong[i][: max_target_len - 1] + [eos], key_weight) if i in wrong else None,
        )
        for i, (q, p, t) in enumerate(zip(qs, ps, ts))
    ]


def pad(
    rows: list[list[int]], value: int, to: int | None = None, left: bool = False
) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Pad to the longest row (or `to`), on the right, or on the `left` (a decoder-only model's
    prompts: generation continues from each row's last token); returns (ids, attention mask)."""
    import torch

    width = to or max(len(r) for r in rows)
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        at = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, at] = torch.tensor(r, dtype=torch.long)
        mask[i, at] = 1
    return ids, mask


def collate(
    rows: list[Encoded], pad_id: int, pad_to: tuple[int, int] | None = None, causal: bool = False
) -> dict[str, "torch.Tensor"]:
    """A training batch. Seq2seq: sources as `input_ids`, targets as `labels`. `causal` (a
    decoder-only model): each row is its source then its target as one sequence, and `labels`
    holds the target's tokens at their own positions, -100 elsewhere (Hugging Face's convention:
    the model shifts them; `shared.trainer.loss_sum` does too). Where a row has token weights, the
    batch has `weights` beside `labels` (1 for the other rows), which the model never sees
    (`model_inputs`)."""
    import torch

    if causal:
        width = sum(pad_to) if pad_to else None
        ids, mask = pad([r.source + r.target for r in rows], pad_id, width)
        labels, _ = pad([[-100] * len(r.source) + r.target for r in rows], -100, width)
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    else:
        src, mask = pad([r.source for r in rows], pad_id, pad_to[0] if pad_to else None)
        labels, _ = pad([r.target for r in rows], -100, pad_to[1] if pad_to else None)
        batch = {"input_ids": src, "attention_mask": mask, "labels": labels}
    if any(r.weights for r in rows):
        weights = torch.ones(labels.shape, dtype=torch.float32)
        for i, r in enumerate(rows):
            if r.weights:
                start = len(r.source) if causal else 0
                weights[i, start : start + len(r.weights)] = torch.tensor(r.weights)
        batch["weights"] = weights
    return batch


def model_inputs(batch: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """What a batch hands the model: all but the loss's own token weights."""
    return {k: v for k, v in batch.items() if k != "weights"}


def padded_size(rows: list[Encoded], pad_to: tuple[int, int] | None = None) -> int:
    """Source + target tokens `collate` pads `rows` to: what the model computes, padding included."""
    if not rows:
        return 0
    if pad_to:
        return len(rows) * sum(pad_to)
    return len(rows) * (max(len(r.source) for r in rows) + max(len(r.target) for r in rows))


class BucketBatches:
    """Deterministic batches for epoch e: the same (seed, epoch) always gives the same batches,
    which is what makes resuming mid-epoch exact.

    `epoch` always gives the global batches, whatever the world size, so several processes
    train on exactly the batches one process would; `shard(batch)` is this rank's part of one.
    Every rank therefore takes the same number of steps."""

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        max_tokens: int | None,
        seed: int,
        bucket: bool = True,
        pool_batches: int = 64,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.seed = seed
        self.bucket = bucket
        self.pool = pool_batches * batch_size
        self.rank, self.world = rank, world

    def epoch(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        batches: list[list[int]] = []
        for p in range(0, len(order), self.pool if self.bucket else len(order) or 1):
            pool = order[p : p + self.pool] if self.bucket else order
            if self.bucket:
                pool = sorted(pool, key=lambda i: self.lengths[i])
            batches.extend(self._cut(pool))
        if self.bucket:
            rng.shuffle(batches)
        return batches

    def shard(self, batch: list[int], rank: int | None = None) -> list[int]:
        """Rank `rank`'s rows of a global batch (default: this sampler's rank). Every world-th
        row: a bucketed batch is sorted by length, so each rank gets a share of the short and
        the long rows alike. A batch smaller than the world leaves some ranks empty."""
        rank = self.rank if rank is None else rank
        return batch[rank :: self.world]

    def _cut(self, pool: list[int]) -> Iterator[list[int]]:
        batch: list[int] = []
        longest = 0
        for i in pool:
            n = self.lengths[i]
            wider = max(longest, n)
            too_many = self.max_tokens is not None and batch and wider * (len(batch) + 1) > self.max_tokens
            if batch and (len(batch) == self.batch_size or too_many):
                yield batch
                batch, wider = [], n
            batch.append(i)
            longest = wider
        if batch:
            yield batch
