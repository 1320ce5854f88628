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


_BOMS = [(codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")]


def detect_encoding(data: bytes, name: str = "input", complete: bool = True) -> str:
    """BOM, then strict UTF-8, then strict GB18030 (a superset of GBK/GB2312), then
    charset-normalizer; anything else is an error rather than mojibake. With `complete=False`
    `data` is the head of a longer file, and a character cut at its end is no evidence."""
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{name} looks like a binary file, not text")
    for bom, enc in _BOMS:
        if data.startswith(bom):
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


def decode_bytes(data: bytes, name: str = "input") -> str:
    enc = detect_encoding(data, name)
    try:
        return data.decode(enc)
    except UnicodeDecodeError:  # charset-normalizer's guess can still fail on the whole text
        raise InputError(f"{name}: cannot decode as {enc}") from None


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


def open_text(path: str | Path) -> io.TextIOWrapper:
    """A text stream over a file of any size; the encoding is detected on its head."""
    head = read_bytes(path, HEAD_BYTES)
    enc = detect_encoding(head, str(path), complete=len(head) < HEAD_BYTES)
    return io.TextIOWrapper(Path(path).open("rb"), encoding=enc, errors="strict", newline="")


def describe_columns(header: list[str]) -> str:
    """Column names for an error message, unless they look like report text (a CSV without a
    header row): messages must never quote file content."""
    if not header:
        return "none"
    if any(len(h) > 24 or re.search(r"[，。；：]|[\u3400-\u9fff]{8,}", h) for h in header):
        return f"{len(header)}, the first row looks like data, not a header"
    return ", ".join(header)


def read_csv_rows(path: str | Path, required: list[str]) -> Iterator[dict[str, str]]:
    with open_text(path) as f:
        reader = csv.DictReader(f)
        try:
            names = reader.fieldnames or []
            missing = [c for c in required if c not in names]
            if missing:
                raise InputError(f"{path}: no column {', '.join(missing)} (columns: {describe_columns(list(names))})")
            yield from reader
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
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}: line {n} is not valid JSON ({e.msg})") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}: line {n} is not a JSON object")
                yield row
        except UnicodeDecodeError:
            raise InputError(f"{path}: not valid {f.encoding}") from None
