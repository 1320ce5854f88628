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

import fcntl
import hashlib
import json
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from shared.records import SURROGATE, Input, Record, escape_id, file_kind, records, scan_input
from shared.textio import InputError

if TYPE_CHECKING:
    from rich.console import Console

EXIT_PARTIAL = 3
T = TypeVar("T")


@dataclass
class BatchStats:
    total: int = 0  # records in the input
    resumed: int = 0  # records already in the output when this run started
    written: int = 0  # records this run wrote
    errors: int = 0  # error records in the whole output
    duplicates: int = 0  # records this run wrote whose id an earlier record of the output has
    seconds: float = 0.0


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
            f"{out} is not a regular file ({file_kind(st.st_mode)}): "
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
    if SURROGATE.search(line):
        line = SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", line)
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
    spec: Input | None = None,
    batch_size: int = 32,
    resume: bool = False,
    settings: dict | None = None,
) -> BatchStats:
    """Reading, resuming and writing are the same for every engine; `engine` only turns
    chunks of `batch_size` records into their output records. `settings`: what else changes the
    output (the model, its draws), recorded beside it and checked by `resume`."""
    spec = spec or Input()
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
