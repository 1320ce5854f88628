"""The two floors every trained model must beat (README, "AS-ES versus direct").

- `Retrieval`: copy the impression of the nearest training report, by cosine similarity of
  TF-IDF vectors over character 1–3-grams of the normalized findings.
- `extractive`: the rule a resident would apply: list, region by region, the findings
  sentences that report raised uptake or an SUVmax, as numbered items.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from petsum.assemble import assemble
from petsum.report import normalize, split_sections
from shared.schema import Example

NGRAMS = (1, 2, 3)


def char_ngrams(text: str, sizes: tuple[int, ...] = NGRAMS) -> Counter:
    text = re.sub(r"\s+", " ", normalize(text))
    return Counter(text[i : i + n] for n in sizes for i in range(len(text) - n + 1))


class Retrieval:
    """TF-IDF (sublinear tf, smoothed idf, L2-normalized) over the training reports, scored as
    one sparse (CSR) matrix-vector product per query."""

    def __init__(self, train: list[Example]):
        if not train:
            raise ValueError("retrieval needs at least one training report")
        self.targets = [ex.target for ex in train]
        counts = [char_ngrams(ex.question) for ex in train]
        df = Counter(g for c in counts for g in c)
        self.vocab = {g: i for i, g in enumerate(df)}
        n = len(train)
        self.idf = np.array([math.log((1 + n) / (1 + df[g])) + 1 for g in self.vocab], dtype=np.float32)
        indptr, indices, data = [0], [], []
        for c in counts:
            idx, val = self._weights(c)
            indices.append(idx)
            data.append(val)
            indptr.append(indptr[-1] + len(idx))
        self.indptr = np.array(indptr, dtype=np.int64)
        self.indices = np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64)
        self.data = np.concatenate(data) if data else np.zeros(0, dtype=np.float32)

    def _weights(self, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
        known = [(self.vocab[g], k) for g, k in counts.items() if g in self.vocab]
        idx = np.array([i for i, _ in known], dtype=np.int64)
        val = np.array([(1 + math.log(k)) * self.idf[i] for i, k in known], dtype=np.float32)
        norm = float(np.linalg.norm(val)) if len(val) else 0.0
        return idx, (val / norm if norm else val)

    def nearest(self, question: str) -> tuple[int, float]:
        """(index of the most similar training report, cosine similarity); ties: the first."""
        idx, val = self._weights(char_ngrams(question))
        query = np.zeros(len(self.vocab), dtype=np.float32)
        query[idx] = val
        products = self.data * query[self.indices]
        sums = np.add.reduceat(products, self.indptr[:-1]) if len(products) else np.zeros(len(self.targets))
        sums[self.indptr[:-1] == self.indptr[1:]] = 0.0  # reduceat repeats a value for empty rows
        best = int(np.argmax(sums))
        return best, float(sums[best])

    def predict(self, question: str) -> str:
        return self.targets[self.nearest(question)[0]]


_RAISED = re.compile(r"(?:摄取|代谢|浓聚|聚集|分布)[^，。；]{0,4}(?:增高|增强|升高|活跃|异常)|(?:异常|增高的?)(?:放射性)?(?:摄取|浓聚|代谢)|高代谢")
_NEGATED = re.compile(r"(?:未见|未|无|不伴|没有)[^，。；]{0,10}$")
_SUV = re.compile(r"SUV", re.IGNORECASE)


def raised_uptake(sentence: str) -> bool:
    """An SUV value, or an uptake/metabolism increase that no 未见/无 clause negates."""
    if _SUV.search(sentence):
        return True
    return any(not _NEGATED.search(sentence[: m.start()]) for m in _RAISED.finditer(sentence))


def extractive(question: str) -> str:
    """The abnormal-uptake sentences of each region, numbered, with the usual closing line."""
    sections = split_sections(question)
    outputs = []
    for region, text in sections:
        sentences = [s.strip() for s in re.split(r"(?<=[。；])", text) if s.strip()]
        outputs.append((region, "".join(s if s.endswith("。") else s.rstrip("；") + "。" for s in sentences if raised_uptake(s))))
    return assemble(outputs, {r for r, _ in sections})


def floor_predictions(kind: str, reports: list[Example], train: list[Example]) -> list[dict]:
    """One record per report: id, the floor's impression, the reference."""
    if kind == "retrieval":
        index = Retrieval(train)
        predict = index.predict
    elif kind == "extractive":
        predict = extractive
    else:
        raise ValueError(f"unknown floor {kind!r} (retrieval or extractive)")
    return [{"id": ex.id, "impression": predict(ex.question), "reference": ex.target} for ex in reports]
