"""Run configuration (shared.config)."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from shared.config import ConfigError, ModelConfig, RunConfig, TrainConfig, load_config, parse_override

CONFIG_DIR = REPO / "configs"
SHIPPED = {
    "base.yaml",
    "toy.yaml",
    "pet/cpu.yaml",
    "pet/compare.yaml",
    "pet/finding.yaml",
    "pet/finding-compare.yaml",
    "mwp/compare.yaml",
    "recipes/toy.yaml",
}


def one_line_error(**kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(**kwargs)
    msg = str(info.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


# --- defaults and files ------------------------------------------------------------------------


def test_defaults_validate():
    cfg = load_config()
    assert cfg == RunConfig()
    assert cfg.train.lr == 5e-4
    assert cfg.train.method == "usm"
    assert cfg.segment.strategy == "inter"
    assert cfg.model.d_model % cfg.model.num_heads == 0
    assert cfg.train.max_steps == 1000 and cfg.train.max_time_s is None


def test_load_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "model:\n  d_model: 64\n  num_heads: 2\n"
        "train:\n  lr: 0.001\n  method: dsm\nsegment:\n  strategy: rouge\n  beta: 0.8\n",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.model.d_model == 64 and cfg.model.num_heads == 2
    assert cfg.train.lr == 0.001 and cfg.train.method == "dsm"
    assert cfg.segment.strategy == "rouge" and cfg.segment.beta == 0.8
    assert cfg.data == RunConfig().data  # untouched sections keep their defaults


def test_load_json_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"train": {"lr": 0.01, "max_steps": None, "max_time_s": 5}}), encoding="utf-8")
    cfg = load_config(path)
    assert cfg.train.lr == 0.01
    assert cfg.train.max_steps is None and cfg.train.max_time_s == 5.0


def test_empty_yaml_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config(path) == RunConfig()


def test_overrides_dict_beats_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr: 0.01\n  batch_size: 8\n", encoding="utf-8")
    cfg = load_config(path, {"train.lr": 1e-3})
    assert cfg.train.lr == 1e-3
    assert cfg.train.batch_size == 8


def test_overrides_without_file():
    cfg = load_config(None, {"train.lr": 1e-3, "generate.max_iters": 3, "model.pretrained": "/x"})
    assert cfg.train.lr == 1e-3 and cfg.generate.max_iters == 3 and cfg.model.pretrained == "/x"


def test_none_override_is_applied_and_validated():
    assert load_config(None, {"segment.scorer": None}).segment.scorer is None
    with pytest.raises(ConfigError, match="train.lr"):
        load_config(None, {"train.lr": None})  # null is not a learning rate


def test_saved_config_round_trips(tmp_path):
    from shared.config import save_config

    cfg = load_config(None, {"train.lr": 1e-3, "segment.strategy": "bleu"})
    save_config(cfg, tmp_path / "config.json")
    assert load_config(tmp_path / "config.json") == cfg


# --- parse_override ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, expected",
    [
        ("train.method=dsm", ("train.method", "dsm")),
        ("train.batch_size=16", ("train.batch_size", 16)),
        ("train.lr=0.001", ("train.lr", 0.001)),
        (" generate.max_iters = 4", ("generate.max_iters", 4)),
        ("model.tie_embeddings=false", ("model.tie_embeddings", False)),
        ("segment.scorer=", ("segment.scorer", None)),
        ("model.pretrained=/a=b", ("model.pretrained", "/a=b")),
    ],
)
def test_parse_override(item, expected):
    assert parse_override(item) == expected


def test_parse_override_lr_feeds_load_config():
    cfg = load_config(None, dict([parse_override("train.lr=1e-3")]))
    assert cfg.train.lr == pytest.approx(1e-3)


def test_parse_override_scientific_notation_is_a_float():
    assert parse_override("train.lr=1e-3") == ("train.lr", 0.001)


def test_null_override_from_cli_clears_a_field():
    sets = ["train.max_steps=null", "train.max_time_s=60"]
    cfg = load_config(None, dict(parse_override(s) for s in sets))
    assert cfg.train.max_steps is None and cfg.train.max_time_s == 60


@pytest.mark.parametrize("item", ["nokey", "=3", "   "])
def test_parse_override_rejects_malformed(item):
    with pytest.raises(ConfigError) as info:
        parse_override(item)
    assert "section.field=value" in str(info.value)


# --- errors: one line, naming the field --------------------------------------------------------


def test_unknown_field_is_one_line_naming_it():
    msg = one_line_error(overrides={"train.foo": 1})
    assert "train.foo" in msg and "unknown field" in msg


def test_unknown_field_in_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  d_modle: 64\n", encoding="utf-8")
    msg = one_line_error(path=path)
    assert "model.d_modle" in msg and "unknown field" in msg


def test_unknown_section():
    msg = one_line_error(overrides={"optim.lr": 1})
    assert "optim" in msg and "unknown field" in msg


def test_bad_type_names_the_field():
    msg = one_line_error(overrides={"train.lr": "fast"})
    assert "train.lr" in msg


def test_bad_literal_names_the_field():
    msg = one_line_error(overrides={"segment.strategy": "random"})
    assert "segment.strategy" in msg


def test_out_of_range_names_the_field():
    msg = one_line_error(overrides={"train.max_steps": 0})
    assert "train.max_steps" in msg


def test_several_errors_stay_on_one_line():
    msg = one_line_error(overrides={"train.foo": 1, "model.bar": 2, "train.lr": "x"})
    assert "train.foo" in msg and "model.bar" in msg and "train.lr" in msg


def test_d_model_not_multiple_of_heads():
    msg = one_line_error(overrides={"model.d_model": 30, "model.num_heads": 4})
    assert "d_model (30)" in msg and "num_heads (4)" in msg
    with pytest.raises(ValueError):
        ModelConfig(d_model=30, num_heads=4)


def test_training_needs_a_budget(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  max_steps: null\n  max_time_s: null\n", encoding="utf-8")
    msg = one_line_error(path=path)
    assert "max_steps" in msg and "max_time_s" in msg
    with pytest.raises(ValueError):
        TrainConfig(max_steps=None, max_time_s=None)


def test_time_budget_alone_is_enough(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  max_steps: null\n  max_time_s: 30\n", encoding="utf-8")
    assert load_config(path).train.max_time_s == 30.0


def test_unparseable_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lr: [1, 2\n", encoding="utf-8")
    msg = one_line_error(path=path)
    assert msg.startswith("cannot parse config") and "bad.yaml" in msg


def test_unparseable_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{bad", encoding="utf-8")
    msg = one_line_error(path=path)
    assert msg.startswith("cannot parse config") and "bad.json" in msg


def test_config_that_is_a_list(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- train\n- model\n", encoding="utf-8")
    msg = one_line_error(path=path)
    assert "must be a mapping" in msg and "list" in msg


def test_missing_file(tmp_path):
    msg = one_line_error(path=tmp_path / "nope.yaml")
    assert msg.startswith("cannot read config") and "nope.yaml" in msg


def test_assignment_is_validated():
    cfg = load_config()
    with pytest.raises(ValueError):
        cfg.train.lr = -1.0


# --- shipped configs ---------------------------------------------------------------------------


def test_every_shipped_config_validates():
    files = sorted(p for ext in ("*.yaml", "*.yml", "*.json") for p in CONFIG_DIR.rglob(ext))
    assert {p.relative_to(CONFIG_DIR).as_posix() for p in files} >= SHIPPED, files  # every folder of configs/ is read
    from petsum.training.config import PetRunConfig  # configs/pet/ may set PET's own section (pet.gamma)
    from petsum.training.recipe_config import RECIPE, RecipeConfig

    schemas = {
        "pet": [PetRunConfig],
        "mwp": [RunConfig],
        "configs": [RunConfig, PetRunConfig],
        "recipes": [RecipeConfig],  # `petsum train`'s stages; the shipped recipe lives in the package
        "training": [RecipeConfig],
    }  # toy/base serve both tasks
    for path in [*files, RECIPE]:
        for schema in schemas[path.parent.name]:
            cfg = load_config(path, schema=schema)  # raises ConfigError on an unknown field or a bad value
            if schema is not RecipeConfig:  # a recipe has no defaults to differ from: its stages are required
                assert cfg != schema(), f"{path} changes nothing"
    assert load_config(None) == RunConfig()  # the defaults the configs start from validate too
