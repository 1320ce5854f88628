"""`petsum batch`, `evaluate`, `segment` and `train --gamma` through CliRunner with real files,
and a real `kill -9` of a batch run followed by `--resume`."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import GOOD, REPO, SECRET, reports_folder, tiny_sets

from petsum.cli import main as petsum


def invoke(args, **kw):
    return CliRunner().invoke(petsum, args, **kw)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_batch_folder_one_record_per_file_in_order(pet_run, tmp_path):
    out = tmp_path / "out.jsonl"
    res = invoke(
        ["batch", str(reports_folder(tmp_path)), "--out", str(out), "--model", str(pet_run), "--batch-size", "3"]
    )
    assert res.exit_code == 3, res.output  # some records failed
    recs = read_jsonl(out)
    assert [r["id"] for r in recs] == ["a_good", "b_gbk", "c_empty", "d_binary", "e_english", "f_huge", "g_one_section"]
    by_id = {r["id"]: r for r in recs}
    for ok in ["a_good", "b_gbk", "f_huge", "g_one_section"]:
        assert by_id[ok]["impression"].endswith("未见明显异常代谢征象。")
    assert "empty" in by_id["c_empty"]["error"] and "binary" in by_id["d_binary"]["error"]
    assert "no Chinese text" in by_id["e_english"]["error"]
    assert any("truncated" in w for w in by_id["f_huge"]["warnings"])
    assert SECRET not in res.output and "Traceback" not in res.output
    assert "errors (whole output)" in res.stderr  # the summary table


@pytest.mark.slow
def test_batch_csv_columns_ids_and_broken_rows(pet_run, tmp_path):
    src = tmp_path / "in.csv"
    with src.open("w", encoding="gbk", newline="") as f:  # hospital exports are often GBK
        w = csv.writer(f)
        w.writerow(["report", "accession"])
        w.writerow([GOOD, "A1"])
        w.writerow(["", "A2"])
        w.writerow([GOOD, ""])  # no id: the record number stands in
    with src.open("a", encoding="gbk", newline="") as f:
        f.write("肝右叶结节\n")  # a row cut short
    out = tmp_path / "out.jsonl"
    res = invoke(
        [
            "batch",
            str(src),
            "--out",
            str(out),
            "--column",
            "report",
            "--id-column",
            "accession",
            "--model",
            str(pet_run),
        ]
    )
    assert res.exit_code == 3, res.output
    recs = read_jsonl(out)
    assert [r["id"] for r in recs] == ["A1", "A2", "3", "4"]
    assert "impression" in recs[0] and "empty" in recs[1]["error"] and "impression" in recs[2]
    assert "fields" in recs[3]["error"]


@pytest.mark.slow
def test_batch_jsonl_and_clean_run_exits_0(pet_run, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": 7, "question": GOOD}, ensure_ascii=False)
        + "\n\n"
        + json.dumps({"id": 8, "question": GOOD})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    res = invoke(["batch", str(src), "--out", str(out), "--model", str(pet_run)])
    assert res.exit_code == 0, res.output
    records = read_jsonl(out)
    assert [r["id"] for r in records] == ["7", "8"]
    for r in records:  # the structured impression rides along (docs/serve.md, "The summary JSON")
        assert {"impression", "text", "opening", "items", "closing"} <= set(r)
        assert r["impression"].endswith(r["closing"]) and r["text"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "question": "x"\n[1, 2]\n{"id": 3}\n', encoding="utf-8")
    res = invoke(["batch", str(bad), "--out", str(tmp_path / "bad_out.jsonl"), "--model", str(pet_run)])
    assert res.exit_code == 3
    errors = [r["error"] for r in read_jsonl(tmp_path / "bad_out.jsonl")]
    assert "not valid JSON" in errors[0] and "not a JSON object" in errors[1] and "no text field" in errors[2]


def unusable(kind: str, tmp: Path) -> Path:
    if kind == "no_column":
        (tmp / "in.csv").write_text("findings,qid\nx,1\n", encoding="utf-8")
        return tmp / "in.csv"
    if kind == "pdf":
        (tmp / "in.pdf").write_bytes(b"%PDF-1.4")
        return tmp / "in.pdf"
    if kind == "empty_dir":
        (tmp / "empty").mkdir()
        return tmp / "empty"
    if kind == "binary_csv":
        (tmp / "in.csv").write_bytes(b"question\n\x00\x01\x02")
        return tmp / "in.csv"
    return tmp / "missing.csv"


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, message",
    [
        ("no_column", "no column 'question'"),
        ("pdf", "expected a folder"),
        ("missing", "no such file"),
        ("empty_dir", "no .txt files"),
        ("binary_csv", "binary"),
    ],
)
def test_batch_unusable_input_is_exit_2(pet_run, tmp_path, kind, message):
    res = invoke(["batch", str(unusable(kind, tmp_path)), "--out", str(tmp_path / "o.jsonl"), "--model", str(pet_run)])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and message in res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "o.jsonl").exists()


@pytest.mark.slow
def test_batch_refuses_to_clobber_and_resume_checks_the_input(pet_run, tmp_path):
    folder = reports_folder(tmp_path)
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "zzz", "impression": "x"}\n', encoding="utf-8")
    res = invoke(["batch", str(folder), "--out", str(out), "--model", str(pet_run)])
    assert res.exit_code == 2 and "--resume" in res.stderr
    res = invoke(["batch", str(folder), "--out", str(out), "--model", str(pet_run), "--resume"])
    assert res.exit_code == 2 and "does not continue this input" in res.stderr


@pytest.mark.slow
def test_resume_cuts_a_torn_line_and_finishes(pet_run, tmp_path):
    folder = reports_folder(tmp_path)
    full = tmp_path / "full.jsonl"
    invoke(["batch", str(folder), "--out", str(full), "--model", str(pet_run)])
    lines = full.read_text(encoding="utf-8").splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_text("".join(lines[:3]) + lines[3][:10], encoding="utf-8")  # killed mid-line
    res = invoke(["batch", str(folder), "--out", str(part), "--model", str(pet_run), "--resume"])
    assert res.exit_code == 3
    assert read_jsonl(part) == read_jsonl(full)


@pytest.mark.slow
def test_kill_9_then_resume_writes_every_record_exactly_once(pet_run, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    ids = [f"r{i:03d}" for i in range(60)]
    for i, rid in enumerate(ids):
        (folder / f"{rid}.txt").write_text(GOOD.replace("6.1", f"{i}.1"), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    cmd = [
        sys.executable,
        "-c",
        "from petsum.cli import main; main()",
        "batch",
        str(folder),
        "--out",
        str(out),
        "--model",
        str(pet_run),
        "--batch-size",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    written = out.read_bytes().count(b"\n")
    assert 3 <= written < len(ids)
    res = invoke(["batch", str(folder), "--out", str(out), "--model", str(pet_run), "--resume", "--batch-size", "8"])
    assert res.exit_code == 0, res.output
    assert [r["id"] for r in read_jsonl(out)] == ids
    assert all("impression" in r for r in read_jsonl(out))


@pytest.mark.slow
def test_evaluate_json_and_heldout(pet_run, pet_csv, tmp_path):
    res = invoke(
        [
            "evaluate",
            "--data",
            str(pet_csv),
            "--model",
            str(pet_run),
            "--limit",
            "5",
            "--json",
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert set(m) >= {"bleu", "rouge1", "rouge2", "rougeL", "mr", "n", "mr_by_region"} and m["n"] == 5
    assert all(0 <= m[k] <= 100 for k in ["bleu", "rouge1", "rouge2", "rougeL", "mr"])
    preds = read_jsonl(tmp_path / "p.jsonl")
    assert len(preds) == 5 and all(isinstance(r["warnings"], list) for r in preds)  # the guard's counts, no report text
    held = json.loads(
        invoke(["evaluate", "--data", str(pet_csv), "--model", str(pet_run), "--heldout", "--json"]).stdout
    )
    val_groups = {
        json.loads(line)["id"].split("#")[0] for line in (pet_run / "data" / "model_val.jsonl").read_text().splitlines()
    }
    assert held["n"] == len(val_groups) >= 1  # exactly the reports training held out
    table = invoke(["evaluate", "--data", str(pet_csv), "--model", str(pet_run), "--limit", "3"])
    assert table.exit_code == 0 and "ROUGE-L" in table.stderr and "MR" in table.stderr


@pytest.mark.slow
def test_evaluate_can_try_another_ngram_ban(pet_run, pet_csv, tmp_path):
    """--no-repeat-ngram overrides the model's decoding for one evaluation (to tune it on validation)."""
    preds = {}
    for n in ("0", "1"):
        res = invoke(
            [
                "evaluate",
                "--data",
                str(pet_csv),
                "--model",
                str(pet_run),
                "--limit",
                "6",
                "--json",
                "--no-repeat-ngram",
                n,
                "--out",
                str(tmp_path / f"{n}.jsonl"),
            ]
        )
        assert res.exit_code == 0, res.output
        preds[n] = [r["impression"] for r in read_jsonl(tmp_path / f"{n}.jsonl")]
    # Unbanned, the 4-step model says one character over and over (which the assembler writes once:
    # `1、坏。`); with every repeated token banned it cannot.
    looping = [i for i, text in enumerate(preds["0"]) if re.search(r"(..+)\1\1", text) or re.match(r"1、.。\n", text)]
    assert looping
    assert all(preds["1"][i] != preds["0"][i] for i in looping)
    res = invoke(["evaluate", "--data", str(pet_csv), "--model", str(pet_run), "--no-repeat-ngram", "-1"])
    assert res.exit_code == 2 and "Traceback" not in res.output


