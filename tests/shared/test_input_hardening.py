"""Issue 33's attacks on the batch engine and the readers, with real files, FIFOs, links, locks
and subprocesses: no input stops a run or hangs it, one writer per output, `--resume` only into
an output of this input and these settings, and no patient data in a message."""

from __future__ import annotations

import codecs
import csv
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GOOD, REPO
from rich.console import Console

from shared.batch import check_out, done_records, meta_path, run_batch, write_batch
from shared.records import Input, Record, escape_id, records, scan_input
from shared.textio import InputError, decode_bytes, describe_columns, read_csv_rows, read_jsonl_rows

SPEC = Input(column="text", id_column="id", max_chars=50, unit="line of text")
PETSUM = [sys.executable, "-c", "from petsum.cli import main; main()", "batch"]
PY = [sys.executable, "-c"]


def shout(chunks):
    """A stand-in engine: each record's text upper-cased, or its error passed on."""
    for chunk in chunks:
        yield [{"id": r.id, "error": r.error} if r.error else {"id": r.id, "text": r.text.upper()} for r in chunk]


def quiet() -> Console:
    return Console(quiet=True)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def run(args: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def one_line_error(res, *needles: str) -> None:
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stderr and "Usage" not in res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr


# --- 6. ids that cannot be encoded ----------------------------------------------------------


def gbk_named_folder(tmp_path: Path) -> Path:
    """Files named by GBK bytes, as an unzip leaves them: Python reads the names surrogate-escaped."""
    folder = tmp_path / "gbk"
    folder.mkdir()
    for name, content in [("肝", b"first"), ("肺", b"second"), ("胰", b"\x00\x01binary")]:
        with open(os.fsencode(folder) + b"/" + name.encode("gbk") + b".txt", "wb") as f:
            f.write(content)
    return folder


def test_escape_id_is_lossless_and_leaves_valid_ids_alone():
    assert escape_id("r1") == "r1" and escape_id("a\\b") == "a\\b" and escape_id("报告") == "报告"
    name = os.fsdecode("肝".encode("gbk"))  # '\udcb8\udcce'
    assert escape_id(name) == "\\xb8\\xce" and escape_id("x\ud800\\") == "x\\ud800\\\\"
    assert Record(name).id == "\\xb8\\xce"  # every record's id is writable
    for raw in ["\udcb8\udcce", "a\\\udcff", "\ud800z"]:
        assert escape_id(raw).encode("utf-8")  # UTF-8 can hold it


def test_non_utf8_file_names_and_surrogate_jsonl_ids_are_written_and_resumed(tmp_path: Path):
    folder = gbk_named_folder(tmp_path)
    out = tmp_path / "out.jsonl"
    stats = run_batch(shout, folder, out, quiet(), spec=SPEC, batch_size=1)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["\\xb7\\xce", "\\xb8\\xce", "\\xd2\\xc8"]  # in name order: 肺 肝 胰
    assert (
        rows[0]["text"] == "SECOND" and "binary" in rows[2]["error"] and rows[2]["error"].startswith("\\xd2\\xc8.txt")
    )
    assert (stats.written, stats.errors) == (3, 1)
    # killed mid-line after one record: resume matches the escaped ids and writes the rest once
    lines = out.read_bytes().split(b"\n")
    out.write_bytes(lines[0] + b"\n" + lines[1][:9])
    stats = run_batch(shout, folder, out, quiet(), spec=SPEC, batch_size=1, resume=True)
    assert read_jsonl(out) == rows and (stats.resumed, stats.written) == (1, 2)

    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "\\ud800", "text": "a"}\n{"id": "ok", "text": "\\udcff"}\n{"id": "x", "text": "b"}\n')
    out = tmp_path / "j.jsonl"
    run_batch(shout, src, out, quiet(), spec=SPEC)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["\\ud800", "ok", "x"] and rows[0]["text"] == "A"
    assert "surrogate" in rows[1]["error"]  # a text that is not Unicode is an error record, not a crash


def test_an_engine_message_with_a_surrogate_is_still_written(tmp_path: Path):
    def echo_name(chunks):
        for chunk in chunks:
            yield [{"id": r.id, "error": "file \udcb8 unreadable"} for r in chunk]

    out = tmp_path / "o.jsonl"
    write_batch(echo_name, iter([Record("a")]), 1, out, quiet())
    assert read_jsonl(out) == [{"id": "a", "error": "file \udcb8 unreadable"}]  # a JSON escape, read back as is


