"""A petsum model folder: where the shipped default lives, what its manifest says the model reads, and
the files beside the manifest that hold what was fitted after training.

    ases.json     the manifest (`shared.modeling`): method, roles, source, decoding settings
    fitted.json   the item order, closing line and opening line (`petsum order`)
    memory.json   training findings and their targets for consensus votes (`petsum memory`):
                  report text word for word, so a folder with one is patient data

Each has its own file so that refitting rewrites only that file and the memory can never ride
along inside the manifest. Folders written before this layout keep these entries inside
`ases.json`; they still load, and the next `petsum order` or `petsum memory` moves them out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from petsum.text.inputs import InputKind
from shared.modeling import MANIFEST, TASK_FILES, read_manifest
from shared.textio import InputError

DEFAULT_MODEL = Path(__file__).parents[1] / "models" / "default"
FITTED, MEMORY = TASK_FILES  # fitted.json, memory.json
FITTED_KEYS = ("item_order", "closing_line", "opening_line")
MEMORY_KEY = "memory"


T = TypeVar("T")


def model_path(model_dir: str | Path | None) -> Path:
    """The folder to load: `model_dir`, or the shipped default when None."""
    path = Path(model_dir) if model_dir else DEFAULT_MODEL
    if not path.exists():
        if model_dir:
            raise InputError(f"{path}: no such folder")
        raise InputError(f"the default model is missing from this install ({path}): reinstall petsum, or pass --model")
    return path


def input_kind(model: Path, manifest: dict) -> InputKind:
    """What the model reads, as its run recorded it; `region` for runs before `--source` existed
    and for plain Hugging Face folders."""
    source = manifest.get("source", InputKind.REGION)
    try:
        return InputKind(source)
    except ValueError:
        kinds = ", ".join(k.value for k in InputKind)
        raise InputError(f"{model}: ases.json names an unknown source {source!r} (one of {kinds})") from None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not readable as JSON ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a JSON object")
    return data


def fitted_entries(model: Path, manifest: dict | None = None) -> dict:
    """The item order, closing and opening line: from `fitted.json`, else (older folders) from
    `ases.json` (`manifest`, where the caller has read it)."""
    if (model / FITTED).is_file():
        return _read_json(model / FITTED)
    return {k: v for k, v in (read_manifest(model) if manifest is None else manifest).items() if k in FITTED_KEYS}


def memory_entry(model: Path, manifest: dict | None = None) -> dict | None:
    """The stored memory: `memory.json`, else (older folders) the manifest's `memory` entry."""
    if (model / MEMORY).is_file():
        return _read_json(model / MEMORY)
    return (read_manifest(model) if manifest is None else manifest).get(MEMORY_KEY)


def learned(model: Path, key: str, data: Any, read: Callable[[Any], T]) -> T | None:
    """`data` (a stored fit, or None: the assembler's rule, no opening line, no memory) as `read` makes it."""
    if data is None:
        return None
    try:
        return read(data)
    except InputError as e:  # a message of its own, which quotes nothing stored (e.g. a memory too large)
        raise InputError(f"{model}: {key}: {e}") from None
    except (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
    ) as e:  # a bad base64 table is a ValueError too
        again = "petsum memory" if key == MEMORY_KEY else "petsum order"
        raise InputError(f"{model}: an unreadable {key} ({type(e).__name__}); rewrite it with {again}") from None


def _write_json(path: Path, data: dict) -> None:
    """Through a temporary file, so that a failed write leaves the old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _without_legacy(model: Path, keys: tuple[str, ...]) -> None:
    """Take entries that now have their own file out of an older folder's manifest."""
    manifest = read_manifest(model)
    if any(k in manifest for k in keys):
        _write_json(model / MANIFEST, {k: v for k, v in manifest.items() if k not in keys})


def write_fitted(model: Path, entries: dict) -> Path:
    """Write `fitted.json` (an entry of None is left out)."""
    _write_json(model / FITTED, {k: v for k, v in entries.items() if v is not None})
    _without_legacy(model, FITTED_KEYS)
    return model / FITTED


def write_memory(model: Path, data: dict | None) -> Path:
    """Write `memory.json`, or with None remove every stored memory."""
    if data is None:
        (model / MEMORY).unlink(missing_ok=True)
    else:
        _write_json(model / MEMORY, data)
    _without_legacy(model, (MEMORY_KEY,))
    return model / MEMORY


def has_memory(model: Path) -> bool:
    return (model / MEMORY).is_file() or MEMORY_KEY in read_manifest(model)


METRICS = "metrics.json"  # a model folder's headline test metrics, written beside its card


def headline_metrics(model: Path) -> dict | None:
    """The headline metrics a model folder states (`metrics.json`: the card's evaluation), or None
    for a folder without them (`petsum train` does not measure a held-out split on its own)."""
    import json

    path = model / METRICS
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
