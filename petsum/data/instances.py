"""From report → impression pairs to region-level AS-ES instances (the paper's PET setup).

Each anatomical section of a report is one instance: its findings text is the question and
the impression items about that region are the target. A region without an item is normal;
its target is `NORMAL`, always tagged ES, and only γ × (number of reports) of those normal
instances are kept, chosen deterministically.
"""

from __future__ import annotations

import hashlib

from petsum.text.findings import align_findings, bigrams, finding_target, findings
from petsum.text.inputs import InputKind, model_inputs
from petsum.text.lexicon import Lexicon, load_lexicon
from petsum.text.report import impression_items, split_sections
from shared.schema import ES, Example

NORMAL = "未见明显异常。"
TARGETS = ("impression", "copy")  # what a region instance is trained to write: its impression items, or its own input
_GENERIC = ("lymph", "soft_tissue")  # terms that occur in every region's text
_END = "。；;！？!?"


def item_region(item: str, sections: dict[str, str], lexicon: Lexicon | None = None) -> str:
    """The section an impression item belongs to.

    Its first specific organ term decides (an item leads with its primary site): the section of
    that organ's region if the report has one, else a section that names the term. Generic
    terms (淋巴结, 软组织) count only when no specific term places the item. An item without
    any organ term goes to the section it shares most character bigrams with."""
    lex = lexicon or load_lexicon()
    terms = lex.terms_in(item)
    ordered = [t for t in terms if lex.region_of[lex.organ_of[t]] not in _GENERIC]
    ordered += [t for t in terms if lex.region_of[lex.organ_of[t]] in _GENERIC]
    for term in ordered:
        region = lex.region_of[lex.organ_of[term]]
        if region in sections:
            return region
        holders = [r for r, text in sections.items() if term in text]
        if holders:
            return holders[0]
    grams = bigrams(item)
    return max(sections, key=lambda r: sum((grams & bigrams(sections[r])).values()))


def align_items(
    sections: list[tuple[str, str]], items: list[str], lexicon: Lexicon | None = None
) -> dict[str, list[str]]:
    """region → its impression items, in impression order, for every section of the report."""
    by_region = dict(sections)
    out: dict[str, list[str]] = {region: [] for region, _ in sections}
    for item in items:
        out[item_region(item, by_region, lexicon)].append(item)
    return out


def region_target(items: list[str]) -> str:
    """A region's items as one target; each ends with sentence punctuation so they stay apart."""
    return "".join(i if i.endswith(tuple(_END)) else i + "。" for i in items) if items else NORMAL


def report_instances(
    report: Example, lexicon: Lexicon | None = None, source: str = "region"
) -> tuple[list[Example], list[Example]]:
    """(abnormal instances, normal instances) of one report; ids are `{report id}#{region}`.
    With `source="salient"` a region's question is its salient text (`petsum.text.salient`), and a
    region without any is no instance: at inference it is normal without asking the model.
    With `source="finding"` each finding is an instance (`{report id}#{region}#{k}`) whose
    target is the impression pieces aligned to it (`petsum.text.findings`)."""
    if source == InputKind.FINDING:
        return finding_instances(report, lexicon)
    sections = split_sections(report.question, lexicon)
    items, _closing = impression_items(report.target)  # the closing line is the assembler's job
    aligned = align_items(sections, items, lexicon)
    abnormal, normal = [], []
    for region, text in sections:
        found, inputs = aligned[region], model_inputs(text, source, lexicon)
        if not inputs:
            continue
        ex = Example(
            f"{report.id}#{region}", inputs[0], region_target(found), group=report.id, tag=None if found else ES
        )
        (abnormal if found else normal).append(ex)
    return abnormal, normal


def finding_instances(report: Example, lexicon: Lexicon | None = None) -> tuple[list[Example], list[Example]]:
    """One instance per finding of the report, any region: the impression pieces aligned to it,
    or `NORMAL` (tagged ES) for a finding the impression does not mention."""
    units = [
        (region, k, f)
        for region, text in split_sections(report.question, lexicon)
        for k, f in enumerate(findings(text, lexicon))
    ]
    items, _closing = impression_items(report.target)
    aligned, _dropped = align_findings([f for _, _, f in units], items, lexicon)
    abnormal, normal = [], []
    for (region, k, finding), found in zip(units, aligned):
        ex = Example(
            f"{report.id}#{region}#{k}",
            finding,
            finding_target(found) or NORMAL,
            group=report.id,
            tag=None if found else ES,
        )
        (abnormal if found else normal).append(ex)
    return abnormal, normal


def copy_instances(reports: list[Example], lexicon: Lexicon | None = None, source: str = "region") -> list[Example]:
    """Every region that has a model input, as an instance whose target is that input: a copy task.

    A small model trained from scratch on impressions learns their language long before it
    learns to read its input. Trained first to copy (`petsum train --target copy`), its cross-
    attention aligns output with input, and training on impressions from that checkpoint
    starts from a model that looks at the findings."""
    out = []
    for report in reports:
        for region, text in split_sections(report.question, lexicon):
            for k, question in enumerate(model_inputs(text, source, lexicon)):
                suffix = f"#{k}" if source == InputKind.FINDING else ""
                out.append(Example(f"{report.id}#{region}{suffix}", question, question, group=report.id))
    return out


def build_instances(
    reports: list[Example],
    gamma: float,
    seed: int = 0,
    lexicon: Lexicon | None = None,
    source: str = "region",
    target: str = "impression",
) -> tuple[list[Example], dict]:
    """All abnormal region instances plus round(γ × reports) normal ones; and counts for the
    manifest. With `target="copy"`, `copy_instances` instead (γ does not apply)."""
    if target == "copy":
        copies = copy_instances(reports, lexicon, source)
        return copies, {"reports": len(reports), "copy_instances": len(copies), "source": source, "target": target}
    if target != "impression":
        raise ValueError(f"unknown target {target!r} (one of {', '.join(TARGETS)})")
    abnormal: list[Example] = []
    normal: list[Example] = []
    for report in reports:
        a, n = report_instances(report, lexicon, source)
        abnormal += a
        normal += n
    keep = min(len(normal), round(gamma * len(reports)))
    # Deterministic and independent of file order: the normal instances with the smallest hashes.
    rank = sorted(normal, key=lambda ex: hashlib.sha256(f"{seed}:{ex.id}".encode()).digest())
    chosen = {ex.id for ex in rank[:keep]}
    instances = [ex for ex in abnormal + normal if ex.tag is None or ex.id in chosen]
    stats = {
        "reports": len(reports),
        "abnormal_instances": len(abnormal),
        "normal_available": len(normal),
        "normal_used": keep,
        "gamma": gamma,
        "source": source,
    }
    return instances, stats