@pytest.mark.slow
def test_normal_penalty_steers_regions_away_from_no_anomaly(pet_run, pet_csv, tmp_path):
    """The 'no anomaly' answer's first token biased at the first step: pushed up, every region is
    normal; pushed down, none starts with it; `evaluate --normal-penalty` decodes the same way."""
    from petsum.data.instances import NORMAL
    from petsum.data.pairs import load_pairs
    from petsum.summarize.summarizer import Summarizer, normal_bias

    texts = [ex.question for ex in load_pairs(pet_csv)[:4]]
    summarizer = Summarizer(pet_run)
    own = summarizer.models.generate
    summarizer.models.generate = own.model_copy(update={"first_token_bias": {NORMAL: 1e4}})
    assert all(r.text.startswith(NORMAL[:4]) for s in summarizer.summarize(texts) for r in s.regions)
    summarizer.models.generate = own.model_copy(update={"first_token_bias": normal_bias(1e4)})
    away = summarizer.summarize(texts)
    assert not any(r.text.startswith(NORMAL[:4]) for s in away for r in s.regions)
    res = invoke(
        [
            "evaluate",
            "--data",
            str(pet_csv),
            "--model",
            str(pet_run),
            "--limit",
            "4",
            "--json",
            "--normal-penalty",
            "1e4",
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert res.exit_code == 0, res.output
    assert [r["impression"] for r in read_jsonl(tmp_path / "p.jsonl")] == [s.impression for s in away]
    res = invoke(["evaluate", "--data", str(pet_csv), "--model", str(pet_run), "--normal-penalty", "-1"])
    assert res.exit_code == 2 and "Traceback" not in res.output


@pytest.mark.slow
def test_eos_bias_reaches_every_region_and_is_checked(pet_run, pet_csv, tmp_path):
    """`generate.eos_bias` moves where each region's output ends: pushed up, every output is empty
    (the report reads as normal); pushed down, none is shorter. `evaluate --eos-bias` decodes the same way."""
    from petsum.data.pairs import load_pairs
    from petsum.summarize.summarizer import Summarizer

    texts = [ex.question for ex in load_pairs(pet_csv)[:4]]
    summarizer = Summarizer(pet_run)
    own = summarizer.models.generate
    plain = summarizer.summarize(texts)
    summarizer.models.generate = own.model_copy(update={"eos_bias": 1e4})
    assert all(r.text == "" for s in summarizer.summarize(texts) for r in s.regions)
    summarizer.models.generate = own.model_copy(update={"eos_bias": -1e4})
    longer = summarizer.summarize(texts)
    assert all(len(b.text) >= len(a.text) for x, y in zip(plain, longer) for a, b in zip(x.regions, y.regions))
    res = invoke(
        [
            "evaluate",
            "--data",
            str(pet_csv),
            "--model",
            str(pet_run),
            "--limit",
            "4",
            "--json",
            "--eos-bias",
            "-1e4",
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert res.exit_code == 0, res.output
    assert [r["impression"] for r in read_jsonl(tmp_path / "p.jsonl")] == [s.impression for s in longer]
    res = invoke(["evaluate", "--data", str(pet_csv), "--model", str(pet_run), "--eos-bias", "-inf"])
    assert res.exit_code == 2 and "eos_bias" in res.output and "Traceback" not in res.output


def test_segment_writes_datasets_with_gamma(pet_csv, tmp_path):
    res = invoke(
        [
            "segment",
            "--data",
            str(pet_csv),
            "--out",
            str(tmp_path / "seg"),
            "--gamma",
            "0.5",
            "--strategy",
            "rouge",
            "--beta",
            "1.2",
            *tiny_sets(),
        ]
    )
    assert res.exit_code == 0, res.output
    facts = json.loads(res.stdout)
    assert facts["instance_stats"]["normal_used"] == 8  # round(0.5 × 16 reports)
    rows = read_jsonl(tmp_path / "seg" / "data" / "model_train.jsonl") + read_jsonl(
        tmp_path / "seg" / "data" / "model_val.jsonl"
    )
    normal = [r for r in rows if r["target"].startswith("未见明显异常")]
    assert len(normal) == 8 and all(r["tag"] == "ES" for r in normal)
    assert {r["tag"] for r in rows} == {"ES", "AS"}
    written = json.loads((tmp_path / "seg" / "config.json").read_text())
    assert written["pet"]["gamma"] == 0.5 and "gamma" not in written["segment"]  # PET's own section of the config


@pytest.mark.slow
def test_train_gamma_is_recorded(pet_run):
    manifest = json.loads((pet_run / "ases.json").read_text())
    assert manifest["instances"] == "region" and manifest["instance_stats"]["gamma"] == 1.0
    ids = [json.loads(line)["id"] for line in (pet_run / "data" / "model_train.jsonl").read_text().splitlines()]
    assert all("#" in i for i in ids)  # region instances, `{report}#{region}`


@pytest.mark.slow
def test_csv_without_header_never_quotes_the_report(pet_run, tmp_path):
    src = tmp_path / "noheader.csv"
    src.write_text(f"1,{SECRET}，放射性摄取增高，考虑恶性肿瘤可能，建议进一步检查\n", encoding="utf-8")
    res = invoke(["batch", str(src), "--out", str(tmp_path / "o.jsonl"), "--model", str(pet_run)])
    assert res.exit_code == 2 and "looks like data" in res.stderr and SECRET not in res.stderr


@pytest.mark.slow
def test_heldout_needs_a_run_folder(pet_run, pet_csv):
    res = invoke(["evaluate", "--data", str(pet_csv), "--model", str(pet_run / "model" / "last"), "--heldout"])
    assert res.exit_code == 2 and "training run" in res.stderr and "Traceback" not in res.output
