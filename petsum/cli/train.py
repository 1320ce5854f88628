"""`petsum train --data CSV --out DIR`: the shipped recipe on your reports; `--method` for research runs."""

from __future__ import annotations

import click

from petsum.cli.options import data_option, gamma_option, source_option
from petsum.training.recipe import is_recipe_file
from petsum.training.run import train, train_recipe
from shared.cli import friendly_errors

RESEARCH = (
    "Research only: trains one model of the AS-ES comparison instead of the recipe. On cPET findings at equal "
    "compute (2M tokens, test split) direct scored ROUGE-L 37.9, MR 14.6; USM 35.5-37.1, MR 19.7-36.4; DSM "
    "32.5-33.6, MR 29.2-32.5 (docs/results/pet.md)."
)


@click.command(name="train")
@data_option(
    "Training reports: CSV or JSONL with question (findings), answer (impression), qid (docs/training-data.md)."
)
@click.option("--val", "val_data", type=click.Path(dir_okay=False), help="Validation reports (default: 10% of --data).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder; the model ends up in it.")
@click.option("--time-budget", metavar="DURATION", help="Training time for the whole recipe: 90s, 30m, 4h.")
@click.option("--token-budget", type=click.IntRange(min=1), metavar="N", help="Tokens to train on (reproducible).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when available (bf16 autocast, else fp16).")  # fmt: skip
@click.option("--init", "init", type=click.Path(file_okay=False, exists=True),
              help="Fine-tune this model folder (e.g. the shipped default), not train from scratch.")  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="A recipe (configs/recipes/; default: the shipped one), or a research run's config.")  # fmt: skip
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a setting of the recipe (finding.lr=3e-4) or run config (repeatable).")  # fmt: skip
@click.option("--method", type=click.Choice(["direct", "dsm", "usm"]), help=RESEARCH)
@click.option("--strategy", type=click.Choice(["inter", "ent", "ent_pre", "loss", "bleu", "rouge"]),
              help="Research (--method usm|dsm): pieces tagged ES or AS (ent: best, below direct).")  # fmt: skip
@click.option("--beta", type=float, help="Research (--method usm|dsm): β of the score-based strategies.")
@gamma_option
@source_option
@click.option("--target", type=click.Choice(["impression", "copy"]),
              help="Research (--method): impression items, or the input itself (the copy warm-up).")  # fmt: skip
@click.option("--nproc", type=click.IntRange(min=1), default=1, help="Research (--method): torchrun processes.")
@friendly_errors
def command(data, val_data, out, time_budget, token_budget, device, init, config_path, sets, method, strategy, beta,
            gamma, source, target, nproc) -> None:  # fmt: skip
    """Train a model on your reports: the shipped default's recipe, end to end, resumable."""
    if method is None and (config_path is None or is_recipe_file(config_path)):
        research = {"--strategy": strategy, "--beta": beta, "--gamma": gamma, "--source": source, "--target": target}
        if given := [flag for flag, value in research.items() if value is not None] + ["--nproc"] * (nproc > 1):
            raise click.UsageError(f"{', '.join(given)}: research options; give --method too")
        folder = train_recipe(data, val_data, out, time_budget, token_budget, device, init, config_path, sets)
        click.echo(f"model ready: petsum summarize --model {folder} REPORT.txt")
        return
    if init:  # a research run: --method given, or --config a run config (its train.method, default usm)
        raise click.UsageError("--init starts the recipe from a model; with --method use --set model.pretrained=DIR")
    budget = {"time": time_budget, "tokens": token_budget, "device": device}
    train(data, val_data, gamma, source or "region", target or "impression", method, strategy, beta, out, config_path,
          sets, nproc, budget)  # fmt: skip
