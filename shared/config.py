"""Run configuration: pydantic models with `extra="forbid"`, loaded from YAML/JSON and
overridable with dotted `key=value` pairs (`train.lr=1e-3`). Errors name the field, in one line."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Strategy = Literal["inter", "ent", "ent_pre", "loss", "bleu", "rouge"]
Method = Literal["direct", "dsm", "usm"]

# Upper bounds that keep a config's work finite (a model folder's `generate` is validated with them too).
MAX_SOURCE_LEN = 8192  # tokens: attention is quadratic in it
MAX_BATCH = 4096
MAX_TIME_S = 30 * 24 * 3600.0  # a month
MAX_BIAS = 1e4  # logits: far beyond any that changes a decision


class ConfigError(ValueError):
    """A config that cannot be used; the message is one readable line."""


class Strict(BaseModel):
    """A config section: unknown fields are errors, and so are assignments that do not validate. No float
    setting may be infinite or NaN (`allow_inf_nan` applies to every float of every section, optional and
    nested ones too): `inf` would overflow a count or never end a budget."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ModelConfig(Strict):
    pretrained: str | None = Field(
        None,
        description="local Hugging Face checkpoint folder to start from: seq2seq (T5, BART) or decoder-only "
        "(GPT-2, Llama, Qwen2)",
    )
    tokenizer: str | None = Field(
        None,
        description="tokenizer folder to use instead of training one (e.g. another run's, so that a warm-up run and "
        "the run started from it share the tokenizer); `pretrained` brings its own",
    )
    vocab_size: int = Field(
        4000, ge=64, le=1_000_000, description="BPE vocabulary when training a tokenizer from scratch"
    )
    d_model: int = Field(256, ge=8, le=16384)
    d_ff: int = Field(1024, ge=8, le=65536)
    num_layers: int = Field(4, ge=1, le=128)
    num_decoder_layers: int | None = Field(None, ge=1, le=128)
    num_heads: int = Field(4, ge=1, le=256)
    dropout: float = Field(0.1, ge=0, lt=1)
    feed_forward_proj: Literal["relu", "gated-gelu"] = "relu"
    tie_embeddings: bool = True

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelConfig":
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of num_heads ({self.num_heads})")
        return self


class DataConfig(Strict):
    max_source_len: int = Field(
        512, ge=8, le=MAX_SOURCE_LEN, description="tokens; longer inputs keep the question's head and the prefix's tail"
    )
    max_target_len: int = Field(128, ge=4, le=MAX_SOURCE_LEN)
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of examples held out for validation")
    split_seed: int = 42


class SegmentConfig(Strict):
    strategy: Strategy = "inter"
    beta: float = Field(1.0, gt=0, le=1000)
    scorer: str | None = Field(None, description="checkpoint that scores ent/loss; default: train a direct model first")
    scorer_budget: float = Field(1.0, gt=0, le=100, description="the scorer's training budget as a share of train's")
    score_batch_size: int = Field(32, ge=1, le=MAX_BATCH)


class TrainConfig(Strict):
    method: Method = "usm"
    lr: float = Field(5e-4, gt=0, le=1)
    weight_decay: float = Field(0.01, ge=0, le=1)
    warmup_steps: int = Field(100, ge=0)
    batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="most samples in a batch")
    max_tokens: int | None = Field(8192, ge=16, description="most padded (source+target) tokens in a batch")
    batching: Literal["bucket", "pad_max"] = Field("bucket", description="pad_max is the slow baseline")
    max_steps: int | None = Field(1000, ge=1)
    max_time_s: float | None = Field(
        None, gt=0, le=MAX_TIME_S, description="wall-clock budget; with max_steps, whichever ends first"
    )
    max_train_tokens: int | None = Field(
        None, ge=1, description="budget in real (source + target) tokens trained on: equal compute on a noisy machine"
    )
    grad_clip: float = Field(1.0, gt=0, le=1e4)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    key_weight: float = Field(
        1.0,
        ge=1,
        le=100,
        description="loss weight of a target's key tokens against a wrong answer given with it (EDIT, "
        "shared.keysteps; direct runs); 1: off",
    )
    eval_every: int = Field(200, ge=1)
    log_every: int = Field(10, ge=1)
    eval_samples: int = Field(256, ge=1, description="validation samples for the loss")
    eval_gen_samples: int = Field(64, ge=0, description="validation samples generated for BLEU (0: skip)")
    seed: int = 42
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA when available; several processes (torchrun) take one GPU each"
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast on a GPU that has it, else fp16 with a gradient scaler; fp32 on CPU"
    )

    @model_validator(mode="after")
    def _has_budget(self) -> "TrainConfig":
        if self.max_steps is None and self.max_time_s is None and self.max_train_tokens is None:
            raise ValueError("set max_steps, max_time_s or max_train_tokens: training needs a budget")
        return self


