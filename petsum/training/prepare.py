"""PET training data as the AS-ES core consumes it: region instances with γ normal samples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from petsum.adapter import PetAdapter
from petsum.data.instances import build_instances
from petsum.text.inputs import InputKind
from petsum.training.config import PetRunConfig as RunConfig
from shared.schema import Example

if TYPE_CHECKING:
    from rich.console import Console


def prepare(
    reports: list[Example], cfg: RunConfig, source: str = "region", target: str = "impression"
) -> tuple[list[Example], dict]:
    """Region instances (γ from `pet.gamma`) and the facts the run's manifest records;
    `source` (what the model reads of a region, `petsum.text.salient`) is one of them, so that
    inference feeds every checkpoint and export of the run the same input. `target="copy"`
    trains the copy warm-up instead of impressions (`petsum.data.instances.copy_instances`)."""
    instances, stats = build_instances(reports, cfg.pet.gamma, cfg.data.split_seed, source=source, target=target)
    if not instances:
        raise ValueError(
            "no training instances: every report is normal and gamma is 0"
            if target == "impression"
            else "no training instances: no region has any input"
        )
    facts = {
        "instances": "finding" if source == InputKind.FINDING else "region",
        "source": source,
        "instance_stats": stats,
    }
    return instances, facts if target == "impression" else {**facts, "target": target}


def preparer(
    source: str, target: str = "impression"
) -> Callable[[list[Example], RunConfig], tuple[list[Example], dict]]:
    """`prepare` for one `source` and `target`, as `shared.cli.run_training` calls it."""
    return lambda reports, cfg: prepare(reports, cfg, source, target)


def write_segments(
    reports: list[Example], cfg: RunConfig, out: Path, console: "Console", source: str = "region"
) -> dict:
    """Write the AS-ES rows of a run (`out/data/{role}_{train,val}.jsonl`) without training
    the final model(s); returns counts per file and the instance statistics."""
    from shared.pipeline import prepare_datasets

    instances, facts = prepare(reports, cfg, source)
    train_sets, val_sets, _ = prepare_datasets(instances, PetAdapter(), cfg, out, console)
    files = {
        f"{role}_{side}": len(rows)
        for side, sets in (("train", train_sets), ("val", val_sets))
        for role, rows in sets.items()
    }
    return {"out": str(out / "data"), "rows": files, **facts}


def torchrun_args(
    data: str,
    val_data: str | None,
    gamma: float | None,
    method: str | None,
    strategy: str | None,
    beta: float | None,
    out: str,
    config_path: str | None,
    sets: tuple[str, ...],
    source: str = "region",
    target: str = "impression",
) -> list[str]:
    """`petsum train`'s options, as the command line each torchrun process parses again."""
    args = ["--data", data, "--out", out, "--source", source, "--target", target]
    for flag, value in (
        ("--val", val_data),
        ("--gamma", gamma),
        ("--method", method),
        ("--strategy", strategy),
        ("--beta", beta),
        ("--config", config_path),
    ):
        if value is not None:
            args += [flag, str(value)]
    for override in sets:
        args += ["--set", override]
    return args