@pytest.mark.slow
def test_petsum_batch_cli_writes_and_resumes_gbk_file_names(tmp_path: Path):
    folder = tmp_path / "reports"
    folder.mkdir()
    for name in ["报告", "复查"]:
        with open(os.fsencode(folder) + b"/" + name.encode("gbk") + b".txt", "wb") as f:
            f.write(GOOD.encode("gbk"))
    (folder / "c.txt").write_text(GOOD, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = run([*PETSUM, str(folder), "--out", str(out), "--consensus", "0", "--batch-size", "1"], timeout=300)
    assert res.returncode == 0, res.stderr
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["c", "\\xb1\\xa8\\xb8\\xe6", "\\xb8\\xb4\\xb2\\xe9"]
    assert all("impression" in r for r in rows)
    meta = json.loads(meta_path(out).read_text())
    assert meta["settings"]["consensus"] == 0 and set(meta["settings"]["model"]) == {"path", "files"}
    lines = out.read_bytes().split(b"\n")
    out.write_bytes(lines[0] + b"\n" + lines[1][:20])  # killed mid-line
    res = run([*PETSUM, str(folder), "--out", str(out), "--consensus", "0", "--resume"], timeout=300)
    assert res.returncode == 0, res.stderr
    assert read_jsonl(out) == rows


# --- 7. oversized fields and deep nesting ------------------------------------------------------


def test_a_50_mb_csv_cell_is_one_error_record_and_the_run_goes_on(tmp_path: Path):
    spec = Input(column="question", id_column="qid", max_chars=1_000_000)
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        f.write("qid,question\n")
        f.write("a,first\n")
        f.write("b," + "x" * 50_000_000 + "\n")  # one 50 MB cell on one line
        f.write('c,"' + ("胰" * 1_000_000 + "\n") * 6 + '"\n')  # a quoted cell over many lines
        f.write("d,last\n")
    out = tmp_path / "out.jsonl"
    stats = run_batch(shout, src, out, quiet(), spec=spec)
    rows = read_jsonl(out)
    assert [r.get("text") for r in rows] == ["FIRST", None, None, "LAST"] and rows[3]["id"] == "d"
    assert "over 4,000,000 characters" in rows[1]["error"] and "over 4,000,000 characters" in rows[2]["error"]
    assert stats.errors == 2


def test_csv_overlong_lines_and_fields_resynchronize(tmp_path: Path):
    src = tmp_path / "in.csv"  # SPEC: lines and fields over 200 characters
    src.write_text(
        "id,text\n"
        "a,ok\n"
        f'b,"{"x" * 150}\n{"y" * 150}\n{"z" * 30}"\n'  # a field over the limit, no line over it
        f"c,{'q' * 500}\n"  # a line over it
        f'd,"{"w" * 20}\n{"v" * 500}\nmore"\n'  # a line over it inside a quoted cell
        'e,"quoted ""and"" fine"\n',
        encoding="utf-8",
    )
    got = [(r.id, r.text, r.error is not None) for r in records(src, SPEC)]
    assert got == [("a", "ok", False), ("2", None, True), ("3", None, True), ("4", None, True),
                   ("e", 'quoted "and" fine', False)]  # fmt: skip


def test_deeply_nested_jsonl_is_an_error_record(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n' + "[" * 100_000 + "]" * 100_000 + '\n{"id": "c", "text": "y"}\n')
    out = tmp_path / "out.jsonl"
    run_batch(shout, src, out, quiet(), spec=Input(column="text", id_column="id"))
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["a", "2", "c"] and "nested too deeply" in rows[1]["error"]
    with pytest.raises(InputError, match="line 2 is nested too deeply"):
        list(read_jsonl_rows(src))  # the readers of train/evaluate: one line, no RecursionError


# --- 8. two writers on one output ---------------------------------------------------------------


def test_a_locked_output_is_refused_in_one_line_before_the_model_loads(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 1, "question": GOOD}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.touch()
    meta_path(out).write_text('{"pid": 4242}')
    with out.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        start = time.monotonic()
        res = run([*PETSUM, str(src), "--out", str(out), "--model", str(tmp_path / "no-model-needed")])
        one_line_error(res, "is being written by another batch run (pid 4242)")
        assert time.monotonic() - start < 30
    assert out.read_bytes() == b""


WRITER = """
import sys, time
from pathlib import Path
from rich.console import Console
from shared.batch import run_batch
from shared.records import Input

gate = Path(sys.argv[3])
def slow(chunks):  # holds the run open until the test opens the gate
    for chunk in chunks:
        while not gate.exists():
            time.sleep(0.02)
        yield [{"id": r.id, "text": r.text} for r in chunk]

run_batch(slow, Path(sys.argv[1]), Path(sys.argv[2]), Console(quiet=True), spec=Input("text", "id"), batch_size=2)
"""


def test_two_writers_on_one_output_the_second_gets_one_line(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"r{i}", "text": "t"}) + "\n" for i in range(6)))
    out, gate = tmp_path / "out.jsonl", tmp_path / "gate"
    first = subprocess.Popen([*PY, WRITER, str(src), str(out), str(gate)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not meta_path(out).exists() and time.time() < deadline:  # the sidecar: the lock is held
            time.sleep(0.02)
        second = run([*PETSUM, str(src), "--out", str(out), "--resume", "--column", "text", "--id-column", "id"])
        one_line_error(second, "is being written by another batch run", f"(pid {first.pid})")
        third = run([*PY, WRITER, str(src), str(out), str(gate)])  # the engine itself, no CLI in front
        assert third.returncode == 1 and "is being written by another batch run" in third.stderr
    finally:
        gate.touch()
        first.wait(timeout=60)
    assert first.returncode == 0, first.stderr
    assert [r["id"] for r in read_jsonl(out)] == [f"r{i}" for i in range(6)]  # each id once


# --- 9. resuming against another input or settings; resuming into a file that is no output -----


def test_resume_refuses_another_input_and_other_settings(tmp_path: Path):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("text\n" + "".join(f"a{i}\n" for i in range(5)))  # no id column: ids are 1..5
    two.write_text("text\n" + "".join(f"b{i}\n" for i in range(5)))
    out = tmp_path / "out.jsonl"
    run_batch(shout, one, out, quiet(), spec=SPEC, settings={"model": "m1"})
    kept = out.read_bytes()
    lines = kept.split(b"\n")
    out.write_bytes(b"\n".join(lines[:2]) + b"\n" + lines[2][:5])  # killed mid-line
    torn = out.read_bytes()
    with pytest.raises(InputError, match="does not continue this input: it was written from another input"):
        run_batch(shout, two, out, quiet(), spec=SPEC, settings={"model": "m1"}, resume=True)
    with pytest.raises(InputError, match=r"other settings \(model\)"):
        run_batch(shout, one, out, quiet(), spec=SPEC, settings={"model": "m2"}, resume=True)
    with pytest.raises(InputError, match=r"other settings \(id_column\)"):
        run_batch(shout, one, out, quiet(), spec=Input("text", "qid", 50), settings={"model": "m1"}, resume=True)
    assert out.read_bytes() == torn  # nothing cut by a refused resume
    stats = run_batch(shout, one, out, quiet(), spec=SPEC, settings={"model": "m1"}, resume=True)
    assert out.read_bytes() == kept and (stats.resumed, stats.written) == (2, 3)
    # the fingerprint is of the records as read: the same input in another place and encoding matches
    moved = tmp_path / "moved" / "one.csv"
    moved.parent.mkdir()
    moved.write_bytes(one.read_text().encode("utf-16"))
    assert scan_input(moved, SPEC) == scan_input(one, SPEC)


@pytest.mark.parametrize(
    "content",
    [b"hello, not a batch output", b"notes\nmore notes", b'{"qid": 1, "question": "x"}\n{"qid": 2, "ques',
     b'{"id": "a", "text": "A"}\n[1, 2]\n{"id": "b"', b'{"id": "a", "text": "A"}\nplain text tail',
     b"\x89PNG\r\n\x1a\n\x00\x00"],
)  # fmt: skip
def test_resume_into_a_file_that_is_no_batch_output_refuses_before_cutting(tmp_path: Path, content: bytes):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "a"}\n{"id": "b", "text": "b"}\n')
    out = tmp_path / "notes.txt"
    out.write_bytes(content)
    with pytest.raises(InputError, match="not resuming into it"):
        run_batch(shout, src, out, quiet(), spec=SPEC, resume=True)
    with pytest.raises(InputError, match="not resuming into it"):
        done_records(out)
    assert out.read_bytes() == content and not meta_path(out).exists()
    res = run([*PETSUM, str(src), "--out", str(out), "--resume", "--model", str(tmp_path / "no-model")])
    one_line_error(res, "not resuming into it")
    assert out.read_bytes() == content


# --- 10. UTF-32 and NUL characters ---------------------------------------------------------------


def test_utf32_files_are_read_as_utf32_and_nul_text_is_refused(tmp_path: Path):
    text = "肝右叶结节，SUVmax：5.6。"
    for enc, bom in [("utf-32-le", codecs.BOM_UTF32_LE), ("utf-32-be", codecs.BOM_UTF32_BE)]:
        assert decode_bytes(bom + text.encode(enc)) == text
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "a.txt").write_bytes(codecs.BOM_UTF32_LE + "fine".encode("utf-32-le"))
    (folder / "b.txt").write_bytes(codecs.BOM_UTF16_LE + "x\x00y".encode("utf-16-le"))  # NUL once decoded
    got = [(r.id, r.text, r.error) for r in records(folder, SPEC)]
    assert got[0] == ("a", "fine", None) and "NUL" in got[1][2]

    csv_32 = tmp_path / "in.csv"
    csv_32.write_bytes(codecs.BOM_UTF32_LE + "id,text\nq,肝\n".encode("utf-32-le"))
    assert [(r.id, r.text) for r in records(csv_32, SPEC)] == [("q", "肝")]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(codecs.BOM_UTF16_LE + '{"id": 1, "text": "a\x00b"}\n'.encode("utf-16-le"))
    with pytest.raises(InputError, match="NUL"):
        list(records(bad, SPEC))  # a whole file with NULs after decoding stops before the run
    # a NUL past the first MiB (the encoding is judged on the head) is that record's error
    late = tmp_path / "late.csv"
    late.write_text(
        "id,text\n" + "".join(f"r{i},{'肝' * 20}\n" for i in range(20_000)) + "z,a\x00b\nw,ok\n", encoding="utf-8"
    )
    tail = [(r.id, r.error is not None) for r in records(late, Input("text", "id", 1000))][-2:]
    assert tail == [("z", True), ("w", False)]


