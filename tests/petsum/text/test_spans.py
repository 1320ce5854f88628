"""Source spans: where each finding came from in the normalized report text (`petsum.text.spans`)."""

from __future__ import annotations

import re
from pathlib import Path

from petsum.text.inputs import model_inputs
from petsum.text.report import normalize, sections_of_normalized
from petsum.text.spans import merged, source_spans

REPO = Path(__file__).parents[3]
_MARKS = re.compile(r"[\s，。；;,、：:]")


def bare(text: str) -> str:
    return _MARKS.sub("", text)


def test_a_finding_with_an_added_stop_and_dropped_clauses_is_found_in_runs():
    text = "胸部：右肺上叶见结节，大小约1.2cm，边缘光整，SUVmax：3.5，左肺未见异常  腹部：肝脏形态可。"
    finding = "右肺上叶见结节，大小约1.2cm，SUVmax：3.5。"  # `边缘光整` left out, `。` added
    spans = source_spans(text, finding)
    assert [text[s:e] for s, e in spans] == ["右肺上叶见结节，大小约1.2cm", "SUVmax：3.5"]
    assert source_spans(text, "胆囊结石。") == []  # nothing of two characters or more from it: no span


def test_findings_are_searched_after_the_one_before_and_else_from_the_start():
    text = "肝脏见结节。脾脏不大。肝脏见结节。"
    first = source_spans(text, "肝脏见结节。")
    second = source_spans(text, "肝脏见结节。", first[-1][1])
    assert first == [(0, 5)] and second == [(11, 16)]
    assert source_spans(text, "脾脏不大。", 16) == [(6, 10)]  # not after: found from the start


def test_merged_joins_overlapping_and_touching_spans():
    assert merged([(5, 8), (0, 2), (2, 3), (7, 10)]) == [(0, 3), (5, 10)]


def test_every_finding_of_the_example_reports_is_placed_by_its_own_text():
    """Each span holds text of its finding (marks aside), and most of each finding is placed."""
    for name in ("report.txt", "report_newlines.txt", "report_paragraph.txt"):
        text = normalize((REPO / "examples" / name).read_text(encoding="utf-8"))
        start = 0
        for _, body in sections_of_normalized(text):
            for finding in model_inputs(body, "finding"):
                spans = source_spans(text, finding, start)
                assert spans, (name, finding)
                for s, e in spans:
                    assert 0 <= s < e <= len(text)
                    assert bare(text[s:e]) in bare(finding)
                placed = sum(len(bare(text[s:e])) for s, e in spans)
                assert placed >= 0.9 * len(bare(finding)), (name, finding)
                start = spans[-1][1]


def test_a_finding_the_search_has_passed_is_found_from_the_start_not_in_a_look_alike():
    text = "右肺结节，SUVmax 3.2。左肺结节，SUVmax 3.2。肝脏未见异常。"
    assert source_spans(text, "右肺结节，SUVmax 3.2。", 12) == [(0, 15)]
    assert source_spans(text, "右肺结节大") == [(0, 4)]  # a last character the report lacks places nothing
