"""`mwp`: train and evaluate math-word-problem solvers with AS-ES. Commands parse, validate, and
call one function; the work is in `mwp.solve` and `mwp.train`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from deploy.cli import export_command
from mwp.data import question_error
from shared.cli import console, fail, friendly_errors, run_training, serving_options, training_options

if TYPE_CHECKING:
    from mwp.solve import Solver

DEFAULT_DATA = Path("../shared/data/gsm8k")
EXIT_PARTIAL = 3  # a set was scored, but some of its records were unusable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Solve math word problems with chain-of-thought models trained by AS-ES."""


@main.command()
@click.option(
    "--data",
    default=str(DEFAULT_DATA),
    show_default=True,
    type=click.Path(),
    help="JSONL (question, answer: a GSM8K solution ending in #### N, or a number), or a folder with train.jsonl.",
)
@click.option(
    "--calculator",
    is_flag=True,
    help="Keep GSM8K's calculator annotations (<<48/2=24>>) in the targets; "
    "`mwp solve` then computes them while decoding.",
)
@click.option(
    "--target",
    type=click.Choice(["cot", "equations"]),
    default="cot",
    show_default=True,
    help="What a solution is taught as: its steps (cot) or its equations alone (`<<48/2=24>>. … The answer is N.`).",
)
@click.option(
    "--teacher",
    type=click.Path(file_okay=False),
    help="A model folder (any `mwp solve` loads) whose right solutions to the training problems become the "
    "targets; the problems it gets wrong are left out (instruction-tuning on demonstrations, mwp.teach).",
)
@training_options
@friendly_errors
def train(
    data: str,
    calculator: bool,
    target: str,
    teacher: str | None,
    method: str | None,
    strategy: str | None,
    beta: float | None,
    out: str,
    config_path: str | None,
    sets: tuple[str, ...],
) -> None:
    """Train a solver on GSM8K-style problems.

    Validation is a fixed share of --data: data.val_fraction of the problems (default 0.1), picked
    by a hash of each question's text seeded with data.split_seed (default 42), so the same data and
    seed always hold out the same problems, whatever the file order. The test set is never read.
    """
    from mwp.adapter import MwpAdapter
    from mwp.data import load_problems
    from mwp.train import calculator_facts

    examples = load_problems(data, calculator=calculator, target=target)
    if teacher is not None:
        examples = _demonstrations(teacher, examples, calculator)
    run_training(
        examples,
        MwpAdapter(),
        out,
        method,
        strategy,
        beta,
        config_path,
        sets,
        prepare=calculator_facts(calculator, out),
    )


def decoding_option(fn):
    """`--set generate.FIELD=VALUE` (repeatable): decode with other settings than the run's own."""
    return click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="generate.FIELD=VALUE",
        help="Decode with another setting than the run's (e.g. generate.no_repeat_ngram_size=6); repeatable.",
    )(fn)


def _demonstrations(teacher: str, examples: list, calculator: bool) -> list:
    from mwp.teach import demonstrations
    from shared.textio import InputError

    if not Path(teacher).is_dir():
        raise InputError(f"{teacher}: no such model folder (--teacher)")
    kept, counts = demonstrations(_solver(teacher, "auto", "cpu", 64, None, 0), examples, calculator)
    for reason, n in sorted(counts.items()):
        click.echo(f"teacher: {reason}: {n}", err=True)
    if not kept:
        raise InputError(f"{teacher}: the teacher solved none of the training problems: nothing to learn from")
    return kept


