"""torch.distributed helpers: one code path for a single process and for ``torchrun``.

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; `init_distributed` then joins the
process group (NCCL with GPUs, gloo on CPU). Without them everything runs in one process.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional

import torch
import torch.distributed as dist

__all__ = ["init_distributed", "is_distributed", "get_rank", "get_world_size", "is_main_process",
           "shard_indices", "all_gather_object", "barrier", "cleanup", "default_device"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def default_device(device: Optional[str] = None) -> torch.device:
    """``device`` if given, else the local GPU (``LOCAL_RANK``) when there is one, else CPU."""
    if device and device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def init_distributed(backend: Optional[str] = None) -> bool:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1). Returns whether it did."""
    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return True


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shard_indices(n: int, rank: Optional[int] = None, world_size: Optional[int] = None) -> List[int]:
    """Strided shard ``rank::world_size`` of ``range(n)``: every index exactly once, no padding."""
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    return list(range(rank, n, world_size))


def all_gather_object(obj: Any) -> List[Any]:
    """Every rank's ``obj`` (a list of one element without a process group)."""
    if not is_distributed():
        return [obj]
    out: List[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out
