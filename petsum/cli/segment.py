"""`petsum segment`: write a run's AS-ES rows for inspection, without training."""

from __future__ import annotations

import json

import click

from petsum.cli.options import data_option, gamma_option, source_option
from petsum.training.run import segment
from shared.cli import friendly_errors, training_options


@click.command(name="segment")
@data_option("CSV with question (findings), answer (impression), qid.")
@gamma_option
@source_option
@training_options
@friendly_errors
def command(
    data: str,
    gamma: float | None,
    source: str | None,
    method: str | None,
    strategy: str | None,
    beta: float | None,
    out: str,
    config_path: str | None,
    sets: tuple[str, ...],
) -> None:
    """Write the region-level AS-ES datasets to OUT/data for inspection (no final training)."""
    counts = segment(data, gamma, source or "region", method, strategy, beta, out, config_path, sets)
    click.echo(json.dumps(counts, ensure_ascii=False))
