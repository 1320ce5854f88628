"""README.md as a user meets it: short, its Python API snippets run as written, its quickstart
commands that need only files of this repository run as written (in order, in a scratch folder),
and the files and configs it points to exist."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

README = REPO / "README.md"
MAX_LINES = 300
# What a command may read besides its own outputs.
REPO_INPUTS = ("examples/", "tests/fixtures/", "configs/toy.yaml", "configs/recipes/toy.yaml")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def snippet(marker: str) -> str:
    """The ```python block right after the line `<!-- marker -->`."""
    found = re.search(rf"^<!-- {re.escape(marker)} -->\n```python\n(.*?)^```", readme(), re.M | re.S)
    assert found, f"no python block after <!-- {marker} --> in README.md"
    return found.group(1)


def bash_lines() -> list[str]:
    blocks = re.findall(r"^```bash\n(.*?)^```", readme(), re.M | re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _is_path(token: str) -> bool:
    return "/" in token or token.endswith((".txt", ".csv", ".jsonl", ".yaml"))


def runnable_commands() -> list[list[str]]:
    """The README's `petsum …` and `mwp …` lines whose every path is a repository input
    (REPO_INPUTS) or the output of an earlier such line, in order."""
    made: list[str] = []
    out = []
    for line in bash_lines():
        if not line.startswith(("petsum ", "mwp ")) or line.startswith("petsum serve"):
            continue  # a service runs until stopped: tests/petsum/serve runs it
        args = shlex.split(line, comments=True)
        own = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--out"]
        paths = [a for a in args[1:] if _is_path(a) and " " not in a]
        if all(
            p.startswith(REPO_INPUTS) or p in own or any(p == m or p.startswith(m + "/") for m in made) for p in paths
        ):
            out.append(args)
            made += own
    return out


def test_readme_is_short():
    assert len(readme().splitlines()) <= MAX_LINES


def test_the_quickstart_is_among_the_runnable_commands():
    commands = [" ".join(c) for c in runnable_commands()]
    for expected in (
        "petsum summarize examples/report.txt",
        "petsum train --data tests/fixtures/pet_toy.csv --out runs/toy --config configs/recipes/toy.yaml",
        "petsum evaluate --data tests/fixtures/pet_toy.csv --model runs/toy --json",
        "mwp train --out runs/mwp --config configs/toy.yaml --data tests/fixtures/math_toy.jsonl",
    ):
        assert expected in commands, (expected, commands)
    assert not any("../shared" in c or "runs/mine" in c for c in commands)  # data and runs a user has to bring


def test_files_and_configs_the_readme_names_exist():
    text = readme()
    links = [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) if "://" not in t]
    configs = re.findall(r"configs/[\w/.-]+\.yaml", text)
    assert links and configs
    missing = [p for p in links + configs + list(REPO_INPUTS) if not (REPO / p).exists()]
    assert not missing, missing


def _exec(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    return out.getvalue()


def test_the_petsum_api_snippet_runs():
    printed = _exec(snippet("api-snippet")).strip()
    assert printed and "\n" not in printed.strip("\n").split("\n")[-1] and printed.endswith("。"), printed
    assert "PET/CT" in printed, printed  # a normal brain section: the normal statement


def test_the_mwp_api_snippet_runs():
    printed = _exec(snippet("mwp-api-snippet")).strip()
    float(printed)  # the answer, a number (the default model guesses, but answers)


def _console_script(name: str) -> list[str]:
    script = Path(sys.executable).parent / name
    if script.is_file():
        return [str(script)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-c", f"import sys; from {name}.cli import main; sys.exit(main())"]


@pytest.mark.slow  # trains two toy models and exports one to ONNX
def test_the_readme_commands_run_as_written(tmp_path: Path):
    """In a scratch folder that holds the repository inputs, so `runs/` and the outputs land there."""
    (tmp_path / "tests").mkdir()
    for rel in ("examples", "configs", "tests/fixtures"):
        (tmp_path / rel).symlink_to(REPO / rel, target_is_directory=True)
    commands = runnable_commands()
    assert len(commands) >= 8, commands
    for args in commands:
        if args[:2] == ["mwp", "export"] or args[:2] == ["petsum", "export"]:
            pytest.importorskip("onnxruntime")
        res = subprocess.run(
            _console_script(args[0]) + args[1:], cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert res.returncode == 0, (" ".join(args), res.stderr[-2000:])
    assert (tmp_path / "runs" / "toy" / "ases.json").is_file() and (tmp_path / "impressions.jsonl").is_file()
