"""This machine's compute peaks, measured in the run that uses them: the best GMAC/s (multiply-adds
per second) of a large matrix product and of a ResNet convolution, in fp32, bf16 and int8, at the
current thread count. The benchmarks record them beside their figures, and each model's GMAC/s
as a fraction of the peak of its dtype, so that a figure from another machine (AMX or not, more
cores or fewer) can be compared: ``python -m zoo.benchmark.peaks`` prints them.

Each kernel is the fastest this torch build offers for that dtype on the CPU (oneDNN with AMX or
AVX-512 where present); int8 takes the faster of the candidates in `KERNELS`, and records which.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from typing import Dict, Iterator, Optional, Sequence

import torch

from ..inference.timing import best_seconds

__all__ = ["measure_peaks", "matmul_peak_gmacs", "fractions", "KERNELS", "DTYPES", "main"]

DTYPES = ("fp32", "bf16", "int8")
MATMUL_N = 2048
CONV = {"frames": 8, "channels": 256, "size": 14, "kernel": 3}  # ResNet-50's res4 3x3 conv on an 8-frame clip
KERNELS = {
    "matmul": f"{MATMUL_N} x {MATMUL_N} by {MATMUL_N} x {MATMUL_N}: torch.mm (fp32, bf16); int8 (uint8 x int8 -> "
              "int32 or requantized): the fastest of torch._int_mm and torch.ao.nn.quantized.Linear on the "
              "onednn and x86 quantized engines",
    "conv": f"{CONV['kernel']}x{CONV['kernel']} conv, stride 1, {CONV['channels']} -> {CONV['channels']} channels, "
            f"{CONV['frames']} frames of {CONV['size']} x {CONV['size']} (ResNet-50's res4 conv on an 8-frame "
            "clip), channels-last: nn.Conv2d (fp32, bf16); int8: the fastest of "
            "torch.ao.nn.quantized.Conv2d on the onednn and x86 quantized engines (per-channel int8 "
            "weights, uint8 activations)",
}


def _gmacs(macs: float, fn, reps: int) -> float:
    """``macs`` multiply-adds over the best time of ``fn()``, in GMAC/s."""
    return macs / best_seconds(fn, reps=reps, warmup=2) / 1e9


@contextlib.contextmanager
def _engine(name: str) -> Iterator[None]:
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = before


def _int8_engines() -> Sequence[str]:
    return [e for e in ("onednn", "x86") if e in torch.backends.quantized.supported_engines]


def matmul_peak_gmacs(dtype: torch.dtype, n: int = MATMUL_N, reps: int = 5) -> float:
    """The best square-matmul throughput (``torch.mm``) in GMAC/s of a float ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return _gmacs(n ** 3, lambda: torch.mm(a, b), reps)


def _int8_matmul(n: int, reps: int) -> Dict[str, float]:
    import torch.ao.nn.quantized as nnq

    out = {}
    a = torch.randint(-128, 128, (n, n), dtype=torch.int8)
    b = torch.randint(-128, 128, (n, n), dtype=torch.int8)
    out["torch._int_mm"] = _gmacs(n ** 3, lambda: torch._int_mm(a, b), reps)
    x = torch.quantize_per_tensor(torch.rand(n, n), 1 / 255, 0, torch.quint8)
    w = torch.quantize_per_channel(torch.randn(n, n), torch.full((n,), 0.02), torch.zeros(n, dtype=torch.long), 0,
                                   torch.qint8)
    for engine in _int8_engines():
        with _engine(engine):
            linear = nnq.Linear(n, n)
            linear.set_weight_bias(w, None)
            out[f"quantized Linear ({engine})"] = _gmacs(n ** 3, lambda: linear(x), reps)
    return out


def _conv_peaks(reps: int) -> Dict[str, Dict[str, float]]:
    import torch.ao.nn.quantized as nnq

    t, c, s, k = CONV["frames"], CONV["channels"], CONV["size"], CONV["kernel"]
    macs = t * s * s * c * c * k * k
    found: Dict[str, Dict[str, float]] = {}
    with torch.no_grad():
        for tag, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            conv = torch.nn.Conv2d(c, c, k, padding=k // 2, bias=False).to(dtype, memory_format=torch.channels_last)
            x = torch.randn(t, c, s, s, dtype=dtype).contiguous(memory_format=torch.channels_last)
            found[tag] = {"nn.Conv2d": _gmacs(macs, lambda: conv(x), reps)}
    x = torch.quantize_per_tensor(torch.rand(t, c, s, s), 1 / 255, 0, torch.quint8).contiguous(
        memory_format=torch.channels_last)
    w = torch.quantize_per_channel(torch.randn(c, c, k, k), torch.full((c,), 0.02), torch.zeros(c, dtype=torch.long), 0,
                                   torch.qint8)
    found["int8"] = {}
    for engine in _int8_engines():
        with _engine(engine):
            conv = nnq.Conv2d(c, c, k, padding=k // 2, bias=False)
            conv.set_weight_bias(w, None)
            found["int8"][f"quantized Conv2d ({engine})"] = _gmacs(macs, lambda: conv(x), reps)
    return found


def measure_peaks(reps: int = 10, threads: Optional[int] = None) -> Dict[str, object]:
    """``{"matmul": {dtype: GMAC/s}, "conv": {dtype: GMAC/s}, "kernels": {kind: {dtype: the kernel that
    gave it}}, "candidates": every int8 kernel's figure, "threads", "kernels_measured": KERNELS}`` for
    the dtypes of `DTYPES`, at ``threads`` (default: torch's current count)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            # torch deprecates its quantized tensors (the eager quantized modules' inputs); they still run here
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
            matmul = {"fp32": {"torch.mm": matmul_peak_gmacs(torch.float32, reps=reps)},
                      "bf16": {"torch.mm": matmul_peak_gmacs(torch.bfloat16, reps=reps)},
                      "int8": _int8_matmul(MATMUL_N, reps)}
            conv = _conv_peaks(reps)
            used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    doc: Dict[str, object] = {"threads": used, "kernels_measured": KERNELS, "kernels": {}, "candidates": {}}
    for kind, found in (("matmul", matmul), ("conv", conv)):
        doc[kind] = {d: round(max(found[d].values()), 1) for d in DTYPES}
        doc["kernels"][kind] = {d: max(found[d], key=found[d].get) for d in DTYPES}
        doc["candidates"][kind] = {k: round(v, 1) for k, v in found["int8"].items()}
    return doc


def fractions(gmacs_per_s: float, peaks: Dict[str, object], dtype: str) -> Dict[str, float]:
    """``gmacs_per_s`` as fractions of the matmul and conv peaks of ``dtype`` in ``peaks`` (`measure_peaks`)."""
    return {f"of_{kind}_peak": round(gmacs_per_s / peaks[kind][dtype], 3) for kind in ("matmul", "conv")}


def describe(peaks: Dict[str, object]) -> str:
    """One line per kind: the peaks in GMAC/s, fp32 / bf16 / int8."""
    return "\n".join(f"{kind} peak, GMAC/s at {peaks['threads']} thread(s): " +
                     " / ".join(f"{d} {peaks[kind][d]:.0f}" for d in DTYPES) +
                     f" (int8: {peaks['kernels'][kind]['int8']})" for kind in ("matmul", "conv"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.benchmark.peaks", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, help="torch threads (default: torch's count)")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print the JSON record")
    a = p.parse_args(argv)
    peaks = measure_peaks(a.reps, a.threads)
    print(json.dumps(peaks, indent=1) if a.json else describe(peaks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
