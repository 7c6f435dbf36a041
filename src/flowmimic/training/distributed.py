"""The rank-0 rule in one place: process-group set-up from torchrun's environment, and helpers.

`torchrun` sets RANK, LOCAL_RANK and WORLD_SIZE; without them (plain `flowmimic train`) this is a
single process and every helper is a no-op. The backend is NCCL on CUDA and gloo on CPU. Only the
main process (rank 0) logs metrics and writes files; metrics are all-reduced before it logs them,
and every rank waits at a barrier after a save so no rank reads a half-written checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from flowmimic.errors import ConfigError
from flowmimic.params import Params


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def check_device(params: Params, section: str = "train") -> None:
    """`ConfigError` (one line, naming the key) when `<section>.device` (train, prior) asks for a GPU this
    machine lacks.

    Checked by the stages that use the device, not when params load, so CPU-only commands (e.g.
    ``flowmimic cache --shard`` on a cluster's CPU nodes) run with the same params file.
    """
    if getattr(params, section).device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{params.source}: {section}.device: 'cuda' but no CUDA device is available "
                          "(use 'auto' or 'cpu')")


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """'auto' | 'cpu' | 'cuda' -> a device (CUDA: this node's GPU `local_rank`); see `check_device`."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def init_distributed(device_preference: str) -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def reduce_mean(sums: dict[str, float], count: float, device: torch.device) -> dict[str, float]:
    """Sum `sums` and `count` over all ranks, then divide: the global mean of each metric.

    `sums` must have the same keys on every rank (a rank with nothing to add passes zeros).
    """
    names = sorted(sums)
    vec = torch.tensor([sums[k] for k in names] + [count], dtype=torch.float64, device=device)
    if is_distributed():
        # gloo and nccl both reduce float64 on their devices; the vector is tiny.
        dist.all_reduce(vec, op=dist.ReduceOp.SUM)
    total = vec[-1].item()
    return {k: (v / total if total > 0 else float("nan")) for k, v in zip(names, vec[:-1].tolist())}


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
