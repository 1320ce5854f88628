"""`petsum memory`: store a house's training findings and what was written for them beside a model
(`memory.json`), so that they vote in consensus decoding; or take them out again."""

from __future__ import annotations

import math
from pathlib import Path

from petsum.data.pairs import load_pairs
from petsum.summarize.folder import DEFAULT_MODEL, input_kind, write_memory
from petsum.summarize.memory import build
from shared.modeling import read_manifest
from shared.textio import InputError


def _checked(model_dir: str) -> Path:
    model = Path(model_dir)
    if model.resolve() == DEFAULT_MODEL.resolve():
        raise InputError(
            f"{model_dir} is the shipped default, which holds no report text: copy it first (cp -r {model_dir} FOLDER)"
        )
    return model


def remember(data: str, model_dir: str, neighbours: int = 8, weight: float = 1.0) -> str:
    """Build the memory from `data` (the training split) into the folder; returns what was stored, in words."""
    model = _checked(model_dir)
    if not math.isfinite(weight):
        raise InputError(f"--weight must be a finite number, not {weight}")
    manifest = read_manifest(model)
    if manifest.get("method", "direct") != "direct":
        raise InputError(
            f"a memory votes in consensus decoding, which is for direct models; "
            f"{model_dir} is a {manifest['method']} run"
        )
    learned = build(load_pairs(data), input_kind(model, manifest), neighbours, weight)
    if not learned.findings:
        raise InputError(f"{data}: no report has an impression item aligned to its findings: nothing to remember")
    path = write_memory(model, learned.to_json())
    return (
        f"remembered {len(learned.findings)} findings and their targets in {path}; it votes only with consensus draws "
        f"(generate.consensus_samples, --consensus); the folder now holds report text"
    )


def forget(model_dir: str) -> str:
    """Remove every stored memory from the folder."""
    model = _checked(model_dir)
    write_memory(model, None)
    return f"no memory in {model} now"
