"""`petsum batch --engine ray`: a local Ray instance writes exactly the records the local engine
writes, resumes the same way, and fails in one line when the extra is missing."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GOOD, SECRET, reports_folder

from petsum.cli import main as petsum

pytestmark = pytest.mark.slow  # a tiny trained run, and a Ray start

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason='needs the ray extra: pip install "petsum[ray]"'
)


def invoke(args):
    return CliRunner().invoke(petsum, args)


def batch(folder: Path, out: Path, model: Path, *extra: str):
    return invoke(["batch", str(folder), "--out", str(out), "--model", str(model), "--batch-size", "3", *extra])


def ray_logs() -> list[Path]:
    """The files of the newest Ray session's log folder (Ray's temp dir: RAY_TMPDIR or /tmp)."""
    session = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "session_latest" / "logs"
    return [p for p in session.rglob("*") if p.is_file()] if session.exists() else []


@needs_ray
def test_ray_engine_writes_the_local_engines_records_and_resumes(pet_run, tmp_path):
    """One Ray start (they are slow): an output killed mid-line after its first record is
    resumed on Ray, and the file ends byte for byte as the local engine writes it."""
    folder = reports_folder(tmp_path)  # good, GBK, empty, binary, English, oversized, one-section files
    (folder / "h_secret.txt").write_text(
        GOOD.replace("胰头部", SECRET + "，胰头部"), encoding="utf-8"
    )  # summarized on Ray
    local = tmp_path / "local.jsonl"
    assert batch(folder, local, pet_run).exit_code == 3  # some records are errors
    lines = local.read_text(encoding="utf-8").splitlines(keepends=True)
    on_ray = tmp_path / "ray.jsonl"
    on_ray.write_text(lines[0] + lines[1][:10], encoding="utf-8")
    res = batch(folder, on_ray, pet_run, "--engine", "ray", "--num-workers", "2", "--resume")
    assert res.exit_code == 3, res.output
    # Same ids, impressions, warnings and errors, in order, each exactly once; Ray wrote seven
    # of the eight (every kind of bad input among them) in three chunks over two workers.
    assert on_ray.read_bytes() == local.read_bytes()
    assert "error" in json.loads(lines[2]) and "warnings" in json.loads(lines[5])
    assert SECRET not in res.output and "Traceback" not in res.output
    logs = ray_logs()
    assert logs and not any(SECRET in p.read_text(errors="replace") for p in logs)


def test_ray_engine_without_the_extra_is_one_line(pet_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    res = batch(reports_folder(tmp_path), tmp_path / "o.jsonl", pet_run, "--engine", "ray")
    assert res.exit_code == 2
    assert res.stderr == 'error: --engine ray needs the ray extra: pip install "petsum[ray]"\n'


def test_ray_options_need_the_ray_engine(pet_run, tmp_path):
    res = batch(reports_folder(tmp_path), tmp_path / "o.jsonl", pet_run, "--gpus-per-worker", "1")
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and "--engine ray" in res.stderr
    assert not (tmp_path / "o.jsonl").exists()


@needs_ray
def test_ray_engine_refuses_a_broken_model_before_starting(tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({}), encoding="utf-8")
    res = batch(reports_folder(tmp_path), tmp_path / "o.jsonl", broken, "--engine", "ray")
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
