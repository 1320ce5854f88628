"""The command lines, driven through click's CliRunner with real files."""

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import tiny_sets

from mwp.cli import main as mwp
from petsum.cli import main as petsum

REPORT = "脑部未见异常放射性浓聚。      胰头部见软组织肿块，放射性摄取增高，SUVmax：6.1。      双肺未见结节。"


def invoke(cli, args, **kw):
    return CliRunner().invoke(cli, args, **kw)


@pytest.mark.slow
def test_train_prints_manifest(pet_run):
    manifest = json.loads((pet_run / "ases.json").read_text())
    assert manifest["method"] == "usm" and manifest["task"] == "petsum"


@pytest.mark.slow
def test_summarize_json_shape(pet_run, tmp_path):
    f = tmp_path / "r.txt"
    f.write_text(REPORT, encoding="utf-8")
    res = invoke(petsum, ["summarize", str(f), "--model", str(pet_run), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) >= {"impression", "regions", "model", "text", "opening", "items", "closing"}
    assert [r["region"] for r in out["regions"]] == ["brain", "abdomen", "chest"]  # report order
    segments = [s for r in out["regions"] for s in r["segments"]]
    # a 4-step model may write nothing for a region; whatever it wrote carries its AS/ES tag
    assert all(isinstance(r["segments"], list) and isinstance(r["stopped"], bool) for r in out["regions"])
    assert all(s["tag"] in ("ES", "AS") and isinstance(s["text"], str) for s in segments)
    assert out["impression"].endswith("PET/CT检查未见明显异常代谢征象。")  # the assembler's closing line


@pytest.mark.slow
def test_summarize_reads_gbk_and_stdin(pet_run, tmp_path):
    f = tmp_path / "gbk.txt"
    f.write_bytes(REPORT.encode("gbk"))
    by_file = invoke(petsum, ["summarize", str(f), "--model", str(pet_run)])
    by_stdin = invoke(petsum, ["summarize", "-", "--model", str(pet_run)], input=REPORT.encode("utf-8"))
    assert by_file.exit_code == 0 and by_stdin.exit_code == 0
    assert by_file.stdout == by_stdin.stdout  # same text, whatever the encoding


@pytest.mark.slow
@pytest.mark.parametrize(
    "content, message",
    [(b"   \n\t ", "empty"), (b"\x00\x01\x02binary\x00", "binary")],
)
def test_summarize_bad_input_is_one_line_error(pet_run, tmp_path, content, message):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    res = invoke(petsum, ["summarize", str(f), "--model", str(pet_run)])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and message in res.stderr and res.stderr.count("\n") == 1
    assert "Traceback" not in res.output


def test_summarize_missing_file_and_model(tmp_path):
    res = invoke(petsum, ["summarize", str(tmp_path / "nope.txt"), "--model", str(tmp_path)])
    assert res.exit_code == 2 and "no such file" in res.stderr
    f = tmp_path / "r.txt"
    f.write_text(REPORT, encoding="utf-8")
    res = invoke(petsum, ["summarize", str(f), "--model", str(tmp_path)])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and "model folder" in res.stderr


@pytest.mark.parametrize(
    "csv_text, message",
    [
        ("findings,impression\na,b\n", "no column question"),
        ('question,answer,qid\n"unterminated,x,1\n', "no usable training rows"),
        ("question,answer,qid\n,,1\n", "no usable training rows (1 empty"),
    ],
)
def test_train_bad_csv(tmp_path, csv_text, message):
    f = tmp_path / "d.csv"
    f.write_text(csv_text, encoding="utf-8")
    res = invoke(petsum, ["train", "--data", str(f), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and message in res.stderr and "Traceback" not in res.output


@pytest.mark.parametrize(
    "sets, field",
    [
        (["train.lr=-1"], "train.lr"),
        (["train.nope=1"], "train.nope"),
        (["model.d_model=30"], "d_model"),
        (["oops"], "section.field=value"),
    ],
)
def test_train_bad_config_names_the_field(tmp_path, pet_csv, sets, field):
    args = ["train", "--data", str(pet_csv), "--out", str(tmp_path / "o")]
    for s in sets:
        args += ["--set", s]
    res = invoke(petsum, args)
    assert res.exit_code == 2 and field in res.stderr and res.stderr.count("\n") == 1


@pytest.mark.slow
def test_train_config_file(tmp_path, pet_csv):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "train:\n  max_steps: 2\n  batch_size: 8\n"
        "model:\n  d_model: 32\n  d_ff: 64\n  num_layers: 1\n  num_heads: 2\n  vocab_size: 300\n",
        encoding="utf-8",
    )
    res = invoke(
        petsum,
        ["train", "--data", str(pet_csv), "--out", str(tmp_path / "o"), "--config", str(cfg), "--method", "direct"],
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "o" / "config.json").read_text())
    assert saved["train"]["max_steps"] == 2 and saved["train"]["method"] == "direct" and saved["model"]["d_model"] == 32
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n", encoding="utf-8")
    res = invoke(petsum, ["train", "--data", str(pet_csv), "--out", str(tmp_path / "o2"), "--config", str(bad)])
    assert res.exit_code == 2 and "cannot parse config" in res.stderr


@pytest.mark.slow
def test_mwp_train_and_solve(tmp_path, math_jsonl):
    out = tmp_path / "run"
    res = invoke(mwp, ["train", "--data", str(math_jsonl), "--out", str(out), *tiny_sets(**{"train.max_steps": 3})])
    assert res.exit_code == 0, res.output
    preds = tmp_path / "pred.jsonl"
    res = invoke(
        mwp, ["solve", "--data", str(math_jsonl), "--model", str(out), "--limit", "3", "--json", "--out", str(preds)]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout)
    assert metrics["n"] == 3 and 0 <= metrics["correct"] <= 3 and {"accuracy", "no_answer"} <= set(metrics)
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    assert len(rows) == 3 and all(r["correct"] is False or r["answer"] == r["gold"] for r in rows)
    res = invoke(mwp, ["solve", "How many legs do 3 cats have?", "--model", str(out), "--json"])
    assert res.exit_code == 0 and "answer" in json.loads(res.stdout)


def test_mwp_solve_needs_exactly_one_input(tmp_path):
    res = invoke(mwp, ["solve", "--model", str(tmp_path)])
    assert res.exit_code == 2 and "QUESTION or --data" in res.stderr


@pytest.mark.parametrize("cmd", ["petsum", "mwp"])
def test_help_is_fast(cmd):
    code = (
        f"import time; t=time.perf_counter(); from {cmd}.cli import main; import sys; sys.argv=['{cmd}','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint(time.perf_counter()-t, file=sys.stderr)"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0 and "Usage" in proc.stdout
    assert "torch" not in proc.stdout
    assert elapsed < 1.0, f"{cmd} --help took {elapsed:.2f}s"
    leaked = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; import {cmd}.cli; print('torch' in sys.modules or 'transformers' in sys.modules)",
        ],
        capture_output=True,
        text=True,
    )
    assert leaked.stdout.strip() == "False"
