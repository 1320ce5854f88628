"""The shape of `petsum`'s command line: what `petsum --help` lists where, one short function per
command module (the work is in the library), and `petsum evaluate --set` for decoding settings only."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import textwrap

import click
import pytest
from click.testing import CliRunner
from conftest import FIXTURES

import petsum.cli as cli_package
from petsum.cli import main as petsum

USER = ["summarize", "batch", "serve", "evaluate", "train", "export"]
RESEARCH = ["segment", "floor", "order", "memory", "average", "split"]
MAX_BODY = 15


def _section(help_text: str, title: str) -> list[str]:
    """The command names listed under `title:` in click's help, up to the next blank line."""
    lines = help_text.split(f"\n{title}:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.split()[0] for line in lines if line.strip()]


def _command_modules() -> dict[str, object]:
    mods = {
        info.name: importlib.import_module(f"petsum.cli.{info.name}")
        for info in pkgutil.iter_modules(cli_package.__path__)
        if not info.name.startswith("_")
    }
    return {name: mod for name, mod in mods.items() if isinstance(getattr(mod, "command", None), click.Command)}


def _body_lines(fn) -> int:
    """Lines of the function's body after its docstring: no decorators, no signature, no blank or
    comment-only lines."""
    source = textwrap.dedent(inspect.getsource(inspect.unwrap(fn)))
    [node] = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    lines = source.splitlines()[body[0].lineno - 1 : body[-1].end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_help_lists_user_commands_first_and_research_apart():
    res = CliRunner().invoke(petsum, ["--help"])
    assert res.exit_code == 0, res.output
    assert _section(res.output, "Commands") == USER
    assert sorted(_section(res.output, "Research and maintenance")) == sorted(RESEARCH)
    assert res.output.index("\nCommands:") < res.output.index("\nResearch and maintenance:")


def test_every_command_module_is_one_short_function():
    modules = _command_modules()
    assert set(modules) == set(USER + RESEARCH) - {"export"}  # export is deploy's, shared with mwp
    assert {name: petsum.commands[name] for name in modules} == {
        name: m.command for name, m in modules.items()
    }  # registered as is
    long = {name: n for name, m in modules.items() if (n := _body_lines(m.command.callback)) > MAX_BODY}
    assert not long, f"command bodies over {MAX_BODY} lines (move the work into the library): {long}"
    assert all(inspect.getdoc(inspect.unwrap(m.command.callback)) for m in modules.values())  # --help says what it does


def test_body_counter_counts_the_body_only():
    def sample(a: int, b: int) -> int:
        """A docstring
        over two lines."""
        # a comment

        c = a + b
        return c

    assert _body_lines(sample) == 2


def test_evaluate_takes_generate_settings_and_refuses_others():
    base = ["evaluate", "--data", str(FIXTURES / "pet_toy.csv"), "--limit", "1", "--consensus", "0", "--json"]
    res = CliRunner().invoke(petsum, [*base, "--set", "generate.no_repeat_ngram_size=0"])
    assert res.exit_code == 0, res.output
    older = CliRunner().invoke(
        petsum, [*base, "--no-repeat-ngram", "0"]
    )  # the hidden older spelling still works, the same
    assert older.exit_code == 0 and json.loads(older.stdout) == json.loads(res.stdout), older.output
    for bad in ("train.lr=1", "generate.nope=1", "generate.no_repeat_ngram_size=-1"):
        res = CliRunner().invoke(petsum, [*base, "--set", bad])
        assert res.exit_code == 2, (bad, res.output)
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and "Traceback" not in res.output, (
            bad,
            res.stderr,
        )


@pytest.mark.parametrize("name", USER + RESEARCH)
def test_every_command_has_help(name: str):
    res = CliRunner().invoke(petsum, [name, "--help"], prog_name="petsum")
    assert res.exit_code == 0 and f"Usage: petsum {name}" in res.output, res.output
