"""The CPU inference fast path: ``zoo.optimize(model)``.

What it does, in order, on a copy of an eval-mode model:

1. Folds every BatchNorm whose input is exactly a convolution's output into that convolution
   (``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``). Which pairs
   qualify is found by running one forward pass with hooks (the BN must consume the very
   tensor the conv produced, and no other module may read it), so it works for any family
   without naming layers; the folded model is then checked against the original on that
   input and the fold is undone if it disagrees.
   Then every submodule with a ``prepare_inference()`` method switches to its cheaper inference
   form (equal up to float rounding; e.g. PAN's PA convolves frame differences).
2. Converts weights and activations to channels-last (``channels_last`` for 2D convs,
   ``channels_last_3d`` for 3D ones), the layout oneDNN usually runs fastest on CPU
   (``layout="auto"`` times both layouts and keeps the faster). In fp32, not compiled, Conv3ds
   whose kernel spans one frame or one pixel (spatial, temporal and 1x1x1 convs of R(2+1)D, P3D,
   SlowFast, I3D-R50) run as Conv2ds on views of that memory (`Conv3dAs2d`), which oneDNN runs
   faster (``benchmarks/speed.py`` times the fast path per model). In fp32 with channels-last, compiled or
   not, 3x3 stride-1 convs (2D, or 3D with a one-frame kernel) of 32 channels or more run as
   Winograd F(4x4, 3x3) (`zoo.inference.winograd.WinogradConv`: a quarter of the multiplies; outputs within
   about 1e-5 of their scale, the direct conv's rounding being about 2e-6).
3. Runs under ``torch.inference_mode`` and, for ``dtype=torch.bfloat16``, CPU autocast with the
   fully connected layers (and convs oneDNN mishandles in bf16) kept in float32, so the logits
   are float32 computed, not bf16 rounded (see `Float32Module`).
4. Optionally ``torch.compile`` (inductor with weight freezing: constant-folded, pre-packed
   oneDNN weights, convolutions fused with their bias/ReLU/residual epilogues; one static graph per
   input shape): ``compile=True`` always, ``compile="auto"`` only where it measures faster on
   the canonical clip. It needs a C++ compiler and costs seconds to a minute per model and dtype
   at the first call, so it is off by default (``zoo eval --compile auto`` turns it on). Model
   ops that inductor would rewrite badly are custom ops it calls as they are (TSM's shift).
5. Allocates the activations from the model's own `zoo.inference.memory.MemoryCache`, so repeated calls
   reuse memory that stays resident instead of faulting it in again page by page (compiled
   R(2+1)D-18: 22k-37k minor page faults per clip without it, none with it).
"""
from __future__ import annotations

import contextlib
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from .._errors import UsageError
from .memory import MemoryCache, cache_unavailable_reason
from .compiling import compiled_calls
from .timing import canonical_clip, time_interleaved
from .winograd import WinogradConv, frames_into_batch, frames_out_of_batch, winograd_unavailable_reason

__all__ = ["fast_path", "fold_batchnorms", "OptimizedModel", "Conv3dAs2d", "Float32Module", "set_module"]

_CONVS = (nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm2d, nn.BatchNorm3d)


def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
            1.0 / torch.sqrt(bn.running_var + bn.eps)
        shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * scale
        conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
        bias = shift if conv.bias is None else conv.bias * scale + shift
        conv.bias = nn.Parameter(bias.detach().clone())


