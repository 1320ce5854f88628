"""Export a trained run (or any local T5-family checkpoint) to ONNX for onnxruntime.

Exporter: `torch.onnx.export(dynamo=True)`, the maintained path in torch 2.x (the TorchScript
exporter is deprecated, and optimum's ONNX export does not support transformers 5.x). It traces
the flat-tensor graphs of `deploy.graph`, not Hugging Face's forward.

An export mirrors a run folder: `ases.json` (method, roles) and the run's `config.json` at the
top, and per role a folder with `encoder.onnx`, `decoder.onnx`, the tokenizer, the model's
`config.json` and `onnx.json` (opset, versions, dtype, tensor names).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from shared.modeling import (
    CHECKPOINT_FACTS,
    MANIFEST,
    TASK_FILES,
    is_checkpoint,
    load_model,
    load_tokenizer,
    read_manifest,
    role_folders,
)
from shared.pipeline import decoding_settings

if TYPE_CHECKING:
    from transformers import PreTrainedModel

OPSET = 18  # pinned: the newest opset both onnx 1.23 and onnxruntime 1.31 fully implement
FORMAT = "petsum-onnx/1"
ONNX_MANIFEST = "onnx.json"
CT2_DIR = "ct2"  # inside each role folder of an export made with --ct2
CT2_MANIFEST = "ct2.json"
CT2_FORMAT = "petsum-ct2/1"


def past_names(n_layers: int, prefix: str) -> list[str]:
    return [f"{prefix}_{kv}_{i}" for i in range(n_layers) for kv in ("k", "v")]


def export_run(
    model_dir: str | Path, out: str | Path, int8: bool = False, opset: int = OPSET, ct2: bool = False
) -> dict:
    """Export every model of a run (one, or DSM's two) into `out`; returns the export's manifest.
    `ct2`: also a CTranslate2 conversion in each role folder (`deploy.ct2`), int8 with `int8`."""
    src, out = Path(model_dir), Path(out)
    manifest = read_manifest(src)  # validated as a whole: a broken one is an error naming its file and field
    if "roles" in manifest:
        roles = role_folders(src, manifest)
        decoding_settings(src)  # checked before minutes of export, not when the export is first served
    elif is_checkpoint(src):
        if manifest.get("method") == "dsm":
            raise ValueError(f"{src} is one half of a DSM pair; pass the run folder that holds esm/ and asm/")
        roles = {"model": src}
        # The checkpoint's task facts (e.g. mwp's "calculator") and decoding travel with it; its
        # training facts (role, step, validation scores) describe the checkpoint, not the export.
        facts = {k: v for k, v in manifest.items() if k != "role" and k not in CHECKPOINT_FACTS}
        manifest = {
            **facts,
            "method": manifest.get("method", "direct"),
            "max_source_len": manifest.get("max_source_len", 512),
            "generate": decoding_settings(src).model_dump(),
        }
    else:
        raise FileNotFoundError(
            f"{src} is neither a training run nor a model folder (no config.json + model.safetensors)"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose a new one")
    _check_tools(ct2)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))  # our own: never a user's folder
    try:
        for role, path in roles.items():
            export_checkpoint(path, tmp / role, int8, opset)
            if ct2:
                convert_ct2(path, tmp / role / CT2_DIR, int8)
        if (src / "config.json").is_file() and "roles" in read_manifest(src):  # the run's decoding settings
            shutil.copy(src / "config.json", tmp / "config.json")
        exported = {
            **manifest,
            "roles": {role: role for role in roles},
            "backend": "onnx",
            "dtype": "int8" if int8 else "fp32",
        }
        (tmp / MANIFEST).write_text(json.dumps(exported, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for name in TASK_FILES:  # a task's fitted tables travel with the model, unread here
            if (src / name).is_file():
                shutil.copy(src / name, tmp / name)
        if out.exists():
            out.rmdir()
        tmp.rename(out)  # all or nothing: a failed export leaves no half-written folder under `out`
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return exported


# Tasks whose models are trained on patient reports: their tokenizer's vocabulary (the BPE merges)
# holds fragments of the training reports.
REPORT_TASKS = ("petsum",)


def report_derived(folder: str | Path) -> list[str]:
    """The files of a model folder or export that carry text derived from training reports, each with
    what it holds: the tokenizers of a model trained on reports, the memory (report text word for
    word) and the fitted tables (character n-grams and the stock closing and opening lines of the
    training impressions). Empty for a folder of another task."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    found = []
    if manifest.get("task") in REPORT_TASKS:
        roles = manifest.get("roles") or {"model": "."}
        for sub in roles.values():
            if (folder / sub / "tokenizer.json").is_file():
                name = (Path(sub) / "tokenizer.json").as_posix()
                found.append(f"{name} (subword merges learned from training reports)")
    if (folder / "memory.json").is_file():
        found.append("memory.json (training findings and impressions word for word: patient data)")
    if (folder / "fitted.json").is_file() and manifest.get("task") in REPORT_TASKS:
        found.append("fitted.json (character n-grams and stock lines of training reports)")
    return found


def _check_tools(ct2: bool = False) -> None:
    from shared.textio import InputError

    if ct2:
        try:
            import ctranslate2  # noqa: F401
        except ImportError:
            raise InputError("export --ct2 needs ctranslate2: pip install 'petsum[ct2]'") from None
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise InputError(
                f"export needs {module}: pip install 'petsum[onnx]' (or 'petsum[gpu]' on a GPU server)"
            ) from None


def _version(pkg: str) -> str:
    """Installed version; onnxruntime's GPU build is the `onnxruntime-gpu` distribution."""
    from importlib.metadata import PackageNotFoundError

    for name in (pkg, f"{pkg}-gpu"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return getattr(__import__(pkg), "__version__", "unknown")


def convert_ct2(checkpoint: Path, out: Path, int8: bool) -> None:
    """A CTranslate2 conversion of a Hugging Face checkpoint into `out` (a new folder), with int8
    weights where asked (CTranslate2's own quantization; it decodes in int8 on the CPU)."""
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(checkpoint), low_cpu_mem_usage=True).convert(
        str(out), quantization="int8" if int8 else None
    )
    dtype = "int8" if int8 else "fp32"
    info = {"format": CT2_FORMAT, "dtype": dtype, "versions": {"ctranslate2": version("ctranslate2")}}
    (out / CT2_MANIFEST).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def export_checkpoint(path: Path, out: Path, int8: bool, opset: int) -> None:
    import onnx

    from deploy.graph import check_supported

    tok = load_tokenizer(path)  # before the weights: a broken tokenizer fails in milliseconds
    model = load_model(path)
    check_supported(model)
    out.mkdir(parents=True)
    n = model.config.num_decoder_layers
    _export_encoder(model, out / "encoder.onnx", n, opset)
    _export_decoder(model, out / "decoder.onnx", n, opset)
    for name in ("encoder.onnx", "decoder.onnx"):
        try:
            onnx.checker.check_model(str(out / name), full_check=True)
            if int8:
                quantize(out / name)
        except Exception as e:  # onnx's ValidationError and quantizer failures are plain Exceptions
            raise RuntimeError(
                f"{name}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            ) from e
    tok.save_pretrained(str(out))
    model.config.save_pretrained(str(out))
    if (path / MANIFEST).is_file():
        shutil.copy(path / MANIFEST, out / MANIFEST)
    cfg = model.config
    info = {
        "format": FORMAT,
        "opset": opset,
        "dtype": "int8" if int8 else "fp32",
        "model_type": cfg.model_type,
        "num_decoder_layers": n,
        "num_heads": cfg.num_heads,
        "d_kv": cfg.d_kv,
        "vocab_size": cfg.vocab_size,
        "decoder_start_token_id": cfg.decoder_start_token_id,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
        "versions": {pkg: _version(pkg) for pkg in ("torch", "transformers", "onnx", "onnxscript", "onnxruntime")},
    }
    (out / ONNX_MANIFEST).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _export(module, args: tuple, path: Path, inputs: list[str], outputs: list[str], shapes, opset: int) -> None:
    import torch

    # One protobuf holds at most 2 GB: larger models (a user's Flan-T5-large) keep weights beside it.
    large = sum(p.numel() * p.element_size() for p in module.parameters()) > 1_500_000_000

    quiet = logging.getLogger("torch.onnx")  # it logs optional-operator notes (torchvision) as warnings
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # exporter chatter about internal renames, not about our graph
            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                opset_version=opset,
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=shapes,
                external_data=large,
                verbose=False,
                optimize=True,
            )
    except Exception as e:  # the exporter's own error types; its message opens with the cause
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RuntimeError(f"ONNX export of {path.name} failed: {first}") from e
    finally:
        quiet.setLevel(level)
    program.save(str(path), external_data=large)


def _export_encoder(model: "PreTrainedModel", path: Path, n: int, opset: int) -> None:
    import torch

    from deploy.graph import EncoderGraph

    batch, src = torch.export.Dim("batch"), torch.export.Dim("src")
    ids = torch.tensor([[5, 6, 7, 1], [8, 1, 0, 0]])  # sizes above 1: torch.export specializes 0 and 1
    _export(
        EncoderGraph(model).eval(),
        (ids, (ids != 0).long()),
        path,
        ["input_ids", "attention_mask"],
        ["hidden", *past_names(n, "cross")],
        {"input_ids": {0: batch, 1: src}, "attention_mask": {0: batch, 1: src}},
        opset,
    )


def _export_decoder(model: "PreTrainedModel", path: Path, n: int, opset: int) -> None:
    import torch

    from deploy.graph import DecoderStepGraph

    cfg = model.config
    batch, src, past = torch.export.Dim("batch"), torch.export.Dim("src"), torch.export.Dim("past")
    self_kv = [torch.zeros(2, cfg.num_heads, 3, cfg.d_kv) for _ in range(2 * n)]
    cross_kv = [torch.zeros(2, cfg.num_heads, 4, cfg.d_kv) for _ in range(2 * n)]
    shapes = ({0: batch}, {0: batch, 1: src}, tuple([{0: batch, 2: past}] * (2 * n) + [{0: batch, 2: src}] * (2 * n)))
    _export(
        DecoderStepGraph(model).eval(),
        (torch.tensor([[3], [4]]), torch.ones(2, 4, dtype=torch.long), *self_kv, *cross_kv),
        path,
        ["token", "encoder_mask", *past_names(n, "past"), *past_names(n, "cross")],
        ["logits", *past_names(n, "present")],
        shapes,
        opset,
    )


def quantize(path: Path) -> None:
    """Dynamic int8 quantization of the matrix multiplications, in place. Embedding lookups stay
    fp32: they cost nothing at run time, and the tied output projection reads the same table."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_name(path.stem + ".int8.onnx")
    fp32_data = path.with_name(path.name + ".data")
    large = fp32_data.exists()
    root = logging.getLogger()  # the quantizer advises pre-processing on the root logger; it gains nothing here
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(path),
            str(tmp),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            use_external_data_format=large,
        )
    finally:
        root.setLevel(level)
    tmp.replace(path)  # an int8 graph's own external data (if any) keeps the name it was written with
    fp32_data.unlink(missing_ok=True)
