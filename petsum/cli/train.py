"""`petsum train --data CSV --out DIR`: train a model on report → impression pairs."""

from __future__ import annotations

import click

from petsum.cli.options import data_option, gamma_option, source_option
from petsum.training.run import train
from shared.cli import friendly_errors, training_options


@click.command(name="train")
@data_option("CSV with question (findings), answer (impression), qid.")
@click.option(
    "--val",
    "val_data",
    type=click.Path(dir_okay=False),
    help="Validation CSV (e.g. val.csv of `petsum split`); default: a seeded share of --data.",
)
@gamma_option
@source_option
@click.option(
    "--target",
    type=click.Choice(["impression", "copy"]),
    default="impression",
    show_default=True,
    help="What the model learns to write: a region's impression items, or (a warm-up to start impression "
    "training from) its own input.",
)
@training_options
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Training processes on this machine (DistributedDataParallel via torch's torchrun launcher).",
)
@friendly_errors
def command(
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
    nproc: int,
) -> None:
    """Train a model on report → impression pairs (one instance per anatomical region)."""
    train(data, val_data, gamma, source, target, method, strategy, beta, out, config_path, sets, nproc)
