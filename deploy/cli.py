"""The `export` command that `petsum` and `mwp` both carry."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shared.cli import friendly_errors


def export_command(default_model: Path) -> click.Command:
    @click.command(name="export")
    @click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False), help="Run or checkpoint folder (default: the shipped model).")
    @click.option("--out", required=True, type=click.Path(file_okay=False), help="New folder for the ONNX export.")
    @click.option("--int8", is_flag=True, help="Dynamic int8 quantization of the weights (smaller, faster on CPU).")
    @friendly_errors
    def export(model_dir: str | None, out: str, int8: bool) -> None:
        """Export a model to ONNX for `--backend onnx` (onnxruntime, CPU or CUDA)."""
        from deploy.export import export_run

        click.echo(json.dumps(export_run(Path(model_dir) if model_dir else default_model, out, int8), ensure_ascii=False))

    return export
