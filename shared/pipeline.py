"""The whole AS-ES recipe for any task: split, tokenizer, segment, build datasets, train.

`train_run` is what `petsum train` and `mwp train` call; `load_run` loads what it wrote (or any
plain Hugging Face seq2seq folder) for generation.

Output folder:
  tokenizer/                 the tokenizer every model of the run shares
  scorer/                    the direct model that scored `ent`/`loss` (when one was trained)
  data/{role}_{train,val}.jsonl   the AS-ES rows, for inspection
  model/ or esm/ + asm/      one folder per trained model: best_*/, last/, metrics.jsonl
  config.json                the validated run config
  ases.json                  method, task, strategy and which checkpoint each role uses
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from shared.config import GenerateConfig, RunConfig, save_config
from shared.dataset import build_datasets, write_jsonl
from shared.distributed import SINGLE, Dist
from shared.modeling import (
    MANIFEST,
    add_missing_tokens,
    build_model,
    ensure_tokens,
    is_causal,
    is_checkpoint,
    load_model,
    load_tokenizer,
    position_limit,
    read_manifest,
    train_tokenizer,
)
from shared.schema import Example
from shared.segment import MODEL_STRATEGIES, segment_examples
from shared.textio import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from shared.adapter import TaskAdapter
    from shared.generate import ModelSet


def split_examples(examples: list[Example], val_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Deterministic by group (else id): an example's side never depends on file order or on
    the others, and the examples of one group (a report's regions) stay together."""

    def bucket(ex: Example) -> float:
        h = hashlib.sha256(f"{seed}:{ex.group or ex.id}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64

    train = [ex for ex in examples if bucket(ex) >= val_fraction]
    val = [ex for ex in examples if bucket(ex) < val_fraction]
    if not val and len(train) > 1:  # tiny sets still need something to validate on
        val = [train.pop()]
    return train, val


def base_model(cfg: RunConfig, tokenizer, extra_tokens: list[str]):
    """The model training starts from: `model.pretrained` (seq2seq or decoder-only), else a new T5.
    A decoder-only model reads a source and its target as one sequence, so both must fit its
    positions: refused up front rather than failing mid-run."""
    if cfg.model.pretrained:
        model = load_model(cfg.model.pretrained)
        need = cfg.data.max_source_len + cfg.data.max_target_len
        if is_causal(model) and (limit := position_limit(model)) and need > limit:
            raise InputError(
                f"{cfg.model.pretrained}: a decoder-only model of {limit} positions; data.max_source_len + "
                f"data.max_target_len is {need}: lower them"
            )
        ensure_tokens(model, tokenizer, extra_tokens)
        return model.train()
    return build_model(cfg.model, tokenizer, cfg.train.seed)


def get_tokenizer(cfg: RunConfig, train: list[Example], adapter: "TaskAdapter", out: Path, dist: Dist = SINGLE):
    """The run's tokenizer. With several processes rank 0 trains (or adapts) and saves it, and
    every rank then loads the saved one, so all of them hold the very same tokenizer."""
    path = out / "tokenizer"
    if dist.active:
        if dist.main:
            get_tokenizer(cfg, train, adapter, out)
        dist.barrier()
        return load_tokenizer(path)
    if (path / "tokenizer.json").is_file():
        return load_tokenizer(path)
    if cfg.model.pretrained or cfg.model.tokenizer:
        source = Path(cfg.model.pretrained or cfg.model.tokenizer)
        if not source.is_dir():
            raise FileNotFoundError(
                f"{source}: no such folder (model.{'pretrained' if cfg.model.pretrained else 'tokenizer'})"
            )
        tok = load_tokenizer(source)
        add_missing_tokens(tok, adapter.extra_tokens)
    else:
        texts = [t for ex in train for t in (ex.question, ex.target)]
        tok = train_tokenizer(texts, cfg.model.vocab_size, adapter.extra_tokens)
    tok.save_pretrained(str(path))
    return tok


def served_checkpoint(model_dir: Path, best_bleu: float) -> str:
    """Which checkpoint a model serves: best BLEU when BLEU ever rose above 0, else best
    validation loss; without validation rows, the best training loss or the last state."""
    order = (["best_bleu"] if best_bleu > 0 else []) + ["best_loss", "best_train", "last"]
    return next(name for name in order if (model_dir / name / "model.safetensors").is_file())


def prepare_datasets(
    examples: list[Example],
    adapter: "TaskAdapter",
    cfg: RunConfig,
    out: Path,
    console: "Console",
    val_examples: list[Example] | None = None,
    dist: Dist = SINGLE,
) -> tuple[dict[str, list], dict[str, list], object]:
    """Split (unless the caller brings its own validation examples), tokenizer, segmentation
    (training the scorer first where the strategy needs one), and the rows per role, written
    to `out/data/` for inspection: (train rows per role, validation rows per role, tokenizer).
    With several processes every rank computes the same rows (the scorer trains on all of
    them); rank 0's are broadcast so all train on one copy, and only rank 0 writes."""
    out.mkdir(parents=True, exist_ok=True)
    if dist.main:
        save_config(cfg, out / "config.json")
    if val_examples is None:
        train, val = split_examples(examples, cfg.data.val_fraction, cfg.data.split_seed)
    else:
        train, val = examples, val_examples
    if not train:
        raise ValueError("no training examples")
    console.log(f"{len(train)} training and {len(val)} validation examples")
    tok = get_tokenizer(cfg, train, adapter, out, dist)
    method, strategy = cfg.train.method, cfg.segment.strategy
    lens = (cfg.data.max_source_len, cfg.data.max_target_len)

    segmented_train = segmented_val = None
    if method != "direct":
        scorer, scorer_tok = (
            _scorer(cfg, adapter, train, val, tok, out, console, dist) if strategy in MODEL_STRATEGIES else (None, None)
        )
        segmented_train = segment_examples(train, adapter, cfg.segment, scorer, scorer_tok, *lens)
        segmented_val = segment_examples(val, adapter, cfg.segment, scorer, scorer_tok, *lens)
    train_sets = build_datasets(train, segmented_train or [], adapter, method)
    val_sets = build_datasets(val, segmented_val or [], adapter, method)
    train_sets, val_sets = dist.broadcast((train_sets, val_sets))
    if dist.main:
        for role in train_sets:
            write_jsonl(train_sets[role], out / "data" / f"{role}_train.jsonl")
            write_jsonl(val_sets[role], out / "data" / f"{role}_val.jsonl")
    return train_sets, val_sets, tok


def train_run(
    examples: list[Example],
    adapter: "TaskAdapter",
    cfg: RunConfig,
    out: Path,
    console: "Console",
    extra: dict | None = None,
    val_examples: list[Example] | None = None,
    dist: Dist = SINGLE,
    label: str | None = None,
) -> dict:
    """Run the recipe end to end; returns the manifest written to `out/ases.json` (with the
    task's own `extra` facts, e.g. how PET reports were split into instances). Validation
    examples default to a seeded `data.val_fraction` of `examples`. Under torchrun every rank
    calls this with the same arguments and `dist`; rank 0 writes the run folder."""
    from shared.trainer import train_model

    train_sets, val_sets, tok = prepare_datasets(examples, adapter, cfg, out, console, val_examples, dist)
    method, strategy = cfg.train.method, cfg.segment.strategy
    total = sum(len(rows) for rows in train_sets.values())
    roles: dict[str, str] = {}
    stats: dict[str, dict] = {}
    for role, rows in train_sets.items():
        manifest = {
            "method": method,
            "role": role,
            "task": adapter.name,
            "strategy": strategy,
            "beta": cfg.segment.beta,
            "max_source_len": cfg.data.max_source_len,
            "generate": cfg.generate.model_dump(),
            **(extra or {}),
        }
        share = len(rows) / total  # DSM's two models split one budget by their share of the rows
        _, st = train_model(
            base_model(cfg, tok, adapter.extra_tokens),
            tok,
            rows,
            val_sets[role],
            cfg,
            out / role,
            manifest,
            adapter.bleu_tokenize,
            share,
            console,
            dist,
            label,
        )
        roles[role] = (
            f"{role}/{served_checkpoint(out / role, st.best_bleu)}"  # rank 0's (it alone evaluates) is the one written
        )
        stats[role] = {"steps": st.step, "tokens": st.tokens, "train_s": round(st.train_s, 1)}
    manifest = {
        "method": method,
        "task": adapter.name,
        "strategy": None if method == "direct" else strategy,
        "beta": cfg.segment.beta,
        "roles": roles,
        "train": stats,
        "max_source_len": cfg.data.max_source_len,
        "validation": "seeded share of the data" if val_examples is None else "separate file",
        **(extra or {}),
    }
    if dist.main:
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _scorer(cfg: RunConfig, adapter, train, val, tok, out: Path, console: "Console", dist: Dist = SINGLE):
    """(model, its tokenizer) whose token entropy/loss tags the pieces."""
    from shared.dataset import direct_sample
    from shared.trainer import train_model

    strategy = cfg.segment.strategy
    if cfg.segment.scorer:  # the user's checkpoint reads text with its own tokenizer
        model, scorer_tok = load_model(cfg.segment.scorer), load_tokenizer(cfg.segment.scorer)
        ensure_tokens(model, scorer_tok, adapter.extra_tokens)
        return model.eval(), scorer_tok
    if strategy == "ent_pre":
        return base_model(cfg, tok, adapter.extra_tokens).eval(), tok  # not fine-tuned: the paper's ent_pre
    console.log(f"training the direct model that scores '{strategy}'")
    manifest = {"method": "direct", "role": "model", "task": adapter.name}
    train_model(
        base_model(cfg, tok, adapter.extra_tokens),
        tok,
        [direct_sample(ex, adapter) for ex in train],
        [direct_sample(ex, adapter) for ex in val],
        cfg,
        out / "scorer",
        manifest,
        adapter.bleu_tokenize,
        cfg.segment.scorer_budget,
        console,
        dist,
    )
    return load_model(out / "scorer" / served_checkpoint(out / "scorer", 0.0)), tok


def decoding_settings(path: Path) -> GenerateConfig:
    """The decoding settings a run, checkpoint or export was made with: the run config's
    `generate`, else the one `ases.json` carries (checkpoints and exports of them), else the
    defaults, taking a plain HF folder's own `no_repeat_ngram_size` from its generation_config.json.
    Validated with the bounds of a config file; `InputError` naming the file and the field otherwise."""
    from pydantic import ValidationError

    from shared.config import format_errors

    for name in ("config.json", MANIFEST):
        f = path / name
        settings = read_manifest(path) if name == MANIFEST else _read_json(f)
        if isinstance(settings, dict) and isinstance(settings.get("generate"), dict):
            try:
                return GenerateConfig.model_validate(settings["generate"])
            except ValidationError as e:
                raise InputError(f"{f}: {format_errors(e, 'generate')}") from None
        if name == "config.json" and isinstance(settings, dict) and "generate" in settings:
            raise InputError(f"{f}: generate: not a mapping of settings")
    own = _read_json(path / "generation_config.json")
    n = own.get("no_repeat_ngram_size") if isinstance(own, dict) else None
    return GenerateConfig(no_repeat_ngram_size=n) if isinstance(n, int) and 0 < n <= 64 else GenerateConfig()


def _read_json(f: Path) -> object:
    """A JSON file of a model folder ({} when absent); `InputError` naming it when it is not JSON."""
    if not f.is_file():
        return {}
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{f}: not readable as JSON ({type(e).__name__})") from None


def load_run(path: str | Path) -> "ModelSet":
    """A run folder (ases.json with roles), one of its checkpoints, or any HF seq2seq folder
    (a checkpoint without our manifest is treated as a direct model). Every file is checked as it
    is read: a broken manifest, tokenizer or weights file is an `InputError` naming it."""
    from shared.generate import ModelSet
    from shared.modeling import role_folders

    path = Path(path)
    manifest = read_manifest(path)
    if "roles" in manifest:
        folders = role_folders(path, manifest)
        gen = decoding_settings(path)
        tok = load_tokenizer(next(iter(folders.values())))  # before the weights: a broken one fails in ms
        models = {role: load_model(folder) for role, folder in folders.items()}
        method, max_len = manifest.get("method", "direct"), manifest.get("max_source_len", 512)
        return ModelSet(method, tok, models, max_len, path.name, gen)
    if not is_checkpoint(path):
        raise FileNotFoundError(
            f"{path} is neither a training run nor a model folder (no config.json + model.safetensors)"
        )
    method = manifest.get("method", "direct")
    if method == "dsm":
        raise ValueError(f"{path} is one half of a DSM pair; pass the run folder that holds esm/ and asm/")
    gen = decoding_settings(path)
    tok = load_tokenizer(path)
    return ModelSet(method, tok, {"model": load_model(path)}, manifest.get("max_source_len", 512), path.name, gen)
