"""AS-ES rows from tagged segments (shared.dataset) and their JSONL form."""

from __future__ import annotations

import json

from shared.adapter import StopTokenAdapter
from shared.dataset import ases_samples, build_datasets, direct_sample, prefix_text, read_samples, write_jsonl
from shared.schema import AS, ES, SEP, Example, Sample, Segment

EN = StopTokenAdapter()
ZH = StopTokenAdapter(bleu_tokenize="zh")

EX = Example("e1", "Q text", "A1. A2. A3.")
SEGS = [Segment(ES, "A1."), Segment(AS, "A2."), Segment(ES, "A3.")]

ZH_EX = Example("z1", "胰头部见软组织肿块。", "胰头部软组织肿块，考虑恶性肿瘤。  2、肝囊肿。")
ZH_SEGS = [Segment(ES, "胰头部软组织肿块，"), Segment(AS, "考虑恶性肿瘤。"), Segment(ES, "2、肝囊肿。")]


def test_separator_and_prefix_text():
    assert SEP == " | "
    assert prefix_text(EN, []) == " |"
    assert prefix_text(EN, ["A1."]) == " | A1."
    assert prefix_text(EN, ["A1.", "A2."]) == " | A1. A2."
    assert prefix_text(ZH, ["胰头部，", "考虑恶性。"]) == " | 胰头部，考虑恶性。"


def test_ases_samples_exact_rows():
    assert EN.stop == "<STOP>"
    rows = ases_samples(EX, SEGS, EN)
    assert rows == [
        Sample("e1", 0, ES, "Q text", " |", "A1."),
        Sample("e1", 1, AS, "Q text", " | A1.", "A2."),
        Sample("e1", 2, ES, "Q text", " | A1. A2.", "A3.<STOP>"),
    ]
    assert [r.source for r in rows] == ["Q text |", "Q text | A1.", "Q text | A1. A2."]


def test_ases_samples_chinese_joins_without_spaces():
    rows = ases_samples(ZH_EX, ZH_SEGS, ZH)
    assert [(r.step, r.tag, r.prefix, r.target) for r in rows] == [
        (0, ES, " |", "胰头部软组织肿块，"),
        (1, AS, " | 胰头部软组织肿块，", "考虑恶性肿瘤。"),
        (2, ES, " | 胰头部软组织肿块，考虑恶性肿瘤。", "2、肝囊肿。<STOP>"),
    ]
    assert all(r.id == "z1" and r.question == "胰头部见软组织肿块。" for r in rows)


def test_single_segment_carries_the_stop():
    rows = ases_samples(EX, [Segment(ES, "A1. A2. A3.")], EN)
    assert rows == [Sample("e1", 0, ES, "Q text", " |", "A1. A2. A3.<STOP>")]


def test_lead_es_inserts_an_empty_es_row_before_a_leading_as():
    segs = [Segment(AS, "A1."), Segment(ES, "A2. A3.")]
    rows = ases_samples(EX, segs, EN, lead_es=True)
    assert rows == [
        Sample("e1", 0, ES, "Q text", " |", ""),
        Sample("e1", 1, AS, "Q text", " |", "A1."),
        Sample("e1", 2, ES, "Q text", " | A1.", "A2. A3.<STOP>"),
    ]


def test_lead_es_with_a_single_as_segment():
    rows = ases_samples(EX, [Segment(AS, "A1. A2. A3.")], EN, lead_es=True)
    assert rows == [
        Sample("e1", 0, ES, "Q text", " |", ""),
        Sample("e1", 1, AS, "Q text", " |", "A1. A2. A3.<STOP>"),
    ]


def test_lead_es_changes_nothing_when_es_leads():
    assert ases_samples(EX, SEGS, EN, lead_es=True) == ases_samples(EX, SEGS, EN)


def test_lead_es_off_keeps_a_leading_as():
    rows = ases_samples(EX, [Segment(AS, "A1."), Segment(ES, "A2. A3.")], EN)
    assert [(r.tag, r.prefix, r.target) for r in rows] == [(AS, " |", "A1."), (ES, " | A1.", "A2. A3.<STOP>")]


