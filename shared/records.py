"""A batch's input: records read in order from a folder of `.txt` files, a `.csv` or a `.jsonl`.

Fatal problems (no such file, a missing column, an undecodable file) raise `InputError`; a bad
record (an unreadable file, a field no report fills, a broken line) becomes an error record and
reading goes on, so one record never stops a batch. Ids that cannot be written as text are
escaped losslessly (`escape_id`), the same way every time, so `--resume` finds them again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.textio import InputError, describe_columns, open_text, read_bytes


def decode_record(data: bytes, name: str, max_bytes: int, unit: str = "record") -> str:
    """One text file's content, refusing sizes no `unit` (a record, a PET/CT report) has."""
    from shared.textio import decode_bytes

    if len(data) > max_bytes:
        raise InputError(
            f"{name} is {len(data) / 1e6:.1f} MB; a {unit} is a few KB (limit {max_bytes // 1_000_000} MB)"
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


SURROGATE = re.compile("[\ud800-\udfff]")


def escape_id(rid: str) -> str:
    """An id UTF-8 can write, losslessly and always the same way (so `resume` matches it): an id
    that is valid Unicode is kept as it is; one with lone surrogates (a file name that is not
    UTF-8, which Python reads as U+DC80-U+DCFF, or a `"\\ud800"` escape in JSONL) has each
    backslash doubled, each U+DC80-U+DCFF written `\\xNN` (the file name's byte NN) and any other
    surrogate `\\uXXXX`."""
    if not SURROGATE.search(rid):
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


def scan_input(path: Path, spec: Input = Input()) -> tuple[int, str]:
    """(how many records `records` yields, a fingerprint of them): a SHA-256 over each record's
    id, text and whether it is an error, as read. It does not depend on where the input lies or
    how it is encoded, and changes with any record."""
    n = 0

    def counted() -> Iterator[Record]:
        nonlocal n
        for rec in records(path, spec):
            n += 1
            yield rec

    digest = fingerprint(counted())
    return n, digest


def fingerprint(stream: Iterable[Record]) -> str:
    """A SHA-256 over each record's id, text and whether it is an error: what `--resume` must find
    again, whatever file or folder the records came from."""
    h = hashlib.sha256()
    for rec in stream:
        h.update(json.dumps([rec.id, rec.text, rec.error is not None]).encode("ascii") + b"\n")
    return h.hexdigest()


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
        raise InputError(f"{name} is not a regular file ({file_kind(st.st_mode)}); it was not opened")


def file_kind(mode: int) -> str:
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
            elif SURROGATE.search(text):
                yield Record(
                    rid, error=f"line {n}: its text holds a lone surrogate escape (\\ud800-\\udfff), not Unicode"
                )
            else:
                yield Record(rid, text=text)


# --- the output file ---------------------------------------------------------------------
