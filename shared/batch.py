"""The batch engine: many texts in, one JSONL record per text out, exactly once.

What a task does with each chunk is its engine (`petsum.batch.local`, `mwp.solve`); reading,
resuming and writing are here, the same for every task. Records stream from a folder of `.txt`
files, a `.csv` or a `.jsonl` and are summarized in
chunks; each chunk's lines are written in input order, flushed and fsynced before the next
chunk starts. `resume` trusts only complete lines of an existing output, checks that they are
the first records of this input, and continues after them, so a run killed at any moment (even
`kill -9`) and resumed writes every record exactly once.
"""

from __future__ import annotations

import csv
import json
import os
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


@dataclass(frozen=True)
class Record:
    id: str
    text: str | None = None
    error: str | None = None
    extra: Any = None  # what the task's engine needs beside the text (mwp: the record with its gold answer)


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
        files = list(_txt_files(path))
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
        return sum(1 for _ in _txt_files(path))
    return sum(1 for _ in records(path, spec))


def _txt_files(folder: Path) -> Iterator[Path]:
    return iter(sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt" and p.is_file()))


def _folder(files: list[Path], spec: Input) -> Iterator[Record]:
    for f in files:
        try:
            # One byte over the limit is enough to refuse an oversized file without reading it all.
            yield Record(f.stem, text=spec.read_file(read_bytes(f, spec.max_chars + 1), f.name, spec.max_chars))
        except InputError as e:
            yield Record(f.stem, error=str(e))


def _csv(path: Path, spec: Input) -> Iterator[Record]:
    column, id_column = spec.column, spec.id_column
    csv.field_size_limit(4 * spec.max_chars)  # a huge field becomes one error record, not a stopped run
    with open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as e:
            raise InputError(f"{path}: unreadable CSV header ({e})") from None
        if not header or column not in header:
            raise InputError(f"{path}: no column {column!r} (columns: {describe_columns(header or [])}); pass --column")
        text_at = header.index(column)
        id_at = header.index(id_column) if id_column in header else None
        n = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:  # the reader cannot go on past a broken quote
                raise InputError(f"{path}: malformed CSV after record {n}: {e}") from None
            except UnicodeDecodeError:
                raise InputError(f"{path}: not valid {f.encoding} after record {n}") from None
            if not row:  # a blank line is no record
                continue
            n += 1
            rid = row[id_at].strip() if id_at is not None and id_at < len(row) and row[id_at].strip() else str(n)
            if len(row) != len(header):
                yield Record(
                    rid, error=f"record {n} has {len(row)} fields, the header {len(header)} (truncated or broken row)"
                )
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
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield Record(str(n), error=f"line {n} is not valid JSON ({e.msg})")
                continue
            if not isinstance(row, dict):
                yield Record(str(n), error=f"line {n} is not a JSON object")
                continue
            rid = row.get(id_column, row.get("id"))
            rid = str(rid) if rid not in (None, "") else str(n)
            text = row.get(column)
            if not isinstance(text, str):
                yield Record(rid, error=f"line {n} has no text field {column!r}")
            else:
                yield Record(rid, text=text)


# --- the output file ---------------------------------------------------------------------


def done_records(out: Path) -> tuple[list[str], int]:
    """(ids of the complete records already in `out`, how many of them are errors). A torn last
    line (the writer was killed mid-line) is cut off the file. Lines are split on b"\\n" only:
    JSON leaves U+2028 and friends unescaped, and str.splitlines would split on them."""
    if not out.exists():
        return [], 0
    ids, errors, good = [], 0, 0
    with out.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                break  # torn by a kill: this record is written again
            try:
                rec = json.loads(line)
                ids.append(str(rec["id"]))
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                raise InputError(f"{out}: line {n} is not a batch record; not resuming into it") from None
            errors += "error" in rec
            good += len(line)
    if good < out.stat().st_size:
        with out.open("r+b") as f:
            f.truncate(good)
    return ids, errors


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
) -> BatchStats:
    """Reading, resuming and writing are the same for every engine; `engine` only turns
    chunks of `batch_size` records into their output records."""
    total = count_records(source, spec)
    return write_batch(
        engine, records(source, spec), total, out, console, batch_size=batch_size, resume=resume, unit=spec.unit
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
) -> BatchStats:
    """`stream`'s `total` records through `engine` into `out`, each exactly once across kills and
    `resume`: complete lines already in `out` must be the stream's first records, and are skipped."""
    stats = BatchStats(total=total)
    if out.exists() and out.stat().st_size and not resume:
        raise InputError(f"{out} already has records: pass --resume to continue it, or choose another --out")
    done, stats.errors = done_records(out) if resume else ([], 0)
    stats.resumed = len(done)
    for k, expected in enumerate(done):  # the output must be this input's first records
        rec = next(stream, None)
        if rec is None or rec.id != expected:
            got = "the end of the input" if rec is None else f"id {rec.id!r}"
            raise InputError(
                f"{out} does not continue this input: its record {k + 1} has id {expected!r}, the input has {got}"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    seen = set(done)  # ids are kept for the duplicate count only; records are matched by position
    start = time.perf_counter()
    with out.open("a", encoding="utf-8") as f, _Progress(console, stats.total, stats.resumed, unit) as bar:
        for _chunk, done in _checked(groups(stream, batch_size), engine):
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in done))
            f.flush()
            os.fsync(f.fileno())
            stats.written += len(done)
            stats.errors += sum("error" in r for r in done)
            for r in done:
                stats.duplicates += r["id"] in seen
                seen.add(r["id"])
            bar.advance(len(done))
    stats.seconds = time.perf_counter() - start
    return stats


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
        if [r["id"] for r in done] != [r.id for r in chunk]:
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
