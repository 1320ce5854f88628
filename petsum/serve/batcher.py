"""Dynamic batching: reports from concurrent requests decoded together, on one worker thread.

The model is small: on a CPU most of a request's time is per-call overhead, which a batch of
many reports shares (docs/serve.md measures it). So the worker takes the oldest waiting request,
waits up to `max_wait_ms` for others to arrive (no longer than it takes to fill `max_batch`
reports), and summarizes all of them in one `Summarizer.summarize` call. Requests asking for
another consensus setting wait for a batch of their own: a batch decodes with one setting.

A request is never split, nor answered twice: each holds one `concurrent.futures.Future`, set once
by the worker. A request whose client gave up (timeout, disconnect) is cancelled, and the worker
skips it unless it is already decoding, so an abandoned request never holds up the others.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.textio import InputError

if TYPE_CHECKING:
    from petsum.summarize.summarizer import Summarizer, Summary


class QueueFull(Exception):
    """More reports are waiting than `max_queue`: the service answers 503 with Retry-After."""


class Closed(Exception):
    """The service is shutting down: no new work is taken."""


@dataclass
class Job:
    texts: list[str]
    consensus: int | None  # None: the model's own setting
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the worker has done, for `/v1/model` and the load benchmark."""

    batches: int = 0
    reports: int = 0
    requests: int = 0
    skipped: int = 0  # requests cancelled before their batch ran
    largest: int = 0


class Batcher:
    def __init__(self, summarizer: "Summarizer", max_batch: int = 32, max_wait_ms: float = 10, max_queue: int = 1024):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be at least 1, max_wait_ms at least 0")
        self.summarizer = summarizer
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait_ms / 1000, max_queue
        self.stats = BatchStats()
        self._jobs: deque[Job] = deque()
        self._waiting = 0  # reports in `_jobs`
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="petsum-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: list[str], consensus: int | None = None) -> Future:
        """Queue one request's reports; its future gets one result per text, in order."""
        job = Job(list(texts), consensus)
        with self._cond:
            if self._closing:
                raise Closed("the service is shutting down")
            if self._waiting and self._waiting + len(job.texts) > self.max_queue:
                raise QueueFull(f"{self._waiting} reports are waiting (at most {self.max_queue})")
            self._jobs.append(job)
            self._waiting += len(job.texts)
            self._cond.notify()
        return job.future

    @property
    def waiting(self) -> int:
        return self._waiting

    def close(self, timeout: float | None = None) -> None:
        """Decode what is queued, then stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take(self) -> list[Job] | None:
        """The next batch: the oldest job and those after it with its consensus setting, up to
        `max_batch` reports, once that many wait or the oldest has waited `max_wait`."""
        with self._cond:
            while not self._jobs:
                if self._closing:
                    return None
                self._cond.wait()
            first = self._jobs[0]
            deadline = first.arrived + self.max_wait
            while not self._closing:
                ready = sum(len(j.texts) for j in self._jobs if j.consensus == first.consensus)
                left = deadline - time.monotonic()
                if ready >= self.max_batch or left <= 0:
                    break
                self._cond.wait(left)
            batch, size = [], 0
            for job in list(self._jobs):
                if job.consensus != first.consensus:
                    continue
                if batch and size + len(job.texts) > self.max_batch:
                    break
                batch.append(job)
                size += len(job.texts)
            for job in batch:
                self._jobs.remove(job)
            self._waiting -= size
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]
            self.stats.skipped += len(batch) - len(live)
            if not live:
                continue
            try:
                self._decode(live)
            except BaseException as e:  # noqa: BLE001 - the worker must outlive any batch
                for job in live:
                    if not job.future.done():
                        job.future.set_exception(e)

    def _decode(self, jobs: list[Job]) -> None:
        texts = [t for job in jobs for t in job.texts]
        results = self._summarize(texts, jobs[0].consensus)
        self.stats.batches += 1
        self.stats.requests += len(jobs)
        self.stats.reports += len(texts)
        self.stats.largest = max(self.stats.largest, len(texts))
        at = 0
        for job in jobs:
            job.future.set_result(results[at : at + len(job.texts)])
            at += len(job.texts)

    def _summarize(self, texts: list[str], consensus: int | None) -> "list[Summary | InputError]":
        """One result per text. A failure of the whole batch (a bug, memory) is retried report by
        report, so that one report's failure is its own error entry and never its neighbours'."""
        models = self.summarizer.models
        base = models.generate
        try:
            try:
                if consensus is not None:
                    self.summarizer.tune(consensus_samples=consensus)
            except Exception as e:  # noqa: BLE001 - a setting this model cannot decode with (the app checks first)
                return [InputError(str(e).splitlines()[0])] * len(texts)
            return self._isolated(texts)
        finally:
            models.generate = base

    def _isolated(self, texts: list[str]) -> "list[Summary | InputError]":
        """`summarize(texts)`; where that fails, each half apart, down to the report that fails (its
        error entry): a bad report costs its batch about log2(n) more calls, not n."""
        try:
            return self.summarizer.summarize(texts)
        except Exception as e:  # noqa: BLE001 - the report's error entry; never its text
            if len(texts) == 1:
                return [InputError(f"this report could not be summarized ({type(e).__name__})")]
        half = len(texts) // 2
        return self._isolated(texts[:half]) + self._isolated(texts[half:])
