"""The whole-report impression from per-region (or per-call) outputs, written as radiologists write it:
abnormal items numbered most suspicious first (malignancy, then raised uptake, then the rest),
in clinical (head-to-foot) order within each rank, then the closing line that says the rest of
the scanned field is unremarkable."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from petsum.assemble.closing import coverage
from petsum.text.lexicon import REGIONS
from petsum.text.rules import ADVICE, NORMAL_STATEMENT, SIDE_PREFIX, impression_sentences, suspicion

if TYPE_CHECKING:
    from petsum.assemble.order import Orderer, Source


def is_normal(text: str) -> bool:
    """A region output that reports nothing abnormal (the `未见明显异常` target), or nothing:
    every item of it is a normal statement."""
    return all(map(_normal_item, items(text)))


def _normal_item(item: str) -> bool:
    return bool(NORMAL_STATEMENT.match(item))


_CLAUSE = re.compile(r"[^，。；：]+")
_LIST_SEP = re.compile(r"(、|及)")
# Where the last site of a list runs into what is said of them all (`膈上|多发高代谢淋巴结`).
_DESCRIPTION = re.compile(r"[多高代淋增见结肿软占病低摄异轻小大]")


def without_repeats(text: str) -> str:
    """`肝门区、肝门区、肝门区及腹膜后…` as `肝门区及腹膜后…`: each clause's list of sites (joined by
    `、` and `及`) with every site once; a site also counts as repeated when the list's last entry
    is that site and its description (`膈上、膈上多发…`). A small model sometimes stutters through
    a list of sites (a third of 300 validation impressions); no report names a site twice."""

    def once(m: re.Match) -> str:
        parts = _LIST_SEP.split(m.group(0))  # site, separator, site, …
        sites, seps, last = parts[0::2], ["", *parts[1::2]], parts[-1]
        kept = [
            (sep, site)
            for i, (sep, site) in enumerate(zip(seps, sites))
            if site not in sites[:i]
            and not (i < len(sites) - 1 and last.startswith(site) and _DESCRIPTION.match(last, len(site)))
        ]
        return "".join(site if i == 0 else sep + site for i, (sep, site) in enumerate(kept))

    return _CLAUSE.sub(once, text)


# A character or a short phrase said three or more times running (`前前前前列腺`, `较大者较大者较大者`): a
# small model's stutter, in no reference (where doubles do occur: `右肺肺门`), so the run is said once.
_STUTTER = re.compile(r"([\u4e00-\u9fff]{1,6}?)\1{2,}")
# A clause said again right after itself (`伴远端胰管扩张，伴远端胰管扩张`): in 93 of 1,068 validation
# impressions of the shipped model and in 1 reference, so it is said once.
_REPEATED_CLAUSE = re.compile(r"([^，。；、\n]{2,})[，、；]\1(?=[，。；、\n]|$)")


def without_repeated_clauses(text: str) -> str:
    """`text` with each clause that repeats the one before it left out (a run of three, twice)."""
    while True:
        shorter = _REPEATED_CLAUSE.sub(r"\1", text)
        if shorter == text:
            return text
        text = shorter


def items(text: str) -> list[str]:
    """A region output as impression items: one per sentence, advice kept with its finding."""
    out: list[str] = []
    for sentence in (
        s.strip() for s in impression_sentences(without_repeated_clauses(without_repeats(_STUTTER.sub(r"\1", text))))
    ):
        # A model that stops after `双肺结节，` leaves a dangling comma: the item ends there.
        sentence = re.sub(r"[，、,：:\s]+(?=。?$)", "", sentence)
        if sentence in ("", "。"):
            continue
        if out and ADVICE.match(sentence):
            out[-1] += sentence
        else:
            out.append(sentence if sentence.endswith(("。", "；", "！", "？")) else sentence + "。")
    return out


# Items the learned order places; a longer list (none in cPET, whose longest has about 20) takes the
# rule's order instead, since the order's beam search grows with the cube of the list's length.
MAX_LEARNED_ORDER = 64


@dataclass
class Assembled:
    """An impression as its parts: the opening line (or None), the numbered items, each with the
    indices of the outputs it was written from, and the closing line. `impression` is the text."""

    opening: str | None
    items: list[tuple[str, list[int]]]
    closing: str

    @property
    def impression(self) -> str:
        lines = [f"{i}、{text}" for i, (text, _) in enumerate(self.items, 1)]
        return "\n".join(([self.opening] if self.opening else []) + lines + [self.closing])


def assemble(
    outputs: list[tuple[str, str]],
    covered: set[str] | None = None,
    item_order: "Orderer | None" = None,
    closing: str | None = None,
    sources: "list[Source] | None" = None,
    opening: str | None = None,
) -> str:
    """The impression text of `assemble_items`."""
    return assemble_items(outputs, covered, item_order, closing, sources, opening).impression


def assemble_items(
    outputs: list[tuple[str, str]],
    covered: set[str] | None = None,
    item_order: "Orderer | None" = None,
    closing: str | None = None,
    sources: "list[Source] | None" = None,
    opening: str | None = None,
) -> Assembled:
    """`outputs` is (region, generated text) per section, or per model call; `covered` the
    regions the scan includes (default: those of `outputs`); `sources`, where given, what each
    output was written from (`petsum.assemble.order.Source`), which the learned order reads. Normal
    regions are not itemized; a finding that two regions both produced is written once (from both);
    items are put in `item_order`'s learned order (`petsum.assemble.order`) where given, else by
    `suspicion`, then region, and numbered, adjacent items of one region under one number (`grouped`);
    `closing` (`petsum.assemble.closing`) closes them where given, else the
    rule's line for the scanned field; `opening` (`petsum.assemble.opening`), where given, opens the items."""
    if sources is not None and len(sources) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs but {len(sources)} sources")
    region_first = sorted(
        range(len(outputs)), key=lambda k: REGIONS.index(outputs[k][0]) if outputs[k][0] in REGIONS else len(REGIONS)
    )
    found: list[str] = []
    came_from: list[list[int]] = []  # the outputs each item is from, the first one's source ordering it
    for k in region_first:
        for item in items(outputs[k][1]):  # item by item: `未见明显异常。肝囊肿。` still reports the cyst
            if ADVICE.match(item) and found and outputs[came_from[-1][0]][0] == outputs[k][0]:
                # an answer that opens with advice: it belongs to its region's finding before, as within one answer
                found[-1] += item
                came_from[-1] += [k] if k not in came_from[-1] else []
            elif item in found:
                first = came_from[found.index(item)]
                first += [k] if k not in first else []
            elif not _normal_item(item):
                found.append(item)
                came_from.append([k])
    field = coverage(covered if covered is not None else {r for r, _ in outputs})
    if not found:  # no items, no opening line (the fit learned it from impressions with items)
        return Assembled(None, [], f"{field}PET/CT检查未见明显异常代谢征象。")
    if item_order and len(found) <= MAX_LEARNED_ORDER:
        order = item_order.permutation(found, [sources[k[0]] for k in came_from] if sources is not None else None)
    else:
        order = sorted(range(len(found)), key=lambda j: suspicion(found[j]))  # stable: clinical order within a rank
    ordered, regions = [found[j] for j in order], [outputs[came_from[j][0]][0] for j in order]
    kept = _shared(ordered, regions)
    merged = [k.text for k in kept]
    groups = grouping([k.region for k in kept])
    numbered = [
        (
            _joined([merged[g] for g in group]),
            sorted({k for g in group for m in kept[g].members for k in came_from[order[m]]}),
        )
        for group in groups
    ]
    return Assembled(opening or None, numbered, closing or f"余{field}PET/CT检查未见明显异常代谢征象。")


