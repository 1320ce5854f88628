"""petsum.summarize.folder: where a model folder keeps what was fitted after training (fitted.json)
and the memory (memory.json), beside the manifest, and how folders of the older layout (those
entries inside ases.json) still read and are moved out when rewritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petsum.summarize.folder import (
    DEFAULT_MODEL,
    fitted_entries,
    has_memory,
    input_kind,
    memory_entry,
    model_path,
    write_fitted,
    write_memory,
)
from petsum.text.inputs import InputKind
from shared.textio import InputError

MANIFEST = {"method": "direct", "roles": {"model": "model/last"}, "source": "finding"}
FITTED = {
    "item_order": {"kind": "pointer", "features": ["a"]},
    "closing_line": {"lines": ["余躯干PET/CT检查未见明显异常代谢征象。"]},
}
MEMORY = {"kind": "memory", "neighbours": 3, "weight": 1.0, "pairs": 2, "texts": "H4sI"}


def folder(tmp_path: Path, manifest: dict) -> Path:
    model = tmp_path / "m"
    model.mkdir()
    (model / "ases.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return model


def manifest_of(model: Path) -> dict:
    return json.loads((model / "ases.json").read_text(encoding="utf-8"))


def test_fitted_entries_round_trip_through_fitted_json(tmp_path: Path):
    model = folder(tmp_path, MANIFEST)
    assert fitted_entries(model) == {}  # nothing fitted yet: the assembler's rules
    path = write_fitted(model, {**FITTED, "opening_line": None})  # None: no such fit, left out
    assert path == model / "fitted.json" and json.loads(path.read_text(encoding="utf-8")) == FITTED
    assert fitted_entries(model) == FITTED and manifest_of(model) == MANIFEST  # the manifest is untouched
    write_fitted(model, {"item_order": FITTED["item_order"]})  # a refit rewrites the whole file
    assert fitted_entries(model) == {"item_order": FITTED["item_order"]}
    assert not list(model.glob("*.tmp"))  # written through a temporary file, which is gone


def test_memory_round_trips_through_memory_json_and_can_be_removed(tmp_path: Path):
    model = folder(tmp_path, MANIFEST)
    assert memory_entry(model) is None and not has_memory(model)
    assert write_memory(model, MEMORY) == model / "memory.json"
    assert memory_entry(model) == MEMORY and has_memory(model) and manifest_of(model) == MANIFEST
    write_memory(model, None)
    assert not (model / "memory.json").exists() and memory_entry(model) is None and not has_memory(model)
    write_memory(model, None)  # removing no memory is no error


def test_an_older_folder_reads_its_entries_from_the_manifest_and_rewriting_moves_them_out(tmp_path: Path):
    model = folder(tmp_path, {**MANIFEST, **FITTED, "memory": MEMORY})
    assert fitted_entries(model) == FITTED and memory_entry(model) == MEMORY and has_memory(model)
    write_fitted(model, fitted_entries(model))
    assert (
        manifest_of(model) == {**MANIFEST, "memory": MEMORY} and fitted_entries(model) == FITTED
    )  # only the fits moved
    write_memory(model, memory_entry(model))
    assert manifest_of(model) == MANIFEST and memory_entry(model) == MEMORY
    # a fitted.json wins over stale entries in the manifest
    (model / "ases.json").write_text(json.dumps({**MANIFEST, "item_order": {"stale": True}}), encoding="utf-8")
    assert fitted_entries(model) == FITTED


def test_unreadable_entries_are_one_line_errors(tmp_path: Path):
    model = folder(tmp_path, MANIFEST)
    (model / "fitted.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="fitted.json: not readable as JSON"):
        fitted_entries(model)
    (model / "memory.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="memory.json: not a JSON object"):
        memory_entry(model)


def test_input_kind_and_model_path(tmp_path: Path):
    assert input_kind(tmp_path, {"source": "finding"}) == InputKind.FINDING
    assert input_kind(tmp_path, {}) == InputKind.REGION  # runs from before --source, plain HF folders
    with pytest.raises(InputError, match="unknown source 'findings'"):
        input_kind(tmp_path, {"source": "findings"})
    assert model_path(None) == DEFAULT_MODEL and model_path(str(tmp_path)) == tmp_path
    with pytest.raises(InputError, match="no such folder"):
        model_path(str(tmp_path / "missing"))


def test_the_shipped_default_keeps_its_fits_in_fitted_json():
    manifest = manifest_of(DEFAULT_MODEL)
    assert not {"item_order", "closing_line", "opening_line", "memory"} & set(manifest)
    assert set(fitted_entries(DEFAULT_MODEL)) == {"item_order", "closing_line", "opening_line"}
    assert input_kind(DEFAULT_MODEL, manifest) == InputKind.FINDING and not has_memory(DEFAULT_MODEL)


@pytest.mark.slow  # trains the session's tiny run, fits an order, exports to ONNX
def test_an_export_carries_fitted_json_and_serves_with_it(pet_run: Path, tmp_path: Path):
    import shutil

    from click.testing import CliRunner
    from conftest import FIXTURES, REPO

    from petsum.cli import main as petsum
    from petsum.summarize.summarizer import Summarizer

    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    shutil.copytree(pet_run, run)
    res = CliRunner().invoke(
        petsum,
        [
            "order",
            "--data",
            str(FIXTURES / "pet_toy.csv"),
            "--model",
            str(run),
            "--kind",
            "pairs",
            "--grams",
            "50",
            "--epochs",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(petsum, ["export", "--model", str(run), "--out", str(tmp_path / "onnx")])
    assert res.exit_code == 0, res.output
    exported = tmp_path / "onnx"
    assert (exported / "fitted.json").read_bytes() == (run / "fitted.json").read_bytes()
    assert not {"item_order", "closing_line"} & set(manifest_of(exported))
    onnx = Summarizer(exported)
    assert onnx.item_order is not None and onnx.closing is not None
    report = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
    assert onnx.summarize([report])[0].impression == Summarizer(run).summarize([report])[0].impression
