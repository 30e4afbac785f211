"""Checks of what a caller passes: counts (classes, segments, frames) and input clips."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from .._errors import UsageError

__all__ = ["COUNT_ARGS", "check_counts", "check_input"]


COUNT_ARGS = ("num_classes", "num_segments", "num_frames", "frames_per_segment")  # each must be >= 1


def check_counts(args: Dict[str, Any]) -> None:
    """`ValueError` naming the argument unless every count in ``args`` (`COUNT_ARGS`, None = the
    default) is a whole number >= 1: a model of 0 classes or -3 segments is a mistake, not a model."""
    for key in COUNT_ARGS:
        value = args.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) and not (
                isinstance(value, float) and value.is_integer()):
            raise UsageError(f"{key} must be a whole number >= 1, got {value!r}")
        if value < 1:
            raise UsageError(f"{key} must be >= 1, got {value}")


def check_input(x: torch.Tensor, *, num_frames: Optional[int] = None, model: str = "model",
                frames_multiple: int = 1) -> None:
    """Raise `ValueError` naming the expected shape unless ``x`` is ``[B, 3, T, H, W]``."""
    t = "T" if num_frames is None else str(num_frames)
    expected = f"[B, 3, {t}, H, W] (normalised float frames)"
    ok = isinstance(x, torch.Tensor) and x.dim() == 5 and x.shape[1] == 3 and x.is_floating_point()
    if ok and num_frames is not None:
        ok = x.shape[2] == num_frames
    if ok and frames_multiple > 1:
        ok = x.shape[2] % frames_multiple == 0
        if not ok:
            expected += f" with T a multiple of {frames_multiple}"
    if not ok:
        got = f"{[int(d) for d in x.shape]} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise UsageError(f"{model} expects input {expected}, got {got}")
