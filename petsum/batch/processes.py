"""`petsum batch --num-workers N` on one machine: N processes, each with its own model, one core each.

On a model this small one thread per batch decodes fastest, and the Python around the engine
(splitting, the guard, ordering, assembly) runs on one core per process whatever the engine's
threads: N independent workers use N cores for all of it. Chunks go out in order and come back
in order, at most `IN_FLIGHT` per worker at a time, so memory stays flat however long the input.
A worker that dies (killed, out of memory) fails the run with a one-line error; `--resume` then
continues after the last written chunk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

from shared.batch import Engine
from shared.records import Record
from shared.textio import InputError

IN_FLIGHT = 2  # chunks queued per worker: one decoding, one waiting
# Without --num-workers, an input at least this long gets a worker per core: below it, starting the
# processes (each imports the pipeline and loads its model) costs about what they save.
AUTO_MIN_REPORTS = 512


@dataclass(frozen=True)
class WorkerSettings:
    model: str
    backend: str
    device: str
    batch_size: int | None
    consensus: int | None


_summarizer = None  # the worker process's own model
_failed: str | None = None  # or why it could not be loaded, raised at its first chunk


def _start(settings: WorkerSettings) -> None:
    """In each worker: one thread for every engine, then the model."""
    global _summarizer, _failed
    import os

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before torch is imported, if it is: one thread
        os.environ[name] = "1"
    from petsum.summarize.summarizer import Summarizer

    try:
        _summarizer = Summarizer(settings.model, settings.backend, settings.batch_size, settings.device, threads=1)
        _summarizer.tune(consensus_samples=settings.consensus)
    except Exception as e:  # noqa: BLE001 - reported in the parent as a one-line error, not a broken pool
        _failed = str(e).splitlines()[0] if str(e) else type(e).__name__


def _summarize(chunk: list[Record]) -> list[dict]:
    from petsum.batch.local import summarize_chunk

    if _summarizer is None:
        raise InputError(_failed or "the batch worker has no model")
    return summarize_chunk(_summarizer, chunk)


def process_engine(settings: WorkerSettings, workers: int) -> Engine:
    """An engine for `run_batch` over `workers` processes, started at the first chunk."""

    def engine(chunks: Iterator[list[Record]]) -> Iterator[list[dict]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        pool = None
        try:
            pending: deque = deque()
            for chunk in chunks:
                if pool is None:  # a finished --resume starts no process
                    context = multiprocessing.get_context("spawn")  # no inherited threads or locks
                    pool = ProcessPoolExecutor(workers, context, initializer=_start, initargs=(settings,))
                pending.append(pool.submit(_summarize, chunk))
                if len(pending) >= IN_FLIGHT * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise InputError(
                "a batch worker process died (out of memory, or killed); the output holds every chunk before it: "
                "rerun with --resume"
            ) from None
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    return engine


def auto_engine(local: Engine, pooled: Engine, min_reports: int | None = None) -> Engine:
    """`pooled` for an input of at least `min_reports` (default `AUTO_MIN_REPORTS`) reports still to
    do (after --resume's), `local` for a shorter one: the chunks are read ahead until the choice is
    known, then all go, in order, to the one chosen."""

    def engine(chunks: Iterator[list[Record]]) -> Iterator[list[dict]]:
        least = AUTO_MIN_REPORTS if min_reports is None else min_reports
        chunks = iter(chunks)
        head: list[list[Record]] = []
        seen = 0
        for chunk in chunks:
            head.append(chunk)
            seen += len(chunk)
            if seen >= least:
                break
        yield from (pooled if seen >= least else local)(chain(head, chunks))

    return engine
