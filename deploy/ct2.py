"""Serve an export with CTranslate2: greedy and beam search in its C++ decoder, behind the same
`TokenGenerator` interface as torch and onnxruntime, so the AS-ES loop runs unchanged on top.

An export made with `export --ct2` holds, in each role folder, a CTranslate2 conversion of the
checkpoint (`ct2/`) beside the ONNX graphs. CTranslate2 decodes greedy and beam search with the
n-gram ban; what it cannot do exactly is done as follows:

- the first-token bias (`LogitBias.first`): greedy decoding returns each answer's first-step
  logits with it (`return_logits_vocab`); where the biased choice differs from the answer's first
  token, that row is decoded again from the chosen token as a target prefix;
- seeded draws (`Sampling`), beam search with a bias, and a bias at every step: CTranslate2 draws
  from one global generator, not per input, and applies no logit bias, so these go to the
  export's onnxruntime model (`sampler`), which decodes them exactly as the other backends do.

On a model this small one thread per batch is fastest, and the cores are used by running several
batches at once (`inter_threads`): `layout` picks that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deploy.export import CT2_DIR, CT2_FORMAT, CT2_MANIFEST
from shared.device import usable_cores
from shared.generate import Decoded, LogitBias, Sampling, TokenGenerator
from shared.textio import InputError

if TYPE_CHECKING:
    from shared.generate import ModelSet


def available() -> bool:
    """Whether the `ctranslate2` package is installed."""
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def layout(threads: int = 0, device: str = "cpu") -> tuple[int, int]:
    """(workers, threads per worker): on the CPU one thread per worker and as many workers as
    `threads` (0: every core this process may use); on a GPU one worker."""
    if device == "cuda":
        return 1, 1
    return max(1, threads or usable_cores()), 1


def has_ct2(role_folder: str | Path) -> bool:
    return (Path(role_folder) / CT2_DIR / CT2_MANIFEST).is_file()


class Ct2Seq2Seq:
    """One converted checkpoint, decoding with CTranslate2; `sampler` decodes what it cannot."""

    def __init__(
        self,
        folder: str | Path,
        device: str = "cpu",
        threads: int = 0,
        sampler: TokenGenerator | None = None,
        # (workers, threads each) instead of `layout`'s choice: the benchmark tries them all
        workers_threads: tuple[int, int] | None = None,
    ) -> None:
        import ctranslate2

        folder = Path(folder)
        try:
            info = json.loads((folder / CT2_MANIFEST).read_text(encoding="utf-8"))
            vocab = json.loads((folder / "shared_vocabulary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"{folder}: not a readable CTranslate2 conversion; re-run `export --ct2`") from None
        if not isinstance(info, dict) or info.get("format") != CT2_FORMAT or not isinstance(vocab, list):
            raise InputError(f"{folder}: {CT2_MANIFEST} is not a {CT2_FORMAT} manifest; re-run `export --ct2`")
        use_cuda = device == "cuda" and ctranslate2.get_cuda_device_count() > 0
        self.workers, intra = workers_threads or layout(threads, "cuda" if use_cuda else "cpu")
        compute = "int8" if info.get("dtype") == "int8" else "float32"
        if use_cuda:
            compute = "int8_float16" if compute == "int8" else "float16"
        try:
            self.translator = ctranslate2.Translator(
                str(folder),
                device="cuda" if use_cuda else "cpu",
                compute_type=compute,
                inter_threads=self.workers,
                intra_threads=intra,
            )
        except (RuntimeError, ValueError) as e:
            raise InputError(f"{folder}: CTranslate2 cannot load the conversion ({str(e).splitlines()[0]})") from None
        self.vocab = vocab
        self.ids = {token: i for i, token in enumerate(vocab)}
        self.sampler = sampler
        self.providers = [f"ctranslate2-{'cuda' if use_cuda else 'cpu'}-{compute} ({self.workers}x{intra})"]

    def generate_tokens(
        self,
        sources: list[list[int]],
        max_new_tokens: int,
        num_beams: int,
        no_repeat: int = 0,
        bias: LogitBias | None = None,
        sampling: Sampling | None = None,
    ) -> list[list[int]]:
        if not sources:
            return []
        if sampling or (bias and bias.every) or (bias and num_beams > 1):
            if self.sampler is None:
                raise InputError(
                    "the ct2 backend decodes greedy and beam search only; seeded draws and logit biases in beam "
                    "search need the export's onnxruntime model (re-run `export --ct2`)"
                )
            return self.sampler.generate_tokens(sources, max_new_tokens, num_beams, no_repeat, bias, sampling)
        tokens = [[self.vocab[t] for t in s] for s in sources]
        biased = bool(bias and bias.first)  # then the first step's logits come back with each answer
        res = self._translate(tokens, max_new_tokens, num_beams, no_repeat, return_logits_vocab=biased)
        rows = Decoded([self.ids[t] for t in r.hypotheses[0]] for r in res)
        # CTranslate2's greedy score is the mean log-probability of the generated tokens (EOS included).
        logp = [float(r.scores[0]) * len(row) if row else 0.0 for r, row in zip(res, rows)]
        if biased:
            first = np.stack([np.asarray(r.logits[0][0], dtype=np.float64).reshape(-1) for r in res])
            self._first_step(tokens, rows, logp, bias, first, max_new_tokens, num_beams, no_repeat)
        if num_beams == 1:
            rows.probability = [float(np.exp(lp / len(row))) if row else None for lp, row in zip(logp, rows)]
        bare = [i for i, s in enumerate(sources) if len(s) < 2]  # EOS alone: CTranslate2 answers nothing
        if bare and self.sampler is not None:
            got = self.sampler.generate_tokens([sources[i] for i in bare], max_new_tokens, num_beams, no_repeat, bias)
            sure = getattr(got, "probability", None) or [None] * len(bare)
            for i, row, p in zip(bare, got, sure):
                rows[i] = row
                if rows.probability is not None:
                    rows.probability[i] = p
        return rows

    def _translate(self, tokens: list[list[str]], limit: int, beams: int, no_repeat: int, prefix=None, **extra):
        return self.translator.translate_batch(
            tokens,
            prefix,
            max_batch_size=-(-len(tokens) // self.workers),  # one batch per worker, decoded at once
            beam_size=beams,
            no_repeat_ngram_size=no_repeat,
            max_decoding_length=limit,
            min_decoding_length=0,  # as Hugging Face: an answer may end at its first step
            max_input_length=0,  # the sources are already cut to the model's length
            return_end_token=True,
            return_scores=True,
            **extra,
        )

    def _first_step(
        self,
        tokens: list[list[str]],
        rows: list[list[int]],
        logp: list[float],
        bias: LogitBias,
        first: np.ndarray,
        limit: int,
        beams: int,
        no_repeat: int,
    ) -> None:
        """In place, from every row's first-step logits `first` (rows × vocabulary): the rows whose
        first token the bias changes, decoded again from the biased choice as a target prefix, and
        every row's log-probability as the other backends count it (the first step's after the bias)."""
        plain = first - _logsumexp(first)
        for t, b in bias.first.items():
            first[:, t] += b
        biased = first - _logsumexp(first)
        choices = biased.argmax(axis=1)
        again: dict[int, int] = {}
        for i, choice in enumerate(choices.tolist()):
            if rows[i] and choice == rows[i][0]:
                logp[i] += float(biased[i, choice] - plain[i, choice])
            elif choice == self.ids.get("</s>", -1) or limit == 1:
                rows[i], logp[i] = [choice], float(biased[i, choice])
            else:
                again[i] = choice
                logp[i] = float(biased[i, choice])
        if again:
            order = list(again)
            prefix = [[self.vocab[again[i]]] for i in order]
            res = self._translate([tokens[i] for i in order], limit, beams, no_repeat, prefix)
            for i, r in zip(order, res):
                rows[i] = [self.ids[t] for t in r.hypotheses[0]]
                # the score averages the tokens after the prefix over the whole length
                logp[i] += float(r.scores[0]) * len(rows[i])


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=1, keepdims=True))


def load_ct2_run(path: str | Path, device: str = "cpu", threads: int = 0) -> "ModelSet":
    """An export folder with CTranslate2 conversions (`export --ct2`) as a `ModelSet`: CTranslate2
    decodes, the export's onnxruntime models draw (`Ct2Seq2Seq.sampler`)."""
    from deploy.runtime import OnnxSeq2Seq, load_onnx_run

    folders = export_roles(Path(path))
    if not all(has_ct2(folder) for folder in folders.values()):  # before any engine loads
        raise InputError(f"{path} has no CTranslate2 conversion; re-export it with `export --ct2`")
    models = load_onnx_run(path, device, threads)  # the manifest, tokenizer and decoding settings
    samplers: dict[str, OnnxSeq2Seq] = models.models  # type: ignore[assignment]
    models.models = {
        role: Ct2Seq2Seq(folder / CT2_DIR, device, threads, samplers[role]) for role, folder in folders.items()
    }
    models.backend = "ct2"
    models.providers = next(iter(models.models.values())).providers  # type: ignore[union-attr]
    return models


def export_roles(path: Path) -> dict[str, Path]:
    """Role → folder of an export (a plain checkpoint's export is its own one role)."""
    from deploy.export import ONNX_MANIFEST
    from shared.modeling import read_manifest, role_folders

    if (path / ONNX_MANIFEST).is_file():
        return {"model": path}
    return role_folders(path, read_manifest(path))
