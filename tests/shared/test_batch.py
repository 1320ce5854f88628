"""shared.batch, the task-neutral batch engine, with a stand-in engine (no model): reading records
by an `Input` spec, in-order chunked writing, resume after a torn line, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GOOD
from rich.console import Console

from shared.batch import EXIT_PARTIAL, BatchStats, done_records, run_batch, summary_table
from shared.records import Input, records
from shared.textio import InputError

SPEC = Input(column="text", id_column="id", max_chars=50, unit="line of text")


def shout(chunks):
    """A stand-in engine: each record's text upper-cased, or its error passed on."""
    for chunk in chunks:
        yield [{"id": r.id, "error": r.error} if r.error else {"id": r.id, "text": r.text.upper()} for r in chunk]


def quiet() -> Console:
    return Console(quiet=True)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_records_follow_the_input_spec_in_every_format(tmp_path: Path):
    csv = tmp_path / "in.csv"
    csv.write_text("id,text\nx,hello\n,no id\ny," + "z" * 51 + "\nw,a,b\n", encoding="utf-8")
    assert [(r.id, r.text, r.error is not None) for r in records(csv, SPEC)] == [
        ("x", "hello", False),
        ("2", "no id", False),
        ("y", None, True),
        ("w", None, True),  # too long; a broken row
    ]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"id": 7, "text": "a"}\n\n{"text": "b"}\nnot json\n{"id": "q"}\n', encoding="utf-8")
    assert [(r.id, r.text) for r in records(jsonl, SPEC)] == [("7", "a"), ("3", "b"), ("4", None), ("q", None)]
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "b.txt").write_text("second", encoding="utf-8")
    (folder / "a.txt").write_text("first", encoding="utf-8")
    (folder / "skip.md").write_text("not a record", encoding="utf-8")
    assert [(r.id, r.text) for r in records(folder, SPEC)] == [("a", "first"), ("b", "second")]
    with pytest.raises(InputError, match="no column 'question'"):
        list(records(csv, Input()))  # the default spec reads `question`


def test_blank_csv_lines_are_not_records(tmp_path: Path):
    src = tmp_path / "in.csv"
    src.write_text(f"question,qid\n{GOOD},a\n\n{GOOD},b\n\n", encoding="utf-8")
    assert [(r.id, r.error) for r in records(src)] == [("a", None), ("b", None)]


def test_run_batch_writes_every_record_once_in_order_and_resumes(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": f"t{i}"}) + "\n" for i in range(7)) + '{"id": "bad"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    stats = run_batch(shout, src, out, quiet(), spec=SPEC, batch_size=3)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(7)] + ["bad"] and rows[2] == {"id": "r2", "text": "T2"}
    assert (stats.total, stats.written, stats.errors, stats.resumed) == (8, 8, 1, 0)
    # killed mid-line after three records: resume cuts the torn line and writes the rest once
    out.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + '{"id": "r3", "te', encoding="utf-8")
    stats = run_batch(shout, src, out, quiet(), spec=SPEC, batch_size=3, resume=True)
    assert read_jsonl(out) == rows and (stats.resumed, stats.written, stats.errors) == (3, 5, 1)
    with pytest.raises(InputError, match="--resume"):
        run_batch(shout, src, out, quiet(), spec=SPEC)  # never clobbers an output
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "zz", "text": "t"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="does not continue this input"):
        run_batch(shout, other, out, quiet(), spec=SPEC, resume=True)
    assert EXIT_PARTIAL == 3


def test_an_engine_that_reorders_records_stops_the_run(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"r{i}", "text": "t"}) + "\n" for i in range(4)), encoding="utf-8")

    def backwards(chunks):
        for done in shout(chunks):
            yield done[::-1]

    with pytest.raises(RuntimeError, match="out of order"):
        run_batch(backwards, src, tmp_path / "out.jsonl", quiet(), spec=SPEC, batch_size=2)
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == ""  # not one wrong line kept


def test_resume_survives_unicode_line_separators(tmp_path: Path):
    out = tmp_path / "o.jsonl"
    recs = [{"id": "a\u2028b", "impression": "x\u2029y\x85"}, {"id": "c", "error": "bad"}]
    out.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs) + '{"id": "d", "imp', encoding="utf-8"
    )
    assert done_records(out) == (["a\u2028b", "c"], 1)
    assert out.read_text(encoding="utf-8").endswith('"bad"}\n')  # the torn line is gone


def test_summary_table_names_its_unit():
    table = summary_table(
        BatchStats(total=4, written=4, errors=1, seconds=2.0), Path("o.jsonl"), title="solve", unit="problems"
    )
    cells = [c for col in table.columns for c in col._cells]
    assert table.title == "solve" and "problems/s" in cells and "2.00" in cells and "o.jsonl" in cells
