"""`petsum floor`: score a floor every trained model must beat."""

from __future__ import annotations

import click

from petsum.cli.options import json_option, predictions_option, print_metrics
from petsum.evaluation.floors import score_floor
from shared.cli import friendly_errors


@click.command(name="floor")
@click.argument("kind", type=click.Choice(["retrieval", "extractive"]))
@click.option(
    "--data", required=True, type=click.Path(dir_okay=False), help="CSV of reports to score (question, answer)."
)
@click.option("--train", "train_data", type=click.Path(dir_okay=False), help="Training CSV that retrieval copies from.")
@predictions_option
@json_option
@friendly_errors
def command(kind: str, data: str, train_data: str | None, pred_path: str | None, as_json: bool) -> None:
    """Score a floor: nearest-report retrieval (TF-IDF, char n-grams) or rule-based extraction."""
    print_metrics(score_floor(kind, data, train_data, pred_path), as_json, f"floor: {kind}")
