"""Winograd F(4x4, 3x3) convolution for the fp32 fast path (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016).

A 3x3, stride-1 convolution over 4x4 output tiles takes 36 multiplies per tile and channel pair
where the direct form takes 144 (4x fewer; about 3x on a 14x14 map, whose tiles overhang it).
It runs as an input transform of 6x6 tiles (``zoo/inference/csrc/winograd.cpp``), 36 GEMMs in one
``torch.bmm`` and an output transform that adds the bias. The transforms are exact in rational
arithmetic; in fp32 each conv's outputs move by about 1e-5 of their largest value (the direct
conv's rounding is about 2e-6), which `WinogradConv` states as its tolerance.

It is faster than oneDNN's direct conv at ResNet's shapes over 8 frames (``python
benchmarks/winograd.py`` times each, ``benchmarks/results/winograd.json``). With few output tiles
the direct conv wins, so below `MIN_TILES` the module runs it instead.
"""
from __future__ import annotations

import ctypes
import functools
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import native

__all__ = ["WinogradConv", "winograd_unavailable_reason", "transform_matrices", "frames_into_batch",
           "frames_out_of_batch", "TILE", "MIN_TILES"]

TILE = 4  # output tile side m of F(m x m, 3 x 3)
POINTS = (0, 1, -1, 2, -2)  # Lavin & Gray's interpolation points, plus the point at infinity
MIN_CHANNELS = 32  # thinner convs are too cheap for the transforms to pay off
# Fewer output tiles than this (e.g. R(2+1)D-18's res5 at 2 frames of 7x7: 8 tiles) run as the
# direct conv: the 36 GEMMs then have too few rows to amortize reading weights 4x the size of the
# direct conv's (the crossing point, found with benchmarks/winograd.py's timing, Winograd forced).
MIN_TILES = 16
_SOURCE = Path(__file__).parent / "csrc" / "winograd.cpp"


def frames_into_batch(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, T, H, W]`` -> ``[N*T, C, H, W]`` channels-last: a view of channels-last-3d memory
    (``[N, T, H, W, C]``), a copy otherwise."""
    n, c, t, h, w = x.shape
    return x.permute(0, 2, 3, 4, 1).reshape(n * t, h, w, c).permute(0, 3, 1, 2)


def frames_out_of_batch(y: torch.Tensor, frames: int) -> torch.Tensor:
    """The inverse of `frames_into_batch` for a channels-last ``[N*T, C, H, W]``: a view."""
    nt, c, h, w = y.shape
    return y.permute(0, 2, 3, 1).reshape(nt // frames, frames, h, w, c).permute(0, 4, 1, 2, 3)


def _poly(roots) -> List[Fraction]:
    """Coefficients (ascending powers) of prod (x - r)."""
    coeffs = [Fraction(1)]
    for r in roots:
        coeffs = [a - r * b for a, b in zip([Fraction(0)] + coeffs, coeffs + [Fraction(0)])]
    return coeffs


def transform_matrices(points=POINTS, kernel: int = 3) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(AT, G, BT)`` of F(m, r) by Toom-Cook on ``points`` and infinity, as float64 tensors:
    ``y = AT [(G g) * (BT d)]`` is the correlation of ``d`` (m + r - 1 values) with ``g`` (r)."""
    p = [Fraction(v) for v in points]
    a, r = len(p) + 1, kernel
    m = a - r + 1
    at = [[pi ** j for pi in p] + [Fraction(j == m - 1)] for j in range(m)]
    scale = [_poly([q for q in p if q != pi]) for pi in p]
    f = [sum(c * pi ** k for k, c in enumerate(s)) for s, pi in zip(scale, p)]  # prod_{j != i} (p_i - p_j)
    g = [[pi ** k / fi for k in range(r)] for pi, fi in zip(p, f)] + [[Fraction(k == r - 1) for k in range(r)]]
    bt = [s + [Fraction(0)] * (a - len(s)) for s in scale] + [_poly(p)]
    return tuple(torch.tensor([[float(v) for v in row] for row in mat], dtype=torch.float64) for mat in (at, g, bt))


@functools.lru_cache(maxsize=None)
def _library():
    """(ctypes library, None), or (None, why it cannot be built)."""
    lib, why = native.load_openmp_kernels("Winograd convs", _SOURCE)
    if lib is None:
        return None, why
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.zoo_winograd_input.argtypes = [ptr, ptr, i64, i64, i64, i64, i64, ptr, i64]
    lib.zoo_winograd_output.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, ptr, i64]
    return lib, None


def winograd_unavailable_reason() -> Optional[str]:
    """None when `WinogradConv` works in this process, else why it does not."""
    return _library()[1]


@functools.lru_cache(maxsize=None)
def _matrices_fp32() -> Tuple[torch.Tensor, torch.Tensor]:
    at, _, bt = transform_matrices()
    return at.float().contiguous(), bt.float().contiguous()


def _row_stride(rows: int, cols: int) -> int:
    """Floats between the 36 rows of a transformed tensor: ``rows * cols`` plus 16 or 32, so the
    rows start an odd number of cache lines apart and a tile's 36 writes fall in 36 different
    cache sets (at 4 KiB multiples, as ResNet shapes give, they would all evict one another)."""
    lines = rows * cols // 16
    return rows * cols + (16 if lines % 2 == 0 else 32)


