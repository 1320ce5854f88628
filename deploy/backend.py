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
    """`auto` serves an ONNX export with onnxruntime and anything else with torch. `threads`:
    onnxruntime's intra-op threads (0: one per physical core); torch keeps its own setting."""
    from deploy.runtime import is_export

    path = Path(path)
    exported = is_export(path)
    if backend == "auto":
        backend = "onnx" if exported else "torch"
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
