"""A retrieval memory for consensus decoding: what this house's radiologists wrote for findings
like the one being answered.

Consensus decoding (`generate.consensus_samples`) keeps, of a finding's greedy answer and its
draws, the one that agrees most with the others. With a memory, the targets of the finding's
`neighbours` nearest training findings vote as well: weighted by their similarity squared, and
together `weight` times as much as all the other candidates (the greedy answer and the draws). Of the answers the model finds about equally
likely, the one worded as the house words such findings then wins. The memory never writes: the
answer kept is still one the model wrote, and the grounding guard checks it as before.

Nearness is TF-IDF cosine over the findings' character 1-, 2- and 3-grams (grams of at least two
training findings; sublinear term frequency). The index is built with numpy when the model loads
(under a second for cPET's 55,289 training findings), so torch and ONNX deployments read the same
memory. On the 1,068 validation reports (24 draws), 8 neighbours at weight 1 raised ROUGE-L from
54.86 to 55.66 and lowered MR from 7.27 to 7.18 (README, "A retrieval memory").

A memory holds its training findings and their impression pieces word for word, inside the
model's `ases.json` (`"memory"`): a model folder with a memory is patient data. `petsum memory
--drop` takes it out again. The shipped default has none: it would be a copy of cPET.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from shared.schema import Example

NEIGHBOURS = 8  # chosen on validation: 4, 6, 8, 12, 16 neighbours gave 55.16–55.66
WEIGHT = 1.0  # the neighbours' votes together, against the draws' together: 0.25–2 gave 55.21–55.66
_BITS = 21  # Unicode code points are below 2**21: a 3-gram of them is one int64 key
_MIN_DF = 2  # a gram of one training finding only tells which finding that is, nothing shared


def gram_keys(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(text index, key) of every character 1-, 2- and 3-gram of `texts`, as int64 keys that
    cannot collide: code points are shifted by one, so that a 1-gram key is below 2**21, a
    2-gram's at least that, and a 3-gram's at least 2**42. One pass over all texts at once."""
    c = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.int64) + 1
    doc = np.repeat(np.arange(len(texts)), [len(t) for t in texts])
    same2, same3 = doc[:-1] == doc[1:], doc[:-2] == doc[2:]  # a gram does not run across two texts
    keys = np.concatenate([c, ((c[:-1] << _BITS) | c[1:])[same2], ((c[:-2] << 2 * _BITS) | (c[1:-1] << _BITS) | c[2:])[same3]])
    return np.concatenate([doc, doc[:-1][same2], doc[:-2][same3]]), keys


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, how often each occurs) of a sorted array."""
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]])) if len(ordered) else np.zeros(0, np.int64)
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


@dataclass
class Memory:
    """Training `findings` (model inputs) and the `targets` written for them, and the index."""

    findings: list[str] = field(repr=False)  # report text: never in a repr, a log or an error
    targets: list[str] = field(repr=False)
    neighbours: int = NEIGHBOURS
    weight: float = WEIGHT
    _keys: np.ndarray = field(init=False, repr=False)  # sorted gram keys of the vocabulary
    _idf: np.ndarray = field(init=False, repr=False)
    _start: np.ndarray = field(init=False, repr=False)  # postings of gram j: _start[j]:_start[j + 1]
    _docs: np.ndarray = field(init=False, repr=False)
    _weights: np.ndarray = field(init=False, repr=False)  # each finding's normalized TF-IDF weight

    def __post_init__(self) -> None:
        if len(self.findings) != len(self.targets):
            raise ValueError(f"{len(self.findings)} findings but {len(self.targets)} targets")
        if self.neighbours < 1 or not 0 <= self.weight < float("inf"):
            raise ValueError(f"a memory needs neighbours >= 1 and weight >= 0, not {self.neighbours} and {self.weight}")
        n = max(1, len(self.findings))  # an empty memory has an empty index
        docs, keys = gram_keys(self.findings)
        vocab, _ = _runs(np.sort(keys))  # np.unique's inverse is an argsort, several times slower
        ids = np.searchsorted(vocab, keys)
        pairs, tf = _runs(np.sort(ids * n + docs))  # each finding's distinct grams, gram by gram
        ids, docs = pairs // n, pairs % n
        df = np.bincount(ids, minlength=len(vocab))
        kept = df >= _MIN_DF
        self._keys, self._idf = vocab[kept], np.log(len(self.findings) / df[kept]) + 1.0
        at = kept[ids]
        ids, docs = (np.cumsum(kept) - 1)[ids[at]], docs[at]
        w = (1.0 + np.log(tf[at])) * self._idf[ids]
        norm = np.sqrt(np.bincount(docs, w * w, minlength=len(self.findings)))
        self._docs, self._weights = docs, w / np.where(norm > 0, norm, 1.0)[docs]
        self._start = np.searchsorted(ids, np.arange(len(self._keys) + 1))

    def nearest(self, finding: str, k: int | None = None) -> list[tuple[int, float]]:
        """(training finding, cosine) of the `k` (default `neighbours`) nearest with any gram in
        common, nearest first, ties to the earlier."""
        if not len(self._keys):  # no gram is shared by two training findings
            return []
        keys, tf = _runs(np.sort(gram_keys([finding])[1]))
        j = np.searchsorted(self._keys, keys)
        known = (j < len(self._keys)) & (self._keys[np.minimum(j, len(self._keys) - 1)] == keys)
        j = j[known]
        if not len(j):
            return []
        q = (1.0 + np.log(tf[known])) * self._idf[j]
        q /= np.sqrt((q * q).sum())
        lo, hi = self._start[j], self._start[j + 1]
        at = np.repeat(lo - np.concatenate([[0], np.cumsum(hi - lo)[:-1]]), hi - lo) + np.arange((hi - lo).sum())
        scores = np.bincount(self._docs[at], self._weights[at] * np.repeat(q, hi - lo), minlength=len(self.findings))
        k = min(self.neighbours if k is None else k, int((scores > 0).sum()))
        if k < 1:
            return []
        tied = np.flatnonzero(scores >= np.partition(scores, -k)[-k])  # the k best and all that tie with the last
        return [(int(d), float(scores[d])) for d in sorted(tied, key=lambda d: (-scores[d], d))[:k]]

    def references(self, finding: str) -> list[tuple[str, float]]:
        """The targets of the finding's neighbours with their weights in the vote: similarity
        squared, summing to `weight` (nothing for a finding with no gram in common)."""
        near = self.nearest(finding)
        total = sum(s * s for _, s in near)
        return [(self.targets[d], self.weight * s * s / total) for d, s in near] if total > 0 else []

    def to_json(self) -> dict:
        packed = gzip.compress(json.dumps([self.findings, self.targets], ensure_ascii=False).encode("utf-8"), mtime=0)
        return {"kind": "memory", "neighbours": self.neighbours, "weight": self.weight, "pairs": len(self.findings),
                "texts": base64.b64encode(packed).decode("ascii")}

    @classmethod
    def from_json(cls, data: dict) -> "Memory":
        if data.get("kind") != "memory":
            raise ValueError(f"not a memory: kind {data.get('kind')!r}")
        try:
            packed = gzip.decompress(base64.b64decode(data["texts"], validate=True))
        except (OSError, EOFError, zlib.error) as e:  # not gzip, cut short, or damaged inside
            raise ValueError(f"memory texts: {type(e).__name__}") from None
        stored = json.loads(packed.decode("utf-8"))
        if not (isinstance(stored, list) and len(stored) == 2 and all(isinstance(part, list) for part in stored)):
            raise TypeError("memory texts must be two lists, findings and targets")
        findings, targets = stored
        if not all(isinstance(t, str) for t in [*findings, *targets]):
            raise TypeError("memory texts must be strings")
        return cls(findings, targets, int(data["neighbours"]), float(data["weight"]))


def build(reports: list["Example"], source: str, neighbours: int = NEIGHBOURS, weight: float = WEIGHT) -> Memory:
    """The memory of these training reports for a model of `source` instances: each abnormal
    instance's model input and its target (`petsum.instances.report_instances`), as the model
    was trained on them."""
    from petsum.instances import report_instances

    pairs = [(ex.question, ex.target) for r in reports for ex in report_instances(r, source=source)[0]]
    return Memory([q for q, _ in pairs], [t for _, t in pairs], neighbours, weight)
