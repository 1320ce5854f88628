"""`petsum`: train, and summarize PET/CT reports. Commands parse, validate, and call one function."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from shared.cli import fail, friendly_errors, run_training, training_options

DEFAULT_MODEL = Path(__file__).parent / "models" / "default"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Summarize Chinese PET/CT findings into an impression with AS-ES trained models."""


@main.command()
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="CSV with question (findings), answer (impression), qid.")
@training_options
@friendly_errors
def train(data: str, method: str | None, strategy: str | None, beta: float | None, out: str, config_path: str | None, sets: tuple[str, ...]) -> None:
    """Train a model on report → impression pairs."""
    from petsum.adapter import PetAdapter
    from petsum.data import load_pairs

    run_training(load_pairs(data), PetAdapter(), out, method, strategy, beta, config_path, sets)


@main.command()
@click.argument("report", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Run or model folder (default: the shipped model).")
@click.option("--json", "as_json", is_flag=True, help="Print the impression with its segments as JSON.")
@friendly_errors
def summarize(report: str, model_dir: str | None, as_json: bool) -> None:
    """Print the impression for one findings text (REPORT is a file, or - for stdin)."""
    from petsum.adapter import PetAdapter
    from petsum.data import clean_report
    from shared.generate import generate, result_text
    from shared.pipeline import load_run
    from shared.textio import decode_bytes, read_text

    text = clean_report(decode_bytes(sys.stdin.buffer.read(), "stdin") if report == "-" else read_text(report))
    if not text:
        fail(f"{report}: the report is empty")
    path = Path(model_dir) if model_dir else DEFAULT_MODEL
    if not path.exists():
        fail("no default model is shipped yet: pass --model with a folder written by `petsum train`")
    adapter = PetAdapter()
    models = load_run(path)
    result = generate(models, [text], adapter, models.generate)[0]
    impression = result_text(adapter, result)
    if as_json:
        segments = [{"tag": s.tag, "text": s.text} for s in result.segments]
        click.echo(json.dumps({"impression": impression, "segments": segments, "stopped": result.stopped, "model": str(path)}, ensure_ascii=False))
    else:
        click.echo(impression)
