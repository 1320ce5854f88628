"""`petsum batch INPUT --out OUT`: many reports, one JSONL record each, exactly once."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from petsum.batch.local import batch_reports, local_engine
from petsum.cli.options import consensus_option, load_summarizer
from petsum.summarize.folder import model_path
from shared.batch import EXIT_PARTIAL, Engine, check_out, path_identity, summary_table
from shared.cli import console, fail, friendly_errors, serving_options


def _engine(
    name: str,
    address: str | None,
    workers: int | None,
    gpus: float | None,
    model_dir: str | None,
    backend: str,
    device: str,
    batch_size: int,
    consensus: int | None,
) -> Engine:
    if name == "ray":
        from petsum.batch.ray_engine import RaySettings, check_model, ray_engine, require_ray

        require_ray()
        path = str(model_path(model_dir).resolve())
        settings = RaySettings(address, workers or 2, gpus or 0.0, path, backend, device, batch_size, consensus)
        check_model(settings)
        return ray_engine(settings)
    if address or gpus is not None:
        fail("--address and --gpus-per-worker need --engine ray")
    from petsum.batch.processes import WorkerSettings, auto_engine, process_engine
    from shared.device import usable_cores

    settings = WorkerSettings(str(model_path(model_dir).resolve()), backend, device, batch_size, consensus)
    if workers and workers > 1:
        return process_engine(settings, workers)
    local = local_engine(load_summarizer(model_dir, backend, device, batch_size, consensus))  # a bad model fails here
    if workers is None and device == "cpu" and usable_cores() > 1:  # a long input gets a worker per core
        return auto_engine(local, process_engine(settings, usable_cores()))
    return local


@click.command(name="batch")
@click.argument("source", metavar="INPUT", type=click.Path())
@click.option(
    "--out",
    required=True,
    type=click.Path(),  # checked by `shared.batch.check_out`: one-line errors, before the model loads
    help="Output JSONL: one record per input record, in order (OUT.meta.json beside it: what it was made from).",
)
@click.option("--column", default="question", show_default=True, help="Text column (CSV) or field (JSONL).")
@click.option("--id-column", default="qid", show_default=True, help="Id column or field (else the record number).")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Reports summarized together."
)
@click.option("--resume", is_flag=True, help="Continue an output left by an interrupted run.")
@serving_options
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this process; ray: a pool of Ray workers (needs the ray extra).",
)
@click.option("--address", help="Ray cluster to join (--engine ray; default: start a local Ray instance).")
@click.option(
    "--num-workers",
    type=click.IntRange(min=1),
    help="Workers, each with its own copy of the model: processes of one core each (local; default: one per "
    "core for an input of 512 reports or more on the CPU, else this process), or Ray actors (ray; default 2).",
)
@click.option(
    "--gpus-per-worker",
    type=click.FloatRange(min=0),
    help="GPUs per Ray worker; > 0 runs the workers on CUDA (default: 0).",
)
@consensus_option
@friendly_errors
def command(
    source: str,
    out: str,
    column: str,
    id_column: str,
    batch_size: int,
    resume: bool,
    model_dir: str | None,
    backend: str,
    device: str,
    engine: str,
    address: str | None,
    num_workers: int | None,
    gpus_per_worker: float | None,
    consensus: int | None,
) -> None:
    """Summarize a folder of .txt reports, a .csv or a .jsonl into OUT (exit 3 if any record failed)."""
    src, dest = Path(source), Path(out)
    check_out(dest, resume, src)  # an unusable OUT fails before the model loads
    chunks = _engine(engine, address, num_workers, gpus_per_worker, model_dir, backend, device, batch_size, consensus)
    settings = {"model": path_identity(model_path(model_dir)), "consensus": consensus}  # what changes the impressions
    options = {"column": column, "id_column": id_column, "batch_size": batch_size, "resume": resume}
    stats = batch_reports(chunks, src, dest, console(), settings=settings, **options)
    console().print(summary_table(stats, dest, "petsum batch", "reports"))
    if stats.errors:
        sys.exit(EXIT_PARTIAL)
