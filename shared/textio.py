"""Reading user files: encoding detection (hospital exports are often GBK) and tabular inputs."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path


class InputError(ValueError):
    """Input that cannot be used; the message is one line and never quotes file content."""


# UTF-32 first: its little-endian BOM (FF FE 00 00) starts with UTF-16's (FF FE).
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def detect_encoding(data: bytes, name: str = "input", complete: bool = True, nul_lines: bool = False) -> str:
    """BOM (UTF-32 before UTF-16), then strict UTF-8, then strict GB18030 (a superset of
    GBK/GB2312), then charset-normalizer; anything else is an error rather than mojibake. Text
    that still holds NUL characters once decoded is refused: it is binary, or a wrong guess.
    With `complete=False` `data` is the head of a longer file, and a character cut at its end is
    no evidence.

    With `nul_lines=True` the caller skips lines holding a NUL itself (a training file's binary
    rows): they are left out of the judgement, unless more than half of the non-blank lines hold
    one (UTF-16 or UTF-32 without a byte order mark, a binary file), which is refused as before."""
    wide = data.startswith(_WIDE_BOMS)
    if nul_lines and not wide and b"\x00" in data:
        bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
        lines = [line for line in data[len(bom) :].split(b"\n") if line.strip()]
        if _mostly_nul(lines, b"\x00"):
            raise InputError(f"{name} looks like a binary file, not text")
        data = bom + b"\n".join(line for line in lines if b"\x00" not in line)
    if b"\x00" in data and not wide:
        raise InputError(f"{name} looks like a binary file, not text")
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                text = codecs.getincrementaldecoder(enc)().decode(data, final=complete)
            except UnicodeDecodeError:
                raise InputError(f"{name}: cannot decode as {enc} (its byte order mark says {enc})") from None
            if nul_lines and not _mostly_nul([t for t in text.split("\n") if t.strip()], "\x00"):
                return enc
            check_no_nul(text, name)
            return enc
    for enc in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(enc)().decode(data, final=complete)
            return enc
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise InputError(f"{name}: cannot detect the text encoding (tried UTF-8, GB18030 and detection)")
    return best.encoding


def _mostly_nul(lines: list, nul: bytes | str) -> bool:
    return 2 * sum(nul in line for line in lines) > len(lines)


def check_no_nul(text: str, name: str) -> None:
    """Refuse decoded text with NUL characters (UTF-32 read as UTF-16, a binary file)."""
    if "\x00" in text:
        raise InputError(f"{name} holds NUL characters once decoded: a binary file, not text")


def decode_bytes(data: bytes, name: str = "input") -> str:
    enc = detect_encoding(data, name)
    try:
        text = data.decode(enc)
    except UnicodeDecodeError:  # charset-normalizer's guess can still fail on the whole text
        raise InputError(f"{name}: cannot decode as {enc}") from None
    check_no_nul(text, name)
    return text


def read_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """A file's bytes (at most `limit` of them), with one-line errors for the usual mistakes."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            return f.read(-1 if limit is None else limit)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p} is a folder, not a file") from None
    except OSError as e:
        raise InputError(f"cannot read {p}: {e.strerror}") from None


def read_text(path: str | Path) -> str:
    return decode_bytes(read_bytes(path), str(path))


HEAD_BYTES = 1 << 20  # a streamed file's encoding is judged on its first MiB


def open_text(path: str | Path, nul_lines: bool = False) -> io.TextIOWrapper:
    """A text stream over a file of any size; the encoding is detected on its head. With
    `nul_lines=True` the caller skips lines holding a NUL (see `detect_encoding`)."""
    head = read_bytes(path, HEAD_BYTES)
    enc = detect_encoding(head, str(path), complete=len(head) < HEAD_BYTES, nul_lines=nul_lines)
    return io.TextIOWrapper(Path(path).open("rb"), encoding=enc, errors="strict", newline="")


_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,40}")


def _plausible_column(name: str) -> bool:
    """A short ASCII identifier without a run of 3 digits (an id, a date, an age): a column name,
    not a value."""
    return len(name) <= 41 and bool(_COLUMN_NAME.fullmatch(name)) and not re.search(r"\d{3}", name)


def describe_columns(header: list[str]) -> str:
    """Column names for an error message, only when every one is a plausible column name: a CSV
    without a header row has data (a patient id, a name, report text) there, and messages never
    quote file content. Otherwise only how many columns there are."""
    if not header:
        return "none"
    if all(_plausible_column(h.strip()) for h in header if h.strip()):
        return ", ".join(h.strip() for h in header)
    return f"{len(header)}, not shown: the first row looks like data, not column names"


def read_csv_rows(path: str | Path, required: list[str], nul_rows: bool = False) -> Iterator[dict[str, str]]:
    """The rows of a CSV with a header holding the `required` columns. A row holding a NUL
    character stops the read with an InputError, or with `nul_rows=True` is yielded as it is, for
    the caller to skip (the training reader counts such rows as binary)."""
    with open_text(path, nul_lines=nul_rows) as f:
        reader = csv.DictReader(f)
        try:
            names = reader.fieldnames or []
            missing = [c for c in required if c not in names]
            if missing:
                raise InputError(f"{path}: no column {', '.join(missing)} (columns: {describe_columns(list(names))})")
            for row in reader:
                if not nul_rows and any("\x00" in v for v in row.values() if isinstance(v, str)):
                    raise InputError(f"{path}: line {reader.line_num} holds a NUL character (not text)")
                yield row
        except csv.Error as e:
            raise InputError(f"{path}: malformed CSV at line {reader.line_num}: {e}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not valid {f.encoding} after line {reader.line_num}") from None


def read_jsonl_rows(path: str | Path) -> Iterator[dict]:
    with open_text(path) as f:
        try:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if "\x00" in line:
                    raise InputError(f"{path}: line {n} holds a NUL character (not text)")
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}: line {n} is not valid JSON ({e.msg})") from None
                except RecursionError:
                    raise InputError(f"{path}: line {n} is nested too deeply to be a record") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}: line {n} is not a JSON object")
                yield row
        except UnicodeDecodeError:
            raise InputError(f"{path}: not valid {f.encoding}") from None
