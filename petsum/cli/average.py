"""`petsum average`: the mean of the weights of runs fine-tuned from one start."""

from __future__ import annotations

from pathlib import Path

import click

from petsum.summarize.folder import has_memory
from shared.average import average_checkpoints
from shared.cli import friendly_errors


@click.command(name="average")
@click.argument("models", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New folder for the averaged model.")
@friendly_errors
def command(models: tuple[str, ...], out: str) -> None:
    """Average the weights of checkpoints fine-tuned from one start (a model soup); the first gives the other files."""
    path = average_checkpoints([Path(m) for m in models], Path(out))
    click.echo(
        f"averaged {len(models)} checkpoints into {path}; "
        f"validate it before use (petsum evaluate --data val.csv --model {path})"
    )
    if has_memory(path):  # the first folder's files came along
        click.echo(
            f"note: {path} has the first folder's memory (petsum memory): it holds report text; "
            f"petsum memory --model {path} --drop takes it out",
            err=True,
        )
