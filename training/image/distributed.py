"""``torchrun`` support: process group set-up, rank helpers, no-ops when run alone."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True under ``torchrun`` with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and progress bars."""
        return self.rank == 0


def init_distributed(device: str) -> DistContext:
    """Initialise the process group when ``torchrun`` set ``WORLD_SIZE`` > 1.

    NCCL on CUDA, Gloo on CPU. Each process uses GPU ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    return DistContext(rank=rank, world_size=world, local_rank=local)


def all_reduce_mean(value: float, ctx: DistContext, device: torch.device) -> float:
    """Mean of a scalar over the processes (the value itself when alone)."""
    if not ctx.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / ctx.world_size


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op when alone)."""
    if ctx.enabled:
        dist.barrier()
