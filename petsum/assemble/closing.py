"""The closing line in the house's words: which of the lines that training impressions close with
(`余躯干及脑部PET/CT检查未见明显异常代谢征象。`, `…未见其他异常代谢征象。`, `余腹部…`) this report's
radiologist would write.

The assembler's rule names the scanned field from the regions the report covers and always says
`未见明显异常`; cPET's radiologists write eleven other wordings as often (`其他` for `明显`, `躯干部`,
`腹部` for a scan that also covers the chest), and the choice follows who wrote the report, which
the findings' own template words tell. `fit` learns it as a multinomial logistic regression from
the findings' character bi- and trigrams and the report's regions to the closing line, over the
`n_lines` most frequent lines. On validation it picks the reference's line in 607 of the 700
reports that have one, where the rule's line matches 466 (README, "The order's pair term, the
closing line and consensus decoding").

A line that names the brain is only chosen for a report with a brain section (the other fields a
line names, 躯干, 腹部, are the house's habit and are not checked against the regions). The fit
lives in the model's `ases.json` (`"closing_line"`), beside the item order, so it travels with the
model into an ONNX export; `petsum order` writes both.
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


def covers(line: str, regions: set[str]) -> bool:
    """Whether a scan of `regions` covers what the closing line names: the brain, if it names it."""
    return "脑" not in line or "brain" in regions


@dataclass(frozen=True)
class ClosingLine:
    lines: tuple[str, ...]
    features: dict[str, int]  # feature → row of `weights`
    weights: np.ndarray  # (features, lines)
    bias: np.ndarray  # (lines,)

    def choose(self, sections: list[tuple[str, str]]) -> str | None:
        """The most probable line for a report of these (region, findings) sections among those
        its scan covers; None when it covers none of them."""
        scores = class_scores(self.features, self.weights, self.bias, features(sections))
        regions = {region for region, _ in sections}
        allowed = [k for k, line in enumerate(self.lines) if covers(line, regions)]
        return self.lines[max(allowed, key=lambda k: scores[k])] if allowed else None

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
    with one of the `n_lines` most frequent lines; (None, 0) when no impression has a closing line
    (the assembler's rule then writes it)."""
    labelled = [(r.question, line) for r in reports if (line := closing_line(r.target))]
    lines = most_common(Counter(line for _, line in labelled), n_lines)
    if not lines:
        return None, 0
    index = {line: k for k, line in enumerate(lines)}
    rows = [(features(split_sections(q)), index[line]) for q, line in labelled if line in index]
    vocab, weights, bias = fit_softmax(rows, len(lines), n_features, epochs, lr, seed)
    return ClosingLine(tuple(lines), vocab, weights, bias), len(rows)
