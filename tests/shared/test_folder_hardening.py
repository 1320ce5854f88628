"""Issue 33, items 2, 3, 5 and 14, in the core: a broken model folder is an `InputError` that names its
file and field (the CLIs print it as one `error:` line, exit 2), the whole manifest is validated with
bounds, and no float setting of any config section may be infinite, NaN or out of range."""

from __future__ import annotations

import json
import shutil
import typing
import warnings
from pathlib import Path

import pytest

from shared.config import (
    ConfigError,
    DataConfig,
    GenerateConfig,
    ModelConfig,
    RunConfig,
    SegmentConfig,
    TrainConfig,
    load_config,
)
from shared.modeling import MANIFEST, Manifest, build_model, quiet_transformers, read_manifest, train_tokenizer
from shared.pipeline import decoding_settings, load_run
from shared.textio import InputError

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = [REPO / "petsum" / "models" / "default", REPO / "mwp" / "models" / "default"]
TEXTS = ["肝脏未见异常放射性摄取。", "胰头部见软组织肿块，SUVmax：6.1。", "Tom has 3 apples."] * 4


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder (ases.json with roles) around an untrained tiny checkpoint: real files, built in a second."""
    from shared.modeling import save_checkpoint

    root = tmp_path_factory.mktemp("run") / "run"
    root.mkdir()
    tok = train_tokenizer(TEXTS, 200, [])
    model = build_model(ModelConfig(d_model=16, d_ff=32, num_layers=1, num_heads=2), tok, 0)
    save_checkpoint(model, tok, root / "model", {"method": "direct", "role": "model", "max_source_len": 64})
    manifest = {"method": "direct", "task": "toy", "roles": {"model": "model"}, "max_source_len": 64}
    (root / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return root


def broken(tiny_run: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "broken"
    shutil.copytree(tiny_run, folder)
    return folder


def set_manifest(folder: Path, text: str) -> Path:
    (folder / MANIFEST).write_text(text, encoding="utf-8")
    return folder / MANIFEST


def one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert "\n" not in message and message
    return message


def test_the_tiny_run_loads(tiny_run):
    models = load_run(tiny_run)
    assert models.method == "direct" and models.max_source_len == 64 and set(models.models) == {"model"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[]", "not a JSON object but a list"),
        ("null", "not a JSON object but null"),
        ('"model"', "not a JSON object but a string"),
        ("{not json", "not readable as JSON"),
        ('{"method": "direct", "roles": {}}', "roles"),
        ('{"method": "direct", "roles": 5}', "roles"),
        ('{"method": "direct", "roles": ["model"]}', "roles"),
        ('{"method": "direct", "roles": {"model": 5}}', "roles.model"),
        ('{"method": "direct", "roles": {"esm": "model"}}', "roles"),
        ('{"method": "dsm", "roles": {"model": "model"}}', "roles"),
        ('{"method": "direct", "roles": {"model": "../run"}}', "roles"),
        ('{"method": "direct", "roles": {"model": "/tmp"}}', "roles"),
        ('{"method": "greedy", "roles": {"model": "model"}}', "method"),
        ('{"roles": {"model": "model"}, "max_source_len": "512"}', "max_source_len"),
        ('{"roles": {"model": "model"}, "max_source_len": 12.5}', "max_source_len"),
        ('{"roles": {"model": "model"}, "max_source_len": true}', "max_source_len"),
        ('{"roles": {"model": "model"}, "max_source_len": -5}', "max_source_len"),
        ('{"roles": {"model": "model"}, "max_source_len": 1000000000}', "max_source_len"),
        ('{"roles": {"model": "model"}, "generate": 5}', "generate"),
        ('{"roles": {"model": "model"}, "generate": {"max_new_tokens": 1000000000}}', "generate.max_new_tokens"),
        ('{"roles": {"model": "model"}, "generate": {"max_total_tokens": 1000000000}}', "generate.max_total_tokens"),
        ('{"roles": {"model": "model"}, "generate": {"max_iters": 100000}}', "generate.max_iters"),
        ('{"roles": {"model": "model"}, "generate": {"eos_bias": -1e9}}', "generate.eos_bias"),
        ('{"roles": {"model": "model"}, "generate": {"eos_bias": NaN}}', "generate.eos_bias"),
        ('{"roles": {"model": "model"}, "generate": {"first_token_bias": {"a": -Infinity}}}', "first_token_bias"),
        ('{"roles": {"model": "model"}, "generate": {"consensus_samples": 100000}}', "generate.consensus_samples"),
        ('{"roles": {"model": "model"}, "generate": {"batch_size": 1000000}}', "generate.batch_size"),
        ('{"roles": {"model": "model"}, "generate": {"num_beams": 1000}}', "generate.num_beams"),
        ('{"roles": {"model": "model"}, "generate": {"bogus": 1}}', "generate.bogus: unknown field"),
        ('{"roles": {"model": "model"}, "backend": "tensorrt"}', "backend"),
    ],
)
def test_a_broken_manifest_is_one_line_naming_file_and_field(tiny_run, tmp_path, text, field):
    path = set_manifest(broken(tiny_run, tmp_path), text)
    with pytest.raises(InputError) as e:
        load_run(path.parent)  # fails before any weights are read
    message = one_line(e)
    assert message.startswith(f"{path}: ") and field in message, message


def test_a_role_folder_must_exist(tiny_run, tmp_path):
    folder = broken(tiny_run, tmp_path)
    set_manifest(folder, '{"method": "direct", "roles": {"model": "model/best_bleu"}}')
    with pytest.raises(InputError) as e:
        load_run(folder)
    assert one_line(e).startswith(f"{folder / MANIFEST}: roles.model: ") and "best_bleu" in str(e.value)


def test_task_keys_pass_through_and_are_kept(tiny_run, tmp_path):
    """`extra` is allowed: a task's own entries (mwp's calculator, petsum's source, older folders' tables)."""
    folder = broken(tiny_run, tmp_path)
    manifest = {
        "method": "direct",
        "roles": {"model": "model"},
        "calculator": True,
        "source": "finding",
        "instance_stats": {"reports": 3},
        "item_order": {"kind": "pair"},
        "val_loss": float("nan"),  # a checkpoint fact, not validated
    }
    set_manifest(folder, json.dumps(manifest))
    assert read_manifest(folder)["calculator"] is True and read_manifest(folder)["item_order"] == {"kind": "pair"}
    assert load_run(folder).max_source_len == 512


def test_a_truncated_safetensors_is_one_line(tiny_run, tmp_path):
    folder = broken(tiny_run, tmp_path)
    weights = folder / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(InputError) as e:
        load_run(folder)
    assert one_line(e).startswith(f"{weights}: not readable as safetensors")


@pytest.mark.parametrize("text", ["{}", "[]", "not json", ""])
def test_a_broken_tokenizer_json_is_one_line_naming_it(tiny_run, tmp_path, text):
    folder = broken(tiny_run, tmp_path)
    (folder / "model" / "tokenizer.json").write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_run(folder)
    assert one_line(e).startswith(f"{folder / 'model' / 'tokenizer.json'}: not a readable tokenizer")


def test_a_broken_tokenizer_error_quotes_nothing_of_the_file(tiny_run, tmp_path):
    """A tokenizer's vocabulary holds fragments of training reports: an error shows none of it."""
    folder = broken(tiny_run, tmp_path)
    path = folder / "model" / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["model"]["vocab"] = {"患者张三右肺": "not an id"}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_run(folder)
    assert "张三" not in one_line(e)


