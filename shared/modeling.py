"""Build a compact T5 and its subword tokenizer from a config, or load a local HF checkpoint.

Offline only: every load passes `local_files_only=True`, weights are safetensors, and remote
code is never trusted. A checkpoint folder written here is a plain Hugging Face folder that
`AutoModelForSeq2SeqLM` / `AutoTokenizer` load without this package.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from shared.config import MAX_SOURCE_LEN, GenerateConfig, Method, ModelConfig, format_errors
from shared.textio import InputError

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
    """No download warnings, per-load progress bars or deprecation notices in our CLIs' output."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # transformers 5.x warns on every forward that is passed `past_key_values` (mwp's calculator
    # decoding, the trainer's scorer): a notice for us, not for a user of the CLI.
    warnings.filterwarnings("ignore", message=r".*`past_key_values` is deprecated", category=FutureWarning)


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


def _cause(e: BaseException) -> str:
    """What went wrong, without the library's message: a tokenizer's or a parser's message can quote
    the file, and a tokenizer's vocabulary holds fragments of training reports."""
    return f"{type(e).__name__} {e.args[0]!r}" if isinstance(e, KeyError) and e.args else type(e).__name__


def load_tokenizer(path: str | Path) -> "PreTrainedTokenizerBase":
    """The folder's tokenizer; `InputError` naming its file when it cannot be read."""
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except MemoryError:
        raise
    except Exception as e:  # tokenizers' own errors are plain Exceptions; transformers raises many kinds
        name = Path(path) / "tokenizer.json"
        if name.is_file():
            raise InputError(f"{name}: not a readable tokenizer ({_cause(e)})") from None
        raise InputError(f"{path}: no readable tokenizer: no tokenizer.json ({_cause(e)})") from None
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token  # GPT-2's and many causal LMs' tokenizers have no pad: batches pad with EOS
    return tok


def is_causal(model: object) -> bool:
    """Whether a Hugging Face model is decoder-only (GPT-2, Llama, Qwen2: its input and output are
    one sequence) rather than an encoder-decoder like our T5s. A model that is neither (an
    onnxruntime or CTranslate2 generator) counts as seq2seq: exports are seq2seq only."""
    model = getattr(model, "module", model)  # under DistributedDataParallel
    config = getattr(model, "config", None)
    if config is None or hasattr(model, "generate_tokens"):
        return False
    return not getattr(config, "is_encoder_decoder", False)


def position_limit(model: object) -> int | None:
    """How many tokens a decoder-only model's positions cover (prompt and answer together), or None
    when it has no such limit we know of."""
    config = getattr(getattr(model, "module", model), "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        if isinstance(limit := getattr(config, name, None), int) and limit > 0:
            return limit
    return None


def load_model(path: str | Path) -> "PreTrainedModel":
    """The folder's model (safetensors only): a seq2seq model (`AutoModelForSeq2SeqLM`), or a
    decoder-only one (`AutoModelForCausalLM`) when its config is not encoder-decoder. `InputError`
    naming the folder when its weights or config cannot be read (a truncated `model.safetensors`,
    a broken `config.json`)."""
    from safetensors import SafetensorError
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(str(path), local_files_only=True, trust_remote_code=False, use_safetensors=True)
    except SafetensorError as e:
        raise InputError(f"{Path(path) / 'model.safetensors'}: not readable as safetensors ({_first(e)})") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:
        raise InputError(f"{path}: cannot load the model ({type(e).__name__}: {_first(e)})") from None
    return model.eval()


def _first(e: BaseException) -> str:
    """The first line of a weights loader's message (it describes tensors and headers, never text), cut short."""
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line if len(line) <= 160 else line[:157] + "..."


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


def save_checkpoint(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    path: Path,
    manifest: dict,
    extra: Callable[[Path], None] | None = None,
) -> None:
    """Write a complete, standalone HF folder atomically (a crash never leaves half a checkpoint):
    everything (with `extra(folder)`'s files, e.g. the optimizer) goes into `NAME.tmp`, which then
    replaces the old folder by renames; `recover_checkpoint` finishes a swap a kill interrupted."""
    import shutil

    quiet_transformers()
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if extra is not None:
        extra(tmp)
    old = path.with_name(path.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def recover_checkpoint(path: Path) -> None:
    """After a kill inside `save_checkpoint`: where `NAME` was moved aside but `NAME.tmp` not yet
    renamed, `NAME.old` is the last whole folder and comes back; a leftover `NAME.tmp` may be
    half-written and is dropped."""
    import shutil

    tmp, old = path.with_name(path.name + ".tmp"), path.with_name(path.name + ".old")
    if not path.exists() and old.exists():
        old.rename(path)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


class Manifest(BaseModel):
    """`ases.json`, validated as a whole like a run config: the core's fields are typed and bounded,
    and a task's own keys (mwp's `calculator`, petsum's `source` and `instance_stats`, the training
    facts, older folders' `item_order` or `memory`) pass through for the task to read."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    method: Method = "direct"
    role: str | None = None
    roles: dict[str, str] | None = Field(
        None, strict=True, description="role → its checkpoint folder, relative to the manifest's folder"
    )
    max_source_len: int = Field(512, strict=True, ge=8, le=MAX_SOURCE_LEN)
    generate: GenerateConfig | None = None
    backend: Literal["onnx"] | None = None

    @field_validator("roles")
    @classmethod
    def _relative_folders(cls, roles: dict[str, str] | None, info: ValidationInfo) -> dict[str, str] | None:
        if roles is None:
            return None
        method = info.data.get("method")  # validated first; absent when it failed
        want = {"esm", "asm"} if method == "dsm" else {"model"}
        if method and set(roles) != want:
            raise ValueError(f"a {method} run has the roles {', '.join(sorted(want))}, not {sorted(roles) or 'none'}")
        for role, sub in roles.items():
            p = Path(sub)
            if not sub.strip() or p.is_absolute() or ".." in p.parts or "\\" in sub:
                raise ValueError(f"{role}: a checkpoint folder relative to the manifest's, not {sub!r}")
        return roles


def read_manifest(path: str | Path) -> dict:
    """The folder's `ases.json` as a dict ({} when it has none), validated as a `Manifest`;
    `InputError` naming the file and the field otherwise."""
    f = Path(path) / MANIFEST
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{f}: not readable as JSON ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{f}: not a JSON object but {_json_kind(data)}")
    try:
        Manifest.model_validate(data)
    except ValidationError as e:
        raise InputError(f"{f}: {format_errors(e)}") from None
    return data


def _json_kind(value: object) -> str:
    return {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(type(value), "a number")


def role_folders(path: str | Path, manifest: dict) -> dict[str, Path]:
    """A run's (or export's) role → checkpoint folder, each checked to exist; `manifest` comes from
    `read_manifest(path)`, so its roles are already well-formed."""
    path = Path(path)
    folders = {role: path / sub for role, sub in manifest["roles"].items()}
    for role, folder in folders.items():
        if not folder.is_dir():
            raise InputError(f"{path / MANIFEST}: roles.{role}: no folder {manifest['roles'][role]!r} in {path}")
    return folders
