"""The batch engine: many texts in, one JSONL record per text out, exactly once.

What a task does with each chunk is its engine (`petsum.batch.local`, `mwp.solve`); reading,
resuming and writing are here, the same for every task. Records stream from a folder of `.txt`
files, a `.csv` or a `.jsonl` and are summarized in
chunks; each chunk's lines are written in input order, flushed and fsynced before the next
chunk starts. `resume` trusts only complete lines of an existing output, checks that they are
the first records of this input, and continues after them, so a run killed at any moment (even
`kill -9`) and resumed writes every record exactly once. One run at a time writes an output
(an exclusive lock on it), and `OUT.meta.json` beside it records what the output was made from (a
fingerprint of the input's records and the settings that change the output), so that `resume`
never continues an output with another input or other settings.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from shared.textio import InputError, describe_columns, open_text, read_bytes

if TYPE_CHECKING:
    from rich.console import Console

EXIT_PARTIAL = 3
T = TypeVar("T")


def decode_record(data: bytes, name: str, max_bytes: int) -> str:
    """One text file's content, refusing sizes no record has."""
    from shared.textio import decode_bytes

    if len(data) > max_bytes:
        raise InputError(
            f"{name} is {len(data) / 1e6:.1f} MB; a record is a few KB (limit {max_bytes // 1_000_000} MB)"
        )
    return decode_bytes(data, name)


@dataclass(frozen=True)
class Input:
    """How a task's records are read: the text column or field, the id column or field, the size
    over which a text is an error record, and how a `.txt` file's bytes become its text."""

    column: str = "question"
    id_column: str = "qid"
    max_chars: int = 1_000_000
    unit: str = "record"  # in messages: "a PET/CT report has a few thousand characters"
    read_file: Callable[[bytes, str, int], str] = decode_record


_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_id(rid: str) -> str:
    """An id UTF-8 can write, losslessly and always the same way (so `resume` matches it): an id
    that is valid Unicode is kept as it is; one with lone surrogates (a file name that is not
    UTF-8, which Python reads as U+DC80-U+DCFF, or a `"\\ud800"` escape in JSONL) has each
    backslash doubled, each U+DC80-U+DCFF written `\\xNN` (the file name's byte NN) and any other
    surrogate `\\uXXXX`."""
    if not _SURROGATE.search(rid):
        return rid
    return "".join(_escape_char(c) for c in rid)


def _escape_char(c: str) -> str:
    if c == "\\":
        return "\\\\"
    if "\udc80" <= c <= "\udcff":
        return f"\\x{ord(c) - 0xDC00:02x}"
    if "\ud800" <= c <= "\udfff":
        return f"\\u{ord(c):04x}"
    return c


@dataclass(frozen=True)
class Record:
    id: str  # always writable: `escape_id`
    text: str | None = None
    error: str | None = None
    extra: Any = None  # what the task's engine needs beside the text (mwp: the record with its gold answer)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", escape_id(str(self.id)))


@dataclass
class BatchStats:
    total: int = 0  # records in the input
    resumed: int = 0  # records already in the output when this run started
    written: int = 0  # records this run wrote
    errors: int = 0  # error records in the whole output
    duplicates: int = 0  # records this run wrote whose id an earlier record of the output has
    seconds: float = 0.0


# --- reading -----------------------------------------------------------------------------


def records(path: Path, spec: Input = Input()) -> Iterator[Record]:
    """The input's records in order. Fatal problems (no such file, missing column, undecodable
    file) raise `InputError`; a bad record becomes an error record and reading goes on."""
    if path.is_dir():
        files = _txt_files(path)
        if not files:
            raise InputError(f"{path}: no .txt files")
        return _folder(files, spec)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".csv":
        return _csv(path, spec)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _jsonl(path, spec)
    raise InputError(f"{path}: expected a folder of .txt files, a .csv or a .jsonl")


def count_records(path: Path, spec: Input = Input()) -> int:
    """How many records `records` will yield (a streaming pass, for the progress bar)."""
    if path.is_dir():
        return len(_txt_files(path))
    return sum(1 for _ in records(path, spec))


def scan_input(path: Path, spec: Input = Input()) -> tuple[int, str]:
    """(how many records `records` yields, a fingerprint of them): a SHA-256 over each record's
    id, text and whether it is an error, as read. It does not depend on where the input lies or
    how it is encoded, and changes with any record."""
    h, n = hashlib.sha256(), 0
    for rec in records(path, spec):
        n += 1
        h.update(json.dumps([rec.id, rec.text, rec.error is not None]).encode("ascii") + b"\n")
    return n, h.hexdigest()


