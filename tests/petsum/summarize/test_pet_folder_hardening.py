"""Issue 33, items 2, 3, 14 and 16, through petsum's commands: a broken copy of the shipped model folder
is one `error:` line and exit 2 from summarize, batch, evaluate and export (never a traceback); a
non-finite `pet.gamma` or training setting is refused before training; a gzip-bomb memory is refused
with bounded memory; `export` says which files carry report-derived text."""

from __future__ import annotations

import base64
import json
import shutil
import tracemalloc
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from petsum.cli import main as petsum
from petsum.summarize.folder import DEFAULT_MODEL, MEMORY_KEY, learned
from petsum.summarize.memory import Memory, MemoryTooLarge, unpack
from petsum.training.config import PetRunConfig
from shared.config import ConfigError, load_config
from shared.textio import InputError

REPO = Path(__file__).resolve().parents[3]
REPORT = REPO / "examples" / "report.txt"
CSV = REPO / "tests" / "fixtures" / "pet_toy.csv"


def copy_default(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, folder)
    return folder


def edit_manifest(folder: Path, change) -> None:
    path = folder / "ases.json"
    path.write_text(json.dumps(change(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


BREAKS = {
    "truncated safetensors": lambda d: truncate(d / "model.safetensors"),
    "manifest []": lambda d: (d / "ases.json").write_text("[]"),
    "manifest null": lambda d: (d / "ases.json").write_text("null"),
    "manifest string": lambda d: (d / "ases.json").write_text('"direct"'),
    "roles {}": lambda d: edit_manifest(d, lambda m: {**m, "roles": {}}),
    "roles 5": lambda d: edit_manifest(d, lambda m: {**m, "roles": 5}),
    "roles list": lambda d: edit_manifest(d, lambda m: {**m, "roles": ["model"]}),
    "max_source_len text": lambda d: edit_manifest(d, lambda m: {**m, "max_source_len": "many"}),
    "max_source_len 12.5": lambda d: edit_manifest(d, lambda m: {**m, "max_source_len": 12.5}),
    "max_source_len -5": lambda d: edit_manifest(d, lambda m: {**m, "max_source_len": -5}),
    "tokenizer {}": lambda d: (d / "tokenizer.json").write_text("{}"),
    "endless generate": lambda d: edit_manifest(
        d,
        lambda m: {**m, "generate": {**m["generate"], "max_new_tokens": 10**9, "max_total_tokens": 10**9}},
    ),
}
NAMED = {  # what the error line must name: the file, and the field where there is one
    "truncated safetensors": "model.safetensors",
    "tokenizer {}": "tokenizer.json",
    "roles {}": "ases.json: roles",
    "roles 5": "ases.json: roles",
    "roles list": "ases.json: roles",
    "max_source_len text": "ases.json: max_source_len",
    "max_source_len 12.5": "ases.json: max_source_len",
    "max_source_len -5": "ases.json: max_source_len",
    "endless generate": "ases.json: generate.max_new_tokens",
}


def assert_one_error_line(res, *named: str) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit), res.exception
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for part in named:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("attack", list(BREAKS))
def test_summarize_of_a_broken_folder_is_one_line(tmp_path, attack):
    """Each fails before the weights are read whole: no model load, a few milliseconds."""
    folder = copy_default(tmp_path)
    BREAKS[attack](folder)
    res = CliRunner().invoke(petsum, ["summarize", "--model", str(folder), "--consensus", "0", str(REPORT)])
    assert_one_error_line(res, str(folder), NAMED.get(attack, "ases.json"))


@pytest.mark.parametrize(
    ("command", "attack"),
    [
        (["batch", str(CSV), "--out", "{tmp}/out.jsonl"], "manifest null"),
        (["evaluate", "--data", str(CSV)], "roles list"),
        (["export", "--out", "{tmp}/onnx"], "roles 5"),
        (["export", "--out", "{tmp}/onnx"], "tokenizer {}"),
        (["export", "--out", "{tmp}/onnx"], "truncated safetensors"),
        (["batch", str(CSV), "--out", "{tmp}/out.jsonl"], "endless generate"),
    ],
)
def test_batch_evaluate_and_export_of_a_broken_folder_are_one_line(tmp_path, command, attack):
    folder = copy_default(tmp_path)
    BREAKS[attack](folder)
    args = [a.format(tmp=tmp_path) for a in command] + ["--model", str(folder)]
    res = CliRunner().invoke(petsum, args)
    assert_one_error_line(res, str(folder), NAMED.get(attack, "ases.json"))
    assert not (tmp_path / "onnx").exists()


# Item 3: numbers that are not finite, through the config and through the commands.


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e9, -1.0])
def test_gamma_must_be_finite_and_in_range(value):
    for key in ("pet.gamma", "segment.gamma"):  # segment.gamma: configs before the pet section
        with pytest.raises(ConfigError) as e:
            load_config(REPO / "configs" / "toy.yaml", {key: value}, PetRunConfig)
        assert str(e.value).startswith("command line: pet.gamma: ") and "\n" not in str(e.value)


def test_every_shipped_config_is_a_valid_pet_config():
    from petsum.training.recipe_config import RecipeConfig

    for path in sorted((REPO / "configs").rglob("*.yaml")):
        load_config(path, schema=RecipeConfig if path.parent.name == "recipes" else PetRunConfig)


