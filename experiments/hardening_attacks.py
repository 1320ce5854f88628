"""Issue 33's attacks on the command line, run against a checkout: what each one does there.

    python experiments/hardening_attacks.py                      # this checkout
    python experiments/hardening_attacks.py --checkout OLD_TREE  # e.g. a `git worktree` of an older commit

Each attack builds its own input in a temporary folder and runs `petsum` (or `mwp`) from the
checkout in a subprocess, with the shipped default model and greedy decoding where a model is
needed. A row gives the exit code, whether a traceback was printed, the first `error:` line (or
the record-level outcome) and the seconds taken. Inputs are made up here; no report text is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NORMAL = (
    "脑部：双侧大脑半球对称，皮质代谢分布均匀，未见局灶性代谢增高或减低区。      "
    "胸部：双肺纹理清晰，未见结节及实变影，未见异常放射性浓聚。纵隔居中，未见代谢增高淋巴结。      "
    "腹部：肝脏形态大小正常，未见异常放射性浓聚。胰腺未见异常。      "
    "骨骼肌肉：全身骨骼未见骨质破坏及异常放射性浓聚。"
)


def run(
    checkout: Path, tool: str, args: list[str], cwd: Path, timeout: float = 300, stdin: bytes | None = None
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "2", "PYTHONWARNINGS": "default"}
    cmd = [sys.executable, "-c", f"import sys; from {tool}.cli import main; sys.argv[0] = '{tool}'; main()", *args]
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired:
        return {"rc": "timeout", "traceback": False, "said": f"killed after {timeout:.0f} s", "s": timeout}
    err = p.stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in err.splitlines() if line.strip() and "Warning" not in line]
    fallback = lines[-1] if p.returncode not in (0, 3) and lines else ""  # 3: a batch with error records
    said = next((line for line in lines if line.startswith("error:")), fallback)
    return {
        "rc": p.returncode,
        "traceback": "Traceback" in err,
        "said": said[:110],
        "s": round(time.perf_counter() - start, 1),
        "stdout": p.stdout.decode("utf-8", "replace"),
    }


def attacks(checkout: Path, tmp: Path) -> list[tuple[str, dict]]:
    default = checkout / "petsum" / "models" / "default"
    rows: list[tuple[str, dict]] = []

    def pet(name: str, *args: str, **kw) -> dict:
        got = run(checkout, "petsum", list(args), tmp, **kw)
        rows.append((name, got))
        return got

    # 1. invisible characters inside a negation
    (tmp / "normal.txt").write_text(NORMAL, encoding="utf-8")
    (tmp / "zwsp.txt").write_text(NORMAL.replace("未见", "未\u200b见"), encoding="utf-8")
    (tmp / "space.txt").write_text(NORMAL.replace("未见", "未 见"), encoding="utf-8")
    clean = pet("1. normal report", "summarize", "normal.txt", "--consensus", "0")["stdout"]
    for name in ("zwsp", "space"):
        got = pet(f"1. normal report, 未见 with {name}", "summarize", f"{name}.txt", "--consensus", "0")
        got["said"] = (
            "same impression" if got["stdout"] == clean else f"impression changed: {got['stdout'].count('、')} items"
        )
    # 2. broken model folders
    for name, breaks in [
        (
            "truncated model.safetensors",
            lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:1000]),
        ),
        ("ases.json is []", lambda d: (d / "ases.json").write_text("[]")),
        ("ases.json roles {}", lambda d: (d / "ases.json").write_text('{"method": "direct", "roles": {}}')),
        (
            "ases.json max_source_len -5",
            lambda d: (d / "ases.json").write_text(
                json.dumps({**json.loads((default / "ases.json").read_text()), "max_source_len": -5})
            ),
        ),
        ("tokenizer.json is {}", lambda d: (d / "tokenizer.json").write_text("{}")),
    ]:
        folder = tmp / f"model-{len(rows)}"
        shutil.copytree(default, folder)
        breaks(folder)
        pet(f"2. {name}", "summarize", "normal.txt", "--model", str(folder), "--consensus", "0")
    # 3. numbers that are not finite
    toy = str(ROOT / "tests" / "fixtures" / "pet_toy.csv")
    toy_cfg = str(ROOT / "configs" / "toy.yaml")
    pet("3. --gamma inf", "train", "--data", toy, "--out", str(tmp / "r1"), "--config", toy_cfg, "--gamma", "inf")
    pet(
        "3. --set train.lr=inf",
        "train",
        "--data",
        toy,
        "--out",
        str(tmp / "r2"),
        "--config",
        toy_cfg,
        "--set",
        "train.lr=inf",
    )
    # 4. mwp: a byte that is not UTF-8 in the question
    rows.append(("4. mwp solve $'2+2? \\xff'", run(checkout, "mwp", ["solve", os.fsdecode(b"2+2? \xff")], tmp)))
    # 5. --out a folder
    (tmp / "reports").mkdir()
    (tmp / "reports" / "a.txt").write_text(NORMAL, encoding="utf-8")
    pet("5. batch --out a folder", "batch", "reports", "--out", str(tmp / "reports"), "--consensus", "0")
    # 6. a file name that is not UTF-8
    gbk = tmp / "gbk"
    gbk.mkdir()
    (gbk / os.fsdecode("报告".encode("gbk") + b".txt")).write_text(NORMAL, encoding="utf-8")
    got = pet("6. batch: a GBK file name", "batch", "gbk", "--out", str(tmp / "gbk.jsonl"), "--consensus", "0")
    got["said"] = (
        got["said"]
        or f"{len((tmp / 'gbk.jsonl').read_text().splitlines()) if (tmp / 'gbk.jsonl').exists() else 0} record(s)"
    )
    # 7. a CSV field over the field limit; a deeply nested JSONL line
    with (tmp / "huge.csv").open("w", encoding="utf-8") as f:
        f.write(f'question,qid\n"{NORMAL}",a\n"{"肝" * 50_000_000}",b\n"{NORMAL}",c\n')
    got = pet("7. batch: a 50 MB CSV cell", "batch", "huge.csv", "--out", str(tmp / "huge.jsonl"), "--consensus", "0")
    got["said"] = got["said"] or _records(tmp / "huge.jsonl")
    (tmp / "deep.jsonl").write_text(
        json.dumps({"question": NORMAL, "qid": "a"}) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n"
    )
    got = pet(
        "7. batch: a JSONL line nested 100,000 deep",
        "batch",
        "deep.jsonl",
        "--out",
        str(tmp / "deep.out.jsonl"),
        "--consensus",
        "0",
    )
    got["said"] = got["said"] or _records(tmp / "deep.out.jsonl")
    # 10. UTF-32
    (tmp / "u32").mkdir()
    (tmp / "u32" / "a.txt").write_bytes(NORMAL.encode("utf-32"))
    got = pet("10. batch: a UTF-32 file", "batch", "u32", "--out", str(tmp / "u32.jsonl"), "--consensus", "0")
    got["said"] = got["said"] or _records(tmp / "u32.jsonl")
    # 11. a dangling link named .txt
    (tmp / "links").mkdir()
    (tmp / "links" / "a.txt").write_text(NORMAL, encoding="utf-8")
    (tmp / "links" / "b.txt").symlink_to(tmp / "nowhere.txt")
    got = pet("11. batch: a dangling link", "batch", "links", "--out", str(tmp / "links.jsonl"), "--consensus", "0")
    got["said"] = got["said"] or _records(tmp / "links.jsonl")
    # 12. quadratic normalization: 200 KB of spaces
    (tmp / "spaces.txt").write_text("肝脏" + " " * 200_000 + "x", encoding="utf-8")
    pet("12. summarize: 200 KB of spaces", "summarize", "spaces.txt", "--consensus", "0", timeout=120)
    # 15. a CSV without a header row
    (tmp / "nohead.csv").write_text("P0012345,张三丰,男,65,肝囊肿\n", encoding="utf-8")
    got = pet("15. evaluate: a CSV without a header", "evaluate", "--data", "nohead.csv", "--consensus", "0")
    got["said"] = ("QUOTES THE ROW: " if "张三丰" in got["said"] else "") + got["said"]
    return rows


def _records(path: Path) -> str:
    if not path.exists():
        return "no output"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    first = lines[0].get("impression", "")[:12] if lines else ""
    said = f"{len(lines)} records, {sum('error' in r for r in lines)} error records"
    return said + (f"; the first impression begins {first!r}" if first else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, default=ROOT, help="the tree whose petsum and mwp are attacked")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = attacks(args.checkout.resolve(), Path(tmp))
    print("| attack | exit | traceback | outcome | s |")
    print("|---|---|---|---|---|")
    for name, got in rows:
        print(f"| {name} | {got['rc']} | {'yes' if got['traceback'] else 'no'} | {got['said']} | {got['s']} |")


if __name__ == "__main__":
    main()
