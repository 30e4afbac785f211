"""Atomic checkpoint files and RNG states that survive ``torch.load(weights_only=True)``."""
from __future__ import annotations

import os
import random
from typing import Any, Dict

import numpy as np
import torch

from .._errors import BadCheckpoint, InputNotFound
from .._files import atomic_save, atomic_write, atomic_write_text
from ..models import first_line

__all__ = ["atomic_write", "atomic_save", "atomic_write_text", "load_checkpoint", "get_rng_state", "set_rng_state"]


def load_checkpoint(path: str) -> Dict[str, Any]:
    """A zoo training checkpoint, read with ``weights_only=True``."""
    if not os.path.isfile(path):
        raise InputNotFound(f"checkpoint {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # whatever torch raises for a file it cannot read safely
        raise BadCheckpoint(f"cannot read checkpoint {path!r} with torch.load(weights_only=True): {first_line(e)} "
                         f"(zoo's checkpoints hold only tensors and plain data: is it one?)") from None


def get_rng_state() -> Dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states as tensors/lists/ints."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
