"""A retrieval memory for consensus decoding: what this house's radiologists wrote for findings
like the one being answered.

Consensus decoding (`generate.consensus_samples`) keeps, of a finding's greedy answer and its
draws, the one that agrees most with the others. With a memory, the targets of the finding's
`neighbours` nearest training findings vote as well: weighted by their similarity squared, and
together `weight` times as much as all the other candidates (the greedy answer and the draws). Of the
answers the model finds about equally
likely, the one worded as the house words such findings then wins. The memory never writes: the
answer kept is still one the model wrote, and the grounding guard checks it as before.

Nearness is TF-IDF cosine over the findings' character 1-, 2- and 3-grams (grams of at least two
training findings; sublinear term frequency). The index is built with numpy at the first vote,
not when the model loads (about 2 s for cPET's 55,289 training findings; greedy decoding never
builds it), so torch and ONNX deployments read the same memory. On the 1,068 validation reports
(24 draws, the weights shipped before 2026-12-02's stage 5), 8 neighbours at weight 1 raised
ROUGE-L from 54.86 to 55.66 and lowered MR from 7.27 to 7.18 (README, "A retrieval memory").

A memory holds its training findings and their impression pieces word for word, in the model
folder's `memory.json` (`petsum.summarize.folder`): a model folder with a memory is patient data. `petsum memory
--drop` takes it out again. The shipped default has none: it would be a copy of cPET.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from petsum.data.instances import report_instances
from petsum.summarize.tfidf import TfIdf
from shared.textio import InputError

if TYPE_CHECKING:
    from shared.schema import Example

NEIGHBOURS = 8  # chosen on validation: 4, 6, 8, 12, 16 neighbours gave 55.16–55.66
WEIGHT = 1.0  # the neighbours' votes together, against the draws' together: 0.25–2 gave 55.21–55.66
_MIN_DF = 2  # a gram of one training finding only tells which finding that is, nothing shared


@dataclass
class Memory:
    """Training `findings` (model inputs) and the `targets` written for them, and the index."""

    findings: list[str] = field(repr=False)  # report text: never in a repr, a log or an error
    targets: list[str] = field(repr=False)
    neighbours: int = NEIGHBOURS
    weight: float = WEIGHT
    _index: TfIdf | None = field(default=None, init=False, repr=False)  # built at the first vote

    def __post_init__(self) -> None:
        if len(self.findings) != len(self.targets):
            raise ValueError(f"{len(self.findings)} findings but {len(self.targets)} targets")
        if self.neighbours < 1 or not 0 <= self.weight < float("inf"):
            raise ValueError(f"a memory needs neighbours >= 1 and weight >= 0, not {self.neighbours} and {self.weight}")

    def nearest(self, finding: str, k: int | None = None) -> list[tuple[int, float]]:
        """(training finding, cosine) of the `k` (default `neighbours`) nearest with any gram in
        common, nearest first, ties to the earlier."""
        if self._index is None:  # not at load: greedy decoding (--consensus 0) never asks
            self._index = TfIdf(self.findings, _MIN_DF)
        return self._index.nearest(finding, self.neighbours if k is None else k)

    def references(self, finding: str) -> list[tuple[str, float]]:
        """The targets of the finding's neighbours with their weights in the vote: similarity
        squared, summing to `weight` (nothing for a finding with no gram in common)."""
        near = self.nearest(finding)
        total = sum(s * s for _, s in near)
        return [(self.targets[d], self.weight * s * s / total) for d, s in near] if total > 0 else []

    def to_json(self) -> dict:
        packed = gzip.compress(json.dumps([self.findings, self.targets], ensure_ascii=False).encode("utf-8"), mtime=0)
        return {
            "kind": "memory",
            "neighbours": self.neighbours,
            "weight": self.weight,
            "pairs": len(self.findings),
            "texts": base64.b64encode(packed).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: dict) -> "Memory":
        if data.get("kind") != "memory":
            raise ValueError(f"not a memory: kind {data.get('kind')!r}")
        packed = unpack(base64.b64decode(data["texts"], validate=True))
        stored = json.loads(packed.decode("utf-8"))
        if not (isinstance(stored, list) and len(stored) == 2 and all(isinstance(part, list) for part in stored)):
            raise TypeError("memory texts must be two lists, findings and targets")
        findings, targets = stored
        if not all(isinstance(t, str) for t in [*findings, *targets]):
            raise TypeError("memory texts must be strings")
        return cls(findings, targets, int(data["neighbours"]), float(data["weight"]))


class MemoryTooLarge(InputError):
    """A memory whose texts would unpack beyond the limit; the message says so, and quotes nothing."""


RATIO = 50  # cPET's memory: 2.0 MB of gzip for about 7 MB of text; Chinese text packs 3-5x
MAX_UNPACKED = 256 * 2**20
_FLOOR = 16 * 2**20  # a small memory of repetitive text may pack tighter than RATIO


def max_unpacked(compressed: int) -> int:
    """The most bytes a memory of `compressed` gzip bytes may unpack to."""
    return min(MAX_UNPACKED, max(_FLOOR, RATIO * compressed))


def unpack(compressed: bytes) -> bytes:
    """The gzip member `to_json` wrote, decompressed a bounded piece at a time: a memory that would
    grow past `max_unpacked(len(compressed))` (a gzip bomb: 1 MB can hold a gigabyte) is refused before
    it takes that memory. ValueError for data that is not one whole gzip member."""
    limit = max_unpacked(len(compressed))
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    try:
        out = inflate.decompress(compressed, limit + 1)
    except zlib.error as e:  # not gzip, or damaged inside
        raise ValueError(f"memory texts: {type(e).__name__}") from None
    if len(out) > limit:
        raise MemoryTooLarge(
            f"memory texts unpack to more than {limit // 2**20} MB from {len(compressed) / 2**20:.1f} MB "
            f"(at most {RATIO}x, {MAX_UNPACKED // 2**20} MB): not a memory that `petsum memory` wrote"
        )
    if not inflate.eof or inflate.unused_data:
        raise ValueError("memory texts: not one whole gzip member (cut short, or trailing data)")
    return out


def build(reports: list["Example"], source: str, neighbours: int = NEIGHBOURS, weight: float = WEIGHT) -> Memory:
    """The memory of these training reports for a model of `source` instances: each abnormal
    instance's model input and its target (`petsum.data.instances.report_instances`), as the model
    was trained on them."""
    pairs = [(ex.question, ex.target) for r in reports for ex in report_instances(r, source=source)[0]]
    return Memory([q for q, _ in pairs], [t for _, t in pairs], neighbours, weight)