def _find_conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> List[Tuple[str, str]]:
    """Names of (conv, bn) pairs where the BN consumes exactly, and only, the conv's output."""
    produced: Dict[int, str] = {}  # id(output tensor) -> conv name
    consumers: Dict[int, List[str]] = {}  # id(input tensor) -> modules reading it
    keep_alive = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, _CONVS):
            def conv_hook(m, inp, out, name=name):
                produced[id(out)] = name
                keep_alive.append(out)
            hooks.append(module.register_forward_hook(conv_hook))
        if len(list(module.children())) == 0:  # leaf modules: record what they read
            def read_hook(m, inp, name=name):
                for t in inp:
                    if isinstance(t, torch.Tensor):
                        consumers.setdefault(id(t), []).append(name)
                        keep_alive.append(t)
            hooks.append(module.register_forward_pre_hook(read_hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    pairs = []
    for tid, conv_name in produced.items():
        readers = consumers.get(tid, [])
        if len(readers) == 1 and isinstance(modules[readers[0]], _BNS):
            bn = modules[readers[0]]
            if bn.track_running_stats and bn.running_mean is not None:
                pairs.append((conv_name, readers[0]))
    return pairs


def set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` in ``model`` where the submodule ``name`` is."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def fold_batchnorms(model: nn.Module, example: torch.Tensor, *, rtol: float = 1e-4) -> Tuple[nn.Module, int]:
    """Return a copy of an eval-mode ``model`` with BNs folded into the preceding convs.

    The copy is verified on ``example``: if its outputs move by more than ``rtol`` relative to
    their scale (a module graph the hooks misread), the unfolded model is returned instead, so
    folding never changes results. Returns ``(model, number_of_folds)``.
    """
    if model.training:
        raise UsageError("fold_batchnorms needs an eval-mode model: call model.eval() first")
    folded = copy.deepcopy(model)
    pairs = _find_conv_bn_pairs(folded, example)
    modules = dict(folded.named_modules())
    for conv_name, bn_name in pairs:
        _fold_pair(modules[conv_name], modules[bn_name])
        set_module(folded, bn_name, nn.Identity())
    with torch.no_grad():
        reference, out = model(example), folded(example)
    if (out - reference).abs().max() > rtol * reference.abs().max().clamp_min(1e-12):
        return model, 0
    return folded, len(pairs)


class Float32Module(nn.Module):
    """Runs a module in float32 inside a bf16 autocast region; under the bf16 fast path, two kinds:

    * convolutions whose stride exceeds their kernel: oneDNN's bf16 convolution on CPU corrupts
      the heap there (torch 2.14.1; reproduced standalone with a Conv3d 128->256, kernel (5,1,1),
      stride (8,1,1), which is SlowFast 4x16's lateral connection);
    * fully connected layers (classifiers, PAN's VAP): in bf16 their outputs, the logits, would
      be rounded to 8 bits of mantissa, enough to flip the top-1 of near-tied classes.

    Both are a negligible share of a video network's MACs.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            return self.module(x.float())


def _keep_fp32_under_bf16(model: nn.Module) -> int:
    """Wrap the modules `Float32Module` lists in it; returns the number of convs wrapped."""
    convs = [n for n, m in model.named_modules() if isinstance(m, _CONVS)
             and any(1 < k < s for s, k in zip(m.stride, m.kernel_size))]  # 1x1 stride-2 shortcuts are fine
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    for name in convs + linears:
        set_module(model, name, Float32Module(model.get_submodule(name)))
    return len(convs)


class Conv3dAs2d(nn.Module):
    """A Conv3d whose kernel spans one frame (``k_t = 1``: spatial and 1x1x1 convs) or one pixel
    (``k_h = k_w = 1``: temporal convs), run as a Conv2d on a view of its channels-last-3d input:
    frames folded into the batch (``[N*T, C, H, W]``) or pixels into the width (``[N, C, T, H*W]``).

    The same weights and sums, no copies (both views are plain reshapes of ``[N, T, H, W, C]``
    memory), and oneDNN's 2D kernels run these shapes faster than its 3D ones.
    """

    def __init__(self, conv: nn.Conv3d):
        super().__init__()
        self.spatial = self._spans_one_frame(conv)
        if self.spatial:  # (k_h, k_w) over [N*T, C, H, W]
            k, s, p, d = (tuple(v[1:]) for v in (conv.kernel_size, conv.stride, conv.padding, conv.dilation))
        else:  # (k_t, 1) over [N, C, T, H*W]
            k, s, p, d = ((v[0], fill) for v, fill in ((conv.kernel_size, 1), (conv.stride, 1), (conv.padding, 0),
                                                         (conv.dilation, 1)))
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, k, s, p, d, conv.groups, conv.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight[:, :, 0] if self.spatial else conv.weight[..., 0])
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)
        self.conv.to(memory_format=torch.channels_last)

    @staticmethod
    def _spans_one_frame(conv: nn.Conv3d) -> bool:
        return conv.kernel_size[0] == 1 and conv.stride[0] == 1 and conv.padding[0] == 0

    @staticmethod
    def _spans_one_pixel(conv: nn.Conv3d) -> bool:
        return all(conv.kernel_size[i] == 1 and conv.stride[i] == 1 and conv.padding[i] == 0 for i in (1, 2))

    @classmethod
    def applies_to(cls, conv: nn.Module) -> bool:
        if not isinstance(conv, nn.Conv3d) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            return False
        if any(1 < k < s for s, k in zip(conv.stride, conv.kernel_size)):  # left to `Float32Module`
            return False
        return cls._spans_one_frame(conv) or cls._spans_one_pixel(conv)

    def to_conv3d(self) -> nn.Conv3d:
        """The equal Conv3d (channels-last-3d), for where the 2D form is not faster."""
        c = self.conv
        if self.spatial:
            k, s, p, d = ((1, *c.kernel_size), (1, *c.stride), (0, *c.padding), (1, *c.dilation))
        else:
            k, s, p, d = ((v[0], fill, fill) for v, fill in ((c.kernel_size, 1), (c.stride, 1), (c.padding, 0),
                                                             (c.dilation, 1)))
        conv = nn.Conv3d(c.in_channels, c.out_channels, k, s, p, d, c.groups, c.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(c.weight.unsqueeze(2) if self.spatial else c.weight.unsqueeze(-1))
            if c.bias is not None:
                conv.bias.copy_(c.bias)
        return conv.to(memory_format=torch.channels_last_3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spatial:
            return frames_out_of_batch(self.conv(frames_into_batch(x)), x.shape[2])
        n, c, t, h, w = x.shape
        x = x.permute(0, 2, 3, 4, 1)  # [N, T, H, W, C]: contiguous for a channels-last-3d x
        y = self.conv(x.reshape(n, t, h * w, c).permute(0, 3, 1, 2))
        _, co, to, _ = y.shape
        return y.permute(0, 2, 3, 1).reshape(n, to, h, w, co).permute(0, 4, 1, 2, 3)


def _to_channels_last(model: nn.Module, with_2d_convs: bool = False, winograd: bool = False) -> None:
    """Channels-last weights; with ``with_2d_convs``, `Conv3dAs2d` for the Conv3ds it applies to;
    with ``winograd``, `zoo.inference.winograd.WinogradConv` for the 3x3 stride-1 convs it applies to."""
    if winograd:
        for name in [n for n, m in model.named_modules() if WinogradConv.applies_to(m)]:
            set_module(model, name, WinogradConv(model.get_submodule(name)))
    as_2d = [n for n, m in model.named_modules() if with_2d_convs and Conv3dAs2d.applies_to(m)]
    for name in as_2d:
        set_module(model, name, Conv3dAs2d(model.get_submodule(name)))
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            m.to(memory_format=torch.channels_last_3d)
        elif isinstance(m, nn.Conv2d):
            m.to(memory_format=torch.channels_last)


class OptimizedModel(nn.Module):
    """An inference-only wrapper with the wrapped model's call signature and float32 logits."""

    def __init__(self, model: nn.Module, dtype: torch.dtype, folded: int, compiled: bool,
                 channels_last: bool = True, memory_cache: bool = True):
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.channels_last = channels_last
        self.folded_batchnorms = folded
        self.compiled = compiled
        # kept out of the module tree: the compiled wrapper shares `model`'s parameters
        # dynamic=False: one static graph per input shape (an evaluation sees at most two batch sizes)
        self.__dict__["_compiled"] = torch.compile(model, dynamic=False) if compiled else None
        # activation memory kept between calls (see zoo.inference.memory); None where it cannot be built
        self.__dict__["_memory"] = MemoryCache() if memory_cache and cache_unavailable_reason() is None else None
        for attr in ("info", "num_classes", "num_features"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    @property
    def convs_as_2d(self) -> int:
        """How many Conv3ds run as Conv2ds (see `Conv3dAs2d`)."""
        return sum(isinstance(m, Conv3dAs2d) for m in self.model.modules())

    @property
    def winograd_convs(self) -> int:
        """How many convs run as Winograd F(4x4, 3x3) (see `zoo.inference.winograd.WinogradConv`)."""
        return sum(isinstance(m, WinogradConv) for m in self.model.modules())

    @property
    def memory_cache(self) -> Optional[MemoryCache]:
        """The cache this model's activations are allocated from, or None."""
        return self._memory

    def _memory_scope(self):
        return self._memory.scope() if self._memory is not None else contextlib.nullcontext()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._memory_scope(), torch.inference_mode():
            if x.dim() == 5 and self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            if self.dtype == torch.bfloat16 and x.device.type == "cpu":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return self._run(x).float()
            return self._run(x).float()

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self._compiled is None:
            return self.model(x)
        with compiled_calls():  # weight freezing, and a recompile limit that keeps every model compiled
            return self._compiled(x)

    def compiled_twin(self) -> "OptimizedModel":
        """This model under ``torch.compile``: same (shared) weights, layout and dtype, so a timing
        of the two compares compiling and nothing else; but with any `Conv3dAs2d` back as the
        equal Conv3d (on a copy), which inductor runs faster (its conv epilogue fusions do not cross
        the views)."""
        model = self.model
        if self.convs_as_2d:
            model = copy.deepcopy(model)
            for name, m in list(model.named_modules()):
                if isinstance(m, Conv3dAs2d):
                    set_module(model, name, m.to_conv3d())
        twin = OptimizedModel(model, self.dtype, self.folded_batchnorms, True, self.channels_last,
                              memory_cache=self._memory is not None)
        for attr in ("fp32_convs", "layout_ms"):
            if hasattr(self, attr):
                setattr(twin, attr, getattr(self, attr))
        return twin

    def forward_features(self, x):
        with self._memory_scope(), torch.inference_mode():
            return self.model.forward_features(x)

    def forward_head(self, features, pre_logits: bool = False):
        with self._memory_scope(), torch.inference_mode():
            return self.model.forward_head(features, pre_logits=pre_logits)


def fast_path(model: nn.Module, dtype: torch.dtype = torch.float32, *, example: Optional[torch.Tensor] = None,
              compile: Union[bool, str] = False, fold_bn: bool = True, layout: str = "channels_last",
              memory_cache: bool = True, winograd: bool = True) -> OptimizedModel:
    """The fp32 or bf16 fast path of ``model`` (the module docstring; `zoo.optimize` documents the options)."""
    if compile not in (True, False, "auto"):
        raise UsageError(f"compile must be True, False or 'auto', got {compile!r}")
    if compile == "auto":
        return _faster_compiled(fast_path(model, dtype, example=example, compile=False, fold_bn=fold_bn,
                                          layout=layout, memory_cache=memory_cache, winograd=winograd))
    if layout not in ("channels_last", "contiguous", "auto"):
        raise UsageError(f"layout must be 'channels_last', 'contiguous' or 'auto', got {layout!r}")
    if dtype not in (torch.float32, torch.bfloat16):
        raise UsageError(f"dtype must be torch.float32, torch.bfloat16 or torch.int8, got {dtype}")
    if model.training:
        raise UsageError("optimize() takes an eval-mode model: call model.eval() first")
    fast, folded = copy.deepcopy(model), 0
    if fold_bn:
        if example is None:
            info = getattr(model, "info", None)
            if info is None:
                raise UsageError("pass example= (an input tensor) for a model without .info")
            size = max(info.min_size, 64)
            example = torch.randn(1, 3, info.num_frames, size, size,
                                  generator=torch.Generator().manual_seed(0))
        fast, folded = fold_batchnorms(fast, example)
    for module in fast.modules():  # a family's own cheaper inference form (e.g. PAN's PA)
        if callable(getattr(module, "prepare_inference", None)):
            module.prepare_inference()
    fp32_convs = _keep_fp32_under_bf16(fast) if dtype == torch.bfloat16 else 0

    def wrap(body: nn.Module, compiled: Union[bool, str], channels_last: bool) -> OptimizedModel:
        return OptimizedModel(body, dtype, folded, compiled, channels_last=channels_last, memory_cache=memory_cache)

    if layout == "contiguous":
        return _tag(wrap(fast, compile, channels_last=False), fp32_convs)
    # Conv3dAs2d only for the uncompiled fp32 model: it is slower under bf16, and under inductor,
    # whose conv epilogue fusions the views split (see `OptimizedModel.compiled_twin`)
    as_2d_convs = dtype == torch.float32 and compile is False
    winograd = winograd and dtype == torch.float32 and winograd_unavailable_reason() is None
    if layout == "channels_last":
        _to_channels_last(fast, as_2d_convs, winograd)
        return _tag(wrap(fast, compile, channels_last=True), fp32_convs)

    cl = copy.deepcopy(fast)
    _to_channels_last(cl, as_2d_convs, winograd)
    candidates = {"contiguous": wrap(fast, False, channels_last=False),
                  "channels_last": wrap(cl, False, channels_last=True)}
    # interleaved rounds: one slow spell of the machine must not pick the layout
    secs = time_interleaved(candidates, canonical_clip(model), warmup=1, reps=3, settle=0)
    best = wrap(cl, compile, channels_last=True) if secs["channels_last"] <= secs["contiguous"] else \
        wrap(fast, compile, channels_last=False)
    best.layout_ms = {k: round(1e3 * v, 1) for k, v in secs.items()}
    return _tag(best, fp32_convs)


def _faster_compiled(eager: OptimizedModel) -> OptimizedModel:
    """``eager`` or its compiled twin (same weights), whichever runs the canonical clip faster."""
    clip = canonical_clip(eager)
    compiled = eager.compiled_twin()
    compiled(clip)  # compiles
    secs = time_interleaved({"compiled": compiled, "eager": eager}, clip, warmup=1, reps=2, settle=0)
    return compiled if secs["compiled"] < secs["eager"] else eager


def _tag(model: OptimizedModel, fp32_convs: int) -> OptimizedModel:
    model.fp32_convs = fp32_convs  # convs kept in fp32 under bf16 (see `Float32Module`)
    return model
