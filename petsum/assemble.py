"""The whole-report impression from per-region outputs, written as radiologists write it:
abnormal items numbered in clinical (head-to-foot) order, then the closing line that says the
rest of the scanned field is unremarkable."""

from __future__ import annotations

import re

from petsum.lexicon import REGIONS

_NORMAL = re.compile(r"^(?:(?:未见|无)(?:明显)?(?:异常|其他异常|其它异常)|正常)")
# A sentence that advises rather than reports belongs to the finding before it.
_ADVICE = re.compile(r"^(?:请|建议|必要时|随访|随诊|复查|结合|注意)")


def scope(regions: set[str]) -> str:
    """How the closing line names the scanned field, from the regions the report covers."""
    if "brain" in regions:
        return "躯干及脑部"
    if regions & {"head_neck", "chest"}:
        return "躯干"
    if regions >= {"abdomen", "pelvis"}:
        return "腹部及盆腔"
    if "abdomen" in regions:
        return "腹部"
    return "视野范围内"


def is_normal(text: str) -> bool:
    """A region output that reports nothing abnormal (the `未见明显异常` target), or nothing."""
    return not text.strip() or bool(_NORMAL.match(text.strip()))


def items(text: str) -> list[str]:
    """A region output as impression items: one per sentence, advice kept with its finding."""
    out: list[str] = []
    for sentence in (s.strip() for s in re.split(r"(?<=[。！？!?])", text)):
        if not sentence:
            continue
        if out and _ADVICE.match(sentence):
            out[-1] += sentence
        else:
            out.append(sentence if sentence.endswith(("。", "；", "！", "？")) else sentence + "。")
    return out


def assemble(outputs: list[tuple[str, str]], covered: set[str] | None = None) -> str:
    """`outputs` is (region, generated text) per section; `covered` the regions the scan
    includes (default: those of `outputs`). Normal regions are not itemized; a finding that two
    regions both produced is written once."""
    order = sorted(outputs, key=lambda o: REGIONS.index(o[0]) if o[0] in REGIONS else len(REGIONS))
    found: list[str] = []
    for _, text in order:
        if is_normal(text):
            continue
        for item in items(text):
            if item not in found:
                found.append(item)
    field = scope(covered if covered is not None else {r for r, _ in outputs})
    if not found:
        return f"{field}PET/CT检查未见明显异常代谢征象。"
    lines = [f"{i}、{item}" for i, item in enumerate(found, 1)]
    return "\n".join(lines + [f"余{field}PET/CT检查未见明显异常代谢征象。"])