TRAIN = ["train", "--data", str(CSV), "--config", str(REPO / "configs" / "toy.yaml")]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--set", "train.lr=inf"], "train.lr"),
        (["--set", "train.weight_decay=inf"], "train.weight_decay"),
        (["--set", "train.max_time_s=inf"], "train.max_time_s"),
        (["--set", "train.lr=nan"], "train.lr"),
        (["--gamma", "inf"], "pet.gamma"),
        (["--set", "pet.gamma=nan"], "pet.gamma"),
        (["--set", "segment.gamma=inf"], "pet.gamma"),
    ],
)
def test_train_refuses_numbers_that_are_not_finite_in_one_line(tmp_path, args, field):
    res = CliRunner().invoke(petsum, [*TRAIN, "--out", str(tmp_path / "T"), *args])
    line = assert_one_error_line(res, field)
    assert "finite" in line
    assert not (tmp_path / "T" / "model").exists()  # refused before any training


def test_segment_refuses_an_infinite_gamma_in_one_line(tmp_path):
    res = CliRunner().invoke(petsum, ["segment", "--data", str(CSV), "--out", str(tmp_path / "S"), "--gamma", "inf"])
    assert "finite" in assert_one_error_line(res, "pet.gamma")


def test_a_config_file_error_names_the_file(tmp_path):
    config = tmp_path / "x.yaml"
    config.write_text("train:\n  lr: .inf\n", encoding="utf-8")
    res = CliRunner().invoke(
        petsum, ["train", "--data", str(CSV), "--out", str(tmp_path / "T"), "--config", str(config)]
    )
    assert_one_error_line(res, f"{config}: train.lr: ")


# Item 14: a gzip bomb in the memory.


def bomb(unpacked_mb: int) -> str:
    """gzip of `unpacked_mb` MB of spaces, built a megabyte at a time (never whole in memory)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * 2**20
    packed = [deflate.compress(b"[")] + [deflate.compress(chunk) for _ in range(unpacked_mb)]
    packed += [deflate.compress(b"]"), deflate.flush()]
    return base64.b64encode(b"".join(packed)).decode("ascii")


def test_a_gzip_bomb_memory_is_refused_with_bounded_memory():
    entry = {"kind": "memory", "neighbours": 8, "weight": 1.0, "pairs": 1, "texts": bomb(300)}
    tracemalloc.start()
    try:
        with pytest.raises(MemoryTooLarge, match="unpack to more than"):
            Memory.from_json(entry)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak  # 300 MB would be unpacked without the limit; 16 MB is allowed


def test_the_memory_limit_keeps_real_memories_and_refuses_damaged_ones():
    memory = Memory(["肝右叶见低密度结节，SUVmax：5.6。"] * 50, ["肝转移。"] * 50, 3, 1.0)
    again = Memory.from_json(memory.to_json())
    assert again.findings == memory.findings and again.targets == memory.targets
    packed = base64.b64decode(memory.to_json()["texts"])
    with pytest.raises(ValueError, match="whole gzip"):
        unpack(packed[: len(packed) // 2])  # cut short
    with pytest.raises(ValueError, match="whole gzip"):
        unpack(packed + b"trailing")


def test_a_bomb_in_a_folder_is_one_line_naming_it(tmp_path):
    entry = {"kind": "memory", "neighbours": 8, "weight": 1.0, "pairs": 1, "texts": bomb(100)}
    with pytest.raises(InputError) as e:
        learned(tmp_path, MEMORY_KEY, entry, Memory.from_json)
    assert str(e.value).startswith(f"{tmp_path}: memory: memory texts unpack to more than") and "\n" not in str(e.value)


@pytest.mark.slow
def test_summarize_with_a_bomb_memory_is_one_line_even_greedy(tmp_path):
    """The memory is read at load (checked before any report), so even `--consensus 0` refuses it: the one
    model load of this file."""
    folder = copy_default(tmp_path)
    entry = {"kind": "memory", "neighbours": 8, "weight": 1.0, "pairs": 1, "texts": bomb(200)}
    (folder / "memory.json").write_text(json.dumps(entry), encoding="utf-8")
    res = CliRunner().invoke(petsum, ["summarize", "--model", str(folder), "--consensus", "0", str(REPORT)])
    assert_one_error_line(res, str(folder), "memory", "unpack to more than")


# Item 16: which files carry report-derived text.


def test_export_names_the_files_with_report_derived_text(tmp_path):
    from deploy.export import report_derived

    folder = copy_default(tmp_path)
    found = report_derived(folder)
    assert [f.split(" ")[0] for f in found] == ["tokenizer.json", "fitted.json"]
    (folder / "memory.json").write_text(json.dumps(Memory(["a"], ["b"]).to_json()), encoding="utf-8")
    assert "memory.json" in [f.split(" ")[0] for f in report_derived(folder)]
    assert report_derived(REPO / "mwp" / "models" / "default") == []  # GSM8K, not reports


def test_an_export_says_which_files_carry_report_text_on_stderr(tmp_path, monkeypatch):
    """The note is one line on stderr after the manifest on stdout (the ONNX export itself stubbed: its
    own tests run it)."""
    import deploy.export

    def fake_export(model_dir, out, int8=False, ct2=False):
        shutil.copytree(model_dir, out)
        (Path(out) / "ases.json").write_text(
            json.dumps({"method": "direct", "task": "petsum", "roles": {"model": "model"}}), encoding="utf-8"
        )
        (Path(out) / "model").mkdir()
        shutil.move(Path(out) / "tokenizer.json", Path(out) / "model" / "tokenizer.json")
        return {"method": "direct", "roles": {"model": "model"}}

    monkeypatch.setattr(deploy.export, "export_run", fake_export)
    out = tmp_path / "onnx"
    res = CliRunner().invoke(petsum, ["export", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["method"] == "direct"
    note = res.stderr.splitlines()
    assert len(note) == 1 and note[0].startswith(f"note: {out} holds report-derived text: model/tokenizer.json")
    assert "fitted.json" in note[0]
