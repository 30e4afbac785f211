"""Where one call of a model spends its time: in convolutions and matrix products (the work the
machine's conv and matmul peaks measure) or in everything else (copies, shifts, activations,
additions, pooling, casts, inductor's fused kernels: memory-bound, a few operations per byte moved), and, of the
convolutions, in grouped or depthwise ones (few multiply-adds per byte, far below the peak).

`time_split` profiles one call with ``torch.profiler`` (self CPU time per operator, so nothing is
counted twice) and `reason` turns the split into the sentence a results file gives for a model
below a fraction of its peak. The multiply-adds are fvcore's count of the whole model, so the
rate of the convolutions alone (``compute_gmacs_per_s``) is an upper bound: fvcore also counts a
few non-conv ops (e.g. the attention products of some families).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

import torch

__all__ = ["time_split", "reason", "is_compute_op", "op_label"]

# operator names (after "namespace::") that run the convolutions and matrix products
_MATMUL = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "_mkl_linear", "_linear_pointwise",
           "qlinear", "qlinear_pointwise", "_int_mm"}
_RANGES = {"CompiledFxGraph": "inductor's fused kernels", "TorchDynamo Cache Lookup": "torch.compile guards",
           "Torch-Compiled Region": "torch.compile entry"}
MEMORY_BOUND_SHARE = 0.25  # above this share of the time outside convs and matmuls, say so
GROUPED_SHARE = 0.2


def is_compute_op(name: str) -> bool:
    """Does the profiler operator ``name`` run a convolution or a matrix product?"""
    short = name.rsplit("::", 1)[-1]
    return "conv" in short or short in _MATMUL


def op_label(name: str) -> str:
    """A profiler entry's name as a results file gives it: the operator without its namespace; the
    ranges torch.compile records under their meaning."""
    for marker, label in _RANGES.items():
        if marker in name:
            return label
    return name.rsplit("::", 1)[-1]


# where a convolution operator takes its ``groups`` argument (profiler concrete inputs)
_GROUPS_ARG = {"mkldnn_convolution": 6, "convolution": 8, "_convolution": 8, "conv1d": 6, "conv2d": 6, "conv3d": 6,
               "_convolution_pointwise": 6}
_GROUPS_ARG_BINARY = 7  # the binary forms (x, other, w, b, ...) and (other, x, w, b, ...): the weight third


def _groups(name: str, inputs: List[List[int]], concrete: list) -> int:
    """The ``groups`` argument of a convolution event (1 where it cannot be read)."""
    short = name.rsplit("::", 1)[-1]
    index = _GROUPS_ARG.get(short)
    if short.startswith("_convolution_pointwise") and len(inputs) > 2 and len(inputs[2]) == len(inputs[0]) >= 3:
        index = _GROUPS_ARG_BINARY  # a second activation (the residual) before the weight
    value = concrete[index] if index is not None and concrete and index < len(concrete) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def time_split(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, macs: float) -> Dict[str, Any]:
    """Profile one call ``fn(x)`` (after an untimed one) and split its self CPU time.

    Returns ``ms`` (all operators), ``compute_share`` (convs and matmuls), ``grouped_conv_share``
    (convs with ``groups`` > 1: grouped and depthwise, part of the compute share),
    ``compute_gmacs_per_s`` (``macs`` over the compute time) and ``top_other_ops``: the four
    slowest other operators, ms each.
    """
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        fn(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            fn(x)
    compute = grouped = total = 0.0
    other: Dict[str, float] = {}
    for event in prof.events():
        us = event.self_cpu_time_total
        total += us
        if is_compute_op(event.name):
            compute += us
            if "conv" in event.name and _groups(event.name, event.input_shapes,
                                                getattr(event, "concrete_inputs", None) or []) > 1:
                grouped += us
        elif us:
            label = op_label(event.name)
            other[label] = other.get(label, 0.0) + us
    top = sorted(other.items(), key=lambda kv: -kv[1])[:4]
    return {"ms": round(total / 1e3, 2), "compute_share": round(compute / total, 3),
            "grouped_conv_share": round(grouped / total, 3),
            "compute_gmacs_per_s": round(macs / (compute / 1e6) / 1e9, 1) if compute else None,
            "top_other_ops": {k: round(v / 1e3, 2) for k, v in top}}


def reason(split: Dict[str, Any], conv_peak_gmacs: float, dtype: str) -> str:
    """Why a model runs below its peak, from `time_split` (``split``) and the conv peak of ``dtype``."""
    parts = []
    other = 1 - split["compute_share"]
    if other >= MEMORY_BOUND_SHARE:
        ops = ", ".join(split["top_other_ops"])
        parts.append(f"memory-bound ops take {other:.0%} of the time ({ops})")
    if split["grouped_conv_share"] >= GROUPED_SHARE:
        parts.append(f"grouped/depthwise convs take {split['grouped_conv_share']:.0%} of the time "
                     "(few multiply-adds per byte)")
    rate = split["compute_gmacs_per_s"]
    if rate is not None:
        frac = rate / conv_peak_gmacs
        parts.append(f"the convs and matmuls themselves run at {frac:.0%} of the {dtype} conv peak"
                     + (" (small channel counts or 3D shapes the kernels tile poorly)" if frac < 0.5 else ""))
    return "; ".join(parts)
