"""What a model reads of one region's findings: the research switch `petsum train --source`,
recorded in a run's manifest so that inference feeds every checkpoint and export the same input."""

from __future__ import annotations

from enum import StrEnum

from petsum.text.findings import findings
from petsum.text.lexicon import Lexicon
from petsum.text.report import drop_headers
from petsum.text.salient import salient_text


class InputKind(StrEnum):
    """What a model reads of a region (`petsum train --source`, recorded in its manifest): the whole
    section, `salient_text` of it, or each of its `petsum.text.findings.findings` in turn (one call
    per finding; the shipped model). A research switch: only `finding` is on the product path."""

    REGION = "region"
    SALIENT = "salient"
    FINDING = "finding"


SOURCES = tuple(k.value for k in InputKind)


def model_inputs(section: str, source: str, lexicon: Lexicon | None = None) -> list[str]:
    """What a model trained on `source` reads of one region's findings: one input per call, []
    when the region is not worth asking about (it is then normal). Section headers are never read."""
    if source == InputKind.REGION:
        section = drop_headers(section)
        return [section] if section.strip() else []
    if source == InputKind.SALIENT:
        text = salient_text(section, lexicon)
        return [text] if text else []
    if source == InputKind.FINDING:
        return findings(section, lexicon)
    raise ValueError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
