"""A learned order for the impression's items: where radiologists put an item, from its words and
the item before it.

The model writes one item per finding, and the assembler has to put them in order. Radiologists
lead with the disease the scan is for, but the rest of their order is a habit of the house that no
short rule captures, and ROUGE-L rewards it: the same items in the reference's order score about
6 points more (README, "What ROUGE-L misses"). `fit` learns the habit from training reports as a
first-order model of which item comes next: the score of item j after item i is
`first(j) + after(i) · before(j)`, where `first` is a weight per feature (an item's character uni-
and bigrams and its `suspicion` rank, summed) and `after`/`before` are low-rank vectors per
feature (averaged over the item's features); before the first item, `start` stands for `after`.
It is trained to put the next written item first among those left (softmax over them), and
`arrange` writes the list by a beam search, keeping the final beam the others agree with most
(`choose`). The pair term is what a score per item cannot
say: that a duct dilatation follows the pancreatic mass it goes with, that a house lists the
lungs together. On the shipped model's validation answers it is worth ROUGE-L +0.6 over a score
per item fitted the same way (52.1 against 51.5), and +0.5 over the ridge regression of position
that came before it (51.6).

An item's words are not all the list knows of it. Where the assembler says what each item was
written from (a `Source`: the region, the finding text, its place in the report), the item also
has `context` features: its region, the place of its finding among the list's findings in the
report, and how its finding's SUVmax ranks among theirs. Radiologists mostly write the report
head to foot, and the impression follows it where importance does not say otherwise; the item
with the hottest lesion often leads. On greedy validation answers these add ROUGE-L +0.55 (51.98
to 52.53: region alone +0.23, place +0.38, SUVmax +0.07; the finding's own bigrams lowered it).

The items it learns from are the texts the model was trained to write (`ordered_items`): for a
model of finding instances, each finding's target (`petsum.text.findings`) placed where its first
piece stands in the impression, rather than the impression's own numbered items, which often
list several findings at once.

The fit lives in the model's `ases.json` (`"item_order"`), so it travels with the model into an
ONNX export; `petsum order` writes it there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from petsum.assemble.fitted import most_common, pack, unpack
from petsum.text.findings import align_findings, finding_target, findings, pieces
from petsum.text.inputs import InputKind
from petsum.text.report import impression_items, split_sections
from petsum.text.rules import ITEM_NUMBER, suspicion, suv_max

if TYPE_CHECKING:
    from shared.schema import Example

N_RANKS = 3  # suspicion ranks: malignancy, raised uptake, the rest


class Orderer(Protocol):
    """What the assembler asks of a learned order (`ItemOrder`, `petsum.assemble.pointer.PointerOrder`)."""

    def permutation(self, items: list[str], sources: "list[Source] | None" = None) -> list[int]: ...


@dataclass(frozen=True)
class Source:
    """What an impression item was written from: the report's region, the text the model read
    (a finding, or a region's findings), and that text's place among the report's model inputs."""

    region: str
    text: str
    index: int


MAX_PLACE = 6  # the seventh finding on shares one place feature: few lists are longer


def context(sources: list[Source]) -> list[list[str]]:
    """Per item of one list, its features beyond its words: its region; the place of its source
    among the list's distinct sources in report order, and whether it is the last; the rank of
    its source's SUVmax among theirs (hottest first) and the value in bins of 2, or that it has
    none. Items written from one source (a finding the model answered in two sentences) share
    its place and rank. Written `<…>`, so they cannot clash with a character n-gram."""
    distinct = sorted({s.index: s for s in sources}.items())  # report order
    place = {index: p for p, (index, _) in enumerate(distinct)}
    suvs = {index: suv_max(s.text) for index, s in distinct}
    hot = sorted((i for i, v in suvs.items() if v is not None), key=lambda i: -suvs[i])  # type: ignore[operator]
    hottest = {index: r for r, index in enumerate(hot)}  # stable: ties keep report order
    out = []
    for source in sources:
        p, value = place[source.index], suvs[source.index]
        said = [f"<region {source.region}>", f"<place {min(p, MAX_PLACE)}>", f"<last {int(p == len(distinct) - 1)}>"]
        said += (
            ["<suv none>"]
            if value is None
            else [f"<suv rank {min(hottest[source.index], 4)}>", f"<suv bin {min(int(value // 2), 8)}>"]
        )
        out.append(said)
    return out


def reference_items(text: str) -> list[str]:
    """A written impression's numbered items; the whole text when it numbers none."""
    return [p.strip() for p in ITEM_NUMBER.split(text) if p.strip()]


def finding_entries(report: Example) -> list[tuple[str, Source]]:
    """The targets of a report's finding instances (`petsum.data.instances.finding_instances`) in
    the order of the impression, each where its first piece stands, with the finding it is the
    target of."""
    units = [(region, f) for region, text in split_sections(report.question) for f in findings(text)]
    items, _closing = impression_items(report.target)
    where = {p: k for k, p in reversed(list(enumerate(p for item in items for p in pieces(item))))}  # first place
    aligned, _dropped = align_findings([f for _, f in units], items)
    placed = sorted(
        (min(where[p] for p in found), finding_target(found), k) for k, found in enumerate(aligned) if found
    )
    return [(text, Source(*units[k], k)) for _, text, k in placed]


def finding_items(report: Example) -> list[str]:
    """`finding_entries` without their findings."""
    return [text for text, _ in finding_entries(report)]


def ordered_items(reports: list[Example], source: str = "region") -> list[list[str]]:
    """Per report, the items a model of `source` instances writes, in the order its impression
    has them: finding targets for `finding`, the numbered items otherwise."""
    return ordered_entries(reports, source)[0]


def ordered_entries(
    reports: list[Example], source: str = "region"
) -> tuple[list[list[str]], list[list[Source]] | None]:
    """`ordered_items` and, for `finding`, the `Source` of each item (what `fit` learns context
    from); None otherwise: which section a written numbered item came from is not known."""
    if source != InputKind.FINDING:
        return [reference_items(r.target) for r in reports], None
    entries = [finding_entries(r) for r in reports]
    return [[t for t, _ in e] for e in entries], [[s for _, s in e] for e in entries]


def grams(text: str) -> set[str]:
    return {text[i : i + n] for n in (1, 2) for i in range(len(text) - n + 1)}


def _rank_feature(rank: int) -> str:
    return f"<suspicion {rank}>"  # not a character n-gram: cannot clash with one


@dataclass(frozen=True)
class ItemOrder:
    """A fitted order (`fit`): per feature its `first` weight and its `after`/`before` vectors."""

    features: dict[str, int]  # feature → row of the tables
    first: np.ndarray  # (features,)
    after: np.ndarray  # (features, rank)
    before: np.ndarray  # (features, rank)
    start: np.ndarray  # (rank,)
    beam: int = 16
    temperature: float = 2.0  # of the beams' agreement vote (`choose`); 0: the most probable beam

    def _rows(self, item: str, said: Sequence[str] = ()) -> list[int]:
        words, extra = feature_rows(self.features, item, said)
        return words + extra

    def arrange(self, items: list[str], sources: list[Source] | None = None) -> list[str]:
        """`items` in the learned order (`permutation`)."""
        return [items[j] for j in self.permutation(items, sources)]

    def permutation(self, items: list[str], sources: list[Source] | None = None) -> list[int]:
        """The indices of `items` in the learned order, read with their `sources` where known (an
        order fitted without context features ignores them); ties keep the given order."""
        if len(items) < 2:
            return list(range(len(items)))
        if sources is not None and len(sources) != len(items):
            raise ValueError(f"{len(items)} items but {len(sources)} sources")
        said = context(sources) if sources else [[] for _ in items]
        rows = [self._rows(item, s) for item, s in zip(items, said)]
        first = np.array([self.first[r].sum() for r in rows])
        width = self.after.shape[1]
        after = np.array([self.after[r].mean(0) if r else np.zeros(width) for r in rows])
        before = np.array([self.before[r].mean(0) if r else np.zeros(width) for r in rows])
        scores = (
            first[None, :] + np.vstack([self.start[None, :], after]) @ before.T
        )  # row 0: the start; row i + 1: after item i
        beams = beam_orders(
            len(items), self.beam, lambda placed, states: ([scores[p[-1] + 1 if p else 0] for p in placed], states)
        )
        return self._choose(beams, [len(t) for t in items])

    def _choose(self, beams: list[tuple[float, list[int]]], weights: list[int]) -> list[int]:
        return choose(beams, weights, self.temperature)

    def to_json(self) -> dict:
        return {
            "features": list(self.features),
            "rank": len(self.start),
            "beam": self.beam,
            "temperature": self.temperature,
            "tables": pack(self.first, self.start, self.after, self.before),
        }

    @classmethod
    def from_json(cls, data: dict) -> "ItemOrder":
        if "weights" in data:  # petsum order before 2026-12: a position per item (ascending), no pair term
            return _from_positions(data)
        features = {str(g): i for i, g in enumerate(data["features"])}
        n, rank = len(features), int(data["rank"])
        tables = unpack(data["tables"], n + rank + 2 * n * rank, "item_order")
        after, before = tables[n + rank :].reshape(2, n, rank)
        beam, temperature = (
            int(data.get("beam", 5)),
            float(data.get("temperature", 0.0)),
        )  # an order fitted before the vote: its top beam of 5
        if beam < 1:
            raise ValueError(f"item_order: beam {beam}, expected at least 1")
        if not temperature >= 0:
            raise ValueError(f"item_order: temperature {temperature}, expected 0 or more")
        return cls(features, tables[:n], after, before, tables[n : n + rank], beam, temperature)


def _from_positions(data: dict) -> ItemOrder:
    """An order stored as a regression of position (`weights` per n-gram, `ranks`, `bias`) as
    today's model: the score per item is minus the position, and there is no pair term, so
    `arrange` sorts by position as that order did."""
    ranks = [float(r) for r in data["ranks"]]
    if len(ranks) != N_RANKS:
        raise ValueError(f"item_order: {len(ranks)} ranks, expected {N_RANKS}")
    features = {str(g): i for i, g in enumerate([*data["weights"], *map(_rank_feature, range(N_RANKS))])}
    first = np.array([-float(w) for w in data["weights"].values()] + [-r for r in ranks])
    return ItemOrder(
        features,
        first,
        np.zeros((len(features), 0)),
        np.zeros((len(features), 0)),
        np.zeros(0),
        beam=5,
        temperature=0.0,
    )


def feature_rows(features: dict[str, int], item: str, said: Sequence[str] = ()) -> tuple[list[int], list[int]]:
    """An item's rows in a fitted order's tables: its known character uni/bigrams (sorted: a fixed
    sum order), then its suspicion rank and its `context` features (an order fitted without
    context has none of those)."""
    words = sorted(features[g] for g in grams(item) if g in features)
    extra = [features[f] for f in (_rank_feature(suspicion(item)), *said) if f in features]
    return words, extra


def item_features(lists: list[list[str]], said: list[list[list[str]]], n_grams: int) -> dict[str, int]:
    """The features an order is fitted on, each with its row: the `n_grams` most frequent character
    uni/bigrams of `lists`' items, the suspicion ranks, and the `context` features `said` of them."""
    vocab = most_common(Counter(g for found in lists for t in found for g in grams(t)), n_grams)
    seen = sorted({f for per in said for item in per for f in item})
    return {g: i for i, g in enumerate(vocab + [_rank_feature(r) for r in range(N_RANKS)] + seen)}


def beam_orders(
    n: int, width: int, next_scores: Callable[[list[list[int]], list], tuple[Sequence[np.ndarray], Sequence]]
) -> list[tuple[float, list[int]]]:
    """The `width` most probable orders of `n` items, (log-probability, order), by a beam search:
    `next_scores(placed, states)` gives, for each beam's items placed so far and its state (None
    at the start), a score per item as the next one and the beam's new state; each next item is a
    softmax over those not yet placed. Ties keep the given order."""
    totals = np.zeros(1)  # float64, as the Python floats the sums would be
    placed: list[list[int]] = [[]]
    states: Sequence = [None]
    taken = np.zeros((1, n), dtype=bool)  # taken[b, j]: beam b has placed item j
    for step in range(n):
        rows, new_states = next_scores(placed, states)
        scores = np.asarray(rows)  # (beams, items): an array as it is, a list of rows stacked
        left = np.nonzero(~taken)[1].reshape(len(placed), n - step)  # each beam's free items, in order
        sub = np.take_along_axis(scores, left, axis=1)
        top = sub.max(axis=1, keepdims=True)
        logp = sub - top - np.log(np.exp(sub - top).sum(axis=1, keepdims=True))  # a softmax over the free items
        flat = (totals[:, None] + logp.astype(np.float64)).reshape(-1)
        best = np.argsort(-flat, kind="stable")[:width]  # ties keep the given order
        beam_of, k = np.divmod(best, n - step)
        picked = left[beam_of, k]
        totals = flat[best]
        taken = taken[beam_of]
        taken[np.arange(len(best)), picked] = True
        placed = [placed[b] + [j] for b, j in zip(beam_of.tolist(), picked.tolist())]
        # A state array (beams, ...) is reindexed at once; other states beam by beam.
        states = new_states[beam_of] if isinstance(new_states, np.ndarray) else [new_states[b] for b in beam_of]
    return [(float(t), p) for t, p in zip(totals, placed)]


def choose(beams: list[tuple[float, list[int]]], weights: list[int], temperature: float) -> list[int]:
    """The final beam (log-probability, order) that agrees most with the others (minimum Bayes
    risk): the highest expected common subsequence of items, weighted by their length in
    characters, under the beams' probabilities tempered by `temperature` (0: the most probable
    beam). ROUGE-L rewards long runs of the reference's order, which the single most probable
    order need not give; on greedy validation answers this is worth ROUGE-L +0.2 over the top
    beam (52.83 to 53.06, beam 16, temperature 2; beams 16 to 32 and temperatures 1 to 2 all gave
    +0.15 to +0.23)."""
    if not temperature or len(beams) == 1:
        return beams[0][1]
    logp = np.array([total for total, _ in beams]) / temperature
    p = np.exp(logp - logp.max())
    p /= p.sum()
    common = _common_all([order for _, order in beams], weights)
    gain = [sum(q * c for q, c in zip(p, row)) for row in common]
    return beams[int(np.argmax(gain))][1]  # the first of equals: the more probable


def _common_all(orders: list[list[int]], weights: list[int]) -> list[list[float]]:
    """The heaviest common subsequence of every pair of `orders` (orders of the same items, each
    item weighing `weights[item]`), as a matrix. Between two orders of one set of items it is the
    heaviest increasing run of one order's positions in the other, computed for all pairs at once
    (the per-pair dynamic programme was most of a report's assembly time)."""
    a = np.array(orders)  # (beams, n): item at each place
    n = a.shape[1]
    where = np.empty_like(a)
    where[np.arange(len(a))[:, None], a] = np.arange(n)  # (beams, n): place of each item
    s = where[:, a].transpose(1, 0, 2)  # s[i, j, k]: the place, in order j, of order i's k-th item
    w = np.asarray(weights, dtype=np.float64)[a][:, None, :]  # (beams, 1, n): weight of order i's k-th item
    best = np.zeros(s.shape, dtype=np.float64)  # heaviest increasing run ending at k
    for k in range(n):
        before = s[:, :, :k] < s[:, :, k : k + 1]
        prior = np.where(before, best[:, :, :k], 0.0).max(-1) if k else 0.0
        best[:, :, k] = w[:, :, k] + prior
    return best.max(-1).tolist()


def _common(a: list[int], b: list[int], weights: list[int]) -> float:
    """The heaviest common subsequence of two orders of the same items (`weights` per item)."""
    return _common_all([a, b], weights)[0][1]


def fit(
    ordered: list[list[str]],
    n_grams: int = 3000,
    rank: int = 32,
    epochs: int = 8,
    lr: float = 0.01,
    seed: int = 0,
    sources: list[list[Source]] | None = None,
) -> tuple[ItemOrder, int]:
    """(the order, the number of items it was fitted on), from lists of items in their written
    order (`ordered_items`) and, where given, each item's `Source` (`ordered_entries`); lists
    of one item say nothing about order and are skipped. The `n_grams` most frequent uni/bigrams,
    the suspicion ranks and the `context` features seen are the features; `rank` 0 leaves only
    the score per item. Adam on the next-item softmax, lists in a seeded order."""
    import random

    import torch

    if sources is not None and [len(s) for s in sources] != [len(found) for found in ordered]:
        raise ValueError("fit: sources must give one Source per item")
    said_of = [context(s) for s in sources] if sources is not None else [[[] for _ in found] for found in ordered]
    pairs = [(found, said) for found, said in zip(ordered, said_of) if len(found) > 1]
    if not pairs:
        raise ValueError("no impression with two or more items to learn an order from")
    features = item_features([found for found, _ in pairs], [per for _, per in pairs], n_grams)
    order = ItemOrder(
        features,
        np.zeros(len(features)),
        np.zeros((len(features), rank)),
        np.zeros((len(features), rank)),
        np.zeros(rank),
    )
    lists = [found for found, _ in pairs]
    data = [[order._rows(t, s) for t, s in zip(found, per)] for found, per in pairs]
    torch.manual_seed(seed)
    pad = len(features)
    first = torch.nn.EmbeddingBag(pad + 1, 1, mode="sum", padding_idx=pad)
    after = torch.nn.EmbeddingBag(pad + 1, rank, mode="mean", padding_idx=pad)
    before = torch.nn.EmbeddingBag(pad + 1, rank, mode="mean", padding_idx=pad)
    start = torch.nn.Parameter(torch.zeros(rank))
    torch.nn.init.zeros_(first.weight)
    for table in (after, before):
        torch.nn.init.normal_(table.weight, std=0.1)
        with torch.no_grad():
            table.weight[pad] = 0.0
    params = [first.weight, start] + ([after.weight, before.weight] if rank else [])
    opt = torch.optim.Adam(params, lr=lr)
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(data)
        for b in range(0, len(data), 64):
            batch = data[b : b + 64]
            rows = [r or [pad] for found in batch for r in found]
            width = max(len(r) for r in rows)
            x = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
            f, a, e = first(x).squeeze(-1), after(x), before(x)
            loss, steps, k = torch.zeros(()), 0, 0
            for found in batch:
                n = len(found)
                prev = torch.cat([start[None], a[k : k + n - 1]])  # row t: the item before position t
                logits = f[None, k : k + n] + prev @ e[k : k + n].T
                logits = logits.masked_fill(~torch.ones(n, n, dtype=torch.bool).triu(), float("-inf"))[
                    : n - 1
                ]  # only those not yet placed
                loss = loss + torch.nn.functional.cross_entropy(logits, torch.arange(n - 1), reduction="sum")
                steps, k = steps + n - 1, k + n
            opt.zero_grad()
            (loss / steps).backward()
            opt.step()
    fitted = ItemOrder(
        features,
        first.weight.detach()[:pad, 0].double().numpy(),
        after.weight.detach()[:pad].double().numpy(),
        before.weight.detach()[:pad].double().numpy(),
        start.detach().double().numpy(),
    )
    return fitted, sum(len(found) for found in lists)