@main.command()
@click.option(
    "--data", default=str(DEFAULT_DATA), show_default=True, type=click.Path(), help="GSM8K JSONL or its folder."
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSONL: the problems, then their variants.")
@click.option("--variants", type=click.IntRange(1, 100), default=4, show_default=True, help="Variants per problem.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--test", type=click.Path(dir_okay=False), help="Held out (default: test.jsonl beside --data).")
@friendly_errors
def augment(data: str, out: str, variants: int, seed: int, test: str | None) -> None:
    """Write GSM8K training problems with variants: other numbers, every step recomputed (mwp.augment)."""
    from mwp.augment import augment_file

    counts = augment_file(data, out, variants, seed, test)
    for reason, n in sorted(counts.items()):
        click.echo(f"{reason}: {n}", err=True)


@main.command()
@serving_options
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="Training JSONL (`mwp augment`'s output).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSONL: the next round's training data.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@decoding_option
@friendly_errors
def mistakes(
    model_dir: str | None, backend: str, device: str, data: str, out: str, batch_size: int, sets: tuple[str, ...]
) -> None:
    """Write the next round's data from a run's mistakes on its training problems (mwp.rounds)."""
    from mwp.rounds import check_paths, next_round_file

    check_paths(data, out)
    solver = _solver(model_dir, backend, device, batch_size, None, 0, sets)
    counts = next_round_file(solver, data, out)
    for reason, n in sorted(counts.items()):
        click.echo(f"{reason}: {n}", err=True)


@main.command()
@click.argument("question", required=False)
@click.option(
    "--data",
    type=click.Path(),
    help="JSONL of problems (question, answer) to score instead of one QUESTION; a folder means its test.jsonl.",
)
@serving_options
@click.option("--limit", type=click.IntRange(min=1), help="Score the first N problems only.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics (or the solution) as JSON.")
@click.option(
    "--out",
    "pred_path",
    type=click.Path(dir_okay=False),
    help="Write one JSON line per problem: prediction, answer, gold, correct (or error).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--resume", is_flag=True, help="Continue an --out file left by an interrupted run (each problem solved once)."
)
@click.option(
    "--calculator/--no-calculator",
    default=None,
    help="Compute <<expr=…>> annotations while decoding (greedy). Default: on for runs trained with --calculator.",
)
@click.option(
    "--samples",
    type=click.IntRange(0, 256),
    help="Seeded draws besides the greedy solution; the answer most of them reach wins (direct runs). "
    "Default: the run's generate.consensus_samples.",
)
@decoding_option
@friendly_errors
def solve(
    question: str | None,
    data: str | None,
    model_dir: str | None,
    backend: str,
    device: str,
    limit: int | None,
    as_json: bool,
    pred_path: str | None,
    batch_size: int,
    resume: bool,
    calculator: bool | None,
    samples: int | None,
    sets: tuple[str, ...],
) -> None:
    """Solve QUESTION, or score accuracy and BLEU over --data (exit 3 when some records were unusable)."""
    from mwp.data import read_records
    from mwp.solve import evaluate, evaluate_to_file, metrics_line

    _check_inputs(question, data, limit, pred_path, resume)
    records = read_records(data, "test")[:limit] if data is not None else None  # bad input fails before the model loads
    solver = _solver(model_dir, backend, device, batch_size, calculator, samples, sets)
    if records is None:
        return _print_solution(solver, question or "", as_json)
    if pred_path:
        metrics = evaluate_to_file(solver, records, Path(pred_path), console(), batch_size, resume)
    else:
        metrics = evaluate(solver, records)[1]
    click.echo(json.dumps(metrics) if as_json else metrics_line(metrics))
    if metrics["errors"]:
        sys.exit(EXIT_PARTIAL)


def _check_inputs(
    question: str | None, data: str | None, limit: int | None, pred_path: str | None, resume: bool
) -> None:
    """Mistakes in the command line itself, caught before anything is loaded."""
    if (question is None) == (data is None):
        fail("give either a QUESTION or --data FILE")
    if question is not None and (problem := question_error(question)):
        fail(problem)
    if question is not None and (limit or pred_path):
        fail("--limit and --out go with --data")
    if resume and not pred_path:
        fail("--resume continues an --out file: give --out")
    if pred_path and not Path(pred_path).absolute().parent.is_dir():
        fail(f"{pred_path}: its folder does not exist")  # now, not after the whole set is solved


def _solver(
    model_dir: str | None,
    backend: str,
    device: str,
    batch_size: int,
    calculator: bool | None,
    samples: int | None,
    sets: tuple[str, ...] = (),
) -> "Solver":
    from deploy.backend import device_warning
    from mwp.solve import Solver
    from shared.cli import decoding_overrides

    overrides = decoding_overrides(sets)  # a bad --set fails before the model loads
    solver = Solver.load(
        model_dir, backend=backend, device=device, batch_size=batch_size, calculator=calculator, samples=samples
    )
    if overrides:
        solver.tune(**overrides)
    if note := device_warning(solver.models, device):
        click.echo(f"warning: {note}", err=True)
    if solver.calculator and solver.cfg.num_beams > 1:
        click.echo(
            f"warning: calculator mode decodes greedily; generate.num_beams={solver.cfg.num_beams} is not used",
            err=True,
        )
    return solver


def _print_solution(solver: "Solver", question: str, as_json: bool) -> None:
    from mwp.solve import solve_question

    sol = solve_question(solver, question)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reasoning": sol.reasoning,
                    "answer": sol.answer,
                    "generated": sol.generated,
                    "calculator": solver.calculator,
                }
            )
        )
    else:
        click.echo(
            f"{sol.reasoning}\nanswer: "
            f"{sol.answer if sol.answer is not None else 'none (no number after The answer is)'}"
        )


main.add_command(export_command(Path(__file__).parent / "models" / "default"))
