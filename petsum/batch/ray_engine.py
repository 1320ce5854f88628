"""`petsum batch --engine ray`: the same chunks the local engine summarizes, on a Ray Data actor pool.

Reading (`shared.records`), `--resume` and writing (`shared.batch`) stay on the driver, so ids,
per-record errors, decoding and the output contract are the local engine's by construction. Ray only replaces the
loop over chunks: each chunk (`--batch-size` records) becomes one Ray Data row, and
`map_batches` hands rows to a pool of actors that each load the model once and call the local
engine's `summarize_chunk`. Rows come back in input order (`preserve_order`) and the driver
writes them a chunk at a time, flushed and fsynced, exactly as the local engine does.

Only this module imports ray, and only when `--engine ray` is asked for.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from petsum.batch.local import summarize_chunk
from shared.batch import Engine, groups
from shared.records import Record
from shared.textio import InputError

# Chunks per Ray Data dataset. Input is fed in windows so a huge input never sits in the object
# store whole; each window starts a fresh actor pool, so this is large enough that loading the
# model once per worker per window costs nothing next to summarizing the window.
WINDOW_CHUNKS = 512
LOCAL_OBJECT_STORE = 512 * 1024**2  # the chunks in flight are a few MB; Ray's default is 30% of RAM


@dataclass(frozen=True)
class RaySettings:
    address: str | None  # None: start a private local Ray instance for this run
    num_workers: int
    gpus_per_worker: float
    model: str
    backend: str
    device: str
    batch_size: int
    consensus: int | None = None  # generate.consensus_samples; None: the model's


def require_ray() -> None:
    """Fail with one line when the extra is missing (ray without pandas/pyarrow has no ray.data)."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError('--engine ray needs the ray extra: pip install "petsum[ray]"') from None


def check_model(settings: RaySettings) -> None:
    """Load the model once here, on the CPU, and drop it: a bad --model is a one-line error
    before Ray starts, not a worker dying with a traceback in Ray's logs."""
    from petsum.summarize.summarizer import Summarizer

    Summarizer(settings.model, settings.backend, settings.batch_size, "cpu").tune(consensus_samples=settings.consensus)


class ChunkSummarizer:
    """A Ray Data actor: loads the model once, then summarizes whole chunks with the local
    engine's code. Rows carry JSON text, not columns, so ids stay strings and null fields need
    no Arrow type inference."""

    def __init__(
        self, model: str, backend: str, device: str, batch_size: int, threads: int, consensus: int | None = None
    ) -> None:
        from petsum.summarize.summarizer import Summarizer

        if threads:
            import torch

            torch.set_num_threads(threads)  # Ray's workers share the node's cores
        self.summarizer = Summarizer(model, backend, batch_size, device, threads)
        self.summarizer.tune(consensus_samples=consensus)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        out = []
        for chunk in batch["chunk"]:
            records = [Record(**r) for r in json.loads(chunk)]
            out.append(json.dumps(summarize_chunk(self.summarizer, records), ensure_ascii=False))
        return {"chunk": out}


def ray_engine(settings: RaySettings) -> Engine:
    """An engine for `run_batch`; Ray starts (or is joined) at the first chunk and is shut down
    when the chunks run out."""

    def engine(chunks: Iterator[list[Record]]) -> Iterator[list[dict]]:
        import ray

        threads = None  # Ray starts at the first window: a finished --resume needs none
        try:
            for window in groups(chunks, WINDOW_CHUNKS):
                threads = _start(settings) if threads is None else threads
                yield from _summarize_window(window, settings, threads)
        finally:
            if threads is not None:
                ray.shutdown()  # stops a local instance; only disconnects from a cluster

    return engine


def _start(settings: RaySettings) -> int:
    """Start a local Ray instance or join a cluster; returns torch threads per worker (0: leave
    it to Ray, which sets each worker's OMP_NUM_THREADS from its CPUs)."""
    import ray

    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if settings.address:
        try:
            ray.init(address=settings.address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InputError(
                f"cannot join the Ray cluster at {settings.address}: "
                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from None
        threads = 0
    else:
        cpus = os.cpu_count() or 1
        # As many logical CPUs as workers: Ray starts exactly the pool, and each worker's torch
        # takes its share of the machine's cores.
        ray.init(
            num_cpus=settings.num_workers,
            num_gpus=_local_gpus(settings),
            object_store_memory=LOCAL_OBJECT_STORE,
            **quiet,
        )
        threads = max(1, cpus // settings.num_workers)
    _quiet_ray_data()
    return threads


def _local_gpus(settings: RaySettings) -> int | None:
    """GPUs for a local instance: let Ray detect them when workers ask for any, else none."""
    return None if settings.gpus_per_worker else 0


def _quiet_ray_data() -> None:
    """No progress bars or INFO lines on the terminal: stderr shows petsum's own progress and
    one-line errors only. Ray Data's full log still goes to its session file."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.preserve_order = True  # rows come back in input order
    ctx.execution_options.verbose_progress = False
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler):  # the console, not the session log file
            handler.setLevel(logging.CRITICAL)


def _summarize_window(window: list[list[Record]], settings: RaySettings, threads: int) -> Iterator[list[dict]]:
    import ray.data
    import ray.exceptions

    rows = [{"chunk": json.dumps([asdict(r) for r in chunk], ensure_ascii=False)} for chunk in window]
    workers = min(settings.num_workers, len(rows))
    with warnings.catch_warnings():
        # max_restarts goes through **ray_remote_args, deprecated from Ray 2.60 (the pinned
        # version) but still the only way to set it on a Ray Data actor pool.
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ChunkSummarizer,
            batch_size=1,  # one row is one chunk: workers summarize exactly the local engine's batches
            compute=ray.data.ActorPoolStrategy(size=workers),
            fn_constructor_kwargs={
                "model": settings.model,
                "backend": settings.backend,
                "device": _device(settings),
                "batch_size": settings.batch_size,
                "threads": threads,
                "consensus": settings.consensus,
            },
            num_cpus=1,
            num_gpus=settings.gpus_per_worker or None,
            batch_format="numpy",
            **_restarts(settings),
        )
    try:
        for row in ds.iter_rows():
            yield json.loads(row["chunk"])
    except ray.exceptions.RayError as e:  # a worker could not start (a broken model) or died
        raise RuntimeError(f"the Ray workers failed ({_cause(e)})") from None


def _cause(e: Exception) -> str:
    """One line. A worker that could not start failed loading the model, so its exception's
    last line (e.g. `FileNotFoundError: … no config.json`) is safe to show; for a failure while
    summarizing, only the type: it is the one message that could come near report text."""
    if getattr(e, "actor_init_failed", False):
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        return f"a worker could not load the model: {lines[-1]}" if lines else type(e).__name__
    return type(e).__name__


def _restarts(settings: RaySettings) -> dict[str, int]:
    """On a cluster, Ray Data's default: a worker lost with its node is restarted, forever. On a
    local instance a dead worker means this machine ran out of memory, and a restart would retry
    the same chunk forever: fail instead; `--resume` continues after the chunks written."""
    return {} if settings.address else {"max_restarts": 0}


def _device(settings: RaySettings) -> str:
    return "cuda" if settings.gpus_per_worker else settings.device
