"""Encoding, padding and bucketed batches (shared.batching)."""

from __future__ import annotations

import random

import pytest
import torch

from shared.batching import BucketBatches, Encoded, collate, encode_samples, encode_source, pad, padded_size

EOS = 1

# --- encode_source -----------------------------------------------------------------------------


def test_encode_source_keeps_everything_when_short():
    assert encode_source([5, 6, 7], [8, 9], 10, EOS) == [5, 6, 7, 8, 9, EOS]
    assert encode_source([], [], 10, EOS) == [EOS]


def test_encode_source_exactly_at_the_limit_is_untouched():
    q, p = list(range(10, 20)), list(range(20, 29))  # 10 + 9 + EOS = 20
    assert encode_source(q, p, 20, EOS) == q + p + [EOS]


def test_encode_source_long_keeps_question_head_and_prefix_tail():
    q, p = list(range(100)), list(range(1000, 1050))
    got = encode_source(q, p, 40, EOS)
    # budget 39: the prefix keeps max(39 - 100, 39 // 2) = 19 tokens, the question the other 20
    assert got == list(range(20)) + list(range(1031, 1050)) + [EOS]
    assert len(got) == 40


def test_encode_source_long_question_short_prefix_keeps_all_of_the_prefix():
    q, p = list(range(100)), [1000, 1001, 1002]
    got = encode_source(q, p, 40, EOS)
    assert got == list(range(36)) + [1000, 1001, 1002, EOS]


def test_encode_source_short_question_long_prefix_keeps_all_of_the_question():
    q, p = list(range(10)), list(range(1000, 1100))
    got = encode_source(q, p, 40, EOS)
    assert got == list(range(10)) + list(range(1071, 1100)) + [EOS]
    assert len(got) == 40


def test_encode_source_empty_prefix_truncates_question():
    assert encode_source(list(range(50)), [], 8, EOS) == list(range(7)) + [EOS]


@pytest.mark.parametrize("nq, np_, max_len", [(100, 50, 40), (3, 100, 16), (100, 3, 16), (30, 30, 9), (0, 40, 10)])
def test_encode_source_never_exceeds_max_len(nq, np_, max_len):
    q, p = list(range(100, 100 + nq)), list(range(1000, 1000 + np_))
    got = encode_source(q, p, max_len, EOS)
    assert len(got) == min(max_len, nq + np_ + 1)
    assert got[-1] == EOS
    body = got[:-1]
    kept_q = [t for t in body if t < 1000]
    kept_p = [t for t in body if t >= 1000]
    assert kept_q == q[: len(kept_q)]  # head of the question
    assert kept_p == (p[len(p) - len(kept_p) :] if kept_p else [])  # tail of the prefix


# --- pad / collate -----------------------------------------------------------------------------


def test_pad_shapes_values_and_mask():
    ids, mask = pad([[5, 6, 7], [8], [9, 10]], 0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert ids.dtype == torch.long and mask.dtype == torch.long


def test_pad_to_a_fixed_width():
    ids, mask = pad([[5, 6], [7]], 3, to=4)
    assert ids.tolist() == [[5, 6, 3, 3], [7, 3, 3, 3]]
    assert mask.tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]