def _txt_files(folder: Path) -> list[Path]:
    """Every entry named `*.txt`, whatever it is: one that is not a readable file (a dangling
    link, a FIFO, a folder) becomes an error record, never a silent gap."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt")


def _folder(files: list[Path], spec: Input) -> Iterator[Record]:
    for f in files:
        name = escape_id(f.name)  # messages name the file; a name that is not UTF-8 is escaped like its id
        try:
            _check_regular(f, name)
            # One byte over the limit is enough to refuse an oversized file without reading it all.
            yield Record(f.stem, text=spec.read_file(read_bytes(f, spec.max_chars + 1), name, spec.max_chars))
        except InputError as e:
            yield Record(f.stem, error=str(e))


def _check_regular(f: Path, name: str) -> None:
    """Refuse what is not a regular file by its type, before opening it: opening a FIFO blocks."""
    try:
        st = f.stat()
    except FileNotFoundError:
        raise InputError(f"{name} is a link to nothing (a dangling symbolic link)") from None
    except OSError as e:
        raise InputError(f"cannot read {name}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{name} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{name} is not a regular file ({_file_kind(st.st_mode)}); it was not opened")


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


class _Lines:
    """A CSV file's physical lines for `csv.reader`, none longer than `limit` characters, with
    the count of quote characters read for the current record. An overlong line is skipped
    unread and stands for the end of its record (which is then an error record), so neither
    memory nor one bad record can stop a run; after a field over the limit, `skip_record`
    passes the rest of its record by the quote count."""

    def __init__(self, f: io.TextIOWrapper, limit: int) -> None:
        self.f, self.limit = f, limit
        self.quotes = 0  # quote characters in this record's lines so far, read or skipped
        self.fed_quotes = 0  # ... of them handed to the csv reader
        self.overlong = False

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = self.f.readline(self.limit)
        if not line:
            raise StopIteration
        if len(line) < self.limit or line.endswith(("\n", "\r")):
            self.quotes += line.count('"')
            self.fed_quotes += line.count('"')
            return line
        self.overlong = True
        self.quotes += line.count('"')
        self._skip_line()
        while self.quotes % 2:  # the record goes on in a quoted field: skip to its end
            if not self._skip_line():
                break
        return '"\n' if self.fed_quotes % 2 else "\n"  # closes what the reader holds of the record

    def _skip_line(self) -> bool:
        """Skip the rest of a physical line, counting its quotes; False at the end of the file."""
        while True:
            more = self.f.readline(self.limit)
            self.quotes += more.count('"')
            if not more:
                return False
            if more.endswith(("\n", "\r")):
                return True

    def skip_record(self) -> None:
        """After the reader gave up on a record mid-way: skip lines to the record's end."""
        while self.quotes % 2:
            line = self.f.readline(self.limit)
            if not line:
                return
            self.quotes += line.count('"')
            if len(line) == self.limit and not line.endswith(("\n", "\r")):
                self._skip_line()

    def next_record(self) -> None:
        self.quotes = self.fed_quotes = 0
        self.overlong = False


def _csv(path: Path, spec: Input) -> Iterator[Record]:
    column, id_column, limit = spec.column, spec.id_column, 4 * spec.max_chars
    csv.field_size_limit(limit)  # a huge field becomes one error record, not a stopped run
    with open_text(path) as f:
        lines = _Lines(f, limit)
        reader = csv.reader(lines)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as e:
            raise InputError(f"{path}: unreadable CSV header ({e})") from None
        if lines.overlong:
            raise InputError(f"{path}: the CSV header is longer than {limit:,} characters")
        if not header or column not in header:
            raise InputError(f"{path}: no column {column!r} (columns: {describe_columns(header or [])}); pass --column")
        text_at = header.index(column)
        id_at = header.index(id_column) if id_column in header else None
        n = 0
        while True:
            lines.next_record()
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                if "field limit" not in str(e):  # nothing else stops the default dialect; no way past it
                    raise InputError(f"{path}: malformed CSV after record {n}: {e}") from None
                lines.skip_record()
                n += 1
                yield Record(
                    str(n), error=f"record {n} has a field over {limit:,} characters; a {spec.unit} has a few thousand"
                )
                continue
            except UnicodeDecodeError:
                raise InputError(f"{path}: not valid {f.encoding} after record {n}") from None
            if not row and not lines.overlong:  # a blank line is no record
                continue
            n += 1
            if lines.overlong:
                yield Record(
                    str(n), error=f"record {n} has a line over {limit:,} characters; a {spec.unit} has a few thousand"
                )
                continue
            rid = row[id_at].strip() if id_at is not None and id_at < len(row) and row[id_at].strip() else str(n)
            if len(row) != len(header):
                yield Record(
                    rid, error=f"record {n} has {len(row)} fields, the header {len(header)} (truncated or broken row)"
                )
            elif any("\x00" in field for field in row):
                yield Record(rid, error=f"record {n} holds a NUL character: binary data, not text")
            elif len(row[text_at]) > spec.max_chars:
                yield Record(
                    rid, error=f"record {n} has {len(row[text_at]):,} characters; a {spec.unit} has a few thousand"
                )
            else:
                yield Record(rid, text=row[text_at])


