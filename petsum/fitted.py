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
