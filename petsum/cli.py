"""`petsum`: train, and summarize PET/CT reports. Commands parse, validate, and call one function."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from deploy.cli import export_command
from petsum.salient import SOURCES
from shared.cli import fail, friendly_errors, run_training, serving_options, training_options

DEFAULT_MODEL = Path(__file__).parent / "models" / "default"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Summarize Chinese PET/CT findings into an impression with AS-ES trained models."""


def _consensus_option(fn):
    return click.option(
        "--consensus", type=click.IntRange(min=0), metavar="N",
        help="Draws per finding besides the greedy answer, the answer then the one that agrees most with the others, instead of "
        "the model's generate.consensus_samples (0: the greedy answer alone, several times faster).",
    )(fn)


def _gamma_option(fn):
    return click.option("--gamma", type=click.FloatRange(min=0), help="Normal-region samples per report (default: 1.0).")(fn)


def _source_option(fn):
    return click.option(
        "--source", type=click.Choice(list(SOURCES)), default="region", show_default=True,
        help="What the model reads of a region: its whole findings, only the sentences that report something (grounding), "
        "or those one finding at a time.",
    )(fn)


@main.command()
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="CSV with question (findings), answer (impression), qid.")
@click.option("--val", "val_data", type=click.Path(dir_okay=False), help="Validation CSV (e.g. val.csv of `petsum split`); default: a seeded share of --data.")
@_gamma_option
@_source_option
@click.option("--target", type=click.Choice(["impression", "copy"]), default="impression", show_default=True,
              help="What the model learns to write: a region's impression items, or (a warm-up to start impression training from) its own input.")
@training_options
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Training processes on this machine (DistributedDataParallel via torch's torchrun launcher).")
@friendly_errors
def train(
    data: str, val_data: str | None, gamma: float | None, source: str, target: str, method: str | None, strategy: str | None,
    beta: float | None, out: str, config_path: str | None, sets: tuple[str, ...], nproc: int,
) -> None:
    """Train a model on report → impression pairs (one instance per anatomical region)."""
    from petsum.adapter import PetAdapter
    from petsum.data import load_pairs
    from petsum.train import preparer, torchrun_args
    from shared.cli import build_config, launch_training
    from shared.distributed import launched_by_torchrun

    flags = {"segment.gamma": gamma}
    reports, val = load_pairs(data), load_pairs(val_data) if val_data else None  # bad input fails here, before any spawn
    if nproc > 1:
        if launched_by_torchrun():
            fail("--nproc starts its own processes; under torchrun, use torchrun's --nproc-per-node")
        build_config(config_path, sets, {"train.method": method, "segment.strategy": strategy, "segment.beta": beta, **flags})
        launch_training("petsum.train", nproc, torchrun_args(data, val_data, gamma, method, strategy, beta, out, config_path, sets, source, target))
        return
    run_training(reports, PetAdapter(), out, method, strategy, beta, config_path, sets, flags, preparer(source, target), val)


@main.command()
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="CSV with question (findings), answer (impression), qid.")
@_gamma_option
@_source_option
@training_options
@friendly_errors
def segment(data: str, gamma: float | None, source: str, method: str | None, strategy: str | None, beta: float | None, out: str, config_path: str | None, sets: tuple[str, ...]) -> None:
    """Write the region-level AS-ES datasets to OUT/data for inspection (no final training)."""
    from petsum.data import load_pairs
    from petsum.train import write_segments
    from shared.cli import build_config, console

    flags = {"train.method": method, "segment.strategy": strategy, "segment.beta": beta, "segment.gamma": gamma}
    cfg = build_config(config_path, sets, flags)
    click.echo(json.dumps(write_segments(load_pairs(data), cfg, Path(out), console(), source), ensure_ascii=False))


@main.command()
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="CSV of reports with an id column.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for train.csv, val.csv, test.csv and split.json.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--id-column", default="qid", show_default=True)
@friendly_errors
def split(data: str, out: str, seed: int, id_column: str) -> None:
    """Split reports 80/10/10 into train/val/test by a seeded hash of their id."""
    from petsum.split import split_csv

    click.echo(json.dumps(split_csv(data, out, seed, id_column)))


