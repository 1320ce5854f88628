"""Build a compact T5 and its subword tokenizer from a config, or load a local HF checkpoint.

Offline only: every load passes `local_files_only=True`, weights are safetensors, and remote
code is never trusted. A checkpoint folder written here is a plain Hugging Face folder that
`AutoModelForSeq2SeqLM` / `AutoTokenizer` load without this package.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from shared.config import ModelConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
# Characters every tokenizer must know even if the training corpus lacks them: digits and
# ASCII (so an unseen number never becomes <unk>) and Chinese punctuation.
BASE_ALPHABET = sorted(
    set(string.digits + string.ascii_letters + string.punctuation + "，。；：、！？（）《》“”‘’×～—…")
)
MANIFEST = "ases.json"  # written beside the weights: which AS-ES method and role a checkpoint has
# A task's files beside the manifest (petsum's fitted tables and memory): they go wherever the
# manifest goes (an export, an averaged folder), and the core never reads them.
TASK_FILES = ("fitted.json", "memory.json")
CHECKPOINT_FACTS = (
    "step",
    "val_loss",
    "val_bleu",
    "checkpoint",
)  # manifest keys about one saved checkpoint, not its model


def quiet_transformers() -> None:
    """No download warnings or per-load progress bars in our CLIs' output."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def train_tokenizer(texts: Iterable[str], vocab_size: int, extra_tokens: list[str]) -> "PreTrainedTokenizerBase":
    """Train a BPE tokenizer on the corpus.

    Metaspace keeps English spaces recoverable; digits are split one by one so numbers are never
    merged into opaque tokens (better for copying values and for arithmetic); no Unicode
    normalizer, because NFKC would rewrite Chinese punctuation in the model's *outputs*."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.Punctuation()]
    )
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, UNK],
        initial_alphabet=BASE_ALPHABET,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, tok.token_to_id(EOS))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK)
    if extra_tokens:
        fast.add_tokens(extra_tokens)  # plain added tokens: kept whole, and kept by decode()
    return fast


def build_model(cfg: ModelConfig, tokenizer: "PreTrainedTokenizerBase", seed: int) -> "PreTrainedModel":
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=cfg.d_model,
        d_ff=cfg.d_ff,
        d_kv=cfg.d_model // cfg.num_heads,
        num_layers=cfg.num_layers,
        num_decoder_layers=cfg.num_decoder_layers or cfg.num_layers,
        num_heads=cfg.num_heads,
        dropout_rate=cfg.dropout,
        feed_forward_proj=cfg.feed_forward_proj,
        tie_word_embeddings=cfg.tie_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(config)


def load_tokenizer(path: str | Path) -> "PreTrainedTokenizerBase":
    from transformers import AutoTokenizer

    quiet_transformers()
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)


def load_model(path: str | Path) -> "PreTrainedModel":
    from transformers import AutoModelForSeq2SeqLM

    quiet_transformers()
    model = AutoModelForSeq2SeqLM.from_pretrained(
        str(path), local_files_only=True, trust_remote_code=False, use_safetensors=True
    )
    return model.eval()


def add_missing_tokens(tokenizer: "PreTrainedTokenizerBase", tokens: list[str]) -> None:
    """Add the task tokens (e.g. `<STOP>`) a user's tokenizer lacks, as plain added tokens."""
    missing = [t for t in tokens if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing)


def ensure_tokens(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", tokens: list[str]) -> None:
    """Add a task's extra tokens to a user's checkpoint (e.g. `<STOP>` to a Flan-T5)."""
    add_missing_tokens(tokenizer, tokens)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))


def is_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    return (p / "config.json").is_file() and (p / "model.safetensors").is_file()


def save_checkpoint(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", path: Path, manifest: dict) -> None:
    """Write a complete, standalone HF folder atomically (a crash never leaves half a checkpoint)."""
    import shutil

    quiet_transformers()
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(path: str | Path) -> dict:
    f = Path(path) / MANIFEST
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
