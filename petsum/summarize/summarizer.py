"""Reports in, impressions out: the one code path behind `summarize`, `batch` and `evaluate`.

A report is normalized and split into anatomical sections; every model input of every report
in the batch (a section, or each of its findings) goes to the batched AS-ES generator; the
answers, each with the `Source` it was written from, are assembled into the impression (each
region's answers joined stay in `RegionSummary.text`). Bad reports come back as `InputError`s in their
place, never raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from petsum.adapter import PetAdapter
from petsum.assemble.closing import ClosingLine
from petsum.assemble.follow_up import keep_change
from petsum.assemble.impression import Assembled, assemble_items, is_normal
from petsum.assemble.opening import OpeningLine, opening_for
from petsum.assemble.order import Source
from petsum.assemble.pointer import read_item_order
from petsum.data.instances import NORMAL
from petsum.summarize.folder import MEMORY_KEY, fitted_entries, input_kind, learned, memory_entry, model_path
from petsum.summarize.grounding import checked
from petsum.summarize.memory import Memory
from petsum.text.inputs import model_inputs
from petsum.text.lexicon import REGIONS, load_lexicon
from petsum.text.report import normalize, sections_of_normalized
from petsum.text.rules import chars, is_follow_up
from petsum.text.spans import merged, source_spans
from shared.records import decode_record
from shared.textio import InputError

MAX_REGION_CHARS = 2000  # a region's findings run to a few hundred characters; beyond this is noise
# Model calls per region and per report: cPET's most are 15 and 29, so these never cut a real
# report, and they bound the work a pathological one costs (each call is a decoding).
MAX_CALLS_PER_REGION = 30
MAX_CALLS_PER_REPORT = 60
MAX_REPORT_BYTES = 1_000_000  # a report is a few KB: a file this large is not one report
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass
class RegionSummary:
    region: str
    text: str
    segments: list[dict] = field(
        default_factory=list
    )  # [{"tag": "ES"|"AS"|None|"copy", "text": …}]; copy: report words
    stopped: bool = True


ORIGINS = ("model", "trimmed", "copy")  # an item of answers of several origins takes the last of them here


@dataclass
class Item:
    """One numbered impression item with its provenance (docs/serve.md, "The summary JSON")."""

    n: int
    text: str
    regions: list[str]
    sources: list[tuple[int, int]]  # [start, end) into the summary's normalized `text`
    origin: str  # model: the model's words; trimmed: with clauses removed; copy: the report's own words
    confidence: float | None  # the lowest of its model answers' (`GenerationResult.confidence`); None: no model words

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "text": self.text,
            "regions": self.regions,
            "sources": [list(s) for s in self.sources],
            "origin": self.origin,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
        }


@dataclass
class Answer:
    """What one model call gave a report: its region, what it was asked, the guard's action and the
    decoding's confidence, for the items written from it."""

    region: str
    question: str
    action: str | None
    confidence: float | None


@dataclass
class Summary:
    impression: str
    regions: list[RegionSummary]
    warnings: list[str] = field(default_factory=list)  # never quote report text: they reach logs
    text: str = ""  # the normalized report text the items' `sources` index
    opening: str | None = None
    items: list[Item] = field(default_factory=list)
    closing: str = ""

    def to_json(self, model: str, engine: dict | None = None) -> dict:
        regions = [{"region": r.region, "segments": r.segments, "stopped": r.stopped} for r in self.regions]
        return {
            "impression": self.impression,
            **self.structured(),
            "regions": regions,
            "model": model,
            **(engine or {}),
            "warnings": self.warnings,
        }

    def structured(self) -> dict:
        """The impression's parts with their provenance: what `batch` records and the service return."""
        return {
            "text": self.text,
            "opening": self.opening,
            "items": [item.to_json() for item in self.items],
            "closing": self.closing,
        }