@main.command()
@click.argument("kind", type=click.Choice(["retrieval", "extractive"]))
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="CSV of reports to score (question, answer).")
@click.option("--train", "train_data", type=click.Path(dir_okay=False), help="Training CSV that retrieval copies from.")
@click.option("--out", "pred_path", type=click.Path(dir_okay=False), help="Write each prediction with its reference (JSONL).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@friendly_errors
def floor(kind: str, data: str, train_data: str | None, pred_path: str | None, as_json: bool) -> None:
    """Score a floor: nearest-report retrieval (TF-IDF, char n-grams) or rule-based extraction."""
    from petsum.data import load_pairs
    from petsum.evaluate import metrics_table
    from petsum.floors import floor_predictions
    from petsum.metrics import evaluate_texts
    from shared.cli import console
    from shared.dataset import write_jsonl

    if kind == "retrieval" and not train_data:
        fail("retrieval needs --train: the reports it copies impressions from")
    reports = load_pairs(data)
    preds = floor_predictions(kind, reports, load_pairs(train_data) if train_data else [])
    metrics = evaluate_texts([p["impression"] for p in preds], [p["reference"] for p in preds])
    if pred_path:
        write_jsonl(preds, Path(pred_path))
    if as_json:
        click.echo(json.dumps(metrics, ensure_ascii=False))
    else:
        console().print(metrics_table(metrics, f"floor: {kind}"))


@main.command()
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="CSV of reports whose impressions (answer) show the order to learn: the training split.")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False, exists=True), help="Model or run folder whose ases.json gets the order.")
@click.option("--kind", type=click.Choice(["pointer", "pairs"]), default="pointer", show_default=True,
              help="pointer: a network that reads all the list's items at once (petsum.pointer); pairs: a score of which item follows which (petsum.order).")
@click.option("--grams", type=click.IntRange(min=1), default=3000, show_default=True, help="Most frequent character uni/bigrams used as features.")
@click.option("--rank", type=click.IntRange(min=0), default=32, show_default=True,
              help="pairs: width of the pair term (which item follows which); 0: a score per item only.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Passes over the impressions  [default: 10 for pointer, 8 for pairs]")
@friendly_errors
def order(data: str, model_dir: str, kind: str, grams: int, rank: int, epochs: int | None) -> None:
    """Learn how these impressions are written: their item order, closing line and comparison opening line; the model's assembler uses them."""
    from petsum import closing, opening, pointer
    from petsum.data import load_pairs
    from petsum.order import fit, ordered_entries, save_to_manifest
    from petsum.summarizer import source_of
    from shared.modeling import read_manifest

    source = source_of(Path(model_dir), read_manifest(model_dir))  # learn from the items this model writes
    reports = load_pairs(data)
    items, sources = ordered_entries(reports, source)  # a finding model's items also say what they were written from
    if kind == "pointer":
        learned, n_items = pointer.fit(items, sources, grams, epochs=epochs or 10, log=lambda line: click.echo(line, err=True))  # minutes: say how far
    else:
        learned, n_items = fit(items, grams, rank, epochs or 8, sources=sources)
    line, n_closed = closing.fit(reports)
    first, n_opened = opening.fit(reports)
    what = "finding targets" if source == "finding" else "impression items"
    path = save_to_manifest(model_dir, {"item_order": learned.to_json(), "closing_line": line.to_json() if line else None,
                                        "opening_line": first.to_json() if first else None})
    said = f"the closing line from {n_closed} impressions" if line else "no closing line (no impression has one: the rule's line stays)"
    said += f", the opening line from {n_opened} that compare with an earlier exam" if first else ", no opening line (no impression opens with a comparison)"
    click.echo(f"learned the item order ({kind}) from {n_items} {what}, {said}; written to {path}")