# --- 11. dangling links, FIFOs and folders named .txt -------------------------------------------


READ_FOLDER = """
import json, sys
from pathlib import Path
from shared.records import Input, records
print(json.dumps([(r.id, r.error) for r in records(Path(sys.argv[1]), Input("text", "id", 50))]))
"""


def test_dangling_links_fifos_and_folders_named_txt_are_error_records(tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("fine")
    (folder / "b.txt").symlink_to(folder / "missing.txt")
    os.mkfifo(folder / "c.txt")
    (folder / "d.txt").mkdir()
    (folder / "e.txt").symlink_to(folder / "a.txt")  # a link to a file is read
    res = run([*PY, READ_FOLDER, str(folder)], timeout=60)  # a subprocess: opening the FIFO would hang
    assert res.returncode == 0, res.stderr
    got = dict(json.loads(res.stdout))
    assert list(got) == ["a", "b", "c", "d", "e"] and got["a"] is None and got["e"] is None
    assert "dangling" in got["b"] and "FIFO" in got["c"] and "folder" in got["d"]


# --- 15. no patient data as "columns" -----------------------------------------------------------


def test_column_lists_never_show_a_data_row(tmp_path: Path):
    for row in [["P0012345", "张三丰", "男", "65", "肝囊肿"], ["P0012345", "M", "65"], ["Zhang", "19650304"],
                ["检查所见", "诊断意见"], ["x" * 50]]:  # fmt: skip
        described = describe_columns(row)
        assert not any(v in described for v in row) and f"{len(row)}, not shown" in described
    assert describe_columns(["report", "accession", "patient id"]) == "report, accession, patient id"
    src = tmp_path / "noheader.csv"
    with src.open("w", encoding="gbk", newline="") as f:
        csv.writer(f).writerows(
            [["P0012345", "张三丰", "男", "65", "肝囊肿"], ["P0012346", "李四", "女", "70", "肺结节"]]
        )
    for read in (lambda: list(records(src)), lambda: list(read_csv_rows(src, ["question"]))):
        with pytest.raises(InputError) as e:
            read()
        assert "5, not shown" in str(e.value) and "P0012345" not in str(e.value) and "张三丰" not in str(e.value)


# --- 5. --out that is not a regular file ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "devnull", "fifo", "input"])
def test_out_that_no_run_can_write_is_one_line_before_the_model_loads(tmp_path: Path, kind: str):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "question": "x"}\n')
    out = {"folder": tmp_path, "devnull": Path("/dev/null"), "fifo": tmp_path / "pipe", "input": src}[kind]
    if kind == "fifo":
        os.mkfifo(out)
    res = run([*PETSUM, str(src), "--out", str(out), "--model", str(tmp_path / "no-model")], timeout=60)
    needle = {"folder": "is a folder", "devnull": "(a device)", "fifo": "(a FIFO)", "input": "is the input"}[kind]
    one_line_error(res, needle)
    with pytest.raises(InputError, match=needle.strip("()")):
        check_out(out, False, src)
