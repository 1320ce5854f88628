"""`petsum batch` on this process: chunks of reports through one `Summarizer`.

Reading (`shared.records`), `--resume` and the exactly-once output (`shared.batch`) are the
core's; this module is only what petsum does with a chunk, which every engine (this process,
each Ray worker) calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from petsum.summarize.summarizer import MAX_REPORT_BYTES, read_report
from shared.batch import BatchStats, Engine, run_batch
from shared.records import Input, Record
from shared.textio import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from petsum.summarize.summarizer import Summarizer


def report_input(column: str = "question", id_column: str = "qid") -> Input:
    """How `petsum batch` reads reports: a field over 1 MB, or a file not decodable, is an error record."""
    return Input(column, id_column, MAX_REPORT_BYTES, "PET/CT report", read_report)


def local_engine(summarizer: "Summarizer") -> Engine:
    """This process summarizes every chunk."""
    return lambda chunks: (summarize_chunk(summarizer, chunk) for chunk in chunks)


def summarize_chunk(summarizer: "Summarizer", chunk: list[Record]) -> list[dict]:
    """One output record per input record, by position: the per-chunk work of every engine
    (local, and each Ray worker). A failure of the whole chunk is retried report by report, so
    one pathological report cannot take its batch-mates down."""
    texts = [r.text or "" for r in chunk if r.error is None]
    try:
        got = summarizer.summarize(texts) if texts else []
    except Exception:  # noqa: BLE001 - isolated below, report by report
        got = [_one(summarizer, t) for t in texts]
    it = iter(got)
    out = []
    for rec in chunk:
        if rec.error is not None:
            out.append({"id": rec.id, "error": rec.error})
            continue
        res = next(it)
        if isinstance(res, InputError):
            out.append({"id": rec.id, "error": str(res)})
        else:
            out.append(
                {
                    "id": rec.id,
                    "impression": res.impression,
                    **res.structured(),
                    **({"warnings": res.warnings} if res.warnings else {}),
                }
            )
    return out


def _one(summarizer: "Summarizer", text: str):
    try:
        return summarizer.summarize([text])[0]
    except Exception as e:  # noqa: BLE001 - one record's failure must not stop the batch; no text in the message
        return InputError(f"generation failed ({type(e).__name__})")


def batch_reports(
    engine: Engine,
    source: Path,
    out: Path,
    console: "Console",
    *,
    column: str = "question",
    id_column: str = "qid",
    batch_size: int = 32,
    resume: bool = False,
    settings: dict | None = None,
) -> BatchStats:
    """`shared.batch.run_batch` over reports: every engine of `petsum batch` writes through this.
    `settings`: what else changes the impressions (the model, `--consensus`), for `--resume`'s check."""
    spec = report_input(column, id_column)
    return run_batch(engine, source, out, console, spec=spec, batch_size=batch_size, resume=resume, settings=settings)
