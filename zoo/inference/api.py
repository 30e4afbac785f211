"""``zoo.optimize``: a model's fast inference copy, in float32 or bfloat16 (the fast path,
`zoo.inference.optimize`) or in int8 (`zoo.inference.quantize`)."""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn

from .._errors import UsageError
from .optimize import fast_path

__all__ = ["optimize"]


def optimize(model: nn.Module, dtype: torch.dtype = torch.float32, *, example: Optional[torch.Tensor] = None,
             compile: Union[bool, str] = False, fold_bn: bool = True, layout: str = "channels_last",
             memory_cache: bool = True, winograd: bool = True, calibration=None,
             int8_backend: str = "auto", heldout=None) -> nn.Module:
    """Return a faster inference copy of ``model`` (see the module docstring).

    Args:
        model: a built model in eval mode, weights loaded. It is not modified.
        dtype: ``torch.float32`` (same numerics up to float reassociation), ``torch.bfloat16``
            (CPU autocast) or ``torch.int8``: post-training static quantization calibrated on
            ``calibration`` (`zoo.inference.quantize.quantize`: onnxruntime, PT2E + inductor, or
            zoo's per-layer int8 inside the bf16 fast path, ``int8_backend``); the options between do
            not apply to it.
        example: an input used to find and verify the BN folds; defaults to one random clip of
            ``info.num_frames`` frames at ``max(info.min_size, 64)`` px (small, to stay cheap).
        compile: ``True`` wraps with ``torch.compile`` (inductor, freezing); ``"auto"`` compiles,
            times the compiled and the eager fast path on one canonical clip and keeps the faster
            (``.compiled`` says which); ``False`` (default) does not compile. With ``torch.int8``,
            ``True`` or ``"auto"`` races the int8 model against the compiled bf16 fast path on the
            canonical clip and returns the faster, so int8 never loses to bf16 however it runs
            (``.int8_race``: both timings in ms; the bf16 model comes back where int8 is slower, as
            on CPUs whose AMX units multiply bf16 nearly as fast as int8).
        fold_bn: fold BatchNorms into convolutions.
        layout: ``"channels_last"`` (default), ``"contiguous"`` (keep the default layout), or
            ``"auto"``: time both on one clip at the model's canonical input, in 3 interleaved
            rounds, and keep the faster (the timings are in ``.layout_ms``; channels-last is faster
            for most models on oneDNN, not for all: P3D's mixed 2D/3D convs run faster in the
            default layout). ``benchmarks/speed.py`` uses ``"auto"``.
        memory_cache: allocate the model's activations from its own `zoo.inference.memory.MemoryCache`,
            kept between calls (no page faults on repeated calls; somewhat more than the peak of
            live activations stays reserved until ``model.memory_cache.trim()`` or the model is
            dropped).
        winograd: in float32 with a channels-last layout, run 3x3 stride-1 convs with at least 32
            channels as Winograd F(4x4, 3x3) (`zoo.inference.winograd.WinogradConv`: about 2x faster per
            conv; outputs within about 1e-5 of their scale instead of 2e-6). Ignored (False)
            where its kernels cannot be built (`zoo.inference.winograd.winograd_unavailable_reason`).
        calibration: int8 only: clips of the model's input shape (a ``[N, C, T, H, W]`` tensor or a
            list of ``[B, C, T, H, W]`` ones), as the model will see them (decoded, normalised).
        int8_backend: ``"onnxruntime"``, ``"pt2e"``, ``"onednn"`` (zoo's per-layer int8: never slower
            than the uncompiled bf16 fast path) or ``"auto"`` (default: build them all, time them on the
            canonical clip and keep the fastest; none wins on every model).
        heldout: int8 only: other clips, on which the ``"onednn"`` backend keeps the top-1 of at
            least 99 % of them equal to the fp32 model's (layers go back to bf16 until it does),
            and ``"auto"`` keeps the fastest backend that does (``.int8_agreement``).
    """
    if dtype == torch.int8:
        if calibration is None:
            raise UsageError("dtype=torch.int8 needs calibration clips: optimize(model, torch.int8, "
                             "calibration=clips) with clips shaped [N, C, T, H, W], as the model sees them")
        from .quantize import quantize
        int8 = quantize(model, calibration, backend=int8_backend, heldout=heldout)
        return _faster_of(model, int8) if compile else int8
    if calibration is not None or heldout is not None:
        raise UsageError("calibration= and heldout= are for dtype=torch.int8 only")
    return fast_path(model, dtype, example=example, compile=compile, fold_bn=fold_bn, layout=layout,
                     memory_cache=memory_cache, winograd=winograd)


def _faster_of(model: nn.Module, int8: nn.Module) -> nn.Module:
    """``int8`` or ``model``'s compiled bf16 fast path, whichever runs the canonical clip faster
    (3 interleaved rounds after a warm-up call, which compiles); ``.int8_race`` on the one kept."""
    from .timing import canonical_clip, time_interleaved

    bf16 = fast_path(model, torch.bfloat16, compile=True)
    secs = time_interleaved({"int8": int8, "compiled_bf16": bf16}, canonical_clip(model), warmup=1, reps=3, settle=0)
    kept = int8 if secs["int8"] <= secs["compiled_bf16"] else bf16
    kept.int8_race = {f"{k}_ms": round(1e3 * v, 2) for k, v in secs.items()}
    return kept