MIN_SHARED = 8  # characters of description two items must share to be said once
MAX_SITE = 12  # a site is short: `双侧腹股沟区`, `左上颈深部`
# What a site alone never says: punctuation, uptake, a count, a lesion, a negation or a hedge.
_NOT_SITE = re.compile(
    r"[，,。；：:！？!?]|代谢|多发|伴|考虑|未|无|不|非|可|稍|数个|少许|散在|结节|肿块|灶|影|密度|病变|^[及、]|[及、]$"
)
_END = "。；！？!?"


def _side(site: str) -> str:
    found = SIDE_PREFIX.match(site)
    return found.group(0) if found else ""


def _sites_and_description(a: str, b: str) -> tuple[str, str, str] | None:
    """(a's site, b's site, their shared description) when two items say the same of two sites
    (`双侧腋窝多发小淋巴结伴代谢轻度增高…` and `双侧腹股沟区多发…`), else None. The description
    is their whole common ending, at least `MIN_SHARED` characters, and starts to describe
    (`_DESCRIPTION`); each site is what comes before it: short, describing nothing, and with the
    same side as the other (`双侧`, `左侧`, `右侧` or none), so that a side said once is not misread."""
    a, b = a.rstrip(_END), b.rstrip(_END)
    k = 0
    while k < min(len(a), len(b)) and a[-1 - k] == b[-1 - k]:
        k += 1
    site_a, site_b = a[: len(a) - k], b[: len(b) - k]
    if k < MIN_SHARED or not site_a or not site_b or not _DESCRIPTION.match(a, len(a) - k):
        return None
    if (
        max(len(site_a), len(site_b)) > MAX_SITE
        or _NOT_SITE.search(site_a)
        or _NOT_SITE.search(site_b)
        or _side(site_a) != _side(site_b)
    ):
        return None
    return site_a, site_b, a[len(a) - k :]


