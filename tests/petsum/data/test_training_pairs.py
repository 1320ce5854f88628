"""The training-data contract: `load_training_pairs` keeps usable findings → impression pairs and
counts the rest by reason, from CSV or JSONL in any accepted encoding, never quoting report text."""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path

import pytest
from conftest import SECRET

from petsum.data.pairs import SKIP_REASONS, describe_skipped, is_binary, load_pairs, load_training_pairs
from shared.textio import InputError, read_csv_rows

FINDINGS = "胸部：右肺上叶见一结节，大小约1.2cm，放射性摄取增高，SUVmax 6.8。"
IMPRESSION = "1.右肺上叶高代谢结节，考虑肺癌可能。"
LIVER = "腹部：肝右叶见低密度灶，放射性摄取增高，SUVmax：5.6。"
LIVER_IMP = "1、肝右叶高代谢灶，考虑转移瘤。  2、余躯干及脑部PET/CT检查未见其他异常代谢征象。"
CLOSING_ONLY = "余躯干及脑部PET/CT检查未见其他异常代谢征象。"
NO_COUNTS = dict.fromkeys(SKIP_REASONS, 0)


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", header=("qid", "question", "answer")) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def counts(**nonzero: int) -> dict[str, int]:
    return {**NO_COUNTS, **nonzero}


def test_csv_rows_are_kept_or_counted_by_reason(tmp_path):
    rows = [
        ["r1", SECRET + FINDINGS, IMPRESSION],
        ["r2", "  ", IMPRESSION],  # empty findings
        ["r3", LIVER, ""],  # empty impression
        ["r4", FINDINGS + "\x00\x00", IMPRESSION],  # NUL padding from a database export
        ["r5", "\ufffd" * 30 + FINDINGS, IMPRESSION],  # a lossy conversion: mostly replacement marks
        ["r6", "\x07\x1b[0m" * 10 + "肝", IMPRESSION],  # control characters
        ["r7", "No abnormal FDG uptake.", IMPRESSION],  # no Chinese
        ["r8", FINDINGS, "N/A"],  # no Chinese in the impression
        ["r1", LIVER + SECRET, LIVER_IMP],  # duplicate id: the first r1 is kept
        ["r9", LIVER, CLOSING_ONLY],  # no impression items
        ["", LIVER, LIVER_IMP],  # no id: the row number
    ]
    examples, skipped = load_training_pairs(write_csv(tmp_path / "train.csv", rows))
    assert [(e.id, e.question, e.target) for e in examples] == [
        ("r1", SECRET + FINDINGS, IMPRESSION),
        ("11", LIVER, LIVER_IMP),
    ]
    assert skipped == counts(empty=2, binary=3, no_chinese=2, duplicate_id=1, no_items=1)
    assert list(skipped) == list(SKIP_REASONS)  # every reason, in the order of checking
    assert describe_skipped(skipped) == (
        "skipped 9 rows: 2 empty, 3 binary, 2 without Chinese, 1 duplicate id, 1 without impression items"
    )


def test_checks_run_in_order_and_a_skipped_row_claims_no_id(tmp_path):
    rows = [
        ["a", "", "\x00"],  # empty before binary
        ["b", "\x00肝", "English only"],  # binary before no_chinese
        ["c", LIVER, CLOSING_ONLY],  # no items: "c" is not taken
        ["c", LIVER, LIVER_IMP],  # so this "c" is kept
        ["c", "Liver normal.", CLOSING_ONLY],  # no_chinese before duplicate_id
        ["c", LIVER, CLOSING_ONLY],  # duplicate_id before no_items
    ]
    examples, skipped = load_training_pairs(write_csv(tmp_path / "order.csv", rows))
    assert [(e.id, e.target) for e in examples] == [("c", LIVER_IMP)]
    assert skipped == counts(empty=1, binary=1, no_chinese=1, duplicate_id=1, no_items=1)


def test_ids_default_to_the_row_number_and_are_never_duplicated(tmp_path):
    rows = [[FINDINGS, IMPRESSION], [LIVER, LIVER_IMP]]
    examples, _ = load_training_pairs(write_csv(tmp_path / "no_qid.csv", rows, header=("question", "answer")))
    assert [e.id for e in examples] == ["1", "2"]
    # An explicit id equal to another row's row number is a duplicate, not a second "2".
    rows = [["2", FINDINGS, IMPRESSION], ["", LIVER, LIVER_IMP]]
    examples, skipped = load_training_pairs(write_csv(tmp_path / "clash.csv", rows))
    assert [e.id for e in examples] == ["2"] and skipped["duplicate_id"] == 1


