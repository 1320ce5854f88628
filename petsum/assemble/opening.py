"""The opening line of a follow-up exam's impression: `与前次PET/CT检查比较：`.

One cPET training impression in seven opens by naming the exam it compares with
(`与2015-11-12 PET/CT检查比较：`, `与2014-11-18显像相比：`) before its numbered items. The findings
say when there was one (`较前增大`, `新增`, `同前相仿`), but not its date, and the wording follows
who wrote the report. `fit` learns the wording as a multinomial logistic regression from the
findings' character bi- and trigrams and the report's regions (`petsum.assemble.closing.features`) to the
`n_lines` most frequent comparison lines, or to none.

Every follow-up gets the line (`petsum.text.rules.is_follow_up` on any section), a first exam
never; the fit only picks its wording among the comparison lines it learned, and `opening_for`
writes `DEFAULT_LINE`, the most frequent wording, for a model without a fit. Always writing it is
the choice because most follow-up references open with a comparison line, so a line the fit
withholds costs more of the line's ROUGE-L on validation follow-ups than a line written where the
reference has none: a threshold on the fit's none class scored below always writing, and the
fit's wording above `DEFAULT_LINE`'s. The date, which the findings never give, is `前次` (the
previous exam) in the lines it learns, so the line claims no more than the findings do.
Clinical-history openings (`胰腺癌术后：`) are not written: the findings rarely state the history,
and a wrong one would be an invented fact.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from petsum.assemble.closing import features
from petsum.assemble.fitted import class_scores, fit_softmax, lines_json, most_common, read_lines_json
from petsum.text.report import normalize, split_sections
from petsum.text.rules import is_follow_up

if TYPE_CHECKING:
    from shared.schema import Example

_ITEM = r"\d{1,2}\s*[、.．](?!\d)"  # an item number, `1、`, not `1.6`
_HEAD = re.compile(
    rf"^\s*(?!{_ITEM})([^\n]{{1,80}}?)[：:]\s*(?=1\s*[、.．](?!\d))"
)  # the text before item 1, ending in a colon
_DATE = re.compile(
    r"(?:19|20)\d{2}(?:\s*[-./年]\s*\d{1,2}(?:\s*[-./月]\s*\d{1,2}\s*日?|\s*月)?|\d{4})"
)  # 2015-11-12, 2015年11月, 20151112
_COMPARISON = re.compile(r"与([^与，,。；;：:]*?)(相比较|比较|相比|对比)")  # one clause: `与2015-11-12 PET/CT检查比较`
_EXAM = re.compile(r"前次|检查|显像|PET|CT|片")  # what a line compares with: an exam, not `与对侧相比`
NONE = ""  # the class of impressions that open with no comparison line
DEFAULT_LINE = "与前次PET/CT检查比较："  # the most frequent wording, for a model without a fit


def opening_line(impression: str) -> str | None:
    """The comparison an impression opens with, its date written `前次` (the previous exam) and
    whitespace removed (`与前次PET/CT检查比较`); None when it opens with its items, or with a head
    that compares with no earlier exam (a clinical history, `与对侧相比`)."""
    head = _HEAD.match(normalize(impression))
    found = _COMPARISON.search(_DATE.sub("前次", head.group(1))) if head else None
    if not found or not _EXAM.search(found.group(1)):
        return None
    line = re.sub(
        r"(?<=[A-Za-z0-9])\s+(?=[A-Za-z0-9])", " ", f"与{found.group(1)}{found.group(2)}"
    )  # `18F-FDG PET/CT` keeps its space
    return re.sub(r"(?<![A-Za-z0-9])\s+|\s+(?![A-Za-z0-9])", "", line)


@dataclass(frozen=True)
class OpeningLine:
    lines: tuple[str, ...]  # the comparison lines, NONE first
    features: dict[str, int]  # feature → row of `weights`
    weights: np.ndarray  # (features, lines)
    bias: np.ndarray  # (lines,)

    def choose(self, sections: list[tuple[str, str]]) -> str | None:
        """The opening line to write for a report of these (region, findings) sections, or None:
        for follow-up findings (`is_follow_up`), the comparison line the fit finds most probable
        (its none class only competes for the wording, never for whether a line is written: see
        the module docstring); None for a first exam."""
        if not _follows_up(sections):
            return None
        logits = class_scores(self.features, self.weights, self.bias, features(sections))
        return self.lines[1 + int(np.argmax(logits[1:]))] + "："  # softmax keeps the order of the logits

    def to_json(self) -> dict:
        return lines_json(self.lines, self.features, self.weights, self.bias)

    @classmethod
    def from_json(cls, data: dict) -> "OpeningLine":
        lines, feats, weights, bias = read_lines_json(data, "opening_line")
        if len(lines) < 2 or lines[0] != NONE:
            raise ValueError("opening_line: the lines must be none first, then at least one comparison")
        return cls(lines, feats, weights, bias)


def _follows_up(sections: list[tuple[str, str]]) -> bool:
    return any(is_follow_up(body) for _, body in sections)


def opening_for(fit: OpeningLine | None, sections: list[tuple[str, str]]) -> str | None:
    """The opening line the assembler writes for a report of these (region, findings) sections:
    the fit's wording (`OpeningLine.choose`), `DEFAULT_LINE` for a model without one; None for a
    first exam."""
    if fit is not None:
        return fit.choose(sections)
    return DEFAULT_LINE if _follows_up(sections) else None


def fit(
    reports: list["Example"],
    n_lines: int = 12,
    n_features: int = 5000,
    epochs: int = 5,
    lr: float = 0.01,
    seed: int = 0,
) -> tuple[OpeningLine | None, int]:
    """(the fit, the number of impressions with one of its comparison lines): a row per report
    whose impression opens with none of them or with one of the `n_lines` most frequent (a rarer
    one is neither: it is left out); (None, 0) when no impression opens with a comparison (the
    assembler then writes none)."""
    labels = [opening_line(r.target) or NONE for r in reports]
    lines = [NONE] + most_common(Counter(line for line in labels if line), n_lines)
    if len(lines) == 1:
        return None, 0
    index = {line: k for k, line in enumerate(lines)}
    rows = [(features(split_sections(r.question)), index[line]) for r, line in zip(reports, labels) if line in index]
    vocab, weights, bias = fit_softmax(rows, len(lines), n_features, epochs, lr, seed)
    return OpeningLine(tuple(lines), vocab, weights, bias), sum(1 for _, y in rows if y)
