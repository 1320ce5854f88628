"""Several training processes on one machine (torchrun), or one.

`Dist` is what the trainer and the pipeline need to know about the process group: this rank,
the world size, the device, and a few collectives that are no-ops in a single process, so the
single-process path runs the same code. The process group is torch's: gloo on the CPU, nccl on
GPUs, started from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")

# Ranks wait at barriers while rank 0 alone evaluates and writes checkpoints; torch's default
# timeouts (10 minutes for nccl) are shorter than a long validation with generation.
TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes files, logs and prints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as td

            td.barrier()

    def max(self, value: float) -> float:
        """The largest `value` over ranks, so every rank takes the same budget decision."""
        return self._reduce(value, "MAX")

    def sum(self, value: float) -> float:
        return self._reduce(value, "SUM")

    def _reduce(self, value: float, op: str) -> float:
        if not self.active:
            return value
        import torch
        import torch.distributed as td

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        td.all_reduce(t, op=getattr(td.ReduceOp, op))
        return float(t.item())

    def broadcast(self, obj: T) -> T:
        """Rank 0's `obj` on every rank (any picklable object)."""
        if not self.active:
            return obj
        import torch.distributed as td

        box: list[Any] = [obj]
        td.broadcast_object_list(box, src=0, device=self.device if self.device != "cpu" else None)
        return box[0]


SINGLE = Dist()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env() -> Dist:
    """Join the process group torchrun describes in the environment (a single process needs none)."""
    if not launched_by_torchrun():
        return SINGLE
    import torch
    import torch.distributed as td

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device, backend = f"cuda:{local}", "nccl"
    else:
        device, backend = "cpu", "gloo"
    if not td.is_initialized():
        td.init_process_group(backend, rank=rank, world_size=world, timeout=TIMEOUT)
    return Dist(rank, world, device)


def shutdown(dist: Dist) -> None:
    if dist.active:
        import torch.distributed as td

        if td.is_initialized():
            td.destroy_process_group()
