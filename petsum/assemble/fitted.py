"""What `petsum order`'s fits share: features chosen the same way on every run, and weight tables
stored in `ases.json` as one base64 string of float32s (a megabyte, where JSON numbers, one per
line in the indented file, would be three times that)."""

from __future__ import annotations

import base64
from collections import Counter

import numpy as np


def most_common(counts: Counter, n: int) -> list[str]:
    """The `n` most frequent keys, ties broken by the key: the same on every run (`Counter`'s own
    order follows insertion, which follows set iteration, which follows PYTHONHASHSEED)."""
    return [key for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def pack(*arrays: np.ndarray) -> str:
    """The arrays, flattened and concatenated, as base64 float32 (little-endian)."""
    return base64.b64encode(np.concatenate([a.ravel() for a in arrays]).astype("<f4").tobytes()).decode("ascii")


def unpack(data: str, size: int, what: str) -> np.ndarray:
    """`pack`'s numbers as float64; ValueError unless there are `size` of them."""
    tables = np.frombuffer(base64.b64decode(data, validate=True), dtype="<f4").astype(np.float64)
    if tables.size != size:
        raise ValueError(f"{what}: {tables.size} numbers in its tables, expected {size}")
    return tables


def lines_json(lines: tuple[str, ...], features: dict[str, int], weights: np.ndarray, bias: np.ndarray) -> dict:
    """A fitted choice among lines (`petsum.assemble.closing`, `petsum.assemble.opening`) as `ases.json` stores it."""
    return {"lines": list(lines), "features": list(features), "tables": pack(weights, bias)}


def read_lines_json(data: dict, what: str) -> tuple[tuple[str, ...], dict[str, int], np.ndarray, np.ndarray]:
    """`lines_json`'s (lines, feature → row, weights (features, lines), bias (lines,)); ValueError
    for no lines or tables of the wrong size, named `what`."""
    lines, feats = tuple(str(x) for x in data["lines"]), {str(f): i for i, f in enumerate(data["features"])}
    if not lines:
        raise ValueError(f"{what}: no lines")
    tables = unpack(data["tables"], (len(feats) + 1) * len(lines), what)
    return lines, feats, tables[: -len(lines)].reshape(len(feats), len(lines)), tables[-len(lines) :]


def fit_softmax(
    rows: list[tuple[set[str], int]], n_classes: int, n_features: int, epochs: int, lr: float, seed: int
) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(feature → row, weights (features, classes), bias (classes,)) of a multinomial logistic
    regression from sets of string features to class indices: the `n_features` most frequent
    features, Adam on the softmax with a little L2, rows in a seeded order, batches of 128."""
    import random

    import torch

    vocab = {f: i for i, f in enumerate(most_common(Counter(f for fs, _ in rows for f in fs), n_features))}
    pad = len(vocab)
    data = [(sorted(vocab[f] for f in fs if f in vocab) or [pad], y) for fs, y in rows]
    torch.manual_seed(seed)
    table = torch.nn.EmbeddingBag(pad + 1, n_classes, mode="sum", padding_idx=pad)
    torch.nn.init.zeros_(table.weight)
    bias = torch.nn.Parameter(torch.zeros(n_classes))
    opt = torch.optim.Adam([table.weight, bias], lr=lr)
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(data)
        for b in range(0, len(data), 128):
            batch = data[b : b + 128]
            width = max(len(x) for x, _ in batch)
            x = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
            loss = torch.nn.functional.cross_entropy(table(x) + bias, torch.tensor([y for _, y in batch]))
            opt.zero_grad()
            (loss + 1e-5 * table.weight.pow(2).sum()).backward()
            opt.step()
    return vocab, table.weight.detach()[:pad].double().numpy(), bias.detach().double().numpy()


def class_scores(vocab: dict[str, int], weights: np.ndarray, bias: np.ndarray, feats: set[str]) -> np.ndarray:
    """The fit's logits for one set of features (unknown features ignored, rows summed in a fixed
    order so that a run gives the same floats every time)."""
    rows = sorted(vocab[f] for f in vocab.keys() & feats)  # the set intersection runs in C
    return bias + weights[rows].sum(0)
