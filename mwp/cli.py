"""`mwp`: train and evaluate math-word-problem solvers with AS-ES."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deploy.cli import export_command
from shared.cli import fail, friendly_errors, run_training, serving_options, training_options

DEFAULT_DATA = Path("../shared/data/gsm8k")
DEFAULT_MODEL = Path(__file__).parent / "models" / "default"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Solve math word problems with chain-of-thought models trained by AS-ES."""


@main.command()
@click.option("--data", default=str(DEFAULT_DATA), show_default=True, type=click.Path(), help="JSONL file, or folder with train.jsonl.")
@training_options
@friendly_errors
def train(data: str, method: str | None, strategy: str | None, beta: float | None, out: str, config_path: str | None, sets: tuple[str, ...]) -> None:
    """Train a solver on GSM8K-style problems."""
    from mwp.adapter import MwpAdapter
    from mwp.data import load_problems

    run_training(load_problems(data), MwpAdapter(), out, method, strategy, beta, config_path, sets)


@main.command()
@click.argument("question", required=False)
@click.option("--data", type=click.Path(), help="JSONL of problems to evaluate instead of one QUESTION.")
@serving_options
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate the first N problems only.")
@click.option("--json", "as_json", is_flag=True, help="Print metrics (or the answer) as JSON.")
@click.option("--out", "pred_path", type=click.Path(dir_okay=False), help="Write one prediction per problem (JSONL).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@friendly_errors
def solve(question: str | None, data: str | None, model_dir: str | None, backend: str, device: str, limit: int | None, as_json: bool, pred_path: str | None, batch_size: int) -> None:
    """Solve QUESTION, or evaluate accuracy over --data."""
    from mwp.adapter import PROMPT_SUFFIX, MwpAdapter
    from mwp.data import load_problems
    from shared.generate import generate, result_text
    from deploy.backend import device_warning, load_models

    if bool(question) == bool(data):
        fail("give either a QUESTION or --data FILE")
    path = Path(model_dir) if model_dir else DEFAULT_MODEL
    if not path.exists():
        fail("no default model is shipped yet: pass --model with a folder written by `mwp train`")
    adapter, models = MwpAdapter(), load_models(path, backend, device, "mwp")
    if note := device_warning(models, device):
        click.echo(f"warning: {note}", err=True)
    cfg = models.generate.model_copy(update={"batch_size": batch_size})
    if question:
        res = generate(models, [question.strip() + PROMPT_SUFFIX], adapter, cfg)[0]
        text = result_text(adapter, res)
        answer = adapter.extract_answer(text)
        click.echo(json.dumps({"reasoning": text, "answer": answer}) if as_json else f"{text}\nanswer: {answer}")
        return
    problems = load_problems(data, "test")[:limit]
    results = generate(models, [p.question for p in problems], adapter, cfg)
    preds = [result_text(adapter, r) for r in results]
    metrics = adapter.score(preds, [p.target for p in problems])
    if pred_path:
        with open(pred_path, "w", encoding="utf-8") as f:
            for p, pred in zip(problems, preds):
                got, gold = adapter.extract_answer(pred), adapter.extract_answer(p.target)
                f.write(json.dumps({"id": p.id, "prediction": pred, "answer": got, "gold": gold, "correct": got is not None and got == gold}) + "\n")
    click.echo(json.dumps(metrics) if as_json else "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))


main.add_command(export_command(DEFAULT_MODEL))
