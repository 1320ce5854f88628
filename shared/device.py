"""Where training runs and in which precision: the `--device` and `train.precision` choices.

The choice is a pure function of what the machine offers (CUDA or not, bf16 or not), so the
rules are tested on a CPU-only machine: `auto` means CUDA when one is available; on CUDA the
matmuls run under autocast in bf16 where the GPU has it, else in fp16 with a gradient scaler
(fp16's narrow range underflows small gradients without one); on the CPU everything stays fp32,
whose kernels are the fast ones there.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shared.textio import InputError

if TYPE_CHECKING:
    import torch

_SHORT = {None: "fp32", "bfloat16": "bf16", "float16": "fp16"}
DeviceName = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, as a container's
    CPU set limits it), which is what worker and thread counts are sized to."""
    import os

    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(name: str, has_cuda: bool | None = None) -> str:
    """`cpu` or `cuda` for `auto|cpu|cuda`; asking for CUDA where there is none is an `InputError`
    (one line and exit 2 at the command line), never a silent fall-back to hours on the CPU."""
    has_cuda = cuda_available() if has_cuda is None else has_cuda
    if name == "auto":
        return "cuda" if has_cuda else "cpu"
    if name == "cuda" and not has_cuda:
        raise InputError("--device cuda: no CUDA device is available on this machine (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise InputError(f"--device {name}: not one of auto, cpu, cuda")
    return name


def autocast_dtype(device: str, precision: str, bf16_supported: bool) -> str | None:
    """The autocast dtype (`bfloat16`, `float16`) for a device and precision setting, or None for fp32.
    `auto` is bf16 on a GPU that has it, fp16 on one that does not, fp32 on the CPU."""
    kind = device.split(":")[0]
    if precision == "fp32":
        return None
    if precision == "auto":
        if kind != "cuda":
            return None
        return "bfloat16" if bf16_supported else "float16"
    if kind != "cuda":
        raise InputError(f"train.precision {precision}: mixed precision needs --device cuda (the CPU trains in fp32)")
    if precision == "bf16" and not bf16_supported:
        raise InputError("train.precision bf16: this GPU has no bf16; use fp16 or auto")
    return "bfloat16" if precision == "bf16" else "float16"


@dataclass(frozen=True)
class StepPrecision:
    """What a training step needs to know: the autocast dtype (None: fp32) and whether a gradient scaler runs."""

    device: str
    dtype: str | None

    @property
    def scaled(self) -> bool:
        return self.dtype == "float16"

    def autocast(self) -> AbstractContextManager:
        if self.dtype is None:
            return nullcontext()
        import torch

        return torch.autocast(device_type=self.device.split(":")[0], dtype=getattr(torch, self.dtype))

    def scaler(self) -> "torch.amp.GradScaler | None":
        if not self.scaled:
            return None
        import torch

        return torch.amp.GradScaler(self.device.split(":")[0])

    def describe(self) -> str:
        return f"{self.device}, {_SHORT[self.dtype]}"


def precision_for(device: str, precision: str) -> StepPrecision:
    """The precision a run trains in on `device`, after TF32 matmuls are switched on for CUDA
    (fp32 matmuls on tensor cores: ~1e-3 relative error, far below the noise of SGD)."""
    bf16 = False
    if device.startswith("cuda"):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        bf16 = torch.cuda.is_bf16_supported()
    return StepPrecision(device, autocast_dtype(device, precision, bf16))