def test_other_column_names(tmp_path):
    path = write_csv(tmp_path / "named.csv", [["x1", FINDINGS, IMPRESSION]], header=("id", "findings", "impression"))
    examples, _ = load_training_pairs(path, question="findings", answer="impression", id_column="id")
    assert [(e.id, e.question) for e in examples] == [("x1", FINDINGS)]
    with pytest.raises(InputError, match="no column question, answer"):
        load_training_pairs(path)


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-8-sig", "utf-16"])
def test_encodings(tmp_path, encoding):
    rare = "䶮"  # in GB18030 but not in GBK: a four-byte GB18030 character
    findings = FINDINGS + (rare if encoding != "gbk" else "")
    path = write_csv(tmp_path / f"{encoding}.csv", [["q1", findings, IMPRESSION], ["q2", LIVER, LIVER_IMP]], encoding)
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(codecs.BOM_UTF8)
    examples, skipped = load_training_pairs(path)
    assert [(e.id, e.question, e.target) for e in examples] == [("q1", findings, IMPRESSION), ("q2", LIVER, LIVER_IMP)]
    assert skipped == NO_COUNTS


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16", "utf-32"])
def test_a_nul_row_is_skipped_in_any_encoding(tmp_path, encoding):
    rows = [["q1", FINDINGS, IMPRESSION], ["q2", LIVER + "\x00" * 8, LIVER_IMP], ["q3\x00", LIVER, LIVER_IMP]]
    rows.append(["q4", LIVER, LIVER_IMP])
    examples, skipped = load_training_pairs(write_csv(tmp_path / "nul.csv", rows, encoding))
    assert [e.id for e in examples] == ["q1", "q4"] and skipped == counts(binary=2)


def test_read_csv_rows_raises_on_nul_unless_asked_to_yield(tmp_path):
    path = write_csv(tmp_path / "nul.csv", [["q1", FINDINGS, IMPRESSION], ["q2", SECRET + "\x00", IMPRESSION]])
    big = write_csv(tmp_path / "big.csv", [[f"q{i}", FINDINGS, IMPRESSION] for i in range(10_000)])
    big.write_bytes(big.read_bytes() + "q,肝\x00,x\n".encode())  # a NUL past the head the encoding is judged on
    for p in (path, big):
        with pytest.raises(InputError, match="NUL|binary"):
            list(read_csv_rows(p, ["question", "answer"]))  # the default is unchanged
        assert any("\x00" in r["question"] for r in read_csv_rows(p, ["question", "answer"], nul_rows=True))


def test_a_file_that_is_not_text_is_still_refused(tmp_path):
    no_bom = tmp_path / "utf16_no_bom.csv"
    no_bom.write_bytes(f"qid,question,answer\nq1,{FINDINGS},{IMPRESSION}\n".encode("utf-16-le"))
    blob = tmp_path / "blob.csv"
    blob.write_bytes(bytes(range(256)) * 50)
    for path in (no_bom, blob):
        with pytest.raises(InputError, match="binary file"):
            load_training_pairs(path)
    png = tmp_path / "scan.csv"  # half its "lines" hold no NUL: refused all the same, for its header
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    with pytest.raises(InputError, match="no column question, answer"):
        load_training_pairs(png)


def jsonl(path: Path, lines: list) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson", ".JSONL"])
def test_jsonl_rows_are_kept_or_counted_by_reason(tmp_path, suffix):
    lines = [
        {"qid": "j1", "question": SECRET + FINDINGS, "answer": IMPRESSION},
        '{"qid": "j2", "question": "' + SECRET + "肝",  # cut off: malformed
        "",  # a blank line is no row
        ["not", "an", "object"],  # empty
        {"qid": "j3", "question": FINDINGS},  # no answer: empty
        {"qid": "j4", "question": FINDINGS, "answer": None},  # not a string: empty
        '{"qid": "j5", "question": "' + FINDINGS + '\x00", "answer": "' + IMPRESSION + '"}',  # a raw NUL: binary
        {"qid": "j6", "question": FINDINGS + "\x00", "answer": IMPRESSION},  # an escaped NUL: binary
        '{"qid": "j7", "question": "' + FINDINGS + '\\ud800", "answer": "' + IMPRESSION + '"}',  # lone surrogate
        {"qid": "j8", "question": "PET/CT normal.", "answer": IMPRESSION},  # no Chinese
        {"qid": "j1", "question": LIVER, "answer": LIVER_IMP},  # duplicate id
        {"qid": "j9", "question": LIVER, "answer": CLOSING_ONLY},  # no items
        {"qid": 10, "question": LIVER, "answer": LIVER_IMP},  # a numeric id
        {"question": LIVER + "肝", "answer": LIVER_IMP},  # no id: the line number
    ]
    examples, skipped = load_training_pairs(jsonl(tmp_path / f"train{suffix}", lines))
    assert [(e.id, e.question) for e in examples] == [("j1", SECRET + FINDINGS), ("10", LIVER), ("14", LIVER + "肝")]
    assert skipped == counts(malformed=1, empty=3, binary=3, no_chinese=1, duplicate_id=1, no_items=1)
    assert SECRET not in describe_skipped(skipped)