def _jsonl(path: Path, spec: Input) -> Iterator[Record]:
    column, id_column, limit = spec.column, spec.id_column, 4 * spec.max_chars
    with open_text(path) as f:
        n = 0
        while True:
            try:
                line = f.readline(limit)
            except UnicodeDecodeError:
                raise InputError(f"{path}: not valid {f.encoding} after line {n}") from None
            if not line:
                return
            n += 1
            if not line.strip():
                continue
            if not line.endswith("\n") and len(line) == limit:
                while line and not line.endswith("\n"):  # skip the rest of a line no report fills
                    line = f.readline(limit)
                yield Record(str(n), error=f"line {n} is longer than {limit:,} characters")
                continue
            if "\x00" in line:
                yield Record(str(n), error=f"line {n} holds a NUL character: binary data, not text")
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield Record(str(n), error=f"line {n} is not valid JSON ({e.msg})")
                continue
            except RecursionError:
                yield Record(str(n), error=f"line {n} is nested too deeply to be a record")
                continue
            if not isinstance(row, dict):
                yield Record(str(n), error=f"line {n} is not a JSON object")
                continue
            rid = row.get(id_column, row.get("id"))
            scalar = isinstance(rid, str | int | float) and not isinstance(rid, bool)
            rid = str(rid) if scalar and rid != "" else str(n)
            text = row.get(column)
            if not isinstance(text, str):
                yield Record(rid, error=f"line {n} has no text field {column!r}")
            elif _SURROGATE.search(text):
                yield Record(
                    rid, error=f"line {n}: its text holds a lone surrogate escape (\\ud800-\\udfff), not Unicode"
                )
            else:
                yield Record(rid, text=text)


# --- the output file ---------------------------------------------------------------------

RECORD_START = b'{"id": '  # every output line starts so: a torn last line is a prefix of a record
MAX_OUTPUT_LINE = 1 << 26  # no output record is this long; a longer line is not one


def meta_path(out: Path) -> Path:
    """The sidecar that records what `out` was made from: `OUT.meta.json`."""
    return out.with_name(out.name + ".meta.json")


def path_identity(path: Path) -> dict:
    """What a folder (a model) is, for `settings`: its resolved path and a SHA-256 over the
    relative path, size and modification time of every file in it; any rewrite changes it."""
    root = path.resolve()
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")) if root.is_dir() else [root]:
        try:
            st = f.stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            rel = escape_id(str(f.relative_to(root)) if f != root else f.name)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"path": escape_id(str(root)), "files": h.hexdigest()}