def test_a_run_config_generate_is_checked_and_named(tiny_run, tmp_path):
    folder = broken(tiny_run, tmp_path)
    (folder / "config.json").write_text(json.dumps({"generate": {"max_new_tokens": 10**9}}), encoding="utf-8")
    with pytest.raises(InputError) as e:
        decoding_settings(folder)
    assert one_line(e).startswith(f"{folder / 'config.json'}: generate.max_new_tokens: ")


@pytest.mark.parametrize("folder", DEFAULTS, ids=["petsum", "mwp"])
def test_the_shipped_defaults_stay_valid(folder):
    manifest = read_manifest(folder)
    Manifest.model_validate(manifest)
    GenerateConfig.model_validate(manifest["generate"])


# Config numbers (item 3): every float of every section must be finite and in range.


def float_fields() -> list[tuple[str, str]]:
    """(section, field) of every float setting of the core's config, optional and nested ones too."""
    found = []
    for section, model in RunConfig.model_fields.items():
        for name, info in model.annotation.model_fields.items():
            if "float" in str(info.annotation) or float in typing.get_args(info.annotation):
                found.append((section, name))
    return found


def test_the_float_fields_are_found():
    fields = float_fields()
    assert ("train.lr" in {f"{s}.{n}" for s, n in fields}) and len(fields) >= 10, fields


@pytest.mark.parametrize(("section", "name"), float_fields())
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_no_float_setting_is_infinite_or_nan(section, name, value):
    bad = {"a": value} if name == "first_token_bias" else value
    with pytest.raises(ConfigError) as e:
        load_config(None, {f"{section}.{name}": bad})
    assert f"{section}.{name}" in one_line(e) and "finite" in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "override",
    [
        "train.lr=inf",
        "train.weight_decay=inf",
        "train.max_time_s=inf",
        "train.lr=2",
        "train.weight_decay=5",
        "train.max_time_s=1e12",
        "train.grad_clip=1e9",
        "segment.beta=1e9",
        "segment.scorer_budget=1e6",
        "generate.max_new_tokens=1000000000",
        "generate.eos_bias=-1e9",
        "data.max_source_len=1000000",
    ],
)
def test_out_of_range_settings_are_refused_naming_the_field(override):
    from shared.config import parse_override

    key, value = parse_override(override)
    with pytest.raises(ConfigError) as e:
        load_config(None, {key: value})
    assert one_line(e).startswith(f"command line: {key}: "), str(e.value)


def test_a_config_file_error_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("train:\n  lr: .inf\n  max_steps: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert one_line(e).startswith(f"{path}: train.lr: ") and "finite" in str(e.value)
    path.write_text('{"train": {"weight_decay": 1e999}}', encoding="utf-8")
    json_path = path.rename(tmp_path / "x.json")
    with pytest.raises(ConfigError) as e:
        load_config(json_path)
    assert one_line(e).startswith(f"{json_path}: train.weight_decay: ")


def test_every_shipped_config_stays_valid():
    import yaml

    for path in sorted((REPO / "configs").rglob("*.yaml")):
        if path.parent.name == "recipes":  # petsum train's recipes: tests/shared/test_config.py
            continue
        if "pet" not in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}):  # petsum's pet: in its tests
            load_config(path)


def test_sections_all_forbid_inf_nan():
    for model in (ModelConfig, DataConfig, SegmentConfig, TrainConfig, GenerateConfig, RunConfig):
        assert model.model_config.get("allow_inf_nan") is False, model


# Item 5: the FutureWarning transformers prints on every forward with past_key_values.


def test_the_past_key_values_notice_is_silenced_and_nothing_else():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_transformers()
        warnings.warn(
            "`past_key_values` is deprecated and will be removed in version 5.40.0 for "
            "`T5ForConditionalGeneration.forward`. Use `cache` instead.",
            FutureWarning,
            stacklevel=1,
        )
        warnings.warn("another future change", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["another future change"]