def _winograd_conv(x: torch.Tensor, u: torch.Tensor, bias: Optional[torch.Tensor], pad: int) -> torch.Tensor:
    lib = _library()[0]
    at, bt = _matrices_fp32()
    # the kernels index raw memory: make sure of the layout they assume (no-ops on the fast path)
    x = x.contiguous(memory_format=torch.channels_last)
    u, bias = u.contiguous(), None if bias is None else bias.contiguous()
    n, c, h, w = x.shape
    ho, wo = h + 2 * pad - 2, w + 2 * pad - 2
    tiles = n * -(-ho // TILE) * -(-wo // TILE)
    a2, c_out = u.shape[0], u.shape[2]
    stride = _row_stride(tiles, c)
    v = torch.empty(a2 * stride, dtype=x.dtype).as_strided((a2, tiles, c), (stride, c, 1))
    lib.zoo_winograd_input(x.data_ptr(), v.data_ptr(), n, h, w, c, pad, bt.data_ptr(), stride)
    products = torch.bmm(v, u)
    y = torch.empty((n, c_out, ho, wo), dtype=x.dtype, memory_format=torch.channels_last)
    lib.zoo_winograd_output(products.data_ptr(), y.data_ptr(), 0 if bias is None else bias.data_ptr(),
                            n, ho, wo, c_out, at.data_ptr(), tiles * c_out)
    return y


@torch.library.custom_op("zoo::winograd_conv", mutates_args=())
def _winograd_conv_op(x: torch.Tensor, u: torch.Tensor, bias: Optional[torch.Tensor], pad: int) -> torch.Tensor:
    return _winograd_conv(x, u, bias, pad)


@_winograd_conv_op.register_fake
def _(x: torch.Tensor, u: torch.Tensor, bias: Optional[torch.Tensor], pad: int) -> torch.Tensor:
    shape = (x.shape[0], u.shape[2], x.shape[2] + 2 * pad - 2, x.shape[3] + 2 * pad - 2)
    return x.new_empty(shape).contiguous(memory_format=torch.channels_last)


class WinogradConv(nn.Module):
    """A float32 3x3 stride-1 convolution (a Conv2d, or a Conv3d with a (1, 3, 3) kernel) by
    Winograd F(4x4, 3x3), for channels-last inputs (see the module docstring); inference only.

    The weights are transformed once, in float64: ``u = G w G^T``, kept as ``[36, C_in, C_out]``.
    """

    rtol = 5e-5  # bound on largest |output error| / largest |output| (tests/test_winograd.py checks it)

    def __init__(self, conv: nn.Module):
        super().__init__()
        if not self.applies_to(conv):
            raise ValueError(f"WinogradConv takes a 3x3, stride-1, dilation-1, ungrouped float32 conv "
                             f"with padding 0 or 1 and >= {MIN_CHANNELS} channels; got {conv}")
        _, g, _ = transform_matrices()
        weight = conv.weight.detach().double().reshape(conv.out_channels, conv.in_channels, 3, 3)
        u = g @ weight @ g.T  # [C_out, C_in, 6, 6]
        self.register_buffer("u", u.permute(2, 3, 1, 0).reshape(-1, conv.in_channels, conv.out_channels)
                             .float().contiguous())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().float().clone())
        self.register_buffer("weight", weight.float().contiguous(memory_format=torch.channels_last))  # direct form
        self.pad = conv.padding[-1]
        self.dims = conv.weight.dim() - 2
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels

    @staticmethod
    def applies_to(conv: nn.Module) -> bool:
        if type(conv) is nn.Conv2d:  # exactly: a subclass may change forward
            kernel, stride, padding, dilation = conv.kernel_size, conv.stride, conv.padding, conv.dilation
        elif type(conv) is nn.Conv3d and conv.kernel_size[0] == 1 and conv.stride[0] == 1 and conv.padding[0] == 0:
            kernel, stride, padding, dilation = (v[1:] for v in (conv.kernel_size, conv.stride, conv.padding,
                                                                 conv.dilation))
        else:
            return False
        return (tuple(kernel) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
                and padding in ((0, 0), (1, 1)) and conv.groups == 1 and conv.padding_mode == "zeros"
                and conv.weight.dtype == torch.float32
                and min(conv.in_channels, conv.out_channels) >= MIN_CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels or x.dtype != torch.float32:
            raise ValueError(f"WinogradConv expects float32 input [N, {self.in_channels}, "
                             f"{'T, ' if self.dims == 3 else ''}H, W], got {x.dtype} {list(x.shape)}")
        if x.dim() == 5:  # a (1, 3, 3) Conv3d: frames run as batch
            return frames_out_of_batch(self._forward_2d(frames_into_batch(x)), x.shape[2])
        return self._forward_2d(x)

    def _forward_2d(self, x: torch.Tensor) -> torch.Tensor:
        out_h, out_w = (side + 2 * self.pad - 2 for side in x.shape[-2:])
        if x.shape[0] * -(-out_h // TILE) * -(-out_w // TILE) < MIN_TILES:
            return F.conv2d(x, self.weight, self.bias, padding=self.pad)
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and x.requires_grad):
            # the op: opaque to inductor, and with no autograd formula, backward through it raises
            return _winograd_conv_op(x, self.u, self.bias, self.pad)
        return _winograd_conv(x, self.u, self.bias, self.pad)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel=3x3, padding={self.pad}, F(4x4, 3x3)"
