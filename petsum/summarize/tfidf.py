"""TF-IDF nearest neighbours over character 1-, 2- and 3-grams, in numpy: the retrieval floor
(`petsum.evaluation.floors`) and the memory (`petsum.summarize.memory`) both find training texts by it."""

from __future__ import annotations

import numpy as np

_BITS = 21  # Unicode code points are below 2**21: a 3-gram of them is one int64 key


def gram_keys(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(text index, key) of every character 1-, 2- and 3-gram of `texts`, as int64 keys that
    cannot collide: code points are shifted by one, so that a 1-gram key is below 2**21, a
    2-gram's at least that, and a 3-gram's at least 2**42. One pass over all texts at once."""
    c = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.int64) + 1
    doc = np.repeat(np.arange(len(texts)), [len(t) for t in texts])
    same2, same3 = doc[:-1] == doc[1:], doc[:-2] == doc[2:]  # a gram does not run across two texts
    keys = np.concatenate(
        [c, ((c[:-1] << _BITS) | c[1:])[same2], ((c[:-2] << 2 * _BITS) | (c[1:-1] << _BITS) | c[2:])[same3]]
    )
    return np.concatenate([doc, doc[:-1][same2], doc[:-2][same3]]), keys


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, how often each occurs) of a sorted array."""
    starts = (
        np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]])) if len(ordered) else np.zeros(0, np.int64)
    )
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


class TfIdf:
    """Sublinear tf, idf `log(N / df) + 1` (`smooth`: `log((1 + N) / (1 + df)) + 1`), grams of at
    least `min_df` texts, rows L2-normalized; a query's scores are one pass over the postings of
    its grams."""

    def __init__(self, texts: list[str], min_df: int = 1, smooth: bool = False) -> None:
        self.size = len(texts)
        n = max(1, len(texts))  # no texts: an empty index
        docs, keys = gram_keys(texts)
        vocab, _ = _runs(np.sort(keys))  # np.unique's inverse is an argsort, several times slower
        ids = np.searchsorted(vocab, keys)
        pairs, tf = _runs(np.sort(ids * n + docs))  # each text's distinct grams, gram by gram
        ids, docs = pairs // n, pairs % n
        df = np.bincount(ids, minlength=len(vocab))
        kept = df >= min_df
        self._keys = vocab[kept]
        self._idf = np.log((1 + len(texts)) / (1 + df[kept])) + 1.0 if smooth else np.log(len(texts) / df[kept]) + 1.0
        at = kept[ids]
        ids, docs = (np.cumsum(kept) - 1)[ids[at]], docs[at]
        w = (1.0 + np.log(tf[at])) * self._idf[ids]
        norm = np.sqrt(np.bincount(docs, w * w, minlength=len(texts)))
        self._docs, self._weights = docs, w / np.where(norm > 0, norm, 1.0)[docs]
        self._start = np.searchsorted(ids, np.arange(len(self._keys) + 1))
        self._grams = ids.astype(np.int32)  # each posting's gram: a long query scores all postings at once

    def nearest(self, text: str, k: int) -> list[tuple[int, float]]:
        """(text index, cosine) of the `k` nearest texts with any gram in common, nearest first,
        ties to the earlier."""
        if not len(self._keys):  # no gram kept (none in `min_df` texts)
            return []
        keys, tf = _runs(np.sort(gram_keys([text])[1]))
        j = np.searchsorted(self._keys, keys)
        known = (j < len(self._keys)) & (self._keys[np.minimum(j, len(self._keys) - 1)] == keys)
        j = j[known]
        if not len(j):
            return []
        q = (1.0 + np.log(tf[known])) * self._idf[j]
        q /= np.sqrt((q * q).sum())
        lo, hi = self._start[j], self._start[j + 1]
        if 2 * (hi - lo).sum() > len(self._docs):  # a whole report touches most postings: weigh them all, no gathering
            dense = np.zeros(len(self._keys))
            dense[j] = q
            scores = np.bincount(self._docs, self._weights * dense[self._grams], minlength=self.size)
        else:
            at = np.repeat(lo - np.concatenate([[0], np.cumsum(hi - lo)[:-1]]), hi - lo) + np.arange((hi - lo).sum())
            scores = np.bincount(self._docs[at], self._weights[at] * np.repeat(q, hi - lo), minlength=self.size)
        k = min(k, int((scores > 0).sum()))
        if k < 1:
            return []
        tied = np.flatnonzero(scores >= np.partition(scores, -k)[-k])  # the k best and all that tie with the last
        return [(int(d), float(scores[d])) for d in sorted(tied, key=lambda d: (-scores[d], d))[:k]]