def check_out(out: Path, resume: bool = False, source: Path | None = None) -> None:
    """Refuse an `out` no run can write, before any work (a model load): a folder, a device such
    as /dev/null, a FIFO (resume and the lock need a regular file), the input itself, a non-empty
    file without `resume`, a file that is not a batch output with it, and one another run writes."""
    try:
        st = out.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise InputError(f"{out}: cannot use it as --out ({e.strerror})") from None
    if st is None:
        parent = out.parent
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{out}: {parent} is not a folder")
        return
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{out} is a folder: --out takes a file (new, or a batch output to --resume)")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{out} is not a regular file ({_file_kind(st.st_mode)}): "
            "--out takes a file (new, or a batch output to --resume)"
        )
    if source is not None and source.exists() and os.path.samefile(source, out):
        raise InputError(f"{out} is the input: choose another --out")
    if st.st_size and not resume:
        raise InputError(f"{out} already has records: pass --resume to continue it, or choose another --out")
    fd = os.open(out, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _lock(fd, out)
    finally:
        os.close(fd)  # closing releases the probe's lock
    if resume and st.st_size:
        _read_output(out)


def _lock(fd: int, out: Path) -> None:
    """An exclusive lock on the output for the whole run, or a one-line refusal naming the
    writer's pid (from its `OUT.meta.json`) when another run holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = (_read_meta(out) or {}).get("pid")
        who = f" (pid {pid})" if isinstance(pid, int) else ""
        raise InputError(
            f"{out} is being written by another batch run{who}: wait for it, or choose another --out"
        ) from None


def _read_output(out: Path) -> tuple[list[str], int, int]:
    """(ids of the complete records in `out`, how many are errors, the bytes they fill), refusing
    a file that is not a batch output before anything is changed in it: every complete line must
    be a JSON object with an id, and a torn last line the start of one."""
    ids, errors, good = [], 0, 0
    refuse = f"{out}: line {{}} is not a batch record; not resuming into it (left as it was)"
    with out.open("rb") as f:
        n = 0
        while line := f.readline(MAX_OUTPUT_LINE):
            n += 1
            if not line.endswith(b"\n"):
                if len(line) == MAX_OUTPUT_LINE or not RECORD_START.startswith(line[: len(RECORD_START)]):
                    raise InputError(refuse.format(n))
                break  # torn by a kill: this record is written again
            try:
                rec = json.loads(line)
                ids.append(str(rec["id"]))
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, KeyError, TypeError):
                raise InputError(refuse.format(n)) from None
            errors += "error" in rec
            good += len(line)
    if not ids and good < out.stat().st_size and _read_meta(out) is None:
        raise InputError(f"{out}: no complete batch record and no {meta_path(out).name}; not resuming into it")
    return ids, errors, good


def done_records(out: Path) -> tuple[list[str], int]:
    """(ids of the complete records already in `out`, how many of them are errors). A torn last
    line (the writer was killed mid-line) is cut off the file, once the whole file has been
    checked to be a batch output. Lines are split on b"\\n" only: JSON leaves U+2028 and friends
    unescaped, and str.splitlines would split on them."""
    if not out.exists():
        return [], 0
    ids, errors, good = _read_output(out)
    if good < out.stat().st_size:
        with out.open("r+b") as f:
            f.truncate(good)
    return ids, errors


def _read_meta(out: Path) -> dict | None:
    try:
        meta = json.loads(meta_path(out).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(out: Path, meta: dict) -> None:
    """Written whole or not at all (a temporary file renamed over it)."""
    path = meta_path(out)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="ascii")
    os.replace(tmp, path)


def _check_meta(out: Path, meta: dict | None, expected: dict) -> None:
    """Refuse to resume an output made from another input or with other settings. An output
    without a sidecar (written before they existed) is checked by its ids alone."""
    if meta is None:
        return
    differ = []
    if meta.get("input") and expected["input"] and meta["input"] != expected["input"]:
        differ.append("another input")
    old, new = meta.get("settings") or {}, expected["settings"]
    if not isinstance(old, dict):
        old = {"settings": old}
    if keys := sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)):
        differ.append("other settings (" + ", ".join(keys) + ")")
    if differ:
        raise InputError(
            f"{out} does not continue this input: it was written from {' and '.join(differ)}; "
            "pass the same input and settings, or choose another --out"
        )


def _dumps(rec: dict) -> str:
    """One output line, always UTF-8: a lone surrogate in any string (an engine's message naming
    a file) is written as its JSON escape, which reads back as the same string."""
    line = json.dumps(rec, ensure_ascii=False)
    if _SURROGATE.search(line):
        line = _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", line)
    return line + "\n"


# --- the run -------------------------------------------------------------------------------


Engine = Callable[[Iterator[list[Record]]], Iterator[list[dict]]]
"""Chunks of records in, their output records out: one list per chunk, in chunk order."""


def run_batch(
    engine: Engine,
    source: Path,
    out: Path,
    console: "Console",
    *,
    spec: Input = Input(),
    batch_size: int = 32,
    resume: bool = False,
    settings: dict | None = None,
) -> BatchStats:
    """Reading, resuming and writing are the same for every engine; `engine` only turns
    chunks of `batch_size` records into their output records. `settings`: what else changes the
    output (the model, its draws), recorded beside it and checked by `resume`."""
    check_out(out, resume, source)
    total, fingerprint = scan_input(source, spec)
    settings = dict(settings or {})
    if not source.is_dir():
        settings.update(column=spec.column, id_column=spec.id_column)
    return write_batch(
        engine,
        records(source, spec),
        total,
        out,
        console,
        batch_size=batch_size,
        resume=resume,
        unit=spec.unit,
        settings=settings,
        fingerprint=fingerprint,
    )


def write_batch(
    engine: Engine,
    stream: Iterator[Record],
    total: int,
    out: Path,
    console: "Console",
    *,
    batch_size: int = 32,
    resume: bool = False,
    unit: str = "record",
    settings: dict | None = None,
    fingerprint: str | None = None,
) -> BatchStats:
    """`stream`'s `total` records through `engine` into `out`, each exactly once across kills and
    `resume`: complete lines already in `out` must be the stream's first records, and are skipped.
    The output is locked for the whole run; `OUT.meta.json` records `fingerprint` (of the input)
    and `settings`, and `resume` refuses an output whose record of them differs. Nothing in `out`
    changes before every check has passed."""
    stats = BatchStats(total=total)
    check_out(out, resume)
    out.parent.mkdir(parents=True, exist_ok=True)
    # O_NONBLOCK: a FIFO put there since the check cannot hang the run; it is refused below.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{out} is not a regular file: --out takes a file")
        os.set_blocking(fd, True)
        _lock(fd, out)
        size = os.fstat(fd).st_size
        if size and not resume:  # again, under the lock
            raise InputError(f"{out} already has records: pass --resume to continue it, or choose another --out")
        expected = {"input": fingerprint, "settings": json.loads(json.dumps(settings or {}))}
        done, stats.errors, good = _read_output(out) if size else ([], 0, 0)
        if size:
            _check_meta(out, _read_meta(out), expected)
        stats.resumed = len(done)
        for k, want in enumerate(done):  # the output must be this input's first records
            rec = next(stream, None)
            if rec is None or rec.id != want:
                got = "the end of the input" if rec is None else f"id {rec.id!r}"
                raise InputError(
                    f"{out} does not continue this input: its record {k + 1} has id {want!r}, the input has {got}"
                )
        if good < size:
            os.ftruncate(fd, good)  # the torn last line, cut only now that every check has passed
        _write_meta(out, {"format": 1, **expected, "pid": os.getpid()})
        seen = set(done)  # ids are kept for the duplicate count only; records are matched by position
        start = time.perf_counter()
        with (
            open(fd, "a", encoding="utf-8", closefd=False) as f,
            _Progress(console, total, stats.resumed, unit) as bar,
        ):
            for chunk, written in _checked(groups(stream, batch_size), engine):
                f.write("".join(_dumps({"id": rec.id, **_without_id(r)}) for rec, r in zip(chunk, written)))
                f.flush()
                os.fsync(f.fileno())
                stats.written += len(written)
                stats.errors += sum("error" in r for r in written)
                for rec in chunk:
                    stats.duplicates += rec.id in seen
                    seen.add(rec.id)
                bar.advance(len(written))
        stats.seconds = time.perf_counter() - start
    finally:
        os.close(fd)  # and the lock with it
    return stats


def _without_id(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k != "id"}


def _checked(chunks: Iterator[list[Record]], engine: Engine) -> Iterator[tuple[list[Record], list[dict]]]:
    """(chunk, its output records), refusing an engine answer that is not one record per input
    record in input order: a wrong line in OUT would be kept forever by --resume."""
    sent: deque[list[Record]] = deque()

    def remember(it: Iterator[list[Record]]) -> Iterator[list[Record]]:
        for chunk in it:
            sent.append(chunk)
            yield chunk

    for done in engine(remember(chunks)):
        chunk = sent.popleft()
        if [escape_id(str(r["id"])) for r in done] != [r.id for r in chunk]:
            raise RuntimeError("the batch engine returned records out of order; nothing more was written")
        yield chunk, done


def groups(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter), read lazily: records into
    chunks here, chunks into Ray windows in `ray_batch`."""
    group: list[T] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


class _Progress:
    """A rich progress bar (reports/s, ETA) on a terminal; silent otherwise. Shows counts only."""

    def __init__(self, console: "Console", total: int, completed: int, unit: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("working"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} " + unit.split()[-1] + "s/s"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task("batch", total=total, completed=completed, rate="-")
        self.start, self.base, self.done = time.perf_counter(), completed, completed

    def __enter__(self) -> "_Progress":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def advance(self, n: int) -> None:
        self.done += n
        rate = (self.done - self.base) / max(time.perf_counter() - self.start, 1e-9)
        self.progress.update(self.task, completed=self.done, rate=f"{rate:.1f}")


def summary_table(stats: BatchStats, out: Path, title: str = "batch", unit: str = "records"):
    from rich.table import Table

    table = Table(title=title, show_header=False)
    rate = stats.written / stats.seconds if stats.seconds else 0.0
    for name, value in [
        ("records in input", stats.total),
        ("already done (resumed)", stats.resumed),
        ("written this run", stats.written),
        ("errors (whole output)", stats.errors),
        ("duplicate ids", stats.duplicates),
        ("seconds", f"{stats.seconds:.1f}"),
        (f"{unit}/s", f"{rate:.2f}"),
        ("output", str(out)),
    ]:
        table.add_row(name, str(value))
    return table
