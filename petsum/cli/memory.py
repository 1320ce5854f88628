"""`petsum memory`: training findings that vote in consensus decoding, stored beside a model."""

from __future__ import annotations

import click

from petsum.training.memory import forget, remember
from shared.cli import fail, friendly_errors


@click.command(name="memory")
@click.option(
    "--data",
    type=click.Path(dir_okay=False),
    help="CSV of training reports (question, answer, qid): the split the model was trained on.",
)
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="Model folder that gets the memory (its memory.json; not the shipped default: copy it first).",
)
@click.option(
    "--neighbours",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Nearest training findings that vote for each finding.",
)
@click.option(
    "--weight",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Their votes together, against all the other candidates' together (the greedy answer and the draws).",
)
@click.option("--drop", is_flag=True, help="Take the memory out of the model instead (before sharing the folder).")
@friendly_errors
def command(data: str | None, model_dir: str, neighbours: int, weight: float, drop: bool) -> None:
    """Store the training findings and what was written for them beside the model: in consensus decoding,
    those nearest a finding vote for the answer worded as the house words it. The folder then holds report
    text: it is patient data."""
    if not drop and not data:
        fail("--data is required (or --drop)")
    click.echo(forget(model_dir) if drop else remember(data, model_dir, neighbours, weight))
