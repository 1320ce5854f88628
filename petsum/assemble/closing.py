"""The closing line: `余躯干及脑部PET/CT检查未见明显异常代谢征象。`, the rest of the scanned field said
to be unremarkable.

What the line says is scanned (its coverage: `躯干及脑部`, `躯干`, `腹部及盆腔`, `视野范围内`, …) is
decided by `coverage` from the regions the report actually has sections for, never learned: a line
that names a region the scan never covered, or leaves out one it did, is wrong in a way every
reader sees. What is learned is only the house's wording around it (`其他` or `明显`, `余` or
`目前余`, `代谢征象` or `代谢`), which follows who wrote the report, which the findings' own
template words tell: `fit` learns it as a multinomial logistic regression from the findings'
character bi- and trigrams and the report's regions to the `n_lines` most frequent wordings
(closing lines with their coverage cut out, `余{field}PET/CT检查未见其他异常代谢征象。`).

The fit lives in the model's `fitted.json` (`"closing_line"`), beside the item order, so it
travels with the model into an ONNX export; `petsum order` writes both. Fits made before the
coverage was taken from the scan hold whole lines; `choose` reads their wording the same way.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from petsum.assemble.fitted import class_scores, fit_softmax, lines_json, most_common, read_lines_json
from petsum.text.report import impression_items, split_sections

if TYPE_CHECKING:
    from shared.schema import Example


def closing_line(impression: str) -> str | None:
    """A written impression's closing line, whitespace removed; None when it has none."""
    _, line = impression_items(impression)
    return re.sub(r"\s+", "", line) if line else None


def features(sections: list[tuple[str, str]]) -> set[str]:
    """A report's features, from its (region, findings) sections: the findings' character bi- and
    trigrams, and one feature per region."""
    text = "".join(body for _, body in sections)
    return {text[i : i + n] for n in (2, 3) for i in range(len(text) - n + 1)} | {
        f"<{region}>" for region, _ in sections
    }


# The regions a closing line can name, head to foot, and how it names them. The others (bone,
# lymph nodes, soft tissue) run through the whole field: they are never a field of their own.
FIELDS = {"brain": "脑部", "head_neck": "头颈部", "chest": "胸部", "abdomen": "腹部", "pelvis": "盆腔"}
TRUNK = frozenset({"head_neck", "chest", "abdomen", "pelvis"})  # `躯干`: a scan from the neck to the pelvis
WHOLE_FIELD = "视野范围内"  # a scan none of whose sections is one of `FIELDS`
FIELD = "{field}"  # where a wording (`余{field}PET/CT检查…`) takes the coverage


def coverage(regions: set[str] | frozenset[str]) -> str:
    """How the closing line names the scanned field, from the regions the report has sections
    for: exactly the `FIELDS` among them, no more and no fewer. `躯干` for the neck to the pelvis,
    with `及脑部` when the brain was scanned too; else each field by name, head to foot
    (`脑部及胸部`, `胸部、腹部及盆腔`); `视野范围内` when no section is one of them."""
    present = frozenset(regions) & FIELDS.keys()
    if present >= TRUNK:
        return "躯干及脑部" if "brain" in present else "躯干"
    names = [name for region, name in FIELDS.items() if region in present]
    if not names:
        return WHOLE_FIELD
    return names[0] if len(names) == 1 else "、".join(names[:-1]) + "及" + names[-1]


# A written closing line's coverage: what stands between `余` and the exam (`PET/CT检查`, `检查`, `未见`).
_LINE = re.compile(r"^(?P<head>(?:目前)?余)(?P<field>[^，。；]*?)(?P<tail>(?:PET|检查|未见).*)$")
_COVERAGE_WORD = re.compile(r"^(?:[躯干脑部实质胸腹盆腔及、和与+]|视野|范围|内|扫描)+$")


def wording(line: str) -> str | None:
    """A closing line with its coverage cut out (`余{field}PET/CT检查未见其他异常代谢征象。`); None for
    a line whose coverage is not a plain list of fields (`所见基本同前，躯干…`), or one without a
    coverage. A wording already cut is returned as it is."""
    if FIELD in line:
        return line
    m = _LINE.match(line)
    if not m or not m.group("field") or not _COVERAGE_WORD.match(m.group("field")):
        return None
    trunk_style = "部" if m.group("field") == "躯干部" else ""  # `躯干部` is a house's way to say `躯干`
    return m.group("head") + FIELD + trunk_style + m.group("tail")


def with_coverage(cut: str, field: str) -> str:
    """A `wording` with `field` in its place: `躯干部` only where the field is `躯干`."""
    if FIELD + "部" in cut and field != "躯干":
        cut = cut.replace(FIELD + "部", FIELD)
    return cut.replace(FIELD, field)


@dataclass(frozen=True)
class ClosingLine:
    lines: tuple[str, ...]
    features: dict[str, int]  # feature → row of `weights`
    weights: np.ndarray  # (features, lines)
    bias: np.ndarray  # (lines,)

    def choose(self, sections: list[tuple[str, str]]) -> str | None:
        """The closing line for a report of these (region, findings) sections: the most probable
        wording (the lines' probabilities summed by `wording`), its coverage from the sections'
        regions (`coverage`); None when no line has a wording (the assembler's rule then writes it)."""
        scores = class_scores(self.features, self.weights, self.bias, features(sections))
        p = np.exp(scores - scores.max())
        by_wording: dict[str, float] = {}
        for line, weight in zip(self.lines, p):
            if (cut := wording(line)) is not None:
                by_wording[cut] = by_wording.get(cut, 0.0) + float(weight)
        if not by_wording:
            return None
        best = max(by_wording, key=lambda w: (by_wording[w], w))
        return with_coverage(best, coverage({region for region, _ in sections}))

    def to_json(self) -> dict:
        return lines_json(self.lines, self.features, self.weights, self.bias)

    @classmethod
    def from_json(cls, data: dict) -> "ClosingLine":
        return cls(*read_lines_json(data, "closing_line"))


def fit(
    reports: list["Example"],
    n_lines: int = 20,
    n_features: int = 5000,
    epochs: int = 5,
    lr: float = 0.01,
    seed: int = 0,
) -> tuple[ClosingLine | None, int]:
    """(the fit, the number of reports it was fitted on): the reports whose impression closes
    with a line of one of the `n_lines` most frequent wordings (`wording`); (None, 0) when no
    impression has such a line (the assembler's rule then writes it)."""
    labelled = [(r.question, cut) for r in reports if (line := closing_line(r.target)) and (cut := wording(line))]
    lines = most_common(Counter(line for _, line in labelled), n_lines)
    if not lines:
        return None, 0
    index = {line: k for k, line in enumerate(lines)}
    rows = [(features(split_sections(q)), index[line]) for q, line in labelled if line in index]
    vocab, weights, bias = fit_softmax(rows, len(lines), n_features, epochs, lr, seed)
    return ClosingLine(tuple(lines), vocab, weights, bias), len(rows)