@main.command()
@click.option("--data", type=click.Path(dir_okay=False), help="CSV of training reports (question, answer, qid): the split the model was trained on.")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False, exists=True), help="Model folder whose ases.json gets the memory (not the shipped default: copy it first).")
@click.option("--neighbours", type=click.IntRange(min=1), default=8, show_default=True, help="Nearest training findings that vote for each finding.")
@click.option("--weight", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Their votes together, against all the other candidates' together (the greedy answer and the draws).")
@click.option("--drop", is_flag=True, help="Take the memory out of the model instead (before sharing the folder).")
@friendly_errors
def memory(data: str | None, model_dir: str, neighbours: int, weight: float, drop: bool) -> None:
    """Store the training findings and what was written for them in the model: in consensus decoding, those nearest a finding vote
    for the answer worded as the house words it (petsum.memory). The folder then holds report text: it is patient data."""
    from petsum.data import load_pairs
    from petsum.memory import build
    from petsum.order import save_to_manifest
    from petsum.summarizer import source_of
    from shared.modeling import read_manifest

    if not math.isfinite(weight):
        fail(f"--weight must be a finite number, not {weight}")
    if Path(model_dir).resolve() == DEFAULT_MODEL.resolve():
        fail(f"{model_dir} is the shipped default, which holds no report text: copy it first (cp -r {model_dir} FOLDER)")
    manifest = read_manifest(model_dir)
    if drop:
        path = save_to_manifest(model_dir, {"memory": None})
        return click.echo(f"no memory in {path} now")
    if not data:
        fail("--data is required (or --drop)")
    if manifest.get("method", "direct") != "direct":
        fail(f"a memory votes in consensus decoding, which is for direct models; {model_dir} is a {manifest['method']} run")
    learned = build(load_pairs(data), source_of(Path(model_dir), manifest), neighbours, weight)
    if not learned.findings:
        fail(f"{data}: no report has an impression item aligned to its findings: nothing to remember")
    path = save_to_manifest(model_dir, {"memory": learned.to_json()})
    click.echo(f"remembered {len(learned.findings)} findings and their targets in {path}; it votes only with consensus draws "
               f"(generate.consensus_samples, --consensus); the folder now holds report text")


@main.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New folder for the averaged model.")
@friendly_errors
def average(models: tuple[str, ...], out: str) -> None:
    """Average the weights of checkpoints fine-tuned from one start (a model soup); the first gives the other files."""
    from shared.average import average_checkpoints
    from shared.modeling import read_manifest

    path = average_checkpoints([Path(m) for m in models], Path(out))
    click.echo(f"averaged {len(models)} checkpoints into {path}; validate it before use (petsum evaluate --data val.csv --model {path})")
    if "memory" in read_manifest(path):  # the first folder's ases.json came along
        click.echo(f"note: {path} has the first folder's memory (petsum memory): it holds report text; petsum memory --model {path} --drop takes it out", err=True)


def _model_path(model_dir: str | None) -> Path:
    path = Path(model_dir) if model_dir else DEFAULT_MODEL
    if not path.exists():
        fail(f"the default model is missing from this install ({path}): reinstall petsum, or pass --model" if not model_dir else f"{path}: no such folder")
    return path


def _summarizer(model_dir: str | None, backend: str, device: str, batch_size: int | None = None, consensus: int | None = None):
    from deploy.backend import device_warning
    from petsum.summarizer import Summarizer

    summarizer = Summarizer(_model_path(model_dir), backend, batch_size, device)
    summarizer.tune(consensus_samples=consensus)
    if note := device_warning(summarizer.models, device):
        click.echo(f"warning: {note}", err=True)
    return summarizer


@main.command()
@click.argument("report", type=click.Path(allow_dash=True, dir_okay=False))
@serving_options
@click.option("--json", "as_json", is_flag=True, help="Print the impression with its regions and segments as JSON.")
@_consensus_option
@friendly_errors
def summarize(report: str, model_dir: str | None, backend: str, device: str, as_json: bool, consensus: int | None) -> None:
    """Print the impression for one report's findings (REPORT is a file, or - for stdin)."""
    from petsum.summarizer import MAX_REPORT_BYTES, read_report
    from shared.textio import read_bytes

    name = "stdin" if report == "-" else report
    data = sys.stdin.buffer.read(MAX_REPORT_BYTES + 1) if report == "-" else read_bytes(report, MAX_REPORT_BYTES + 1)
    summarizer = _summarizer(model_dir, backend, device, consensus=consensus)
    summary = summarizer.summarize([read_report(data, name)])[0]
    if isinstance(summary, Exception):
        fail(f"{name}: {summary}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    engine = {"backend": summarizer.models.backend, "providers": summarizer.models.providers}
    click.echo(json.dumps(summary.to_json(str(summarizer.path), engine), ensure_ascii=False) if as_json else summary.impression)


@main.command()
@click.argument("source", metavar="INPUT", type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output JSONL: one record per input record, in order.")
@click.option("--column", default="question", show_default=True, help="Text column (CSV) or field (JSONL).")
@click.option("--id-column", default="qid", show_default=True, help="Id column or field (else the record number).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Reports summarized together.")
@click.option("--resume", is_flag=True, help="Continue an output left by an interrupted run.")
@serving_options
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process; ray: a pool of Ray workers (needs the ray extra).")
@click.option("--address", help="Ray cluster to join (--engine ray; default: start a local Ray instance).")
@click.option("--num-workers", type=click.IntRange(min=1), help="Ray workers, each with its own copy of the model (default: 2).")
@click.option("--gpus-per-worker", type=click.FloatRange(min=0), help="GPUs per Ray worker; > 0 runs the workers on CUDA (default: 0).")
@_consensus_option
@friendly_errors
def batch(source: str, out: str, column: str, id_column: str, batch_size: int, resume: bool, model_dir: str | None, backend: str, device: str,
          engine: str, address: str | None, num_workers: int | None, gpus_per_worker: float | None, consensus: int | None) -> None:
    """Summarize a folder of .txt reports, a .csv or a .jsonl into OUT (exit 3 if any record failed)."""
    from petsum.batch import EXIT_PARTIAL, local_engine, run_batch, summary_table
    from shared.cli import console

    if engine == "ray":
        from petsum.ray_batch import RaySettings, check_model, ray_engine, require_ray

        require_ray()
        settings = RaySettings(address, num_workers or 2, gpus_per_worker or 0.0, str(_model_path(model_dir).resolve()), backend, device, batch_size, consensus)
        check_model(settings)
        chunks_engine = ray_engine(settings)
    elif address or num_workers or gpus_per_worker is not None:
        fail("--address, --num-workers and --gpus-per-worker need --engine ray")
    else:
        chunks_engine = local_engine(_summarizer(model_dir, backend, device, batch_size, consensus))
    log = console()
    stats = run_batch(chunks_engine, Path(source), Path(out), log, column=column,
                      id_column=id_column, batch_size=batch_size, resume=resume)
    log.print(summary_table(stats, Path(out)))
    if stats.errors:
        sys.exit(EXIT_PARTIAL)


@main.command()
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="CSV with question (findings) and answer (impression).")
@serving_options
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate the first N reports only.")
@click.option("--heldout", is_flag=True, help="Only the reports the model's training run held out for validation.")
@click.option("--words", is_flag=True, help="Also word-level ROUGE (jieba, with the organ lexicon).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--no-repeat-ngram", type=click.IntRange(min=0), help="Try another n-gram ban than the model's generate.no_repeat_ngram_size (0: off).")
@click.option("--normal-penalty", type=click.FloatRange(min=0), metavar="LOGITS",
              help="Try another penalty on the 'no anomaly' answer than the model's (generate.first_token_bias; 0: none).")
@click.option("--eos-bias", type=float, metavar="LOGITS",
              help="Try another bias on the end-of-sequence token than the model's (generate.eos_bias; negative: longer impressions; 0: none).")
@_consensus_option
@click.option("--no-guard", is_flag=True, help="Keep outputs about organs their finding does not name (petsum.grounding): the model alone.")
@click.option("--no-trim", is_flag=True, help="Keep the clauses of an output about organs its finding does not name (petsum.grounding.trim).")
@click.option("--out", "pred_path", type=click.Path(dir_okay=False), help="Write each prediction with its reference (JSONL).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@friendly_errors
def evaluate(data: str, model_dir: str | None, backend: str, device: str, limit: int | None, heldout: bool, words: bool, batch_size: int,
             no_repeat_ngram: int | None, normal_penalty: float | None, eos_bias: float | None, consensus: int | None, no_guard: bool, no_trim: bool,
             pred_path: str | None, as_json: bool) -> None:
    """Summarize reports with known impressions; print BLEU, ROUGE-1/2/L and the missing and extra ratios."""
    from petsum.data import load_pairs
    from petsum.evaluate import evaluate_reports, heldout as held, metrics_table
    from shared.cli import console
    from shared.dataset import write_jsonl

    from petsum.words import available

    if words and not available():
        fail("--words needs jieba: pip install jieba")
    summarizer = _summarizer(model_dir, backend, device, batch_size, consensus)
    summarizer.tune(normal_penalty, no_repeat_ngram_size=no_repeat_ngram, eos_bias=eos_bias)
    summarizer.guard, summarizer.trim = not no_guard, not no_trim
    reports = held(load_pairs(data), summarizer.path) if heldout else load_pairs(data)
    metrics, preds = evaluate_reports(summarizer, reports[:limit], console(), batch_size, words)
    if pred_path:
        write_jsonl(preds, Path(pred_path))
    if as_json:
        click.echo(json.dumps(metrics, ensure_ascii=False))
    else:
        console().print(metrics_table(metrics, str(summarizer.path)))


main.add_command(export_command(DEFAULT_MODEL))
