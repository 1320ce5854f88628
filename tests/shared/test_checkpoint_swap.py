"""Checkpoints are swapped in whole (shared.modeling.save_checkpoint / recover_checkpoint): whatever
moment a kill -9 lands on, the folder the trainer resumes from is a whole one."""

from __future__ import annotations

import json

from tinymodels import tiny_model, tiny_tokenizer

from shared.modeling import load_model, recover_checkpoint, save_checkpoint


def test_extra_files_go_in_with_the_weights(tmp_path):
    folder = tmp_path / "last"
    save_checkpoint(tiny_model(), tiny_tokenizer(), folder, {"step": 1}, lambda f: (f / "state.json").write_text("1"))
    assert (folder / "state.json").read_text() == "1" and (folder / "model.safetensors").is_file()
    assert not (tmp_path / "last.tmp").exists() and not (tmp_path / "last.old").exists()
    save_checkpoint(tiny_model(1), tiny_tokenizer(), folder, {"step": 2}, lambda f: (f / "state.json").write_text("2"))
    assert (folder / "state.json").read_text() == "2"
    assert json.loads((folder / "ases.json").read_text())["step"] == 2


def test_a_kill_between_the_renames_brings_the_old_folder_back(tmp_path):
    folder = tmp_path / "last"
    save_checkpoint(tiny_model(), tiny_tokenizer(), folder, {"step": 1})
    folder.rename(tmp_path / "last.old")  # killed after moving the old one aside …
    (tmp_path / "last.tmp").mkdir()  # … with the new one not yet renamed
    (tmp_path / "last.tmp" / "model.safetensors").write_bytes(b"half")
    recover_checkpoint(folder)
    assert json.loads((folder / "ases.json").read_text())["step"] == 1
    load_model(folder)  # whole
    assert not (tmp_path / "last.tmp").exists() and not (tmp_path / "last.old").exists()


def test_a_kill_while_writing_leaves_the_old_folder_as_it_was(tmp_path):
    folder = tmp_path / "last"
    save_checkpoint(tiny_model(), tiny_tokenizer(), folder, {"step": 1})
    (tmp_path / "last.tmp").mkdir()
    (tmp_path / "last.tmp" / "model.safetensors").write_bytes(b"half")
    recover_checkpoint(folder)
    assert json.loads((folder / "ases.json").read_text())["step"] == 1
    assert not (tmp_path / "last.tmp").exists()
    recover_checkpoint(tmp_path / "never")  # nothing there: nothing to do
    assert not (tmp_path / "never").exists()
