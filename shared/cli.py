"""What every command line of the toolkit shares: one-line errors and exit codes, config
overrides, and the console (stderr, so stdout stays clean for results)."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

import click

EXIT_OK, EXIT_INPUT, EXIT_PARTIAL = 0, 2, 3
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_INPUT) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def friendly_errors(fn: F) -> F:
    """Turn the errors a user can cause into `error: …` and exit 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from shared.config import ConfigError
        from shared.textio import InputError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, InputError, FileNotFoundError, ValueError) as e:
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except MemoryError:
            fail("out of memory: lower --batch-size or the model's max lengths")

    return wrapper  # type: ignore[return-value]


def config_options(fn: F) -> F:
    """`--config FILE` and repeatable `--set section.field=value`."""
    fn = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field, e.g. train.lr=1e-3 (repeatable).")(fn)
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML or JSON run config.")(fn)
    return fn


def build_config(config_path: str | None, sets: tuple[str, ...], flags: dict[str, Any]):
    """Defaults ← --config ← named flags ← --set."""
    from shared.config import load_config, parse_override

    overrides = {k: v for k, v in flags.items() if v is not None}  # flags not given keep the config's value
    overrides.update(parse_override(s) for s in sets)
    return load_config(config_path, overrides)


def console():
    from rich.console import Console

    return Console(stderr=True)
