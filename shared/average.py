"""Average the weights of checkpoints of one architecture (a "model soup").

Runs fine-tuned from the same weights stay in one basin of the loss, and the mean of their
weights is often better than either run: petsum's default model is the mean of two continuations
of one checkpoint, trained side by side on one core each (its card has the numbers). Checkpoints
from different starts do not average into a working model; nothing here can tell, so the caller
decides which to average and validates the result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from shared.modeling import CHECKPOINT_FACTS, MANIFEST, is_checkpoint, read_manifest

WEIGHTS = "model.safetensors"


def average_checkpoints(folders: list[Path], out: Path) -> Path:
    """Write `out`: the first folder's files (config, tokenizer, ases.json) with `model.safetensors`
    the uniform mean of all the folders' weights, computed in float32 and stored in each
    tensor's own dtype; ases.json names the folders averaged instead of one run's step and loss. Raises
    ValueError for fewer than two folders, a folder that is no
    checkpoint or named twice, weights that are unreadable or differ in names or shapes, or an `out` that exists."""
    import torch
    from safetensors.torch import save_file

    if len(folders) < 2:
        raise ValueError("average needs two or more checkpoints")
    for f in folders:
        if not is_checkpoint(f):
            raise ValueError(f"{f}: not a checkpoint folder (needs config.json and {WEIGHTS})")
    if len({f.resolve() for f in folders}) < len(folders):
        raise ValueError("a checkpoint is named twice: each would count once more in the mean")
    if out.exists():
        raise ValueError(f"{out} exists: choose a new folder")
    first = _weights(folders[0])
    sums = {k: v.to(torch.float32).clone() for k, v in first.items()}
    for f in folders[1:]:
        weights = _weights(f)
        if weights.keys() != sums.keys():
            raise ValueError(f"{f}: its weights are named differently from {folders[0]}'s: not the same architecture")
        for k, v in weights.items():
            if v.shape != sums[k].shape:
                raise ValueError(
                    f"{f}: {k} is {tuple(v.shape)}, {tuple(sums[k].shape)} in {folders[0]}: not the same architecture"
                )
            sums[k] += v.to(torch.float32)
    mean = {k: (s / len(folders)).to(first[k].dtype).contiguous() for k, s in sums.items()}
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(folders[0], tmp, ignore=shutil.ignore_patterns(WEIGHTS, "optimizer.pt", "trainer_state.json"))
        save_file(mean, str(tmp / WEIGHTS), metadata={"format": "pt"})
        manifest = read_manifest(folders[0])
        if manifest:  # a run's step and validation loss describe one checkpoint, not the mean
            kept = {k: v for k, v in manifest.items() if k not in CHECKPOINT_FACTS}
            kept.update(checkpoint="average", averaged=[str(f) for f in folders])
            (tmp / MANIFEST).write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # no half-written folder stays behind
        raise
    return out


def _weights(folder: Path) -> dict:
    """A checkpoint's tensors; a truncated or corrupt file is a ValueError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(folder / WEIGHTS))
    except SafetensorError as e:
        raise ValueError(f"{folder / WEIGHTS}: not readable as safetensors ({e})") from e
