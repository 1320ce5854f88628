"""What `mwp train` adds to the shared recipe: calculator mode, checked up front and recorded.

The run's manifest (`ases.json`) gets `"calculator": true|false`, so `mwp solve` (and an ONNX
export, which copies the manifest) knows to evaluate `<<expr=` while decoding."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from shared.textio import InputError

if TYPE_CHECKING:
    from shared.config import RunConfig
    from shared.schema import Example


def _check(calculator: bool, cfg: "RunConfig", out: Path) -> None:
    from shared.modeling import read_manifest

    manifest = read_manifest(out)
    if "roles" in manifest and bool(manifest.get("calculator")) != calculator:
        was = "with" if manifest.get("calculator") else "without"
        raise InputError(f"{out} holds a run trained {was} --calculator; train into a new --out")
    if calculator and cfg.model.pretrained:
        from mwp.calc_decoding import writes_annotations
        from shared.modeling import load_tokenizer

        if not writes_annotations(load_tokenizer(cfg.model.pretrained)):
            raise InputError(
                "model.pretrained's tokenizer cannot write calculator annotations <<…>>; train without --calculator"
            )


def calculator_facts(
    calculator: bool, out: str
) -> Callable[[list["Example"], "RunConfig"], tuple[list["Example"], dict]]:
    """The `prepare` hook of `shared.cli.run_training`: examples unchanged, and the fact for the
    manifest, after checking the run can honour it."""

    def prepare(examples: list["Example"], cfg: "RunConfig") -> tuple[list["Example"], dict]:
        _check(calculator, cfg, Path(out))
        return examples, {"calculator": calculator}

    return prepare
