"""Reports/s of the inference paths, side by side in one process on the same reports and model:

1. loop   — one report at a time, one region at a time, batch 1, plain Hugging Face `generate`,
            re-tokenizing the growing text every iteration (how the reference code runs)
2. torch  — our batched iterative generator (`petsum batch`'s path), batch 32
3. ort32  — the same over onnxruntime, fp32 export
4. ort8   — the same over onnxruntime, int8 export
(`--cuda` adds torch and onnxruntime on the GPU at batch 64.)

Each backend is timed after a warm-up; the rounds are interleaved so machine noise hits all alike,
and the best round counts. Printed: reports/s, ratios, how many impressions equal the loop's, and
char ROUGE-L against the reference impressions.

    python benchmarks/inference.py --model runs/pet-usm [--reports 100] [--threads 2]
    python benchmarks/inference.py --peak-memory ../shared/data/cpet/pet.csv --model EXPORT_DIR

The second form runs `petsum batch` over the file in a child process and prints the peak RSS of
its process tree (`--batch-args "--consensus 0 --num-workers 2"` passes options on).
Reads ../shared/data/cpet/pet.csv (override with PETSUM_PET_CSV); exports go to a temp folder
unless --onnx / --onnx-int8 name existing ones.
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

DATA = Path(
    os.environ.get(
        "PETSUM_PET_CSV", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cpet" / "pet.csv"
    )
)


def loop_summarize(summarizer, texts: list[str]) -> list[str]:
    """The per-report baseline: every region of every report decoded alone, batch 1."""
    from petsum.assemble.impression import assemble
    from petsum.summarize.summarizer import sections_of
    from shared.generate import generate, result_text

    cfg = summarizer.models.generate.model_copy(update={"batch_size": 1})
    out = []
    for text in texts:
        sections, _ = sections_of(text)
        regions = []
        for region, body in sections:
            res = generate(summarizer.models, [body], summarizer.adapter, cfg)[0]
            regions.append((region, result_text(summarizer.adapter, res)))
        out.append(assemble(regions))
    return out


def batched_summarize(summarizer, texts: list[str], batch: int) -> list[str]:
    out = []
    for i in range(0, len(texts), batch):
        out += [s.impression for s in summarizer.summarize(texts[i : i + batch])]
    return out


def timed(fn, texts: list[str]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    out = fn(texts)
    return time.perf_counter() - start, out


def run(
    model: Path, n: int, threads: int, batch: int, rounds: int, onnx32: Path | None, onnx8: Path | None, cuda: bool
) -> dict:
    import torch

    from deploy.export import export_run
    from petsum.data.pairs import load_pairs
    from petsum.evaluation.metrics import rouge_scores
    from petsum.evaluation.scoring import heldout
    from petsum.summarize.summarizer import Summarizer

    torch.set_num_threads(threads)
    reports = heldout(load_pairs(DATA), model)[:n]  # reports the model never trained on
    texts, refs = [r.question for r in reports], [r.target for r in reports]
    tmp = Path(tempfile.mkdtemp(prefix="petsum-bench-"))  # removed at the end
    export_s = {}
    for name, given, int8 in (("ort32", onnx32, False), ("ort8", onnx8, True)):
        if given is None:
            start = time.perf_counter()
            export_run(model, tmp / name, int8=int8)
            export_s[name] = round(time.perf_counter() - start, 1)
    onnx32, onnx8 = onnx32 or tmp / "ort32", onnx8 or tmp / "ort8"

    def summarizer(path: Path, backend: str, device: str = "cpu", size: int = batch) -> Summarizer:
        return Summarizer(path, backend, size, device, threads)  # onnxruntime gets torch's thread count

    torch_s = summarizer(model, "torch")
    paths = {
        "loop": lambda t: loop_summarize(torch_s, t),
        "torch": lambda t: batched_summarize(torch_s, t, batch),
        "ort32": (lambda s: lambda t: batched_summarize(s, t, batch))(summarizer(onnx32, "onnx")),
        "ort8": (lambda s: lambda t: batched_summarize(s, t, batch))(summarizer(onnx8, "onnx")),
    }
    if cuda:
        gpu_torch = summarizer(model, "torch", "cuda", 64)
        gpu_ort = summarizer(onnx32, "onnx", "cuda", 64)
        paths["torch_cuda"] = lambda t: batched_summarize(gpu_torch, t, 64)
        paths["ort_cuda"] = lambda t: batched_summarize(gpu_ort, t, 64)
    for fn in paths.values():  # warm-up: first-call allocations and lazy initialisation
        fn(texts[:2])
    best: dict[str, float] = {}
    outputs: dict[str, list[str]] = {}
    for _ in range(rounds):
        for name, fn in paths.items():
            seconds, outputs[name] = timed(fn, texts)
            best[name] = min(best.get(name, float("inf")), seconds)
    rows = {}
    for name, seconds in best.items():
        same = sum(a == b for a, b in zip(outputs[name], outputs["loop"]))
        rows[name] = {
            "reports_per_s": round(len(texts) / seconds, 2),
            "seconds": round(seconds, 2),
            "same_as_loop": f"{same}/{len(texts)}",
            "rougeL": round(rouge_scores(outputs[name], refs)["rougeL"], 2),
        }
    ratios = {
        "ort8/loop": round(best["loop"] / best["ort8"], 2),
        "ort32/torch": round(best["torch"] / best["ort32"], 2),
        "torch/loop": round(best["loop"] / best["torch"], 2),
        "ort8/ort32": round(best["ort32"] / best["ort8"], 2),
    }
    diff = sum(a != b for a, b in zip(outputs["ort32"], outputs["torch"]))
    sizes = {
        k: round(sum(f.stat().st_size for f in p.rglob("*.onnx*")) / 1e6, 1)
        for k, p in (("ort32", onnx32), ("ort8", onnx8))
    }
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "model": str(model),
        "reports": len(texts),
        "threads": threads,
        "batch": batch,
        "rounds": rounds,
        "export_s": export_s,
        "results": rows,
        "ratios": ratios,
        "ort32_vs_torch_different": diff,
        "int8_rougeL_drop": round(rows["ort32"]["rougeL"] - rows["ort8"]["rougeL"], 2),
        "sizes_mb": sizes,
    }


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (kB)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            status = (d / "status").read_text()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(d.name))  # field 4: the parent pid
        rss[int(d.name)] = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def peak_memory(source: Path, model: Path, out: Path, extra: list[str] | None = None) -> dict:
    """Run `petsum batch` in a child process; its peak resident memory (the whole process tree,
    worker processes included, sampled every 0.2 s) and throughput."""
    start = time.perf_counter()
    petsum = Path(sys.executable).parent / "petsum"  # the console script of this environment
    cmd = [str(petsum), "batch", str(source), "--out", str(out), "--model", str(model), *(extra or [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.2)
    stderr = proc.stderr.read() if proc.stderr else ""
    seconds = time.perf_counter() - start
    records = sum(1 for _ in out.open(encoding="utf-8")) if out.exists() else 0
    return {
        "exit": proc.returncode,
        "records": records,
        "seconds": round(seconds, 1),
        "reports_per_s": round(records / seconds, 2),
        "peak_rss_mb": round(peak / 1024, 1),
        "stderr_tail": stderr.strip().splitlines()[-1:] if proc.returncode not in (0, 3) else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, required=True, help="training run folder (with --peak-memory: any model folder)"
    )
    parser.add_argument("--reports", type=int, default=100)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--onnx", type=Path, help="existing fp32 export of --model")
    parser.add_argument("--onnx-int8", type=Path, help="existing int8 export of --model")
    parser.add_argument("--cuda", action="store_true", help="also torch and onnxruntime on CUDA at batch 64")
    parser.add_argument("--peak-memory", type=Path, metavar="INPUT", help="measure `petsum batch INPUT` instead")
    parser.add_argument("--batch-args", default="", help="more `petsum batch` options for --peak-memory, one string")
    args = parser.parse_args()
    if args.peak_memory:
        with tempfile.TemporaryDirectory() as tmp:
            result = peak_memory(args.peak_memory, args.model, Path(tmp) / "out.jsonl", args.batch_args.split())
    else:
        result = run(
            args.model, args.reports, args.threads, args.batch, args.rounds, args.onnx, args.onnx_int8, args.cuda
        )
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