class GenerateConfig(Strict):
    num_beams: int = Field(1, ge=1, le=64)
    max_new_tokens: int = Field(128, ge=1, le=1024, description="per segment")
    max_iters: int = Field(8, ge=1, le=64, description="most segments per input")
    max_total_tokens: int = Field(
        512, ge=1, le=4096, description="most generated tokens per input, all segments together"
    )
    batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    no_repeat_ngram_size: int = Field(
        0,
        ge=0,
        le=64,
        description="never repeat an n-gram of this many tokens within one segment (0: off); "
        "Hugging Face's setting of that name",
    )
    first_token_bias: dict[str, float] = Field(
        default_factory=dict,
        description="text → a bias added, at the first step of every segment, to the logit of that text's first token "
        "(negative: that answer less often; petsum uses it against the 'no anomaly' answer)",
    )
    eos_bias: float = Field(
        0.0,
        ge=-MAX_BIAS,
        le=MAX_BIAS,
        description="a bias added to the end-of-sequence logit at every step (negative: longer segments; 0: off)",
    )
    consensus_samples: int = Field(
        0,
        ge=0,
        le=256,
        description="draws per input besides the greedy answer; the answer is then the candidate that agrees most with "
        "the others (minimum-Bayes-risk decoding by ROUGE-L); 0: the greedy answer alone. Direct models only",
    )
    consensus_below: float = Field(
        1.0,
        gt=0,
        le=1,
        description="draw only for inputs whose greedy answer's confidence (geometric-mean token probability) is "
        "below this; the others keep their greedy answer, which their draws would mostly repeat. 1: every input draws",
    )
    sample_epsilon: float = Field(
        0.02, gt=0, lt=1, description="a draw takes only tokens of at least this probability (epsilon sampling)"
    )
    sample_seed: int = Field(0, ge=0, description="the draws are a function of this seed and the input alone")

    @field_validator("first_token_bias")
    @classmethod
    def _finite_biases(cls, value: dict[str, float]) -> dict[str, float]:
        for text, bias in value.items():
            if not text.strip():
                raise ValueError("first_token_bias: a text to bias must not be empty")
            if not math.isfinite(bias) or abs(bias) > MAX_BIAS:
                raise ValueError(f"first_token_bias: the bias of {text!r} must be a finite number within ±{MAX_BIAS:g}")
        return value


class RunConfig(Strict):
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    segment: SegmentConfig = SegmentConfig()
    train: TrainConfig = TrainConfig()
    generate: GenerateConfig = GenerateConfig()


_R = TypeVar("_R", bound=RunConfig)


def format_errors(err: ValidationError, section: str = "") -> str:
    """Every error as `field: message`, the field dotted (`train.lr`) under `section` when given."""
    parts = []
    for e in err.errors():
        where = ".".join([section] * bool(section) + [str(x) for x in e["loc"]]) or "config"
        msg = "unknown field" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


_M = TypeVar("_M", bound=BaseModel)


def validated_update(cfg: _M, changes: dict[str, Any], name: str = "generate") -> _M:
    """A copy of `cfg` with `changes`, validated as the config file would be (`model_copy` is not);
    `ConfigError` naming the field otherwise."""
    try:
        return type(cfg).model_validate(cfg.model_dump() | changes)
    except ValidationError as e:
        raise ConfigError(f"invalid {name} settings: {format_errors(e)}") from None


def read_config_file(path: Path) -> dict:
    """A YAML or JSON config file's mapping, unvalidated; `ConfigError` in one line otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as e:  # a parse error's message is already one line with a position
        raise ConfigError(f"cannot parse config {path}: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of sections, got {type(data).__name__}")
    return data


def _set(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {k} is not a section")
    node[keys[-1]] = value


def parse_override(item: str) -> tuple[str, Any]:
    """`train.lr=1e-3` → ("train.lr", 0.001); values are read as YAML scalars."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like section.field=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML 1.1 reads `1e-3` as a string
        try:
            value = float(value)
        except ValueError:
            pass
    return key.strip(), value


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None, schema: type[_R] = RunConfig
) -> _R:
    """Defaults ← file ← overrides, validated once as `schema` (a task's `RunConfig` with its own
    sections, e.g. petsum's `pet`). An override of None sets the field to null."""
    tree = read_config_file(Path(path)) if path else {}
    in_file = copy.deepcopy(tree)  # what the file itself said, before the overrides
    for key, value in (overrides or {}).items():
        _set(tree, key, value)
    try:
        return schema.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_located(e, path, in_file, overrides or {})) from None


def _located(err: ValidationError, path: str | Path | None, in_file: dict, overrides: dict[str, Any]) -> str:
    """The error with where its first field came from: `configs/x.yaml: train.lr: …` for a field the
    file set, `command line: train.lr: …` for an override (`--set`, or a flag such as `--gamma`)."""
    loc = [str(x) for x in err.errors()[0]["loc"]]
    node: Any = in_file
    for key in loc:
        node = node.get(key) if isinstance(node, dict) else None
    dotted = ".".join(loc)
    overridden = any(dotted == k or dotted.startswith(k + ".") or k.startswith(dotted + ".") for k in overrides)
    if path and node is not None and not overridden:
        where = str(path)
    elif overrides:
        where = "command line"
    else:
        where = str(path) if path else "invalid config"
    return f"{where}: {format_errors(err)}"


def save_config(cfg: RunConfig, path: Path) -> None:
    path.write_text(json.dumps(cfg.model_dump(), indent=2) + "\n", encoding="utf-8")