def test_collate_pads_labels_with_minus_100():
    rows = [Encoded([5, 6, 7, EOS], [11, EOS]), Encoded([8, EOS], [12, 13, 14, EOS])]
    batch = collate(rows, pad_id=0)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].tolist() == [[5, 6, 7, EOS], [8, EOS, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[11, EOS, -100, -100], [12, 13, 14, EOS]]


def test_collate_pad_to():
    rows = [Encoded([5, EOS], [11, EOS])]
    batch = collate(rows, pad_id=0, pad_to=(4, 3))
    assert batch["input_ids"].tolist() == [[5, EOS, 0, 0]]
    assert batch["labels"].tolist() == [[11, EOS, -100]]


def test_encoded_n_tokens():
    assert Encoded([1, 2, 3], [4, 5]).n_tokens == 5


def test_encode_samples_with_a_real_tokenizer():
    from tinymodels import tiny_tokenizer

    from shared.schema import Sample

    tok = tiny_tokenizer()
    samples = [
        Sample("e", 0, "ES", "胰头部见软组织肿块，放射性摄取增高。", " | 胰头部软组织肿块，", "考虑恶性肿瘤。<STOP>")
    ]
    (enc,) = encode_samples(tok, samples, max_source_len=64, max_target_len=64)
    q = tok(samples[0].question, add_special_tokens=False)["input_ids"]
    p = tok(samples[0].prefix, add_special_tokens=False)["input_ids"]
    t = tok(samples[0].target, add_special_tokens=False)["input_ids"]
    assert enc.source == q + p + [tok.eos_token_id]
    assert enc.target == t + [tok.eos_token_id]
    assert tok.convert_tokens_to_ids("<STOP>") in enc.target
    (short,) = encode_samples(tok, samples, max_source_len=8, max_target_len=4)
    assert len(short.source) == 8 and short.source[-1] == tok.eos_token_id
    assert short.target == t[:3] + [tok.eos_token_id]
    assert encode_samples(tok, [], 8, 8) == []


# --- BucketBatches -----------------------------------------------------------------------------


def random_lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(4, 200) for _ in range(n)]


def waste(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("bucket", [True, False])
@pytest.mark.parametrize("max_tokens", [None, 1000])
def test_every_index_exactly_once_per_epoch(bucket, max_tokens):
    lengths = random_lengths(503)
    bb = BucketBatches(lengths, batch_size=16, max_tokens=max_tokens, seed=7, bucket=bucket, pool_batches=4)
    for epoch in range(3):
        flat = [i for b in bb.epoch(epoch) for i in b]
        assert sorted(flat) == list(range(len(lengths)))


def test_batches_respect_batch_size():
    lengths = random_lengths(100)
    for bucket in (True, False):
        batches = BucketBatches(lengths, 8, None, seed=1, bucket=bucket).epoch(0)
        # one pool (64 batches * 8 > 100 rows): twelve full batches and one of the 4 left over
        assert sorted(len(b) for b in batches) == [4] + [8] * 12


def test_same_seed_and_epoch_give_the_same_batches():
    lengths = random_lengths(300)
    a = BucketBatches(lengths, 16, 2000, seed=3).epoch(5)
    b = BucketBatches(lengths, 16, 2000, seed=3).epoch(5)
    assert a == b


def test_different_epochs_and_seeds_differ():
    lengths = random_lengths(300)
    bb = BucketBatches(lengths, 16, 2000, seed=3)
    assert bb.epoch(0) != bb.epoch(1)
    assert bb.epoch(0) != BucketBatches(lengths, 16, 2000, seed=4).epoch(0)
    unbucketed = BucketBatches(lengths, 16, None, seed=3, bucket=False)
    assert unbucketed.epoch(0) != unbucketed.epoch(1)


def test_bucketing_wastes_less_padding():
    lengths = random_lengths(2000, seed=11)
    bucketed = BucketBatches(lengths, 32, None, seed=0, bucket=True, pool_batches=16).epoch(0)
    random_ = BucketBatches(lengths, 32, None, seed=0, bucket=False).epoch(0)
    assert waste(bucketed, lengths) < waste(random_, lengths) / 4


def test_bucketed_batch_order_is_shuffled():
    # sorted pools must not leak into a length curriculum: batch max lengths are not monotone
    lengths = random_lengths(2000, seed=2)
    batches = BucketBatches(lengths, 16, None, seed=0, pool_batches=200).epoch(0)
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)