def test_jsonl_in_gb18030_with_a_bom_less_head(tmp_path):
    path = tmp_path / "train.jsonl"
    row = {"qid": "g1", "question": FINDINGS, "answer": IMPRESSION}
    path.write_bytes((json.dumps(row, ensure_ascii=False) + "\n").encode("gb18030"))
    examples, _ = load_training_pairs(path)
    assert [(e.id, e.question, e.target) for e in examples] == [("g1", FINDINGS, IMPRESSION)]


def test_no_usable_row_is_one_error_with_counts_and_no_report_text(tmp_path):
    rows = [
        ["s1", SECRET, ""],
        ["s2", SECRET + "\x00", IMPRESSION],
        ["s3", "Findings: " + SECRET.encode("utf-8").hex(), "Impression: none."],
        ["s4", SECRET + FINDINGS, CLOSING_ONLY],
    ]
    with pytest.raises(InputError) as err:
        load_training_pairs(write_csv(tmp_path / "bad.csv", rows))
    message = str(err.value)
    reasons = "1 empty, 1 binary, 1 without Chinese, 1 without impression items"
    assert message == f"{tmp_path / 'bad.csv'}: no usable training rows ({reasons})"
    assert SECRET not in message and "\n" not in message

    lines = ['{"question": "' + SECRET, {"question": SECRET, "answer": CLOSING_ONLY}]
    with pytest.raises(
        InputError, match=r"no usable training rows \(1 malformed JSON, 1 without impression items\)"
    ) as err:
        load_training_pairs(jsonl(tmp_path / "bad.jsonl", lines))
    assert SECRET not in str(err.value)

    with pytest.raises(InputError, match=r"no usable training rows \(the file has no rows\)"):
        load_training_pairs(write_csv(tmp_path / "header_only.csv", []))
    # A file without a header row: the columns it has are counted, not shown.
    headless = write_csv(tmp_path / "headless.csv", [], header=(SECRET, FINDINGS, IMPRESSION))
    with pytest.raises(InputError, match="no column") as err:
        load_training_pairs(headless)
    assert SECRET not in str(err.value) and FINDINGS not in str(err.value)


def test_is_binary_rule():
    report = FINDINGS * 2  # 72 characters
    assert not is_binary(report)
    assert not is_binary(report + "\ufffd" * 7 + "\x07")  # 8 of 80: a damaged report is still a report
    assert is_binary(report + "\ufffd" * 9)  # 9 of 81: over 10%
    assert is_binary(report + "\U000e0080" * 9)  # unassigned code points
    assert is_binary(report + "\x00") and is_binary(report + "\ud800")  # one NUL or lone surrogate is enough
    assert not is_binary("胸部：\t未见异常。\r\n腹部：未见异常。" + "\u3000" * 10 + "\u200b")


def test_describe_skipped():
    assert describe_skipped(NO_COUNTS) == "" and describe_skipped({}) == ""
    assert describe_skipped(counts(empty=1, duplicate_id=2)) == "skipped 3 rows: 1 empty, 2 duplicate id"
    assert describe_skipped(counts(malformed=1)) == "skipped 1 row: 1 malformed JSON"


def test_load_pairs_is_unchanged(tmp_path):
    rows = [["r1", FINDINGS, IMPRESSION], ["r1", "English", ""], ["r2", "English", "only"]]
    assert [(e.id, e.question) for e in load_pairs(write_csv(tmp_path / "old.csv", rows))] == [
        ("r1", FINDINGS),
        ("r2", "English"),
    ]
