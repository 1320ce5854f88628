"""`petsum batch --num-workers N` (local): N worker processes write exactly the records one process
writes, resume the same way, and a model they cannot load is a one-line error."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GOOD, SECRET, reports_folder

from petsum.cli import main as petsum

pytestmark = pytest.mark.slow  # a tiny trained run, and worker processes


def batch(folder: Path, out: Path, model: Path, *extra: str):
    args = ["batch", str(folder), "--out", str(out), "--model", str(model), "--batch-size", "2", *extra]
    return CliRunner().invoke(petsum, args)


def test_workers_write_the_one_process_records_and_resume(pet_run, tmp_path):
    folder = reports_folder(tmp_path)  # good and bad files of every kind
    (folder / "h_secret.txt").write_text(GOOD.replace("胰头部", SECRET + "，胰头部"), encoding="utf-8")
    one = tmp_path / "one.jsonl"
    assert batch(folder, one, pet_run).exit_code == 3  # some records are errors
    two = tmp_path / "two.jsonl"
    res = batch(folder, two, pet_run, "--num-workers", "2")
    assert res.exit_code == 3, res.output
    assert two.read_bytes() == one.read_bytes()  # same records, in order, each once
    lines = one.read_text(encoding="utf-8").splitlines(keepends=True)
    torn = tmp_path / "torn.jsonl"
    torn.write_text(lines[0] + lines[1][:10], encoding="utf-8")  # killed mid-line after one record
    (tmp_path / "torn.jsonl.meta.json").write_bytes((tmp_path / "one.jsonl.meta.json").read_bytes())
    res = batch(folder, torn, pet_run, "--num-workers", "2", "--resume")
    assert res.exit_code == 3, res.output
    assert torn.read_bytes() == one.read_bytes()
    assert SECRET not in res.output and "Traceback" not in res.output
    assert any("error" in json.loads(line) for line in lines)


def test_a_model_the_workers_cannot_load_is_one_line(tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({}), encoding="utf-8")
    res = batch(reports_folder(tmp_path), tmp_path / "o.jsonl", broken, "--num-workers", "2")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and "Traceback" not in res.output


def test_auto_engine_pools_a_long_input_only_and_keeps_every_record_once():
    from petsum.batch.processes import auto_engine
    from shared.records import Record

    def tagged(name: str):
        return lambda chunks: ([{"id": r.id, "by": name} for r in chunk] for chunk in chunks)

    engine = auto_engine(tagged("local"), tagged("pooled"), min_reports=5)
    for n, by in ((0, None), (4, "local"), (5, "pooled"), (11, "pooled")):
        records = [Record(str(i), f"text {i}") for i in range(n)]
        chunks = [records[i : i + 2] for i in range(0, n, 2)]
        got = [r for chunk in engine(iter(chunks)) for r in chunk]
        assert [r["id"] for r in got] == [str(i) for i in range(n)]  # in order, none lost or repeated
        assert {r["by"] for r in got} == ({by} if by else set())


def test_without_num_workers_a_long_input_gets_worker_processes(pet_run, tmp_path, monkeypatch):
    from petsum.batch import processes

    folder = reports_folder(tmp_path)
    one = tmp_path / "one.jsonl"
    assert batch(folder, one, pet_run).exit_code == 3  # short: this process
    started = []  # the worker count of each process engine that was handed chunks
    real = processes.process_engine

    def spied(settings, workers):
        inner = real(settings, workers)

        def engine(chunks):
            started.append(workers)
            yield from inner(chunks)

        return engine

    monkeypatch.setattr(processes, "AUTO_MIN_REPORTS", 3)  # "long" for this folder
    monkeypatch.setattr(processes, "process_engine", spied)
    monkeypatch.setattr("shared.device.usable_cores", lambda: 2)
    auto = tmp_path / "auto.jsonl"
    res = batch(folder, auto, pet_run)
    assert res.exit_code == 3, res.output
    assert started == [2]
    assert auto.read_bytes() == one.read_bytes()
