"""`petsum split`: train/val/test 80/10/10 by a seeded hash of qid, on hand-written reports."""

import csv
import json

from click.testing import CliRunner

from petsum.cli import main as petsum
from petsum.data.split import assign


def invoke(args):
    return CliRunner().invoke(petsum, args)


def test_assign_is_exact_seeded_and_independent_of_order():
    ids = [f"r{i}" for i in range(1000)]
    side = assign(ids, seed=42)
    counts = {s: sum(v == s for v in side.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 800, "val": 100, "test": 100}
    assert assign(list(reversed(ids)), seed=42) == side  # file order does not matter
    assert assign(ids, seed=7) != side  # the seed does
    # Adding reports moves few old ones: a qid's side depends on its rank, not on a fresh shuffle.
    grown = assign(ids + [f"new{i}" for i in range(10)], seed=42)
    assert sum(grown[i] != side[i] for i in ids) < 50


def write_reports(path, n):
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer", "qid"])
        for i in range(n):
            w.writerow([f"肝脏见结节{i}，放射性摄取增高，SUVmax：{i}.1。", f"1、肝脏高代谢结节{i}。", f"q{i}"])


def test_split_command_writes_three_disjoint_csvs(tmp_path):
    data = tmp_path / "reports.csv"
    write_reports(data, 50)
    res = invoke(["split", "--data", str(data), "--out", str(tmp_path / "split")])
    assert res.exit_code == 0, res.output
    facts = json.loads(res.output)
    assert facts["counts"] == {"train": 40, "val": 5, "test": 5} and facts["seed"] == 42
    rows = {
        s: list(csv.DictReader((tmp_path / "split" / f"{s}.csv").open(encoding="utf-8")))
        for s in ("train", "val", "test")
    }
    ids = [r["qid"] for side in rows.values() for r in side]
    assert sorted(ids) == sorted(f"q{i}" for i in range(50))  # every report exactly once
    original = {r["qid"]: r for r in csv.DictReader(data.open(encoding="utf-8"))}
    assert all(r == original[r["qid"]] for side in rows.values() for r in side)  # rows unchanged
    again = invoke(["split", "--data", str(data), "--out", str(tmp_path / "again")])
    assert json.loads(again.output)["ids_sha256"] == facts["ids_sha256"]


def test_split_refuses_missing_or_duplicate_ids(tmp_path):
    data = tmp_path / "dup.csv"
    data.write_text("question,answer,qid\n肝,肝,1\n脾,脾,1\n", encoding="utf-8")
    res = invoke(["split", "--data", str(data), "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and res.output.startswith("error:") and "more than once" in res.output
    res = invoke(["split", "--data", str(data), "--out", str(tmp_path / "s"), "--id-column", "id"])
    assert res.exit_code == 2 and "no column id" in res.output and "Traceback" not in res.output