def _site_list(sites: list[tuple[str, str]]) -> str:
    """(region, site) pairs, all with one side (`_sites_and_description`), as one list of sites,
    head to foot by region (ties as given), each once, the first site's side said by it only, the
    last joined by `及`: `双侧颈部`, `双侧腋窝`, `双侧腹股沟区` as `双侧颈部、腋窝及腹股沟区`."""
    ranked = sorted(sites, key=lambda s: REGIONS.index(s[0]) if s[0] in REGIONS else len(REGIONS))
    parts: list[str] = []
    for _, site in ranked:
        for part in _LIST_SEP.split(site)[0::2]:  # the sites, without their separators
            if parts and _side(part) == _side(parts[0]):  # another side (`左侧颈部及右侧锁骨上`) stays said
                part = part[len(_side(part)) :]
            if part and part not in parts:
                parts.append(part)
    return "、".join(parts[:-1]) + "及" + parts[-1] if len(parts) > 1 else parts[0]


@dataclass
class _Kept:
    """An item `shared_descriptions` keeps: as the model wrote it (`base`), its region, and once
    another item shared its description, the (region, site)s it speaks for and that description."""

    base: str
    region: str
    sites: list[tuple[str, str]] = field(default_factory=list)
    described: str | None = None
    members: list[int] = field(default_factory=list)  # the positions of the items it speaks for

    @property
    def text(self) -> str:
        if self.described is None:
            return self.base
        return _site_list(self.sites) + self.described + (self.base[-1] if self.base[-1] in _END else "。")


def shared_descriptions(ordered: list[str], regions: list[str]) -> tuple[list[str], list[str]]:
    """(items, their regions) with items that say the same of different sites said once, where
    the first of them stands: `双侧颈部及腋窝多发淋巴结伴代谢轻度增高，考虑反应性改变。`, as
    radiologists write them, rather than the description once per finding."""
    kept = _shared(ordered, regions)
    return [k.text for k in kept], [k.region for k in kept]


def _shared(ordered: list[str], regions: list[str]) -> list[_Kept]:
    """`shared_descriptions` as the kept items, each with the positions of the items it speaks for."""
    kept: list[_Kept] = []
    for m, (item, region) in enumerate(zip(ordered, regions)):
        for first in kept:
            found = _sites_and_description(first.base, item)
            if found and first.described in (None, found[2]):
                if first.described is None:
                    first.sites, first.described = [(first.region, found[0])], found[2]
                first.sites.append((region, found[1]))
                first.members.append(m)
                break
        else:
            kept.append(_Kept(item, region, members=[m]))
    return kept


def grouped(ordered: list[str], regions: list[str]) -> list[str]:
    """Adjacent items of one region as one numbered item, `；` between them, as radiologists
    write an organ system's findings (cPET validation impressions: 1.7 pieces per numbered item)."""
    return [_joined([ordered[k] for k in group]) for group in grouping(regions)]


def grouping(regions: list[str]) -> list[list[int]]:
    """The positions `grouped` puts under one number: runs of one region."""
    out: list[list[int]] = []
    for k, region in enumerate(regions):
        if k and region == regions[k - 1]:
            out[-1].append(k)
        else:
            out.append([k])
    return out


def _joined(parts: list[str]) -> str:
    """Items said under one number: each but the last without its end mark, `；` between them."""
    return "；".join(re.sub(r"[。；]$", "", p) for p in parts[:-1]) + ("；" if len(parts) > 1 else "") + parts[-1]
