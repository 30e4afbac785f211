"""zoo's own int8 path: int8 convolutions inside the bf16 fast path, layer by layer where they win.

``quantize(model, clips, backend="onednn")`` (`zoo.inference.quantize`) builds it with `per_layer_int8`:

1. The bf16 fast path (``zoo.optimize(model, torch.bfloat16)``): BN folded into the convolutions,
   channels-last, bf16 autocast, classifiers in float32.
2. Calibration: each convolution's input range (min and max over the calibration clips).
3. Each convolution, 2D or 3D, timed on its own input at the model's canonical clip, in its bf16
   form and in its int8 form (`Int8Conv`: the input quantized to uint8 in one pass by zoo's native
   kernel, then oneDNN's int8 convolution with per-channel int8 weights writing bf16, so nothing
   else changes around it). The int8 form replaces the layer where it is at least ``margin`` faster.
4. Agreement: with ``heldout`` clips, top-1 against the fp32 model on them; while it is below
   ``min_agreement``, the int8 layers whose outputs moved most go back to bf16.
5. The whole model is timed against the bf16 fast path it came from; if it is not faster, every
   layer goes back to bf16 (``int8_layers`` is then empty): the result is never the slower of the
   two. That path is not compiled; the compiled bf16 path (inductor's fused epilogues) can be faster.

Each chosen layer's timings (``layer_ms``) and the whole-model check (``int8_ms``) stay on the result.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .._errors import UsageError
from . import native
from .optimize import Float32Module, OptimizedModel, fast_path, set_module
from .timing import best_seconds, canonical_clip, time_interleaved

__all__ = ["Int8Conv", "Int8Model", "per_layer_int8", "quantize_activation", "int8_unavailable_reason", "top1",
           "top1_share", "MIN_AGREEMENT"]

_SOURCE = Path(__file__).with_name("csrc") / "quantize.cpp"
_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}


@functools.lru_cache(maxsize=None)
def _library():
    """(ctypes library, None), or (None, why it cannot be built)."""
    lib, why = native.load_openmp_kernels("int8 activation quantization", _SOURCE)
    if lib is None:
        return None, why
    for fn in (lib.zoo_quantize_bf16_u8, lib.zoo_quantize_f32_u8):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int32]
    return lib, None


def int8_unavailable_reason() -> Optional[str]:
    """None when `Int8Conv` runs in this process, else why it cannot (no C++ compiler for the
    quantization kernel, or a torch without oneDNN's int8 convolution)."""
    if not hasattr(torch.ops.onednn, "qconv_pointwise") or not torch.backends.mkldnn.is_available():
        return "this torch build has no oneDNN int8 convolution (torch.ops.onednn.qconv_pointwise)"
    return _library()[1]


def quantize_activation(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """``clamp(round(x / scale) + zero_point, 0, 255)`` as uint8, in ``x``'s memory layout, in one
    pass (float32 or bfloat16 ``x``; rounding half to even, as ``torch.round``)."""
    fmt = _FORMATS.get(x.dim(), torch.contiguous_format)
    if not x.is_contiguous(memory_format=fmt):
        x = x.contiguous(memory_format=fmt)
    if x.dtype not in (torch.bfloat16, torch.float32):
        x = x.float()
    y = torch.empty_like(x, dtype=torch.uint8, memory_format=fmt)
    lib = _library()[0]
    kernel = lib.zoo_quantize_bf16_u8 if x.dtype == torch.bfloat16 else lib.zoo_quantize_f32_u8
    kernel(x.data_ptr(), y.data_ptr(), x.numel(), 1.0 / scale, zero_point)
    return y


class Int8Conv(nn.Module):
    """A convolution (``nn.Conv2d`` or ``nn.Conv3d``, zero padding, BN already folded) in int8:
    its input quantized per tensor to uint8 with the calibrated range [``low``, ``high``]
    (widened to hold 0), its weights per output channel to int8 (symmetric), run by oneDNN's int8
    convolution with the float32 bias, the output written in the input's float dtype."""

    def __init__(self, conv: nn.Module, low: float, high: float):
        super().__init__()
        low, high = min(low, 0.0), max(high, 0.0)
        self.scale = max(high - low, 1e-8) / 255
        self.zero_point = int(min(255, max(0, round(-low / self.scale))))
        w = conv.weight.detach().float()
        self.w_scales = (w.abs().amax(dim=tuple(range(1, w.dim()))).clamp(min=1e-12) / 127).contiguous()
        shape = (-1,) + (1,) * (w.dim() - 1)
        w_int8 = torch.clamp(torch.round(w / self.w_scales.view(shape)), -127, 127).to(torch.int8)
        self.w_zero_points = torch.zeros(w.shape[0], dtype=torch.long)
        self.geometry = (list(conv.stride), list(conv.padding), list(conv.dilation), conv.groups)
        self.packed = torch.ops.onednn.qconv_prepack(w_int8, self.w_scales, self.scale, self.zero_point,
                                                     *self.geometry)
        self.bias = None if conv.bias is None else conv.bias.detach().float().contiguous()
        self.kind = type(conv).__name__

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_dtype = torch.bfloat16 if x.dtype == torch.bfloat16 else torch.float32
        xq = quantize_activation(x, self.scale, self.zero_point)
        stride, padding, dilation, groups = self.geometry
        return torch.ops.onednn.qconv_pointwise(xq, self.scale, self.zero_point, self.packed, self.w_scales,
                                                self.w_zero_points, self.bias, stride, padding, dilation, groups,
                                                1.0, 0, out_dtype, "none", [], "")

    def extra_repr(self) -> str:
        return f"{self.kind}, input scale {self.scale:.4g}, zero point {self.zero_point}"


class Int8Model(nn.Module):
    """The bf16 fast path with some convolutions in int8 (`per_layer_int8`): float32 logits."""

    def __init__(self, fast: OptimizedModel, int8_layers: List[str], total: int,
                 layer_ms: Dict[str, Tuple[float, float]]):
        super().__init__()
        self.fast = fast
        self.int8_layers = int8_layers
        self.convs_int8 = (len(int8_layers), total)
        self.layer_ms = layer_ms  # name -> (bf16 ms, int8 ms) on the canonical clip
        for attr in ("info", "num_classes", "num_features"):
            if hasattr(fast, attr):
                setattr(self, attr, getattr(fast, attr))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fast(x)


def _candidates(body: nn.Module) -> Dict[str, nn.Module]:
    """The convolutions an `Int8Conv` can replace: plain zero-padded ones, not those the bf16
    path keeps in float32 (`Float32Module`)."""
    kept = [n for n, m in body.named_modules() if isinstance(m, Float32Module)]
    return {n: m for n, m in body.named_modules()
            if type(m) in (nn.Conv2d, nn.Conv3d) and m.padding_mode == "zeros" and not isinstance(m.padding, str)
            and not any(n.startswith(k + ".") for k in kept)}


MIN_AGREEMENT = 0.99  # top-1 agreement with fp32 that int8 keeps on held-out clips


def top1(model: nn.Module, clips: Sequence[torch.Tensor]) -> torch.Tensor:
    """``model``'s top-1 class of each clip of ``clips`` (batches), in one tensor."""
    with torch.no_grad():
        return torch.cat([model(c).argmax(-1) for c in clips])


def top1_share(model: nn.Module, clips: Sequence[torch.Tensor], reference: torch.Tensor) -> float:
    """Share of ``clips`` on which ``model``'s top-1 is ``reference``'s (`top1` of another model)."""
    return (top1(model, clips) == reference).float().mean().item()


def per_layer_int8(model: nn.Module, clips: Sequence[torch.Tensor], *, heldout: Sequence[torch.Tensor] = (),
                   margin: float = 0.05, min_agreement: float = MIN_AGREEMENT, reps: int = 5,
                   every_layer: bool = False) -> Int8Model:
    """``model`` (eval, fp32) as the bf16 fast path with int8 convolutions where each measures
    faster, calibrated on ``clips`` (see the module docstring for every step). ``every_layer``: int8
    in every convolution it can run, nothing timed (the most int8 can change the model's answers:
    what the deployment benchmark's agreement measures)."""
    why = int8_unavailable_reason()
    if why is not None:
        raise UsageError(f"int8_backend='onednn' cannot run here: {why.strip().splitlines()[0]}; take "
                         "int8_backend='onnxruntime' instead")
    fast = fast_path(model, torch.bfloat16)
    body = fast.model
    convs = _candidates(body)
    ranges: Dict[str, Tuple[float, float]] = {}

    def observe(name):
        def hook(module, inputs):
            x = inputs[0]
            low, high = ranges.get(name, (float("inf"), float("-inf")))
            ranges[name] = (min(low, x.min().item()), max(high, x.max().item()))
        return hook

    hooks = [m.register_forward_pre_hook(observe(n)) for n, m in convs.items()]
    for clip in clips:
        fast(clip)
    for h in hooks:
        h.remove()
    int8 = {n: Int8Conv(m, *ranges[n]) for n, m in convs.items() if n in ranges}

    # each layer, both forms, on its input at the canonical clip (timed inside the forward pass)
    layer_ms: Dict[str, Tuple[float, float]] = {}

    def race(name):
        def hook(module, inputs):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                # .forward: calling the module would run this hook again
                layer_ms[name] = tuple(1e3 * best_seconds(f, inputs[0], reps=reps)
                                       for f in (module.forward, int8[name]))
        return hook

    if every_layer:
        chosen = list(int8)
    else:
        hooks = [convs[n].register_forward_pre_hook(race(n)) for n in int8]
        fast(canonical_clip(model))
        for h in hooks:
            h.remove()
        chosen = [n for n, (bf16_ms, int8_ms) in layer_ms.items() if int8_ms <= (1 - margin) * bf16_ms]
    for name in chosen:
        set_module(body, name, int8[name])

    if heldout and chosen:
        reference = top1(model, heldout)
        error = _output_errors(fast, convs, int8, chosen, heldout[0])
        while chosen and top1_share(fast, heldout, reference) < min_agreement:
            worst = sorted(chosen, key=error.get, reverse=True)[:max(1, len(chosen) // 4)]
            for name in worst:
                set_module(body, name, convs[name])
            chosen = [n for n in chosen if n not in worst]

    result = Int8Model(fast, chosen, len(convs), {n: tuple(round(v, 3) for v in layer_ms[n]) for n in layer_ms})
    if chosen and not every_layer:
        bf16 = fast_path(model, torch.bfloat16)
        secs = time_interleaved({"int8": result, "bf16": bf16}, canonical_clip(model), warmup=1, reps=3, settle=0)
        result.int8_ms = {k: round(1e3 * v, 1) for k, v in secs.items()}
        if secs["int8"] >= secs["bf16"]:  # never the slower one: every layer back to bf16
            for name in chosen:
                set_module(body, name, convs[name])
            result.int8_layers, result.convs_int8 = [], (0, len(convs))
    return result


def _output_errors(fast: OptimizedModel, convs: Dict[str, nn.Module], int8: Dict[str, Int8Conv],
                   chosen: Sequence[str], clip: torch.Tensor) -> Dict[str, float]:
    """Each chosen int8 layer's output error on ``clip``: max |int8 - bf16| over the bf16 output's
    max magnitude, both run on the layer's input in the int8 model."""
    error: Dict[str, float] = {}

    def compare(name):
        def hook(module, inputs, output):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                ref = convs[name](inputs[0]).float()
            error[name] = ((output.float() - ref).abs().max() / ref.abs().max().clamp(min=1e-12)).item()
        return hook

    hooks = [int8[n].register_forward_hook(compare(n)) for n in chosen]
    fast(clip)
    for h in hooks:
        h.remove()
    return error
