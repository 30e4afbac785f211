"""Zoo's own checkpoints: the state dict beside the model's identity (name, architecture options,
classes, input protocol) as plain data, so ``zoo.build(weights=FILE)`` rebuilds what was saved."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch

from ._checkpoint_io import PathLike
from ._contract import VideoModel

__all__ = ["IDENTITY_KEY", "PROTOCOL_FIELDS", "checkpoint_identity", "peek_identity", "zoo_checkpoint"]


IDENTITY_KEY = "zoo"  # the identity zoo stores beside the state dict of the checkpoints it writes
PROTOCOL_FIELDS = ("num_frames", "num_segments", "frames_per_segment", "centre_frame", "sampling", "sampling_rate",
                   "crop_size", "resize_size", "mean", "std", "test_views", "segment_clips", "view_aggregation")


def checkpoint_identity(checkpoint: Any) -> Optional[Dict[str, Any]]:
    """The identity a zoo checkpoint carries (model, model_args, categories, input protocol), or None."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get(IDENTITY_KEY), dict):
        return checkpoint[IDENTITY_KEY]
    return None


def peek_identity(path: PathLike) -> Optional[Dict[str, Any]]:
    """The identity of a zoo checkpoint file without reading its tensors (memory-mapped), or None
    for any other file."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return checkpoint_identity(checkpoint)


def zoo_checkpoint(model: VideoModel, categories: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """``model``'s state dict with its identity (plain data: ``torch.load(weights_only=True)`` reads
    it), so ``zoo.build(weights=FILE)`` rebuilds the same architecture and protocol. ``categories``:
    the class names it was trained for (default: the model's)."""
    info = model.info
    protocol = {k: list(v) if isinstance(v, tuple) else v for k, v in
                ((f, getattr(info, f)) for f in PROTOCOL_FIELDS)}
    names = model.categories if categories is None else categories
    identity = {"model": info.name, "model_args": dict(model.build_args), "num_classes": int(model.num_classes),
                "categories": list(names or ()), "input": protocol}
    return {"state_dict": model.state_dict(), IDENTITY_KEY: identity}