def test_ases_samples_do_not_mutate_the_segments():
    segs = [Segment(AS, "A1."), Segment(ES, "A2.")]
    ases_samples(EX, segs, EN, lead_es=True)
    assert segs == [Segment(AS, "A1."), Segment(ES, "A2.")]


def test_no_segments_no_rows():
    assert ases_samples(EX, [], EN) == []
    assert ases_samples(EX, [], EN, lead_es=True) == []


# --- build_datasets ----------------------------------------------------------------------------

EXAMPLES = [EX, Example("e2", "Q two", "B1. B2.")]
SEGMENTED = [SEGS, [Segment(AS, "B1."), Segment(ES, "B2.")]]


def test_direct_sample_is_whole_target_without_stop():
    assert direct_sample(EX, EN) == Sample("e1", 0, None, "Q text", "", "A1. A2. A3.")
    # written as the AS-ES rows would join it: whitespace normalised
    assert direct_sample(Example("x", "Q", "A1.   A2.\n A3."), EN).target == "A1. A2. A3."
    assert direct_sample(ZH_EX, ZH).target == "胰头部软组织肿块，考虑恶性肿瘤。2、肝囊肿。"


def test_build_direct():
    got = build_datasets(EXAMPLES, SEGMENTED, EN, "direct")
    assert got == {
        "model": [
            Sample("e1", 0, None, "Q text", "", "A1. A2. A3."),
            Sample("e2", 0, None, "Q two", "", "B1. B2."),
        ]
    }


def test_build_usm_puts_every_row_under_model():
    got = build_datasets(EXAMPLES, SEGMENTED, EN, "usm")
    assert list(got) == ["model"]
    assert [(r.id, r.step, r.tag, r.prefix, r.target) for r in got["model"]] == [
        ("e1", 0, ES, " |", "A1."),
        ("e1", 1, AS, " | A1.", "A2."),
        ("e1", 2, ES, " | A1. A2.", "A3.<STOP>"),
        ("e2", 0, AS, " |", "B1."),  # usm: no lead ES row
        ("e2", 1, ES, " | B1.", "B2.<STOP>"),
    ]


def test_build_dsm_splits_by_tag_with_lead_es():
    got = build_datasets(EXAMPLES, SEGMENTED, EN, "dsm")
    assert set(got) == {"esm", "asm"}
    assert [(r.id, r.step, r.prefix, r.target) for r in got["esm"]] == [
        ("e1", 0, " |", "A1."),
        ("e1", 2, " | A1. A2.", "A3.<STOP>"),
        ("e2", 0, " |", ""),  # the ESM learns to yield at once
        ("e2", 2, " | B1.", "B2.<STOP>"),
    ]
    assert [(r.id, r.step, r.prefix, r.target) for r in got["asm"]] == [
        ("e1", 1, " | A1.", "A2."),
        ("e2", 1, " |", "B1."),
    ]
    assert {r.tag for r in got["esm"]} == {ES} and {r.tag for r in got["asm"]} == {AS}


# --- JSONL -------------------------------------------------------------------------------------


def test_write_and_read_round_trip(tmp_path):
    rows = ases_samples(ZH_EX, ZH_SEGS, ZH) + [direct_sample(EX, EN)]
    path = tmp_path / "sub" / "rows.jsonl"
    assert write_jsonl(rows, path) == 4
    assert list(read_samples(path)) == rows
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert "胰头部" in lines[0]  # ensure_ascii=False: Chinese stays readable
    assert json.loads(lines[3])["tag"] is None


def test_write_jsonl_accepts_dicts_and_read_skips_blank_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    row = Sample("e1", 0, ES, "Q", " |", "A.").to_json()
    assert write_jsonl([row], path) == 1
    path.write_text(path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    assert list(read_samples(path)) == [Sample("e1", 0, ES, "Q", " |", "A.")]


def test_to_json_has_source():
    s = Sample("e1", 1, AS, "Q text", " | A1.", "A2.")
    assert s.to_json() == {
        "id": "e1",
        "step": 1,
        "tag": "AS",
        "question": "Q text",
        "prefix": " | A1.",
        "target": "A2.",
        "source": "Q text | A1.",
    }
    assert Sample.from_json(s.to_json()) == s
