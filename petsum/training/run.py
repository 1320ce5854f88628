"""`petsum train` and `petsum segment`: a config built from the flags, then the shared AS-ES recipe
over PET instances, in this process or in several (torchrun)."""

from __future__ import annotations

from pathlib import Path

from petsum.adapter import PetAdapter
from petsum.data.pairs import MIN_SENSIBLE_REPORTS, describe_skipped, load_pairs, load_training_pairs
from petsum.training.budget import Budget, parse_duration
from petsum.training.config import PetRunConfig
from petsum.training.house_style import fit_house_style
from petsum.training.prepare import preparer, torchrun_args, write_segments
from petsum.training.recipe import fingerprint, load_recipe, run_recipe, start_run
from shared.cli import build_config, console, launch_training, run_training
from shared.device import resolve_device
from shared.distributed import launched_by_torchrun
from shared.textio import InputError


def train_recipe(
    data: str,
    val_data: str | None,
    out: str,
    time_budget: str | None = None,
    token_budget: int | None = None,
    device: str = "auto",
    init: str | None = None,
    config_path: str | None = None,
    sets: tuple[str, ...] = (),
) -> Path:
    """The shipped recipe on `data`, into `out` (resumed when `out` holds its run); returns the model folder."""
    resolve_device(device)  # no CUDA where --device cuda asks for it: fail before reading anything
    if launched_by_torchrun():
        raise InputError("the recipe trains in one process; under torchrun, train a research run (--method direct)")
    recipe = load_recipe(config_path, sets)
    if time_budget is not None and token_budget is not None:
        raise InputError("give one budget: --time-budget or --token-budget, not both")
    if time_budget is not None:
        budget = Budget(seconds=parse_duration(time_budget))
    else:
        budget = Budget(tokens=token_budget or recipe.tokens)
    log = console()
    notes: list[str] = []  # said once the folder is known to be usable: an error comes first and alone
    reports, val = _training_pairs(data, notes), _training_pairs(val_data, notes) if val_data else None
    run = start_run(out, reports, val, budget, recipe, init, device, fingerprint(data, val_data), log)
    for note in notes:
        log.log(note)
    fit = recipe.fit

    def house_style(reports, folder: Path) -> str:
        return fit_house_style(reports, folder, fit.kind, fit.grams, epochs=fit.epochs, log=log.log)

    return run_recipe(run, house_style)


def train(
    data: str,
    val_data: str | None,
    gamma: float | None,
    source: str,
    target: str,
    method: str | None,
    strategy: str | None,
    beta: float | None,
    out: str,
    config_path: str | None,
    sets: tuple[str, ...],
    nproc: int = 1,
    budget: dict | None = None,
) -> None:
    """Train one model (a research run) on report → impression pairs; with `nproc` > 1, in that many
    torchrun processes. `budget`: `time` (a duration), `tokens` and `device` from the command line,
    which become `--set` overrides so that every torchrun process reads them alike."""
    sets = (*sets, *budget_overrides(**(budget or {})))
    flags = {"pet.gamma": gamma}
    reports, val = (
        load_pairs(data),
        load_pairs(val_data) if val_data else None,
    )  # bad input fails here, before any spawn
    if nproc > 1:
        if launched_by_torchrun():
            raise InputError("--nproc starts its own processes; under torchrun, use torchrun's --nproc-per-node")
        named = {"train.method": method, "segment.strategy": strategy, "segment.beta": beta, **flags}
        build_config(config_path, sets, named, PetRunConfig)  # a bad config fails here, before any spawn
        args = torchrun_args(data, val_data, gamma, method, strategy, beta, out, config_path, sets, source, target)
        launch_training("petsum.cli", nproc, ["train", *args])
        return
    prepare = preparer(source, target)
    adapter = PetAdapter()
    run_training(reports, adapter, out, method, strategy, beta, config_path, sets, flags, prepare, val, PetRunConfig)


def _training_pairs(path: str, notes: list[str]) -> list:
    """The usable pairs of a training or validation file; the rows skipped are counted, never quoted."""
    pairs, skipped = load_training_pairs(path)
    if said := describe_skipped(skipped):
        notes.append(f"{Path(path).name}: {said}")
    if len(pairs) < MIN_SENSIBLE_REPORTS:
        notes.append(
            f"{Path(path).name}: only {len(pairs)} usable reports; below {MIN_SENSIBLE_REPORTS} a model learns little"
        )
    return pairs


def budget_overrides(time: str | None = None, tokens: int | None = None, device: str | None = None) -> list[str]:
    """`--time-budget`, `--token-budget` and `--device` as config overrides; a budget replaces the step limit."""
    out = [f"train.device={device}"] if device else []
    if time is not None:
        out += [f"train.max_time_s={parse_duration(time)}", "train.max_steps=null"]
    if tokens is not None:
        out += [f"train.max_train_tokens={tokens}", "train.max_steps=null"]
    return out


def segment(
    data: str,
    gamma: float | None,
    source: str,
    method: str | None,
    strategy: str | None,
    beta: float | None,
    out: str,
    config_path: str | None,
    sets: tuple[str, ...],
) -> dict:
    """Write a run's AS-ES rows to `out/data` without training; returns their counts."""
    flags = {"train.method": method, "segment.strategy": strategy, "segment.beta": beta, "pet.gamma": gamma}
    cfg = build_config(config_path, sets, flags, PetRunConfig)
    return write_segments(load_pairs(data), cfg, Path(out), console(), source)
