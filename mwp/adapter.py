"""Math word problems as the AS-ES core sees them (the `TaskAdapter` of `mwp`).

Targets are CoT text from `mwp.cot`; the stop sign is the last sentence, `The answer is N.`
Splitting is `shared.text`'s (which never breaks a number: `1,000`, `2.5`, `$3.50`, `1/2`,
`3:30`), plus one rule of this task: a calculator annotation `<<…>>` is never cut in two, so
every segment holds whole annotations and the calculator sees whole expressions."""

from __future__ import annotations

from mwp.answers import STOP_PHRASE, extract_answer
from mwp.cot import strip_annotations
from shared.metrics import corpus_bleu
from shared.text import join_segments, split_subsentences


def _open_annotation(text: str) -> bool:
    return text.rfind("<<") > text.rfind(">>")


class MwpAdapter:
    name = "mwp"
    bleu_tokenize = "13a"
    extra_tokens: list[str] = []

    def split_target(self, target: str) -> list[str]:
        pieces: list[str] = []
        for piece in split_subsentences(target):
            if pieces and _open_annotation(pieces[-1]):
                pieces[-1] = join_segments([pieces[-1], piece])
            else:
                pieces.append(piece)
        return pieces

    def join(self, parts: list[str]) -> str:
        return join_segments(parts)

    def with_stop(self, last_segment: str) -> str:
        return last_segment  # the stop sign, `The answer is N.`, is already the last sentence

    def is_final(self, segment: str) -> bool:
        return STOP_PHRASE in segment

    def strip_stop(self, segment: str) -> str:
        return segment.strip()

    def extract_answer(self, text: str) -> str | None:
        return extract_answer(strip_annotations(text))

    def score(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        """Accuracy of the extracted answers (an output without one counts as wrong, and as
        `no_answer`), and BLEU of the reasoning with calculator annotations removed."""
        preds = [strip_annotations(p) for p in predictions]
        refs = [strip_annotations(r) for r in references]
        got = [extract_answer(p) for p in preds]
        gold = [extract_answer(r) for r in refs]
        correct = sum(g is not None and p == g for p, g in zip(got, gold))
        n = len(predictions)
        return {
            "accuracy": 100 * correct / n if n else 0.0,
            "n": n,
            "correct": correct,
            "no_answer": sum(p is None for p in got),
            "bleu": corpus_bleu(preds, refs, self.bleu_tokenize),
        }
