"""Solving problems with a trained run: one question, or a whole set scored against its answers.

`Solver` is a run loaded for inference plus the decoding choices `mwp solve` makes: the run's own
settings, a batch size, and calculator mode (on by default for runs trained with annotations,
which their manifest records as `"calculator": true`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mwp.adapter import MwpAdapter
from mwp.answers import extract_answer
from mwp.cot import prompt, strip_annotations
from mwp.data import BadRecord

if TYPE_CHECKING:
    from rich.console import Console

    from shared.config import GenerateConfig
    from shared.generate import ModelSet
    from shared.records import Record
    from shared.schema import Example


DEFAULT_MODEL = Path(__file__).parent / "models" / "default"


@dataclass
class Solver:
    """A run loaded for solving. `Solver.load()` is the Python API (the shipped default, or a folder):

    solver = Solver.load()
    solution = solver.solve(["A box holds 12 pens. How many pens are in 4 boxes?"])[0]  # .answer, .reasoning
    """

    models: "ModelSet"
    cfg: "GenerateConfig"
    calculator: bool
    adapter: MwpAdapter

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        *,
        backend: str = "auto",
        device: str = "cpu",
        batch_size: int = 32,
        calculator: bool | None = None,
        samples: int | None = None,
    ) -> "Solver":
        """A run, checkpoint or ONNX export folder (None: the shipped default); `calculator=None`:
        whatever the run was trained with; `samples`: seeded draws to vote over besides the greedy
        solution (None: the run's `generate.consensus_samples`)."""
        from shared.textio import InputError

        path = Path(model) if model else DEFAULT_MODEL
        if not path.exists():
            raise InputError(
                f"{path}: no such model folder"
                if model
                else f"the default model is missing from this install ({path}): reinstall petsum, or pass --model"
            )
        solver = load_solver(path, backend, device, batch_size, calculator)
        if samples is not None:
            solver.tune(consensus_samples=samples)
        return solver

    def tune(self, **generate: object) -> None:
        """Decode with other `generate` settings than the run's own, validated like a config file
        (`ConfigError` names a bad field): to try them on validation problems before a run sets them."""
        from shared.config import ConfigError, validated_update

        tuned = validated_update(self.cfg, generate)
        if tuned.consensus_samples and self.models.method != "direct":
            raise ConfigError(
                f"voting over draws (--samples, generate.consensus_samples) is for direct runs; "
                f"this is a {self.models.method} run"
            )
        self.cfg = tuned

    def solve(self, questions: list[str]) -> list["Solution"]:
        """Solutions to these questions, in order."""
        return solve(self, [prompt(q) for q in questions])


@dataclass(frozen=True)
class Solution:
    generated: str  # as the model wrote it (with calculator annotations in calculator mode)
    reasoning: str  # as a reader sees it: annotations removed
    answer: str | None  # canonical number after the last `The answer is`, or None


def trained_with_calculator(path: Path) -> bool:
    from shared.modeling import read_manifest

    return bool(read_manifest(path).get("calculator"))


def load_solver(path: Path, backend: str, device: str, batch_size: int, calculator: bool | None) -> Solver:
    """`calculator=None`: whatever the run was trained with."""
    from deploy.backend import load_models

    models = load_models(path, backend, device, "mwp")
    use = trained_with_calculator(path) if calculator is None else calculator
    if use:
        from mwp.calc_decoding import use_calculator

        use_calculator(models)
    return Solver(models, models.generate.model_copy(update={"batch_size": batch_size}), use, MwpAdapter())


_AS_WORD = str.maketrans("0123456789-./", "abcdefghijklm")


def answer_vote(_question: str, text: str) -> str:
    """What a solution votes for when draws are taken (`generate.consensus_samples`): its final
    answer, written as one word of letters, because `shared.generate.consensus` counts agreement
    as ROUGE-L over words: one word makes it exact match, so the chosen solution is one whose
    answer most solutions reach (self-consistency, Wang et al. 2023), the greedy one on a tie.
    A solution without an answer votes "", which agrees with nothing: it wins only when no two
    solutions agree, and a greedy solution without an answer still gets its draws."""
    answer = extract_answer(strip_annotations(text))
    return "" if answer is None else answer.translate(_AS_WORD)


def solve(solver: Solver, prompts: list[str]) -> list[Solution]:
    """Iterative AS-ES generation for a batch of prompts (questions already through `prompt`);
    with `generate.consensus_samples` (direct runs), the greedy solution and its draws vote."""
    from shared.generate import generate, result_text

    results = generate(solver.models, prompts, solver.adapter, solver.cfg, vote=answer_vote)
    texts = [result_text(solver.adapter, r) for r in results]
    return [Solution(t, strip_annotations(t), solver.adapter.extract_answer(t)) for t in texts]


SOLVE_CHUNK = 256  # problems decoded at a time by `solve_all`: memory stays bounded however many there are


def solve_all(solver: Solver, prompts: list[str]) -> list[Solution]:
    """`solve` over any number of prompts, a chunk at a time (a whole training set, for
    `mwp mistakes` and `mwp train --teacher`)."""
    out: list[Solution] = []
    for b in range(0, len(prompts), SOLVE_CHUNK):
        out += solve(solver, prompts[b : b + SOLVE_CHUNK])
    return out


def solve_question(solver: Solver, question: str) -> Solution:
    return solve(solver, [prompt(question)])[0]


def evaluate(solver: Solver, records: list["Example | BadRecord"]) -> tuple[list[dict], dict]:
    """One output row per record, in order, and the metrics over the usable ones; a bad record
    is an error row and counts in `errors`, not in `n`."""
    rows = solve_chunk(solver, as_records(records))
    return rows, metrics_of(solver, rows, records)


def as_records(records: list["Example | BadRecord"]) -> list["Record"]:
    """Problems as `shared.records.Record`s, each usable one carrying its problem (`extra`)."""
    from shared.records import Record

    return [
        Record(r.id, error=r.error) if isinstance(r, BadRecord) else Record(r.id, r.question, extra=r) for r in records
    ]


def metrics_of(solver: Solver, rows: list[dict], records: list["Example | BadRecord"]) -> dict:
    """Accuracy and BLEU of `rows` (one per record, in order) over the usable records."""
    good = [(row, r) for row, r in zip(rows, records) if not isinstance(r, BadRecord)]
    metrics = solver.adapter.score([row["generated"] for row, _ in good], [r.target for _, r in good])
    return {**metrics, "errors": len(records) - len(good), "calculator": solver.calculator}


def _row(record: "Example", sol: Solution, adapter: MwpAdapter) -> dict:
    gold = adapter.extract_answer(record.target)
    return {
        "id": record.id,
        "prediction": sol.reasoning,
        "generated": sol.generated,
        "answer": sol.answer,
        "gold": gold,
        "correct": sol.answer is not None and sol.answer == gold,
    }


def solve_chunk(solver: Solver, chunk: list["Record"]) -> list[dict]:
    """One output row per record of a `shared.batch` chunk, in order (`Record.extra`: its problem)."""
    good = [r.extra for r in chunk if r.error is None]
    solutions = iter(solve(solver, [ex.question for ex in good]))
    return [
        {"id": r.id, "error": r.error} if r.error is not None else _row(r.extra, next(solutions), solver.adapter)
        for r in chunk
    ]


def evaluate_to_file(
    solver: Solver, records: list["Example | BadRecord"], out: Path, console: "Console", batch_size: int, resume: bool
) -> dict:
    """`evaluate`, with each chunk's rows written to `out` as it is solved (flushed, fsynced) and
    `resume` continuing an interrupted file: a large set is solved once, however often it is killed.
    The metrics are those of the whole file."""
    from shared.batch import write_batch
    from shared.records import fingerprint

    stream = as_records(records)
    engine = lambda chunks: (solve_chunk(solver, chunk) for chunk in chunks)  # noqa: E731
    settings = {"model": solver.models.name, "calculator": solver.calculator}  # with the problems, what resume checks
    own = solver.models.generate.model_copy(update={"batch_size": solver.cfg.batch_size})
    if solver.cfg != own:  # --samples or --set: a resume must decode as the run it continues
        settings["generate"] = solver.cfg.model_dump(mode="json")
    write_batch(
        engine,
        iter(stream),
        len(stream),
        out,
        console,
        batch_size=batch_size,
        resume=resume,
        unit="problem",
        settings=settings,
        fingerprint=fingerprint(stream),
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]  # not splitlines: U+2028
    return metrics_of(solver, rows, records)


def metrics_line(metrics: dict) -> str:
    return "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
