"""`petsum order`: learn the house's item order, closing and opening lines into a model folder."""

from __future__ import annotations

import click

from petsum.training.house_style import fit_house_style
from shared.cli import friendly_errors


@click.command(name="order")
@click.option(
    "--data",
    required=True,
    type=click.Path(dir_okay=False),
    help="CSV of reports whose impressions (answer) show the order to learn: the training split.",
)
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="Model or run folder that gets the fits (its fitted.json).",
)
@click.option(
    "--kind",
    type=click.Choice(["pointer", "pairs"]),
    default="pointer",
    show_default=True,
    help="pointer: a network that reads all the list's items at once; pairs: a score of which item follows which.",
)
@click.option(
    "--grams",
    type=click.IntRange(min=1),
    default=3000,
    show_default=True,
    help="Most frequent character uni/bigrams used as features.",
)
@click.option(
    "--rank",
    type=click.IntRange(min=0),
    default=32,
    show_default=True,
    help="pairs: width of the pair term (which item follows which); 0: a score per item only.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Passes over the impressions  [default: 10 for pointer, 8 for pairs]",
)
@friendly_errors
def command(data: str, model_dir: str, kind: str, grams: int, rank: int, epochs: int | None) -> None:
    """Learn how these impressions are written: their item order, closing line and comparison opening line;
    the model's assembler uses them."""
    click.echo(fit_house_style(data, model_dir, kind, grams, rank, epochs, log=lambda line: click.echo(line, err=True)))
