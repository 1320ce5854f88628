"""What every command line of the toolkit shares: one-line errors and exit codes, config
overrides, and the console (stderr, so stdout stays clean for results)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

EXIT_INPUT = 2  # unusable input or config; 0 is success, 3 a batch with failed records
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_INPUT) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def friendly_errors(fn: F) -> F:
    """Turn the errors a user can cause into `error: …` and exit 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from shared.config import ConfigError, format_errors
        from shared.textio import InputError

        try:
            return fn(*args, **kwargs)
        except ValidationError as e:  # a model validated outside `load_config`: name the fields, not the class
            fail(f"invalid {e.title} settings: {format_errors(e)}")
        except (ConfigError, InputError, OSError, ValueError) as e:  # OSError: unreadable files, broken checkpoints
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except MemoryError:
            fail("out of memory: lower --batch-size or the model's max lengths")
        except RuntimeError as e:  # torch: a broken checkpoint, CUDA out of memory
            fail(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'runtime failure'}")

    return wrapper  # type: ignore[return-value]


def serving_options(fn: F) -> F:
    """`--model`, `--backend` and `--device` of every command that generates."""
    fn = click.option(
        "--device",
        type=click.Choice(["cpu", "cuda"]),
        default="cpu",
        show_default=True,
        help="cuda: run on the GPU when one is active, else fall back to the CPU with a warning.",
    )(fn)
    fn = click.option(
        "--backend",
        type=click.Choice(["auto", "torch", "onnx", "ct2"]),
        default="auto",
        show_default=True,
        help="Inference engine; auto: CTranslate2 for an export made with --ct2, onnxruntime for another export, "
        "else torch.",
    )(fn)
    fn = click.option(
        "--model",
        "model_dir",
        type=click.Path(file_okay=False),
        help="Run, checkpoint or ONNX export folder (default: the shipped model).",
    )(fn)
    return fn


def config_options(fn: F) -> F:
    """`--config FILE` and repeatable `--set section.field=value`."""
    fn = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a config field, e.g. train.lr=1e-3 (repeatable).",
    )(fn)
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML or JSON run config.")(fn)
    return fn


def training_options(fn: F) -> F:
    """The options every task's `train` command takes."""
    fn = config_options(fn)
    fn = click.option(
        "--out", required=True, type=click.Path(file_okay=False), help="Run folder (resumes if it holds a run)."
    )(fn)
    fn = click.option("--beta", type=float, help="β of the score-based strategies (default: 1.0).")(fn)
    fn = click.option(
        "--strategy",
        type=click.Choice(["inter", "ent", "ent_pre", "loss", "bleu", "rouge"]),
        help="Segmentation strategy (default: inter).",
    )(fn)
    fn = click.option("--method", type=click.Choice(["direct", "dsm", "usm"]), help="Training method (default: usm).")(
        fn
    )
    return fn


def run_training(
    examples,
    adapter,
    out: str,
    method: str | None,
    strategy: str | None,
    beta: float | None,
    config_path: str | None,
    sets: tuple[str, ...],
    flags: dict[str, Any] | None = None,
    prepare: Callable | None = None,
    val_examples=None,
    schema: type | None = None,
) -> None:
    """Validate the config, run the AS-ES recipe, print the run's manifest. `prepare(examples,
    cfg) -> (instances, facts)` turns a task's records into training instances (PET's regions).
    Under torchrun each process joins the process group first; rank 0 alone logs and prints."""
    import json
    from pathlib import Path

    from rich.console import Console

    from shared.distributed import init_from_env, shutdown
    from shared.pipeline import train_run

    cfg = build_config(
        config_path,
        sets,
        {"train.method": method, "segment.strategy": strategy, "segment.beta": beta, **(flags or {})},
        schema,
    )
    extra = None
    if prepare is not None:
        examples, extra = prepare(examples, cfg)
        if val_examples is not None:
            val_examples, _ = prepare(val_examples, cfg)
    dist = init_from_env()
    try:
        log = console() if dist.main else Console(stderr=True, quiet=True)
        manifest = train_run(examples, adapter, cfg, Path(out), log, extra, val_examples, dist)
        if dist.main:
            click.echo(json.dumps(manifest, ensure_ascii=False))
    finally:
        shutdown(dist)


def launch_training(module: str, nproc: int, args: list[str]) -> None:
    """Run `python -m {module} ARGS` in `nproc` processes on this machine, as
    `torchrun --standalone --nproc-per-node N -m module ARGS` would: torch's elastic launcher
    (torchrun's own engine), called here so a failed rank ends in one line, not a launcher
    traceback. The ranks print their own `error:` lines and logs."""
    import logging
    import os
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # Each rank's torch gets its share of the cores instead of every rank taking them all.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # its errors become ours, below
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
    )
    try:
        elastic_launch(config, sys.executable)("-u", "-m", module, *args)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        fail(
            f"training stopped: rank {rank} of {nproc} exited with code {failure.exitcode}",
            failure.exitcode if failure.exitcode > 0 else 1,
        )


def build_config(config_path: str | None, sets: tuple[str, ...], flags: dict[str, Any], schema: type | None = None):
    """Defaults ← --config ← named flags ← --set, validated as `schema` (default: the core's `RunConfig`)."""
    from shared.config import RunConfig, load_config, parse_override

    overrides = {k: v for k, v in flags.items() if v is not None}  # flags not given keep the config's value
    overrides.update(parse_override(s) for s in sets)
    return load_config(config_path, overrides, schema or RunConfig)


def console():
    from rich.console import Console

    return Console(stderr=True)


def decoding_overrides(sets: tuple[str, ...]) -> dict[str, Any]:
    """`--set generate.FIELD=VALUE` pairs as generate settings to decode with (validated by the
    caller with `shared.config.validated_update`); `ConfigError` for any other key."""
    from shared.config import ConfigError, parse_override

    overrides = {}
    for item in sets:
        key, value = parse_override(item)
        if not key.startswith("generate.") or key.count(".") != 1:
            raise ConfigError(f"--set {item}: only decoding settings are taken here (generate.FIELD=VALUE)")
        overrides[key.removeprefix("generate.")] = value
    return overrides
