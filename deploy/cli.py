"""The `export` command that `petsum` and `mwp` both carry."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shared.cli import friendly_errors


def export_command(default_model: Path) -> click.Command:
    @click.command(name="export")
    @click.option(
        "--model",
        "model_dir",
        type=click.Path(exists=True, file_okay=False),
        help="Run or checkpoint folder (default: the shipped model).",
    )
    @click.option("--out", required=True, type=click.Path(file_okay=False), help="New folder for the ONNX export.")
    @click.option("--int8", is_flag=True, help="Dynamic int8 quantization of the weights (smaller, faster on CPU).")
    @click.option(
        "--ct2",
        is_flag=True,
        help="Also a CTranslate2 conversion (the ct2 extra): the fastest engine, which --backend auto then picks.",
    )
    @friendly_errors
    def export(model_dir: str | None, out: str, int8: bool, ct2: bool) -> None:
        """Export a model for `--backend onnx` (onnxruntime, CPU or CUDA), and with --ct2 for `--backend ct2`."""
        from deploy.export import export_run, report_derived

        manifest = export_run(Path(model_dir) if model_dir else default_model, out, int8, ct2=ct2)
        click.echo(json.dumps({k: _brief(v) for k, v in manifest.items()}, ensure_ascii=False))
        derived = report_derived(out)
        if derived:  # one line, on stderr: stdout is the manifest
            click.echo(f"note: {out} holds report-derived text: {'; '.join(derived)}", err=True)

    return export


def _brief(value: object) -> object:
    """A manifest entry as the command prints it: learned tables (petsum's item order, closing and
    opening lines: thousands of features, a megabyte of base64) are counted, not printed, and
    stored texts (petsum's memory: training report text, which no output may show) are not
    printed at all; the export's ases.json holds both."""
    if not isinstance(value, dict):
        return value
    if "texts" in value:
        value = {**value, "texts": "(in ases.json; report text, not printed)"}
    if "tables" in value:
        value = {k: v for k, v in value.items() if k not in ("tables", "features")} | {
            "features": len(value.get("features", [])),
            "tables": "(in ases.json)",
        }
    return value
