"""`petsum summarize REPORT`: one report's impression."""

from __future__ import annotations

import json

import click

from petsum.cli.options import consensus_option, load_summarizer
from petsum.summarize.summarizer import read_report_file
from shared.cli import fail, friendly_errors, serving_options


@click.command(name="summarize")
@click.argument("report", type=click.Path(allow_dash=True, dir_okay=False))
@serving_options
@click.option("--json", "as_json", is_flag=True, help="Print the impression with its regions and segments as JSON.")
@consensus_option
@friendly_errors
def command(
    report: str, model_dir: str | None, backend: str, device: str, as_json: bool, consensus: int | None
) -> None:
    """Print the impression for one report's findings (REPORT is a file, or - for stdin)."""
    name, text = read_report_file(report)
    summarizer = load_summarizer(model_dir, backend, device, consensus=consensus)
    summary = summarizer.summarize([text])[0]
    if isinstance(summary, Exception):
        fail(f"{name}: {summary}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    engine = {"backend": summarizer.models.backend, "providers": summarizer.models.providers}
    click.echo(
        json.dumps(summary.to_json(str(summarizer.path), engine), ensure_ascii=False) if as_json else summary.impression
    )
