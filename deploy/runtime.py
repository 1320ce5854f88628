"""Serve an export (`deploy.export`) with onnxruntime: batched greedy and beam search over the
decoder-step graph with its KV cache, behind the same `TokenGenerator` interface the torch
backend has, so the AS-ES loop in `shared.generate` runs unchanged on top of it.

Decoding follows Hugging Face's `generate` rule for rule (greedy: pad after EOS; beam: 2·k
candidates per step, length penalty 1, early stopping once k hypotheses are done), so an fp32
export writes the same tokens as the torch model it came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deploy.export import FORMAT, ONNX_MANIFEST, past_names
from shared.generate import Decoded, LogitBias, Sampling, ban_repeats, mean_probability

if TYPE_CHECKING:
    from shared.generate import ModelSet

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


def is_export(path: str | Path) -> bool:
    """An export folder (or one role of it)."""
    from shared.modeling import read_manifest

    p = Path(path)
    if (p / ONNX_MANIFEST).is_file():
        return True
    return read_manifest(p).get("backend") == "onnx"  # a broken manifest is an error naming it, not "no export"


class OnnxSeq2Seq:
    """One exported checkpoint: the encoder runs once per batch, the decoder once per token."""

    # Seeded draws (`Sampling`) decode each distinct (source, prefix so far) once, shared by the
    # draws that have it (`_shared_draws`); False: one decoder row per draw (`_greedy`), as before.
    share_draws = True

    def __init__(self, folder: str | Path, device: str = "cpu", threads: int = 0) -> None:
        import onnxruntime as ort

        from shared.textio import InputError

        folder = Path(folder)
        try:
            info = json.loads((folder / ONNX_MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"{folder}: no readable {ONNX_MANIFEST}; is it a folder written by `export`?") from None
        keys = ("num_decoder_layers", "num_heads", "d_kv", "decoder_start_token_id", "pad_token_id", "eos_token_id")
        if (
            not isinstance(info, dict)
            or info.get("format") != FORMAT
            or any(not isinstance(info.get(k), int) for k in keys)
        ):
            raise InputError(f"{folder}: {ONNX_MANIFEST} is not a {FORMAT} manifest; re-run `export` with this version")
        self.n_layers, self.heads, self.d_kv = info["num_decoder_layers"], info["num_heads"], info["d_kv"]
        self.start, self.pad, self.eos = info["decoder_start_token_id"], info["pad_token_id"], info["eos_token_id"]
        self.dtype = info.get("dtype", "fp32")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0: onnxruntime's choice, one thread per physical core
        opts.log_severity_level = 3  # warnings about unused initializers etc. are not for our users
        # Ask for CUDA only where this onnxruntime build has it (the CPU build would warn and ignore it).
        providers = [CUDA, CPU] if device == "cuda" and CUDA in ort.get_available_providers() else [CPU]
        try:
            self.encoder = ort.InferenceSession(str(folder / "encoder.onnx"), opts, providers=providers)
            self.decoder = ort.InferenceSession(str(folder / "decoder.onnx"), opts, providers=providers)
        except Exception as e:  # onnxruntime's errors (NoSuchFile, InvalidProtobuf, …) are plain Exceptions
            raise InputError(f"{folder}: onnxruntime cannot load the export ({_first_line(e)})") from None
        # What the sessions really use: with onnxruntime-gpu on a machine without a working CUDA,
        # get_available_providers() still lists CUDA, but the session falls back to CPU.
        self.providers = self.decoder.get_providers()
        self._cross = past_names(self.n_layers, "cross")
        self._past = past_names(self.n_layers, "past")
        self.rows_decoded = 0  # decoder rows run so far, summed over every step of every call

    def encode(self, sources: list[list[int]]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """(hidden states, cross-attention keys/values per layer, mask) of right-padded sources."""
        from shared.batching import pad

        ids, mask = (t.numpy() for t in pad(sources, self.pad))  # the same padding as the torch path
        hidden, *cross = _run(self.encoder, {"input_ids": ids, "attention_mask": mask})
        return hidden, cross, mask

    def step(
        self, tokens: np.ndarray, mask: np.ndarray, past: list[np.ndarray], cross: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Next-token logits (batch, vocab) and the grown self-attention cache."""
        feed = {"token": tokens.reshape(-1, 1).astype(np.int64), "encoder_mask": mask}
        feed.update(zip(self._past, past))
        feed.update(zip(self._cross, cross))
        logits, *present = _run(self.decoder, feed)
        return logits, present

    def empty_past(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, self.heads, 0, self.d_kv), dtype=np.float32) for _ in range(2 * self.n_layers)]

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
        if sampling and self.share_draws:
            return self._shared_draws(sources, max_new_tokens, no_repeat, bias, sampling)
        _, cross, mask = self.encode(sources)
        if num_beams == 1 or sampling:
            return self._greedy(cross, mask, max_new_tokens, no_repeat, bias, sampling)
        return self._beam(cross, mask, max_new_tokens, num_beams, no_repeat, bias)

    def _greedy(
        self,
        cross: list[np.ndarray],
        mask: np.ndarray,
        limit: int,
        no_repeat: int = 0,
        bias: LogitBias | None = None,
        sampling: Sampling | None = None,
    ) -> list[list[int]]:
        n = mask.shape[0]
        out: list[list[int]] = [[] for _ in range(n)]
        log_p = np.zeros(n)  # each row's summed log-probability of its tokens: the greedy confidence stand-in
        rows = np.arange(n)  # the inputs still generating; finished ones leave the batch
        tokens = np.full(n, self.start, dtype=np.int64)
        past = self.empty_past(n)
        for i in range(limit):
            logits, past = self.step(tokens, mask, past, cross)
            self.rows_decoded += len(tokens)
            if bias:
                bias.apply(logits, i)
            ban_repeats(logits, ([self.start, *out[r]] for r in rows), no_repeat)
            if sampling:
                sampling.apply(logits, rows, i)
            tokens = logits.argmax(-1)
            if not sampling:
                log_p[rows] += mean_probability(logits, tokens)
            for r, t in zip(rows, tokens):
                out[r].append(int(t))
            keep = tokens != self.eos
            if not keep.all():  # shrink every batched tensor to the unfinished rows
                if not keep.any():
                    break
                rows, tokens, mask = rows[keep], tokens[keep], mask[keep]
                past = [p[keep] for p in past]
                cross = [c[keep] for c in cross]
        decoded = Decoded(out)
        if not sampling:
            decoded.probability = [float(np.exp(log_p[r] / len(toks))) if toks else None for r, toks in enumerate(out)]
        return decoded

    def _shared_draws(
        self,
        sources: list[list[int]],
        limit: int,
        no_repeat: int,
        bias: LogitBias | None,
        sampling: Sampling,
    ) -> list[list[int]]:
        """`_greedy` with `sampling`, the same tokens row for row, but each distinct source is encoded
        once and each distinct (source, prefix so far) decoded once: a draw's next token depends only
        on its key and its prefix's logits, so draws that share a prefix (repeats of a source, most
        of whose draws take the same likely tokens for many steps) share its decoder row. Each step,
        the draws of a group that take the same token form a new group, and a draw that writes EOS
        leaves."""
        distinct: dict[tuple[int, ...], int] = {}
        source_of = np.array([distinct.setdefault(tuple(s), len(distinct)) for s in sources])
        _, cross, mask = self.encode([list(s) for s in distinct])
        out: list[list[int]] = [[] for _ in sources]
        # Group g: the draws `members[g]` (ascending), which share `prefixes[g]`, fed `tokens[g]` next.
        members = [np.flatnonzero(source_of == s) for s in range(len(distinct))]
        prefixes: list[list[int]] = [[] for _ in distinct]
        tokens = np.full(len(distinct), self.start, dtype=np.int64)
        past = self.empty_past(len(distinct))
        for i in range(limit):
            logits, past = self.step(tokens, mask, past, cross)
            self.rows_decoded += len(tokens)
            if bias:
                bias.apply(logits, i)
            ban_repeats(logits, ([self.start, *p] for p in prefixes), no_repeat)
            group_of = np.repeat(np.arange(len(members)), [len(m) for m in members])
            draws = np.concatenate(members)
            scores = logits[group_of]  # one row per draw, a copy of its group's
            sampling.apply(scores, draws, i)
            drawn = scores.argmax(-1)
            for d, t in zip(draws.tolist(), drawn.tolist()):
                out[d].append(t)
            live = drawn != self.eos
            if not live.any():
                break
            vocab = logits.shape[1]
            pairs, inverse = np.unique(group_of[live] * vocab + drawn[live], return_inverse=True)
            parent, tokens = pairs // vocab, (pairs % vocab).astype(np.int64)
            order = np.argsort(inverse, kind="stable")  # draws stay ascending within each group
            members = np.split(draws[live][order], np.cumsum(np.bincount(inverse, minlength=len(pairs)))[:-1])
            prefixes = [[*prefixes[g], int(t)] for g, t in zip(parent.tolist(), tokens.tolist())]
            if len(parent) != len(past[0]) or (parent != np.arange(len(parent))).any():  # split or ended: gather
                past = [p[parent] for p in past]
                cross = [c[parent] for c in cross]
                mask = mask[parent]
        return Decoded(out)

    def _beam(
        self,
        cross: list[np.ndarray],
        mask: np.ndarray,
        limit: int,
        k: int,
        no_repeat: int = 0,
        bias: LogitBias | None = None,
    ) -> list[list[int]]:
        n, keep = mask.shape[0], 2 * k  # two candidates per beam: enough to refill k live beams after EOS
        cross = [np.repeat(c, k, axis=0) for c in cross]
        mask = np.repeat(mask, k, axis=0)
        past = self.empty_past(n * k)
        running = np.zeros((n, k), dtype=np.float32)  # float32 like torch: near-tie beams rank alike
        running[:, 1:] = -1e9  # all beams start identical: only the first may expand at step one
        seqs = np.zeros((n, k, 0), dtype=np.int64)
        done_scores = np.full((n, k), -1e9, dtype=np.float32)
        done_seqs: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(n)]
        done_flag = np.zeros((n, k), dtype=bool)
        improvable = np.ones(n, dtype=bool)
        tokens = np.full(n * k, self.start, dtype=np.int64)
        for cur in range(1, limit + 1):  # cur = generated length including this step's token
            logits, past = self.step(tokens, mask, past, cross)
            self.rows_decoded += len(tokens)
            logp = _log_softmax(logits.astype(np.float32))
            if bias:
                bias.apply(logp, cur - 1)  # after the softmax, as HF applies its processors in beam search
            ban_repeats(
                logp, ([self.start, *seq.tolist()] for seq in seqs.reshape(n * k, -1)), no_repeat
            )  # after the softmax, as HF
            logp = logp.reshape(n, k, -1) + running[:, :, None]
            vocab = logp.shape[-1]
            flat = logp.reshape(n, -1)
            top = np.argpartition(-flat, keep - 1, axis=1)[:, :keep]  # the 2k best, then in order
            top = np.take_along_axis(
                top, np.argsort(-np.take_along_axis(flat, top, axis=1), axis=1, kind="stable"), axis=1
            )
            top_scores = np.take_along_axis(flat, top, axis=1)
            beam_of, token_of = top // vocab, top % vocab
            batch_rows = np.arange(n)[:, None]
            cand = np.concatenate([seqs[batch_rows, beam_of], token_of[:, :, None]], axis=2)  # (n, 2k, cur)
            finished = (token_of == self.eos) | (cur == limit)
            # Finished candidates among the top k compete for the k kept hypotheses.
            for b in range(n):
                if done_flag[b].all() or not improvable[b]:
                    continue
                for j in range(k):
                    if finished[b, j]:
                        score = np.float32(top_scores[b, j] / cur)
                        worst = int(np.argmin(done_scores[b]))
                        if score > done_scores[b, worst]:
                            done_scores[b, worst], done_seqs[b][worst], done_flag[b, worst] = (
                                score,
                                cand[b, j].tolist(),
                                True,
                            )
            # The k best unfinished candidates live on.
            live = np.where(finished, top_scores - np.float32(1e9), top_scores)
            nxt = np.argsort(-live, axis=1, kind="stable")[:, :k]
            running = np.take_along_axis(live, nxt, axis=1)
            seqs = cand[batch_rows, nxt]
            origin = (np.take_along_axis(beam_of, nxt, axis=1) + np.arange(n)[:, None] * k).reshape(-1)
            past = [p[origin] for p in past]
            tokens = seqs[:, :, -1].reshape(-1)
            # Stop improving an input once its best live beam cannot beat its worst kept hypothesis.
            worst_done = np.where(done_flag, done_scores.min(axis=1, keepdims=True), -1e9)
            improvable &= (running[:, :1] / cur > worst_done).any(axis=1)
            if (done_flag.all() or not improvable.any()) or finished.all():
                break
        out = []
        for b in range(n):
            best = int(np.argmax(done_scores[b]))
            out.append(done_seqs[b][best])
        return out


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _run(session, feed: dict) -> list[np.ndarray]:
    """`session.run`, with onnxruntime's failures (e.g. CUDA out of memory) as RuntimeError,
    which the CLIs report in one line and batch jobs record per report."""
    try:
        return session.run(None, feed)
    except Exception as e:
        raise RuntimeError(f"onnxruntime: {_first_line(e)}") from None


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def load_onnx_run(path: str | Path, device: str = "cpu", threads: int = 0) -> "ModelSet":
    """An export folder as a `ModelSet`, ready for `shared.generate.generate`."""
    from shared.fast_tokenizer import load_fast_tokenizer
    from shared.generate import ModelSet
    from shared.modeling import load_tokenizer, read_manifest, role_folders
    from shared.pipeline import decoding_settings
    from shared.textio import InputError

    path = Path(path)
    manifest = read_manifest(path)  # validated as a whole (`shared.modeling.Manifest`); {} when absent
    if (path / ONNX_MANIFEST).is_file():  # one exported model (a role folder, or a plain checkpoint's export)
        if manifest.get("method") == "dsm":
            raise InputError(f"{path} is one half of a DSM pair; pass the export folder that holds esm/ and asm/")
        manifest = {
            "method": manifest.get("method", "direct"),
            "max_source_len": manifest.get("max_source_len", 512),
            "roles": {"model": "."},
        }
    if not manifest.get("roles"):
        raise InputError(f"{path}: ases.json does not describe an export (method, roles); re-run `export`")
    folders = role_folders(path, manifest)
    gen = decoding_settings(path)
    first = next(iter(folders.values()))
    tok = load_fast_tokenizer(first) or load_tokenizer(first)
    models = {role: OnnxSeq2Seq(folder, device, threads) for role, folder in folders.items()}
    providers = next(iter(models.values())).providers
    return ModelSet(
        manifest.get("method", "direct"),
        tok,
        models,
        manifest.get("max_source_len", 512),
        path.name,
        gen,
        backend="onnx",
        providers=providers,
    )
