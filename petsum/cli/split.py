"""`petsum split`: the fixed 80/10/10 train/val/test split of a report collection."""

from __future__ import annotations

import json

import click

from petsum.data.split import split_csv
from shared.cli import friendly_errors


@click.command(name="split")
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="CSV of reports with an id column.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for train.csv, val.csv, test.csv and split.json.",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--id-column", default="qid", show_default=True)
@friendly_errors
def command(data: str, out: str, seed: int, id_column: str) -> None:
    """Split reports 80/10/10 into train/val/test by a seeded hash of their id."""
    click.echo(json.dumps(split_csv(data, out, seed, id_column)))