def items_of(assembled: Assembled, answers: list[Answer], text: str) -> list[Item]:
    """The numbered items of `assembled` with their regions, source spans, origin and confidence,
    from the answers (one per model call, in call order) each was written from."""
    spans: list[list[tuple[int, int]]] = []
    start = 0
    for answer in answers:  # findings come in report order: each is searched for after the one before
        found = source_spans(text, answer.question, start)
        spans.append(found)
        start = found[-1][1] if found else start
    out = []
    for n, (said, froms) in enumerate(assembled.items, 1):
        mine = [answers[k] for k in froms]
        origins = [
            {"copy": "copy", "contradiction": "copy", "trim": "trimmed"}.get(a.action or "", "model") for a in mine
        ]
        sure = [a.confidence for a, o in zip(mine, origins) if o != "copy" and a.confidence is not None]
        out.append(
            Item(
                n,
                said,
                sorted({a.region for a in mine}, key=lambda r: REGIONS.index(r) if r in REGIONS else len(REGIONS)),
                merged([s for k in froms for s in spans[k]]),
                max(origins, key=ORIGINS.index),
                min(sure) if sure else None,
            )
        )
    return out


def sections_of(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(region sections, warnings) of one report's findings; `InputError` if it is unusable."""
    sections, warnings, _ = read_sections(text)
    return sections, warnings


def read_sections(text: str) -> tuple[list[tuple[str, str]], list[str], str]:
    """`sections_of`, with the normalized text the sections were read from."""
    warnings = []
    if len(text) > MAX_REPORT_BYTES:  # bound the work before splitting (the CLI readers refuse larger files)
        warnings.append(f"report truncated from {len(text):,} to {MAX_REPORT_BYTES:,} characters")
        text = text[:MAX_REPORT_BYTES]
    text = normalize(text)
    if not text:
        raise InputError("the report is empty")
    if not _CJK.search(text):
        raise InputError("the report has no Chinese text (petsum reads the findings of Chinese PET/CT reports)")
    if not load_lexicon().terms_in(text):
        raise InputError("the report names no organ or body region: is it the findings section of a PET/CT report?")
    sections = []
    for region, body in sections_of_normalized(text):
        if len(body) > MAX_REGION_CHARS:
            warnings.append(f"{region} section truncated from {len(body)} to {MAX_REGION_CHARS} characters")
            body = body[:MAX_REGION_CHARS]
        sections.append((region, body))
    return sections, warnings, text


def read_report(data: bytes, name: str, max_bytes: int = MAX_REPORT_BYTES) -> str:
    """Decoded report text from raw bytes, refusing sizes no report has."""
    return decode_record(data, name, max_bytes, "PET/CT report")


def region_text(outputs: list[str]) -> str:
    """A region's text from the outputs of its calls (one per finding for a finding-source
    model): a single output as it is; else the abnormal ones in order, or `NORMAL`."""
    if len(outputs) == 1:
        return outputs[0]
    found = [t if t.endswith(("。", "；")) else t + "。" for t in outputs if not is_normal(t)]
    return "".join(found) or NORMAL


def normal_bias(penalty: float) -> dict[str, float]:
    """`generate.first_token_bias` that lowers the logit of the 'no anomaly' answer by `penalty`.
    A small model trained on region instances calls too many abnormal regions normal (most of
    its missed organs on validation); the penalty trades those misses for some false findings."""
    return {NORMAL: -penalty} if penalty else {}


def read_report_file(report: str) -> tuple[str, str]:
    """(name, text) of one report file, or of standard input for `-`."""
    import sys

    from shared.textio import read_bytes

    name = "stdin" if report == "-" else report
    data = sys.stdin.buffer.read(MAX_REPORT_BYTES + 1) if report == "-" else read_bytes(report, MAX_REPORT_BYTES + 1)
    return name, read_report(data, name)


def bounded_inputs(
    report: int, sections: list[tuple[str, str]], source: str, warnings: list[str]
) -> list[tuple[int, str, list[str]]]:
    """(report, region, model inputs) per section, at most `MAX_CALLS_PER_REGION` inputs a region
    and `MAX_CALLS_PER_REPORT` a report, in report order; what is left out is said in `warnings`."""
    out, left = [], MAX_CALLS_PER_REPORT
    for region, body in sections:
        asked = model_inputs(body, source)
        kept = asked[: min(MAX_CALLS_PER_REGION, left)]
        if len(kept) < len(asked):
            warnings.append(
                f"{region}: {len(asked) - len(kept)} of {len(asked)} findings not summarized (at most "
                f"{MAX_CALLS_PER_REGION} a region and {MAX_CALLS_PER_REPORT} a report)"
            )
        left -= len(kept)
        out.append((report, region, kept))
    return out


class Summarizer:
    """Loads a model once; `summarize` takes a batch of report texts.

    `Summarizer.load()` is the Python API (the shipped default, or a folder):

        summarizer = Summarizer.load()
        summary = summarizer.summarize([findings])[0]  # a Summary, or an InputError in its place
    """

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        *,
        backend: str = "auto",
        device: str = "cpu",
        batch_size: int | None = None,
        consensus: int | None = None,
    ) -> "Summarizer":
        """A run, checkpoint or ONNX export folder (None: the shipped default); `consensus` overrides
        the model's draws per finding (0: greedy)."""
        summarizer = cls(model_path(model), backend, batch_size, device)
        summarizer.tune(consensus_samples=consensus)
        return summarizer

    def __init__(
        self,
        model: str | Path,
        backend: str = "auto",
        batch_size: int | None = None,
        device: str = "cpu",
        threads: int = 0,
    ) -> None:
        from deploy.backend import load_models
        from shared.modeling import read_manifest

        self.path = Path(model)
        self.models = load_models(self.path, backend, device, "petsum", threads)
        self.tune(batch_size=batch_size or None)
        self.adapter = PetAdapter()
        manifest = read_manifest(self.path)  # once: the entries below fall back to it in older folders
        self.source = input_kind(self.path, manifest)
        fitted = fitted_entries(self.path, manifest)
        self.item_order = learned(self.path, "item_order", fitted.get("item_order"), read_item_order)  # None: the rule
        self.closing = learned(self.path, "closing_line", fitted.get("closing_line"), ClosingLine.from_json)  # likewise
        self.opening = learned(
            self.path, "opening_line", fitted.get("opening_line"), OpeningLine.from_json
        )  # None: none
        self.memory = learned(
            self.path, MEMORY_KEY, memory_entry(self.path, manifest), Memory.from_json
        )  # None: draws vote alone
        self.guard = True  # `petsum.summarize.grounding`: off only to measure the model alone
        self.trim = True  # its clause-level half, `trim`: likewise

    def tune(self, normal_penalty: float | None = None, **generate: object) -> None:
        """Decode with other `generate` settings than the model's own (None: keep the model's), to
        try them on validation reports before a model sets them; `normal_penalty` is `normal_bias`
        as `first_token_bias`. Validated like a config file: `ConfigError` names a bad field."""
        from shared.config import ConfigError, validated_update

        if normal_penalty is not None:
            generate["first_token_bias"] = normal_bias(normal_penalty)
        tuned = validated_update(self.models.generate, {k: v for k, v in generate.items() if v is not None})
        if tuned.consensus_samples and self.models.method != "direct":
            raise ConfigError(
                f"consensus decoding (--consensus, generate.consensus_samples) is for direct models; "
                f"{self.path} is a {self.models.method} run"
            )
        self.models.generate = tuned

    def vote(self, question: str, text: str) -> str | None:
        """How a finding's candidate answer votes in consensus decoding (`generate.consensus_samples`):
        as the grounding guard would write it, or not at all when that is normal. A finding whose
        greedy answer is normal stays normal without draws (the normal penalty decides that, not a
        vote). Voting on what the guard makes of each answer, not on the raw text, keeps the vote
        from electing a wording that the guard then replaces (fewer organs missed on validation).
        The vote is in the metrics' units (`petsum.evaluation.metrics.chars`: characters and numbers, no
        punctuation), so that answers agree on what they say, not on where their commas are."""
        said = checked(question, text, cut=self.trim)[0] if self.guard else text
        return None if is_normal(said) else " ".join(chars(said))

    def references(self, question: str) -> list[tuple[str, float]]:
        """What the memory (`petsum.summarize.memory`) has radiologists write for findings like this one,
        as votes in consensus decoding; nothing without a memory."""
        return [(" ".join(chars(target)), w) for target, w in self.memory.references(question)] if self.memory else []

    def summarize(self, texts: list[str]) -> list[Summary | InputError]:
        from shared.generate import generate

        out: list[Summary | InputError] = []
        inputs: list[tuple[int, str, list[str]]] = []  # (report index, region, model inputs; [] for nothing to report)
        closings: dict[int, str | None] = {}  # report index → its learned closing line
        openings: dict[int, str | None] = {}  # and its opening line, if any
        follow_ups: dict[int, bool] = {}  # whether its findings compare with an earlier exam
        for i, text in enumerate(texts):
            try:
                sections, warnings, normalized = read_sections(text)
            except InputError as e:
                out.append(e)
                continue
            out.append(Summary("", [], warnings, normalized))
            closings[i] = self.closing.choose(sections) if self.closing else None
            openings[i] = opening_for(self.opening, sections)
            follow_ups[i] = any(is_follow_up(body) for _, body in sections)
            inputs += bounded_inputs(i, sections, self.source, warnings)
        results = iter(
            generate(
                self.models,
                [q for _, _, qs in inputs for q in qs],
                self.adapter,
                self.models.generate,
                self.vote,
                self.references,
            )
        )
        copied, trimmed, contradicted = [0] * len(texts), [0] * len(texts), [0] * len(texts)
        said_by: dict[int, list[tuple[str, str]]] = {
            i: [] for i in closings
        }  # report → (region, answer) per model call
        answers: dict[int, list[Answer]] = {i: [] for i in closings}  # and what each was written from
        sources: dict[int, list[Source]] = {
            i: [] for i in closings
        }  # what each answer was written from: the order reads it
        for i, region, questions in inputs:
            calls = [next(results) for _ in questions]  # none: a region that reports nothing is normal unasked
            outputs, segments = [], []
            for question, res in zip(questions, calls):
                sources[i].append(Source(region, question, len(sources[i])))
                text = self.adapter.join([s.text for s in res.segments])
                said, action = checked(question, text, cut=self.trim) if self.guard else (text, None)
                if follow_ups[i] and action not in ("copy", "contradiction") and not is_normal(said):
                    said = keep_change(question, said)  # a follow-up's change and its SUVmax values stay said
                said_by[i].append((region, said))
                answers[i].append(Answer(region, question, action, res.confidence))
                # the model wrote about another organ, or a number or side it was not given: the report's words instead
                if action in ("copy", "contradiction"):
                    copied[i] += action == "copy"
                    contradicted[i] += action == "contradiction"
                    outputs.append(said)
                    segments.append({"tag": "copy", "text": said})
                    continue
                if (
                    action == "trim"
                ):  # some clauses were about another organ, or stated a number or side it was not given: they go
                    trimmed[i] += 1
                outputs.append(said)
                segments += [{"tag": s.tag, "text": s.text} for s in res.segments]  # what the model wrote, cut or not
            out[i].regions.append(
                RegionSummary(region, region_text(outputs), segments, all(res.stopped for res in calls))
            )  # type: ignore[union-attr]
        for i, summary in enumerate(out):
            if isinstance(summary, Summary):
                covered = {r.region for r in summary.regions}
                assembled = assemble_items(said_by[i], covered, self.item_order, closings[i], sources[i], openings[i])
                summary.impression = assembled.impression
                summary.opening, summary.closing = assembled.opening, assembled.closing
                summary.items = items_of(assembled, answers[i], summary.text)
                if copied[i]:
                    summary.warnings.append(
                        f"{copied[i]} finding(s) in the report's own words: "
                        "the model wrote about another organ, or a number or side the finding does not give"
                    )
                if contradicted[i]:
                    summary.warnings.append(
                        f"{contradicted[i]} finding(s) in the report's own words: "
                        "the model's answer contradicted its finding (uptake, organ state or change)"
                    )
                if trimmed[i]:
                    summary.warnings.append(
                        f"{trimmed[i]} finding(s) with clauses about another organ, "
                        "or with a number or side the finding does not give, removed"
                    )
        return out
