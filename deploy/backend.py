"""Load a model folder for inference with the engine asked for: the one entry point that
`petsum` and `mwp` use, so `--backend` and `--device` mean the same in every command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shared.textio import InputError

if TYPE_CHECKING:
    from shared.generate import ModelSet


def load_models(
    path: str | Path, backend: str = "auto", device: str = "cpu", tool: str = "petsum", threads: int = 0
) -> "ModelSet":
    """`auto` serves an export with CTranslate2 where it holds a conversion and ctranslate2 is
    installed (the fastest engine on CPU), else with onnxruntime, and anything else with torch.
    `threads`: onnxruntime's intra-op threads, CTranslate2's workers (0: every core); torch keeps
    its own setting."""
    from deploy.runtime import is_export

    path = Path(path)
    exported = is_export(path)
    if backend == "auto":
        backend = ("ct2" if _has_ct2(path) else "onnx") if exported else "torch"
    if backend == "ct2":
        from deploy import ct2

        if not ct2.available():
            raise InputError("--backend ct2 needs ctranslate2: pip install 'petsum[ct2]'")
        if not exported:
            raise InputError(f"{path} has no CTranslate2 conversion; create one with `{tool} export --ct2 --out DIR`")
        return ct2.load_ct2_run(path, device, threads)
    if backend == "onnx":
        if not exported:
            raise InputError(f"{path} is not an ONNX export; create one with `{tool} export --model {path} --out DIR`")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise InputError(
                "--backend onnx needs onnxruntime: pip install 'petsum[onnx]' (CPU) or 'petsum[gpu]'"
            ) from None
        from deploy.runtime import load_onnx_run

        return load_onnx_run(path, device, threads)
    if exported:
        raise InputError(f"{path} is an ONNX export: serve it with --backend onnx")
    from shared.pipeline import load_run

    models = load_run(path)
    if device == "cuda":
        import torch

        if torch.cuda.is_available():
            models.models = {role: m.to("cuda") for role, m in models.models.items()}
            models.providers = [str(next(iter(models.models.values())).device)]
    return models


def device_warning(models: "ModelSet", device: str) -> str | None:
    """A line for stderr when CUDA was asked for but the model runs on the CPU."""
    if device == "cuda" and not any("cuda" in p.lower() for p in models.providers):
        return f"CUDA was requested but is not active here; running on {', '.join(models.providers)}"
    return None


def _has_ct2(path: Path) -> bool:
    """An export whose every role holds a CTranslate2 conversion, with ctranslate2 installed."""
    from deploy import ct2

    try:
        folders = ct2.export_roles(path)
    except InputError:
        return False
    return bool(folders) and all(ct2.has_ct2(f) for f in folders.values()) and ct2.available()
