"""Options and output that several `petsum` commands share, defined once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from petsum.summarize.summarizer import Summarizer
from petsum.text.inputs import SOURCES
from shared.cli import console

F = TypeVar("F", bound=Callable[..., Any])


def consensus_option(fn: F) -> F:
    return click.option(
        "--consensus",
        type=click.IntRange(min=0),
        metavar="N",
        help="Draws per finding besides the greedy answer, the answer then the one that agrees most with the others, "
        "instead of the model's generate.consensus_samples (0: the greedy answer alone, several times faster).",
    )(fn)


def gamma_option(fn: F) -> F:
    return click.option(
        "--gamma", type=click.FloatRange(min=0), help="Normal-region samples per report (default: 1.0)."
    )(fn)


def source_option(fn: F) -> F:
    return click.option(
        "--source",
        type=click.Choice(list(SOURCES)),
        help="Research: what the model reads of a region: its whole findings (the default; no method learned to read "
        "them at 2M tokens, MR near 100), only the sentences that report something, or one finding at a time "
        "(what the recipe and the shipped model read).",
    )(fn)


def data_option(help: str) -> Callable[[F], F]:
    return click.option("--data", required=True, type=click.Path(dir_okay=False), help=help)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")(fn)


def predictions_option(fn: F) -> F:
    return click.option(
        "--out", "pred_path", type=click.Path(dir_okay=False), help="Write each prediction with its reference (JSONL)."
    )(fn)


def load_summarizer(
    model_dir: str | None, backend: str, device: str, batch_size: int | None = None, consensus: int | None = None
) -> Summarizer:
    """The model of `--model` (or the default), with a warning on stderr when `--device cuda` fell back to the CPU."""
    from deploy.backend import device_warning

    summarizer = Summarizer.load(model_dir, backend=backend, device=device, batch_size=batch_size, consensus=consensus)
    if note := device_warning(summarizer.models, device):
        click.echo(f"warning: {note}", err=True)
    return summarizer


def print_metrics(metrics: dict, as_json: bool, title: str) -> None:
    from petsum.evaluation.scoring import metrics_table

    if as_json:
        click.echo(json.dumps(metrics, ensure_ascii=False))
    else:
        console().print(metrics_table(metrics, title))
