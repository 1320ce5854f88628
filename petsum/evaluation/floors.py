"""The two floors every trained model must beat (docs/results/pet.md, "AS-ES versus direct").

- `Retrieval`: copy the impression of the nearest training report, by cosine similarity of
  TF-IDF vectors over character 1–3-grams of the normalized findings.
- `extractive`: the rule a resident would apply: list, region by region, the findings
  sentences that report raised uptake or an SUVmax, as numbered items.
"""

from __future__ import annotations

import re
from pathlib import Path

from petsum.assemble.impression import assemble
from petsum.data.pairs import load_pairs
from petsum.evaluation.metrics import evaluate_texts
from petsum.summarize.tfidf import TfIdf
from petsum.text.report import normalize, split_sections
from petsum.text.rules import raised_uptake, sentences
from shared.dataset import write_jsonl
from shared.schema import Example
from shared.textio import InputError


def _cleaned(text: str) -> str:
    return re.sub(r"\s+", " ", normalize(text))


class Retrieval:
    """TF-IDF (sublinear tf, smoothed idf, L2-normalized; `petsum.summarize.tfidf`) over the training
    reports' normalized findings."""

    def __init__(self, train: list[Example]):
        if not train:
            raise ValueError("retrieval needs at least one training report")
        self.targets = [ex.target for ex in train]
        self.index = TfIdf([_cleaned(ex.question) for ex in train], smooth=True)

    def nearest(self, question: str) -> tuple[int, float]:
        """(index of the most similar training report, cosine similarity); ties: the first."""
        return next(iter(self.index.nearest(_cleaned(question), 1)), (0, 0.0))

    def predict(self, question: str) -> str:
        return self.targets[self.nearest(question)[0]]


def extractive(question: str) -> str:
    """The abnormal-uptake sentences of each region, numbered, with the usual closing line."""
    sections = split_sections(question)
    outputs = []
    for region, text in sections:
        kept = [s.strip() for s in sentences(text) if raised_uptake(s)]
        outputs.append((region, "".join(s if s.endswith("。") else s.rstrip("；") + "。" for s in kept)))
    return assemble(outputs, {r for r, _ in sections})


def floor_predictions(kind: str, reports: list[Example], train: list[Example]) -> list[dict]:
    """One record per report: id, the floor's impression, the reference."""
    if kind == "retrieval":
        index = Retrieval(train)
        predict = index.predict
    elif kind == "extractive":
        predict = extractive
    else:
        raise ValueError(f"unknown floor {kind!r} (retrieval or extractive)")
    return [{"id": ex.id, "impression": predict(ex.question), "reference": ex.target} for ex in reports]


def score_floor(kind: str, data: str, train_data: str | None, pred_path: str | None = None) -> dict:
    """`petsum floor`: the floor's metrics on `data` (retrieval copies from `train_data`); with
    `pred_path`, each prediction and its reference written there as JSONL."""
    if kind == "retrieval" and not train_data:
        raise InputError("retrieval needs --train: the reports it copies impressions from")
    preds = floor_predictions(kind, load_pairs(data), load_pairs(train_data) if train_data else [])
    if pred_path:
        write_jsonl(preds, Path(pred_path))
    return evaluate_texts([p["impression"] for p in preds], [p["reference"] for p in preds])
