"""`petsum evaluate`: summarize reports with known impressions and score them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from petsum.data.pairs import load_pairs
from petsum.evaluation.metrics import evaluate_texts
from petsum.text.words import available
from shared.dataset import write_jsonl
from shared.schema import Example
from shared.textio import InputError, read_jsonl_rows

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from petsum.summarize.summarizer import Summarizer


def heldout(reports: list[Example], run: Path) -> list[Example]:
    """The reports a training run held out for validation (same split rule, seed and share)."""
    from shared.pipeline import split_examples

    cfg_file = run / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{run}: no config.json, so no record of which reports it held out")
    data = json.loads(cfg_file.read_text(encoding="utf-8")).get("data")
    if not isinstance(data, dict) or "val_fraction" not in data:
        raise FileNotFoundError(
            f"{run} is a model folder, not a training run: --heldout needs the run folder `petsum train` wrote"
        )
    return split_examples(reports, data["val_fraction"], data["split_seed"])[1]


def evaluate_reports(
    summarizer: "Summarizer", reports: list[Example], console: "Console", batch_size: int = 32, word_rouge: bool = False
) -> tuple[dict, list[dict]]:
    """(metrics, one prediction record per report, with the summarizer's warnings: how often the
    grounding guard stepped in, say). A report the summarizer rejects scores as an empty impression
    and is counted in `failed`."""
    from rich.progress import Progress

    preds: list[dict] = []
    with Progress(console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("evaluating", total=len(reports))
        for i in range(0, len(reports), batch_size):
            chunk = reports[i : i + batch_size]
            for ex, res in zip(chunk, summarizer.summarize([ex.question for ex in chunk])):
                if isinstance(res, Exception):
                    preds.append({"id": ex.id, "impression": "", "reference": ex.target, "error": str(res)})
                else:
                    preds.append(
                        {"id": ex.id, "impression": res.impression, "reference": ex.target, "warnings": res.warnings}
                    )
            bar.advance(task, len(chunk))
    metrics = evaluate_texts(
        [p["impression"] for p in preds], [p["reference"] for p in preds], word_rouge, [ex.question for ex in reports]
    )
    metrics["failed"] = sum("error" in p for p in preds)
    return metrics, preds


def evaluate_file(
    summarizer: "Summarizer",
    data: str,
    console: "Console",
    limit: int | None = None,
    held_out: bool = False,
    words: bool = False,
    batch_size: int = 32,
    pred_path: str | None = None,
) -> dict:
    """`petsum evaluate`: the metrics of `summarizer` on `data` (its first `limit` reports, or
    those the run held out); with `pred_path`, each prediction and its reference written there."""
    if words and not available():
        raise InputError("--words needs jieba: pip install jieba")
    reports = heldout(load_pairs(data), summarizer.path) if held_out else load_pairs(data)
    metrics, preds = evaluate_reports(summarizer, reports[:limit], console, batch_size, words)
    if pred_path:
        write_jsonl(preds, Path(pred_path))
    return metrics


def score_predictions(pred_path: str | Path, data: str | Path, word_rouge: bool = False) -> dict:
    """The metrics of an existing predictions file (`petsum evaluate --out`: JSONL records with id,
    impression and reference), each joined by id to its findings in `data`: to score an earlier
    run with metrics it was not scored with. A record the summarizer rejected (`error`) scores as
    its empty impression and is counted in `failed`."""
    preds = list(read_jsonl_rows(pred_path))
    if not preds:
        raise InputError(f"{pred_path}: no predictions")
    malformed = sum(not {"id", "impression", "reference"} <= p.keys() for p in preds)
    if malformed:
        raise InputError(f"{pred_path}: {malformed} records without id, impression and reference")
    findings = {ex.id: ex.question for ex in load_pairs(data)}
    missing = sum(str(p["id"]) not in findings for p in preds)
    if missing:
        raise InputError(f"{pred_path}: {missing} of {len(preds)} prediction ids are not in {data}")
    metrics = evaluate_texts(
        [p["impression"] for p in preds],
        [p["reference"] for p in preds],
        word_rouge,
        [findings[str(p["id"])] for p in preds],
    )
    metrics["failed"] = sum("error" in p for p in preds)
    return metrics


def metrics_table(metrics: dict, model: str) -> "Table":
    """The metrics as a rich table titled with the model: what `petsum evaluate` prints without
    `--json`; the contradiction rates and the follow-up / first-exam subsets when they were computed."""
    from rich.table import Table

    table = Table(title=f"petsum evaluate · {model} · {metrics['n']} reports")
    table.add_column("metric")
    table.add_column("value", justify="right")
    names = [("BLEU", "bleu"), ("ROUGE-1", "rouge1"), ("ROUGE-2", "rouge2"), ("ROUGE-L", "rougeL")]
    names += [(f"word {n}", f"word_{k}") for n, k in names[1:] if f"word_{k}" in metrics]
    for name, key in names:
        table.add_row(name, f"{metrics[key]:.2f}")
    table.add_row(f"MR ↓ ({metrics['mr_n']} reports with organs)", f"{metrics['mr']:.2f}")
    for region, m in metrics["mr_by_region"].items():
        table.add_row(f"  MR {region} ({m['n']})", f"{m['mr']:.2f}")
    if "er" in metrics:
        table.add_row(f"ER ↓ ({metrics['er_n']} impressions naming organs)", f"{metrics['er']:.2f}")
    if "contradictions" in metrics:
        table.add_row(
            f"contradictions ↓ (per 100 of {metrics['contradiction_n']} items)", f"{metrics['contradictions']:.2f}"
        )
        table.add_row(
            f"  references' (per 100 of {metrics['reference_contradiction_n']} items)",
            f"{metrics['reference_contradictions']:.2f}",
        )
    for key, name in (("follow_up", "follow-up exams"), ("first_exam", "first exams")):
        if key in metrics:
            m = metrics[key]
            table.add_row(f"{name} ({m['n']} reports): ROUGE-L", f"{m['rougeL']:.2f}")
            table.add_row("  BLEU", f"{m['bleu']:.2f}")
            table.add_row("  MR ↓", f"{m['mr']:.2f}")
            rates = f"{m['contradictions']:.2f} · {m['reference_contradictions']:.2f}"
            table.add_row("  contradictions ↓ · references'", rates)
    if metrics.get("failed"):
        table.add_row("reports rejected", str(metrics["failed"]))
    return table
