"""`petsum train` and `petsum segment`: a config built from the flags, then the shared AS-ES recipe
over PET instances, in this process or in several (torchrun)."""

from __future__ import annotations

from pathlib import Path

from petsum.adapter import PetAdapter
from petsum.data.pairs import load_pairs
from petsum.training.config import PetRunConfig
from petsum.training.prepare import preparer, torchrun_args, write_segments
from shared.cli import build_config, console, launch_training, run_training
from shared.distributed import launched_by_torchrun
from shared.textio import InputError


def train(
    data: str,
    val_data: str | None,
    gamma: float | None,
    source: str,
    target: str,
    method: str | None,
    strategy: str | None,
    beta: float | None,
    out: str,
    config_path: str | None,
    sets: tuple[str, ...],
    nproc: int = 1,
) -> None:
    """Train on report → impression pairs; with `nproc` > 1, in that many torchrun processes."""
    flags = {"pet.gamma": gamma}
    reports, val = (
        load_pairs(data),
        load_pairs(val_data) if val_data else None,
    )  # bad input fails here, before any spawn
    if nproc > 1:
        if launched_by_torchrun():
            raise InputError("--nproc starts its own processes; under torchrun, use torchrun's --nproc-per-node")
        named = {"train.method": method, "segment.strategy": strategy, "segment.beta": beta, **flags}
        build_config(config_path, sets, named, PetRunConfig)  # a bad config fails here, before any spawn
        args = torchrun_args(data, val_data, gamma, method, strategy, beta, out, config_path, sets, source, target)
        launch_training("petsum.cli", nproc, ["train", *args])
        return
    prepare = preparer(source, target)
    adapter = PetAdapter()
    run_training(reports, adapter, out, method, strategy, beta, config_path, sets, flags, prepare, val, PetRunConfig)


def segment(
    data: str,
    gamma: float | None,
    source: str,
    method: str | None,
    strategy: str | None,
    beta: float | None,
    out: str,
    config_path: str | None,
    sets: tuple[str, ...],
) -> dict:
    """Write a run's AS-ES rows to `out/data` without training; returns their counts."""
    flags = {"train.method": method, "segment.strategy": strategy, "segment.beta": beta, "pet.gamma": gamma}
    cfg = build_config(config_path, sets, flags, PetRunConfig)
    return write_segments(load_pairs(data), cfg, Path(out), console(), source)
