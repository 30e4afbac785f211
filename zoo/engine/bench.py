"""Measurement helpers shared by ``benchmarks/`` and ``zoo compare``: the machine description,
library versions, median call timing, the matmul peak and peak memory."""
from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn

__all__ = ["cpu_name", "cpu_flags", "machine_description", "code_revision", "versions", "time_call", "time_interleaved",
           "matmul_peak_gmacs",
           "randomize_bn_stats", "peak_rss_mib", "peak_rss_since_exec_mib"]


def _cpuinfo_line(prefix: str) -> str:
    """The value of the first ``/proc/cpuinfo`` line starting with ``prefix`` ('' if unavailable)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith(prefix))
    except (OSError, StopIteration):
        return ""


def cpu_name() -> str:
    return _cpuinfo_line("model name") or platform.processor() or "unknown"


def cpu_flags() -> set:
    return set(_cpuinfo_line("flags").split())


def machine_description() -> Dict[str, object]:
    flags = cpu_flags()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "amx_bf16": "amx_bf16" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "platform": platform.platform(),
            "loadavg_at_start": load}


def code_revision() -> Optional[str]:
    """The git commit of the zoo checkout being measured, ``+dirty`` when its code (``zoo/``,
    ``benchmarks/`` but its results) has uncommitted changes; None outside a git checkout."""
    root = str(Path(__file__).resolve().parents[2])

    def git(*args):
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, check=True).stdout.strip()
    try:
        rev = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "zoo", "benchmarks",
                    ":(exclude)benchmarks/results")
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + ("+dirty" if dirty else "")


def versions() -> Dict[str, str]:
    """Versions of python and of the libraries a measurement depends on, and the zoo commit
    (`code_revision`)."""
    out = {"python": platform.python_version()}
    revision = code_revision()
    if revision:
        out["zoo_commit"] = revision
    for name in ("zoo", "torch", "torchvision", "timm", "fvcore", "av", "numpy"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        out[name] = getattr(module, "__version__", "unknown")
    return out


def time_call(fn: Callable, x, warmup: int = 2, reps: int = 5) -> float:
    """Median seconds per ``fn(x)`` over ``reps`` timed calls after ``warmup`` untimed ones."""
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_interleaved(fns: Dict[str, Callable], x, warmup: int = 2, reps: int = 5, settle: int = 1
                     ) -> Dict[str, float]:
    """Median seconds per call of each of ``fns`` on ``x``, timed in ``reps`` interleaved rounds.

    Each round times one call of every function, in an order rotated by one each round, so a
    slow spell of a shared machine falls on all of them alike and their ratios stay fair (timing
    one after the other, as `time_call` does, lets a spell land on one function only). Before
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


def matmul_peak_gmacs(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """This machine's best square-matmul throughput in GMAC/s at the current thread count."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return n ** 3 / min(times) / 1e9


def randomize_bn_stats(model: nn.Module, seed: int = 0, affine: bool = False) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics (and, with ``affine``, scale and shift):
    a fresh model's are the identity, which hides a wrong BN fold, port or key mapping. In place;
    returns ``model``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                if affine and m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_rss_since_exec_mib() -> float:
    """Peak resident memory of this process image in MiB (Linux ``VmHWM``), for measuring a child
    process: unlike ``ru_maxrss``, which Linux carries over fork + exec (a child of a 2 GiB parent
    starts at 2 GiB), it starts afresh at ``exec``. Falls back to `peak_rss_mib` without ``/proc``."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration, ValueError):
        return peak_rss_mib()