@pytest.mark.parametrize("bucket", [True, False])
def test_max_tokens_caps_padded_size(bucket):
    lengths = random_lengths(500, seed=5)
    cap = 600
    batches = BucketBatches(lengths, 64, cap, seed=0, bucket=bucket).epoch(0)
    for b in batches:
        assert max(lengths[i] for i in b) * len(b) <= cap
        assert len(b) <= 64
    assert sorted(i for b in batches for i in b) == list(range(500))


@pytest.mark.parametrize("bucket", [True, False])
def test_batches_are_cut_greedily(bucket):
    """Within a pool a batch closes only when the next row would break batch_size or max_tokens."""
    lengths = random_lengths(300, seed=4)
    cap, size = 700, 16
    bb = BucketBatches(lengths, size, cap, seed=0, bucket=bucket, pool_batches=1000)
    batches = bb.epoch(0)
    if bucket:  # one pool, sorted by length: rebuild the order the batches were cut in
        batches = sorted(batches, key=lambda b: (max(lengths[i] for i in b), len(b)))
    for b, nxt in zip(batches, batches[1:]):
        grown = b + [nxt[0]]
        assert len(grown) > size or max(lengths[i] for i in grown) * len(grown) > cap, (b, nxt[0])


def test_max_tokens_lets_a_single_over_long_row_through():
    lengths = [10, 5000, 10]
    batches = BucketBatches(lengths, 8, 100, seed=0).epoch(0)
    assert sorted(i for b in batches for i in b) == [0, 1, 2]
    assert [1] in batches


def test_cut_exact_batches_when_sorted():
    # Without shuffling effects: one pool, lengths 1..8, batch of 3 → sorted runs of 3
    lengths = [8, 1, 7, 2, 6, 3, 5, 4]
    batches = BucketBatches(lengths, 3, None, seed=0, pool_batches=10).epoch(0)
    assert sorted(sorted(lengths[i] for i in b) for b in batches) == [[1, 2, 3], [4, 5, 6], [7, 8]]


def test_cut_exact_batches_with_max_tokens():
    lengths = [10, 10, 10, 30, 30, 50]
    batches = BucketBatches(lengths, 8, 60, seed=0, pool_batches=10).epoch(0)
    # sorted: 10,10,10 (30 ≤ 60) | 30,30 (60) | 50
    assert sorted(sorted(lengths[i] for i in b) for b in batches) == [[10, 10, 10], [30, 30], [50]]


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("bucket", [True, False])
def test_rank_shards_split_every_global_batch(world, bucket):
    lengths = random_lengths(211, seed=9)
    full = BucketBatches(lengths, 8, None, seed=2, bucket=bucket).epoch(3)
    samplers = [BucketBatches(lengths, 8, None, seed=2, bucket=bucket, rank=r, world=world) for r in range(world)]
    assert all(s.epoch(3) == full for s in samplers)  # every rank sees the single-process batches: same steps
    for batch in full:
        shards = [s.shard(batch) for s in samplers]
        assert sorted(i for sh in shards for i in sh) == sorted(batch)  # disjoint, and the union is the batch
        assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced rows


def test_shards_share_the_long_rows_and_small_batches_leave_ranks_empty():
    sampler = BucketBatches([1, 2, 3, 4], 4, None, seed=0, world=2)
    assert sampler.shard([0, 1, 2, 3], 0) == [0, 2] and sampler.shard([0, 1, 2, 3], 1) == [1, 3]
    assert sampler.shard([5], 1) == []


def test_padded_size_counts_what_collate_pads():
    rows = [Encoded([1, 2, 3], [4]), Encoded([1], [4, 5])]
    batch = collate(rows, 0)
    assert padded_size(rows) == batch["input_ids"].numel() + batch["labels"].numel() == 10
    assert padded_size(rows, (8, 4)) == 24 and padded_size([]) == 0


def test_empty_lengths_give_no_batches():
    assert BucketBatches([], 8, None, seed=0).epoch(0) == []
    assert BucketBatches([], 8, None, seed=0, bucket=False).epoch(0) == []
