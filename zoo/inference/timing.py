"""Timing model calls fairly on a shared machine: `time_interleaved`; one call's best time: `best_seconds`.

Used by the fast path's own decisions (``layout="auto"``, ``compile="auto"``) and by the
benchmarks, so both time the same way."""
from __future__ import annotations

import statistics
import time
from typing import Callable, Dict

import torch

from .._errors import UsageError

__all__ = ["time_interleaved", "best_seconds", "canonical_clip"]


def time_interleaved(fns: Dict[str, Callable], x, warmup: int = 2, reps: int = 5, settle: int = 1
                     ) -> Dict[str, float]:
    """Median seconds per call of each of ``fns`` on ``x``, timed in ``reps`` interleaved rounds.

    Each round times one call of every function, in an order rotated by one each round, so a
    slow spell of a shared machine falls on all of them alike and their ratios stay fair (timing
    one after the other lets a spell land on one function only). Before
    its timed call each function makes ``settle`` untimed ones, so it is timed warm, as it runs
    when called back to back (its caches, allocator and oneDNN state not left by another model).
    """
    names = list(fns)
    times: Dict[str, list] = {n: [] for n in names}
    with torch.inference_mode():
        for name in names:
            for _ in range(warmup):
                fns[name](x)
        for r in range(reps):
            for name in names[r % len(names):] + names[:r % len(names)]:
                for _ in range(settle):
                    fns[name](x)
                start = time.perf_counter()
                fns[name](x)
                times[name].append(time.perf_counter() - start)
    return {n: statistics.median(t) for n, t in times.items()}


def best_seconds(fn: Callable, *args, reps: int = 5, warmup: int = 1) -> float:
    """The fastest of ``reps`` calls ``fn(*args)``, in seconds, after ``warmup`` untimed ones: a
    kernel's own speed (one layer, one matmul), where the fastest call is the least disturbed."""
    for _ in range(warmup):
        fn(*args)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def canonical_clip(model) -> torch.Tensor:
    """The fixed clip a model is timed on: one view of its ``info.input_shape`` (seeded)."""
    info = getattr(model, "info", None)
    if info is None:
        raise UsageError("timing at info.input_shape (layout='auto', compile='auto') needs a model with .info")
    return torch.randn(1, *info.input_shape, generator=torch.Generator().manual_seed(0))
