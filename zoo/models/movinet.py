"""MoViNet: mobile video networks, as clips (base) or as a causal stream, frame by frame.

Kondratyuk et al., "MoViNets: Mobile Video Networks for Efficient Video Recognition", CVPR 2021.
Layer for layer as the official TensorFlow code (TensorFlow Model Garden,
``official/projects/movinet/modeling/movinet.py``, ``movinet_layers.py``, ``movinet_model.py``;
Apache-2.0), architectures A0 to A5:

    [B, 3, T, H, W] (RGB in [0, 1]) -> stem: conv 1x3x3 /1,2,2 -> BN -> act
      -> 5 stages of mobile bottlenecks (searched kernel sizes 1x3x3, 1x5x5, 3x3x3, 5x3x3 and
         widths), spatial stride 2 on the first block of stages 1, 2, 3 and 5, never in time
      -> project 1x1x1 -> BN -> act -> global average over T, H, W
      -> 1x1x1 (2048, bias) -> swish -> dropout -> 1x1x1 classifier (bias)

    block: expand 1x1x1 -> BN -> act -> depthwise kt x k x k (spatial stride) -> BN -> act
           -> squeeze-excitation -> project 1x1x1 -> BN -> x a learned scalar (zero at start)
           + skip (identity, or [avg-pool 1x3x3 /1,2,2] -> 1x1x1 -> BN where the shape changes)

Two forms of each architecture, as released:

- base (``movinet_a0`` ...): 3D convs with "same" padding in time, swish, a squeeze-excitation
  over the whole clip (sigmoid gate);
- stream (``movinet_a0_stream`` ...): causal. Every temporal conv is (2+1)D (a k x k spatial
  conv, BN, act, then a kt x 1 x 1 temporal conv, BN, act) padded with the kt - 1 previous frames
  (zeros before the first); the squeeze-excitation pools each frame spatially and cumulatively
  over the frames so far (both concatenated, 2x channels; A3-A5 add a learned sinusoidal position
  code); hard swish and a hard-sigmoid gate; the head averages every frame seen so far. So the
  logits after frame t depend on frames 1..t only, and `MoViNetStream` computes them one frame at
  a time from a state (the temporal convs' last kt - 1 inputs, the pooling sums, the frame count):
  streaming T frames gives, frame by frame, the model's logits on the T-frame clips 1..t.

TensorFlow's "same" padding is asymmetric where a stride of 2 meets an even size (the extra row
and column go at the end); its average pooling leaves the padding out of the count. Both are
reproduced here, so zoo matches the official code at any input size. `checkpoint_filter_fn`
loads the Model Garden's released checkpoints once converted to a state dict of TensorFlow
variable names (`zoo.models.movinet.read_tf_checkpoint`, which needs TensorFlow at conversion time
only); the channels-last kernels are transposed.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import BadCheckpoint, UsageError
from ._checkpoint_io import register_checkpoint_reader
from ._checks import check_input
from ._contract import VideoModel
from ._info import BenchPreset, ModelInfo, Result, Weights
from ._registry import create_model, register_model

__all__ = ["MoViNet", "MoViNetStream", "StreamStep", "MoViNetBlock", "SqueezeExcite", "ARCHS", "checkpoint_filter_fn",
           "read_tf_checkpoint", "read_tf_tarball", "to_tf_layout", "tf_same_pads"]

_KERNELS = {"13": (1, 3, 3), "15": (1, 5, 5), "33": (3, 3, 3), "53": (5, 3, 3)}
# stem width; stages as (output width, blocks as (expanded width, kernel, spatial stride)); project width.
# The searched architectures of the paper's Table 8, as the official ``BLOCK_SPECS``.
ARCHS = {
    "a0": (8, (
        (8, ((24, "15", 2),)),
        (32, ((80, "33", 2), (80, "33", 1), (80, "33", 1))),
        (56, ((184, "53", 2), (112, "33", 1), (184, "33", 1))),
        (56, ((184, "53", 1), (184, "33", 1), (184, "33", 1), (184, "33", 1))),
        (104, ((384, "53", 2), (280, "15", 1), (280, "15", 1), (344, "15", 1))),
    ), 480),
    "a1": (16, (
        (16, ((40, "15", 2), (40, "33", 1))),
        (40, ((96, "33", 2), (120, "33", 1), (96, "33", 1), (96, "33", 1))),
        (64, ((216, "53", 2), (128, "33", 1), (216, "33", 1), (168, "33", 1), (216, "33", 1))),
        (64, ((216, "53", 1), (216, "33", 1), (216, "33", 1), (128, "33", 1), (128, "15", 1), (216, "33", 1))),
        (136, ((456, "53", 2), (360, "15", 1), (360, "15", 1), (360, "15", 1), (456, "15", 1), (456, "33", 1),
               (544, "13", 1))),
    ), 600),
    "a2": (16, (
        (16, ((40, "15", 2), (40, "33", 1), (64, "33", 1))),
        (40, ((96, "33", 2), (120, "33", 1), (96, "33", 1), (96, "33", 1), (120, "33", 1))),
        (72, ((240, "53", 2), (160, "33", 1), (240, "33", 1), (192, "33", 1), (240, "33", 1))),
        (72, ((240, "53", 1), (240, "33", 1), (240, "33", 1), (240, "33", 1), (144, "15", 1), (240, "33", 1))),
        (144, ((480, "53", 2), (384, "15", 1), (384, "15", 1), (480, "15", 1), (480, "15", 1), (480, "33", 1),
               (576, "13", 1))),
    ), 640),
    "a3": (16, (
        (16, ((40, "15", 2), (40, "33", 1), (64, "33", 1), (40, "33", 1))),
        (48, ((112, "33", 2), (144, "33", 1), (112, "33", 1), (112, "15", 1), (144, "33", 1), (144, "33", 1))),
        (80, ((240, "53", 2), (152, "33", 1), (240, "33", 1), (192, "33", 1), (240, "33", 1))),
        (88, ((264, "53", 1), (264, "33", 1), (264, "33", 1), (264, "33", 1), (160, "15", 1), (264, "33", 1),
              (264, "33", 1), (264, "33", 1))),
        (168, ((560, "53", 2), (448, "15", 1), (448, "15", 1), (560, "15", 1), (560, "15", 1), (560, "33", 1),
               (448, "15", 1), (448, "15", 1), (560, "33", 1), (672, "13", 1))),
    ), 744),
    "a4": (24, (
        (24, ((64, "15", 2), (64, "33", 1), (96, "33", 1), (64, "33", 1), (96, "33", 1), (64, "33", 1))),
        (56, ((168, "33", 2), (168, "33", 1), (136, "33", 1), (136, "33", 1), (168, "33", 1), (168, "33", 1),
              (168, "33", 1), (136, "15", 1), (136, "33", 1))),
        (96, ((320, "53", 2), (160, "33", 1), (320, "33", 1), (192, "33", 1), (320, "33", 1), (160, "33", 1),
              (320, "33", 1), (256, "33", 1), (320, "33", 1))),
        (96, ((320, "53", 1), (320, "33", 1), (320, "33", 1), (320, "33", 1), (192, "15", 1), (320, "33", 1),
              (320, "33", 1), (192, "33", 1), (320, "33", 1), (320, "33", 1))),
        (192, ((640, "53", 2), (512, "15", 1), (512, "15", 1), (640, "15", 1), (640, "15", 1), (640, "33", 1),
               (512, "15", 1), (512, "15", 1), (640, "15", 1), (768, "15", 1), (640, "15", 1), (640, "33", 1),
               (768, "33", 1))),
    ), 856),
    "a5": (24, (
        (24, ((64, "15", 2), (64, "15", 1), (96, "33", 1), (64, "33", 1), (96, "33", 1), (64, "33", 1))),
        (64, ((192, "53", 2), (152, "33", 1), (152, "33", 1), (152, "33", 1), (192, "33", 1), (192, "33", 1),
              (192, "33", 1), (152, "33", 1), (152, "33", 1), (192, "33", 1), (192, "33", 1))),
        (112, ((376, "53", 2), (224, "33", 1), (376, "33", 1), (376, "33", 1), (296, "33", 1), (376, "33", 1),
               (224, "33", 1), (376, "33", 1), (376, "33", 1), (296, "33", 1), (376, "33", 1), (376, "33", 1),
               (376, "33", 1))),
        (120, ((376, "53", 1), (376, "33", 1), (376, "33", 1), (376, "33", 1), (224, "15", 1), (376, "33", 1),
               (376, "33", 1), (224, "33", 1), (376, "33", 1), (376, "33", 1), (376, "33", 1))),
        (224, ((744, "53", 2), (744, "33", 1), (600, "15", 1), (600, "15", 1), (744, "15", 1), (744, "15", 1),
               (744, "33", 1), (896, "15", 1), (600, "15", 1), (600, "15", 1), (896, "15", 1), (744, "15", 1),
               (744, "33", 1), (896, "15", 1), (600, "15", 1), (600, "15", 1), (744, "15", 1), (744, "33", 1))),
    ), 992),
}
HEAD_WIDTH = 2048
BN_EPS = 1e-3  # Keras BatchNormalization(epsilon=0.001) as the official code builds it


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x + 3.0) * 0.16667  # the official hard_sigmoid's constant, not 1/6


ACTIVATIONS = {"swish": F.silu, "hard_swish": F.hardswish, "sigmoid": torch.sigmoid, "hard_sigmoid": _hard_sigmoid}


def tf_same_pads(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TensorFlow's "same" padding of one spatial dimension: (before, after), the odd pixel after."""
    total = max(kernel - ((size - 1) % stride + 1), 0)
    return total // 2, total - total // 2


def _spatial_pads(x: torch.Tensor, kernel: Tuple[int, int], stride: int) -> Tuple[int, int, int, int]:
    """`F.pad` widths (W then H) of TensorFlow's "same" padding on ``x``'s last two dims."""
    h, w = tf_same_pads(x.shape[-2], kernel[0], stride), tf_same_pads(x.shape[-1], kernel[1], stride)
    return (*w, *h)


class SamePad(nn.Module):
    """TensorFlow's "same" spatial padding before a strided conv (asymmetric where the stride meets
    an even size), so the conv itself is a plain padding-free ``nn.Conv3d`` that the fast path can
    rewrite. Stride-1 convs (odd kernels) pad symmetrically in the conv instead."""

    def __init__(self, kernel: Tuple[int, int], stride: int):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, _spatial_pads(x, self.kernel, self.stride))


def _conv(in_channels: int, out_channels: int, kernel: Tuple[int, int, int], stride: int = 1, groups: int = 1,
          temporal_pad: int = 0) -> Tuple[Optional[SamePad], nn.Conv3d]:
    """A conv with TensorFlow's "same" padding in space and ``temporal_pad`` zero frames each side in
    time (0 in a causal model: the caller prepends the past): (its `SamePad` or None, the conv)."""
    pad = SamePad(kernel[1:], stride) if stride > 1 else None
    spatial = (0, 0) if pad else (kernel[1] // 2, kernel[2] // 2)
    return pad, nn.Conv3d(in_channels, out_channels, kernel, stride=(1, stride, stride),
                          padding=(temporal_pad, *spatial), groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS, momentum=0.01)


class ConvBNAct(nn.Module):
    """A conv without temporal extent (1 x k x k), BN, activation: the official ``ConvBlock``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Tuple[int, int, int] = (1, 1, 1),
                 stride: int = 1, groups: int = 1, act: Optional[str] = None):
        super().__init__()
        self.pad, self.conv = _conv(in_channels, out_channels, kernel, stride, groups)
        self.bn = _bn(out_channels)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x if self.pad is None else self.pad(x)))
        return ACTIVATIONS[self.act](x) if self.act else x


def _with_past(x: torch.Tensor, past: Optional[torch.Tensor], frames: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``x`` [B, C, T, H, W] preceded by ``past`` (the ``frames`` inputs before it; zeros at the
    start of a stream), and the last ``frames`` frames of the result: the next call's past."""
    if past is None:
        past = x.new_zeros(x.shape[0], x.shape[1], frames, *x.shape[3:])
    x = torch.cat([past, x], 2)
    return x, x[:, :, x.shape[2] - frames:]


class FeatureConv(nn.Module):
    """A conv of temporal extent kt, BN, activation (the official ``StreamConvBlock``): one 3D
    conv ("3d"), or a 1 x k x k conv, BN, act, then a kt x 1 x 1 conv, BN, act ("2plus1d"). In a
    causal model the kt - 1 frames before the clip come from ``past`` (the temporal conv's input)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Tuple[int, int, int], stride: int,
                 depthwise: bool, act: str, conv_type: str, causal: bool):
        super().__init__()
        kt = kernel[0]
        groups = in_channels if depthwise else 1
        self.causal, self.act, self.past_frames = causal, act, kt - 1
        split = conv_type == "2plus1d" and kt > 1
        pad = 0 if causal else (kt - 1) // 2
        self.pad, self.conv = _conv(in_channels, out_channels, (1, *kernel[1:]) if split else kernel, stride, groups,
                                    temporal_pad=0 if split else pad)
        self.bn = _bn(out_channels)
        self.conv_temporal = self.bn_temporal = None
        if split:
            self.conv_temporal = nn.Conv3d(out_channels, out_channels, (kt, 1, 1), padding=(pad, 0, 0),
                                           groups=out_channels if depthwise else 1, bias=False)
            self.bn_temporal = _bn(out_channels)

    def forward(self, x: torch.Tensor, past: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        act, new_past = ACTIVATIONS[self.act], None
        if self.causal and self.past_frames and self.conv_temporal is None:
            x, new_past = _with_past(x, past, self.past_frames)
        x = act(self.bn(self.conv(x if self.pad is None else self.pad(x))))
        if self.conv_temporal is not None:
            if self.causal:
                x, new_past = _with_past(x, past, self.past_frames)
            x = act(self.bn_temporal(self.conv_temporal(x)))
        return x, new_past


def _running_mean(x: torch.Tensor, total: Optional[torch.Tensor], seen: torch.Tensor, causal: bool
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean over time of ``x`` [B, C, T, 1, 1] continuing a stream that has summed ``total`` over
    ``seen`` frames: per frame, the mean of every frame up to it (``causal``), or one mean of all
    frames so far. Returns (means, the new total)."""
    if total is None:
        total = torch.zeros_like(x[:, :, :1])
    if causal:
        sums = torch.cumsum(x, 2) + total
        counts = seen + torch.arange(1, x.shape[2] + 1, device=x.device, dtype=x.dtype)
        return sums / counts.view(1, 1, -1, 1, 1), sums[:, :, -1:]
    sums = x.sum(2, keepdim=True) + total
    return sums / (seen + x.shape[2]), sums


def position_code(start: torch.Tensor, frames: int, channels: int, dtype=torch.float32) -> torch.Tensor:
    """The official sinusoidal code ``[1, channels, frames, 1, 1]`` of positions ``start`` ..
    ``start + frames - 1``: the sines of the even channel indices' angles, then the cosines of the
    odd ones' (not interleaved)."""
    positions = (start + torch.arange(frames, dtype=dtype, device=start.device))[:, None]
    idx = torch.arange(channels, device=start.device)
    angles = 1.0 / torch.pow(10000.0, (2 * (idx // 2)).to(dtype) / channels)
    radians = positions * angles[None]
    code = torch.cat([torch.sin(radians[:, 0::2]), torch.cos(radians[:, 1::2])], 1)  # [frames, channels]
    return code.t().reshape(1, channels, frames, 1, 1)


class SqueezeExcite(nn.Module):
    """The official ``StreamSqueezeExcitation``. ``"3d"``: the mean over time and space of the
    clip (causal: per frame, over the frames so far); ``"2plus3d"``: each frame's spatial mean
    and that mean's causal running mean, concatenated [running | frame]. Then an optional learned
    position code (scaled by a scalar that starts at zero), a 1x1x1 reduction with bias and act, a
    1x1x1 expansion with bias and the gate, and the input scaled by the gate."""

    def __init__(self, channels: int, hidden: int, se_type: str, act: str, gate: str, causal: bool,
                 position_code: bool = False):
        super().__init__()
        self.se_type, self.act, self.gate, self.causal = se_type, act, gate, causal
        pooled = channels * (2 if se_type == "2plus3d" else 1)
        self.pos_scale = nn.Parameter(torch.zeros(())) if position_code else None
        self.reduce = nn.Conv3d(pooled, hidden, 1)
        self.expand = nn.Conv3d(hidden, channels, 1)

    def forward(self, x: torch.Tensor, total: Optional[torch.Tensor], seen: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        frames = x.mean((3, 4), keepdim=True)  # [B, C, T, 1, 1]
        pooled, total = _running_mean(frames, total, seen, self.causal)
        if self.se_type == "2plus3d":
            pooled = torch.cat([pooled.expand_as(frames), frames], 1)
        if self.pos_scale is not None:
            pooled = pooled + self.pos_scale * position_code(seen, pooled.shape[2], pooled.shape[1], pooled.dtype)
        s = ACTIVATIONS[self.gate](self.expand(ACTIVATIONS[self.act](self.reduce(pooled))))
        return x * s, total


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3x3 stride-2 average pool, "same" padding, the padding left out of each count."""
    pads = _spatial_pads(x, (3, 3), 2)
    ones = F.pad(x.new_ones(1, 1, 1, *x.shape[3:]), pads)
    return F.avg_pool3d(F.pad(x, pads), (1, 3, 3), (1, 2, 2)) / F.avg_pool3d(ones, (1, 3, 3), (1, 2, 2))


class Skip(nn.Module):
    """The shortcut where a block changes shape: [TensorFlow-style avg-pool 1x3x3 /1,2,2] -> 1x1x1 conv -> BN."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool):
        super().__init__()
        self.downsample = downsample
        self.proj = ConvBNAct(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(_tf_avg_pool(x) if self.downsample else x)


class MoViNetBlock(nn.Module):
    """The mobile bottleneck (official ``MovinetBlock``): see the module docstring. ``forward``
    takes and returns the block's stream state: (the feature conv's past frames, the
    squeeze-excitation's pooled sum)."""

    def __init__(self, in_channels: int, out_channels: int, expand: int, kernel: Tuple[int, int, int], stride: int,
                 *, causal: bool, conv_type: str, se_type: str, act: str, gate: str, position_code: bool,
                 drop_path: float = 0.0):
        super().__init__()
        self.expand = ConvBNAct(in_channels, expand, act=act)
        self.feature = FeatureConv(expand, expand, kernel, stride, True, act, conv_type, causal)
        from timm.layers import DropPath, make_divisible  # not at import: `zoo list` imports no timm

        hidden = make_divisible(0.25 * expand * (2 if se_type == "2plus3d" else 1), 8)
        self.se = SqueezeExcite(expand, hidden, se_type, act, gate, causal, position_code)
        self.project = ConvBNAct(expand, out_channels)
        self.scale = nn.Parameter(torch.zeros(()))  # the official ReZero scalar
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.skip = Skip(in_channels, out_channels, stride > 1) if in_channels != out_channels or stride > 1 else None

    def forward(self, x: torch.Tensor, past: Optional[torch.Tensor], total: Optional[torch.Tensor],
                seen: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        y, past = self.feature(self.expand(x), past)
        y, total = self.se(y, total, seen)
        y = self.drop_path(self.project(y) * self.scale)
        return y + (x if self.skip is None else self.skip(x)), past, total


class MoViNet(VideoModel):
    """MoViNet (Kondratyuk et al., CVPR 2021) on one ``[B, 3, T, H, W]`` clip, RGB in [0, 1].

    Args:
        arch: ``"a0"`` .. ``"a5"`` (`ARCHS`).
        num_classes: classifier outputs (600: the released Kinetics-600 models).
        causal: the stream form: causal (2+1)D temporal convs, causal squeeze-excitation
            ("2plus3d"), hard swish and hard-sigmoid gates (`MoViNetStream` runs it frame by frame).
            False: the base form (3D convs, "same" in time, a clip-wide squeeze-excitation, swish).
        position_code: the stream form's learned position code in the squeeze-excitations (the
            released A3-A5 streams have it; default: those).
        dropout: before the classifier (the registered models: 0.5 as the official base configs, 0.2 as the
            official stream config).
        drop_path_rate: stochastic depth, rising linearly over the blocks to this rate (0.2 in the
            official Kinetics runs).
    """

    fc_std = 0.01  # the official classifier init: N(0, 0.01)

    def __init__(self, arch: str = "a0", num_classes: int = 600, causal: bool = False,
                 position_code: Optional[bool] = None, dropout: float = 0.2, drop_path_rate: float = 0.0):
        super().__init__()
        if arch not in ARCHS:
            raise UsageError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
        stem_width, stages, project = ARCHS[arch]
        self.arch, self.causal, self.num_classes = arch, causal, num_classes
        if position_code is None:
            position_code = causal and arch in ("a3", "a4", "a5")
        if position_code and not causal:
            raise UsageError("position_code needs the causal (stream) form: causal=True")
        conv_type, se_type = ("2plus1d", "2plus3d") if causal else ("3d", "3d")
        act, gate = ("hard_swish", "hard_sigmoid") if causal else ("swish", "sigmoid")
        self.stem = FeatureConv(3, stem_width, (1, 3, 3), 2, False, act, conv_type, causal)
        layers, width = [], stem_width
        count = sum(len(blocks) for _, blocks in stages)
        for out, blocks in stages:
            for expand, kernel, stride in blocks:
                layers.append(MoViNetBlock(width, out, expand, _KERNELS[kernel], stride, causal=causal,
                                           conv_type=conv_type, se_type=se_type, act=act, gate=gate,
                                           position_code=position_code,
                                           drop_path=drop_path_rate * (len(layers) + 1) / count))
                width = out
        self.blocks = nn.ModuleList(layers)
        self.head_project = ConvBNAct(width, project, act=act)
        self.head_hidden = nn.Linear(project, HEAD_WIDTH)
        self.num_features = HEAD_WIDTH
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_classifier(num_classes)
        _init_weights(self)

    @property
    def online(self) -> bool:
        """The stream form predicts frame by frame (`stream`)."""
        return self.causal

    # -- clips ------------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> the projected map ``[B, P, T, H/32, W/32]`` before the pooling."""
        check_input(x, model=type(self).__name__)
        return self._trunk(x, None)[0]

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average, the 2048-wide layer and swish, dropout, ``fc``."""
        return self._classify(features.mean((2, 3, 4)), pre_logits)

    def _classify(self, pooled: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = F.silu(self.head_hidden(pooled))  # the official classifier head: swish in both forms
        return x if pre_logits else self.fc(self.dropout(x))

    def _trunk(self, x: torch.Tensor, state: Optional[Dict[str, torch.Tensor]]
               ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        seen = state["frames"] if state else x.new_zeros(1)
        new: Dict[str, torch.Tensor] = {}
        x, _ = self.stem(x)
        for i, block in enumerate(self.blocks):
            x, past, total = block(x, state.get(f"block{i}.past") if state else None,
                                   state.get(f"block{i}.pool") if state else None, seen)
            if past is not None:
                new[f"block{i}.past"] = past
            new[f"block{i}.pool"] = total
        return self.head_project(x), new

    # -- streams ----------------------------------------------------------------------------
    def forward_stream(self, x: torch.Tensor, state: Optional[Dict[str, torch.Tensor]] = None
                       ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The stream form on the next ``T`` frames ``[B, 3, T, H, W]`` of a stream in ``state``
        (None: a new stream): the logits of the stream so far, and the new state (see
        `MoViNetStream`; `initial_state` gives the state of a new stream as tensors)."""
        if not self.causal:
            raise UsageError(f"movinet_{self.arch} is the base form: it classifies whole clips; the stream form "
                             f"is movinet_{self.arch}_stream (causal=True)")
        check_input(x, model=type(self).__name__)
        features, new = self._trunk(x, state)
        seen = state["frames"] if state else x.new_zeros(1)
        pooled, new["head.pool"] = _running_mean(features.mean((3, 4), keepdim=True),
                                                 state.get("head.pool") if state else None, seen, causal=False)
        new["frames"] = seen + x.shape[2]
        return self._classify(pooled.flatten(1)), new

    def initial_state(self, batch: int, height: int, width: int) -> Dict[str, torch.Tensor]:
        """The state of a new stream of ``height`` x ``width`` frames, as zero tensors (the
        explicit inputs of an exported stream step)."""
        with torch.no_grad():
            frame = next(self.parameters()).new_zeros(batch, 3, 1, height, width)
            _, state = self.forward_stream(frame)
        return {k: torch.zeros_like(v) for k, v in state.items()}

    def stream(self) -> "MoViNetStream":
        """A per-frame predictor (`MoViNetStream`) of the stream form."""
        return MoViNetStream(self)

    def stream_step(self, batch: int, height: int, width: int) -> Tuple[nn.Module, Dict[str, torch.Tensor]]:
        """`StreamStep` of this stream model and the state of a new stream (see `VideoModel.stream_step`)."""
        state = self.initial_state(batch, height, width)
        return StreamStep(self, tuple(state)), state


class StreamStep(nn.Module):
    """One frame of the stream form with its state as explicit tensors (an exportable graph):
    ``forward(frame [B, 3, H, W], *state) -> (logits, *next_state)``, the state in ``names`` order."""

    def __init__(self, model: MoViNet, names: Tuple[str, ...]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, frame: torch.Tensor, *state: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        logits, new = self.model.forward_stream(frame[:, :, None], dict(zip(self.names, state)))
        return (logits, *(new[n] for n in self.names))


class MoViNetStream:
    """The stream form of a MoViNet run on a stream, one frame per call: each call costs one frame
    and returns the logits of every frame so far (the model's logits on the clip of frames 1..t).

        with model.eval().stream() as stream:
            for frame in frames:               # [B, 3, H, W], RGB in [0, 1]
                logits = stream(frame)         # [B, num_classes]

    ``reset()`` starts a new stream. The state is `state` (a dict of tensors; see
    `MoViNet.forward_stream`).
    """

    def __init__(self, model: MoViNet):
        if not model.causal:
            raise UsageError(f"MoViNetStream runs the stream form: movinet_{model.arch}_stream, not the base model")
        if model.training:
            raise UsageError("MoViNetStream runs an eval-mode model: call model.eval() first")
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Start a new stream: the next frame is the first."""
        self.state: Optional[Dict[str, torch.Tensor]] = None
        self.frames = 0

    def close(self) -> None:
        self.state = None

    def __enter__(self) -> "MoViNetStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, frame: torch.Tensor) -> torch.Tensor:
        if frame.dim() != 4 or frame.shape[1] != 3:
            raise UsageError(f"a MoViNet stream takes one frame per call, [B, 3, H, W]; got {tuple(frame.shape)}")
        with torch.no_grad():
            logits, self.state = self.model.forward_stream(frame[:, :, None], self.state)
        self.frames += 1
        return logits


def _init_weights(model: MoViNet) -> None:
    """He-normal convs (fan in, the official ``HeNormal``), zero biases, unit BN, N(0, 0.01) classifier;
    the ReZero scalars and position-code scales start at zero."""
    for m in model.modules():
        if isinstance(m, (nn.Conv3d, nn.Linear)) and m is not model.fc:
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# -- official checkpoints ------------------------------------------------------------------
def read_tf_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """The variables of a TensorFlow checkpoint (``path``: the prefix, e.g. ``ckpt-1``, or its
    directory) as ``{name: tensor}``, names as ``tf.train.list_variables`` gives them. Needs
    TensorFlow (``pip install tensorflow-cpu``) at conversion time; zoo never needs it to run a model."""
    try:
        import tensorflow as tf
    except ImportError as e:
        raise UsageError("reading a TensorFlow checkpoint needs TensorFlow, for the conversion only: pip install "
                         "tensorflow-cpu, then `zoo convert --model MODEL FILE.tar.gz OUT.pt` once and load OUT.pt; or take a "
                         "release already converted to PyTorch where one is listed: zoo weights list 'MODEL.*'") from e
    if os.path.isdir(path):
        path = tf.train.latest_checkpoint(path) or path
    reader = tf.train.load_checkpoint(path)
    return {name: torch.as_tensor(np.array(reader.get_tensor(name))) for name in reader.get_variable_to_shape_map()
            if not name.startswith(("_CHECKPOINTABLE", "save_counter", "optimizer"))}


def read_tf_tarball(fileobj) -> Dict[str, torch.Tensor]:
    """A Model Garden release (``movinet_a0_base.tar.gz``: a TensorFlow checkpoint's ``.index`` and
    ``.data-*`` files) through `read_tf_checkpoint`. Only those files are extracted, by name alone,
    into a temporary directory (no paths from the archive are followed)."""
    import tarfile
    import tempfile

    with tarfile.open(fileobj=fileobj, mode="r:gz") as tar, tempfile.TemporaryDirectory(prefix="zoo-tf-") as tmp:
        prefixes = set()
        for member in tar.getmembers():
            name = os.path.basename(member.name)
            if member.isfile() and re.fullmatch(r"[\w.-]+\.(index|data-\d+-of-\d+)", name):
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(tar.extractfile(member).read())
                prefixes.add(name[:-len(".index")] if name.endswith(".index") else name[:name.index(".data-")])
        if len(prefixes) != 1:
            raise BadCheckpoint(f"expected one TensorFlow checkpoint in the archive, found {len(prefixes)}")
        return read_tf_checkpoint(os.path.join(tmp, prefixes.pop()))


register_checkpoint_reader(".tar.gz", read_tf_tarball)


# the official variable names: model/layer_with_weights-0 (the backbone)/layer_with_weights-{i} (its stem, blocks,
# head)/<layer path>/<variable>, and model/layer_with_weights-1 (the classifier head)/<layer path>/<variable>
_TF_KEY = re.compile(r"^(?:model/)?layer_with_weights-(\d+)/(?:layer_with_weights-(\d+)/)?(.+)/([A-Za-z_]+)$")
_TF_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"  # tf.train.list_variables' names of a tf.train.Checkpoint
_TF_PARAMS = {"kernel": "weight", "depthwise_kernel": "weight", "bias": "bias", "scale": "", "gamma": "weight",
           "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
_OWNERS = {"_stem": "", "_expansion": "expand", "_feature": "feature", "_projection": "project",
           "_skip/_projection": "skip.proj", "_project": "head_project"}
_SUBLAYERS = {"_conv": "conv", "_conv_temporal": "conv_temporal", "_batch_norm": "bn",
              "_batch_norm_temporal": "bn_temporal"}
_WHOLE = {"_attention/_se_reduce/_conv": "se.reduce", "_attention/_se_expand/_conv": "se.expand",
          "_attention/_pos_encoding/_rezero": "se.pos_scale", "_mobile_bottleneck/_rezero": "scale"}
_CLASSIFIER = {"_head/_conv": "head_hidden", "_classifier/_conv": "fc"}


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _tf_name(key: str, blocks: int) -> Optional[str]:
    """Our key for one official variable name (None: not a variable of the model)."""
    m = _TF_KEY.match(key[:-len(_TF_SUFFIX)] if key.endswith(_TF_SUFFIX) else key)
    if m is None or m[4] not in _TF_PARAMS:
        return None
    outer, index, param = int(m[1]), int(m[2] or 0), _TF_PARAMS[m[4]]
    path = re.sub(r"(_conv(?:_temporal)?)/_conv$", r"\1", m[3])  # "2plus1d": a Conv2D inside each conv layer
    if outer == 1:
        layer = _CLASSIFIER.get(path)
        return _join(layer, param) if layer else None
    prefix = "stem" if index == 0 else f"blocks.{index - 1}" if index <= blocks else ""
    if path in _WHOLE:
        return _join(prefix, _WHOLE[path], param)
    owner, _, sub = path.rpartition("/")
    if owner not in _OWNERS or sub not in _SUBLAYERS:
        return None
    return _join(prefix, _OWNERS[owner], _SUBLAYERS[sub], param)


def _from_tf(value: torch.Tensor, key: str) -> torch.Tensor:
    """A TensorFlow (channels-last) kernel in our layout ``[out, in, kt, kh, kw]``: Conv3D ``[kt, kh, kw,
    in, out]``; Conv2D ``[kh, kw, in, out]`` and DepthwiseConv2D ``[kh, kw, C, 1]`` of one frame; the
    temporal DepthwiseConv2D ``[kt, 1, C, 1]`` of a "2plus1d" conv (over time x pixels)."""
    if value.dim() == 5:
        return value.permute(4, 3, 0, 1, 2)
    if "/_conv_temporal/" in key:
        return value.permute(2, 3, 0, 1).unsqueeze(-1)
    if key.split("/.ATTRIBUTES")[0].endswith("depthwise_kernel"):
        return value.permute(2, 3, 0, 1).unsqueeze(2)
    return value.permute(3, 2, 0, 1).unsqueeze(2)


def _to_tf(value: torch.Tensor, key: str, split: bool) -> torch.Tensor:
    """The inverse of `_from_tf` for one of our kernels (``split``: a "2plus1d" model's Conv2D kernels)."""
    if value.dim() == 2:  # a linear layer: the official 1x1x1 conv
        value = value[:, :, None, None, None]
    if not split:
        return value.permute(2, 3, 4, 1, 0)
    if key.endswith("conv_temporal.weight"):
        return value[..., 0].permute(2, 3, 0, 1)
    if value.shape[1] == 1 and key.endswith("feature.conv.weight"):  # depthwise
        return value[:, :, 0].permute(2, 3, 0, 1)
    return value[:, :, 0].permute(2, 3, 1, 0)


def to_tf_layout(state_dict: Dict[str, torch.Tensor], model: MoViNet) -> Dict[str, torch.Tensor]:
    """Our state dict under the official variable names, as ``tf.train.list_variables`` lists a
    checkpoint of the official model (kernels channels-last): the inverse of `checkpoint_filter_fn`."""
    split = model.causal  # the stream form's convs are "2plus1d": a Conv2D layer inside each conv layer
    owners = {v: k for k, v in _OWNERS.items() if v}
    subs = {v: k for k, v in _SUBLAYERS.items()}
    whole = {v: k for k, v in _WHOLE.items()}
    classifier = {v: k for k, v in _CLASSIFIER.items()}
    tf_params = {"weight": "kernel", "bias": "bias", "running_mean": "moving_mean", "running_var": "moving_variance"}
    out = {}
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        unit, _, rel = key.partition(".")
        if unit == "blocks":
            index, _, rel = rel.partition(".")
            outer = f"layer_with_weights-0/layer_with_weights-{int(index) + 1}"
        else:
            outer = {"stem": "layer_with_weights-0/layer_with_weights-0", "head_hidden": "layer_with_weights-1",
                     "fc": "layer_with_weights-1"}.get(unit, f"layer_with_weights-0/layer_with_weights-{len(model.blocks) + 1}")
            rel = key if unit in ("head_project", "head_hidden", "fc") else rel
        module, param = (rel, "scale") if rel in whole and rel.endswith("scale") else rel.rpartition(".")[::2]
        if module in classifier:
            path = classifier[module]
        elif module in whole:
            path = whole[module]
        else:
            owner, _, sub = module.rpartition(".")
            path = f"{'_stem' if unit == 'stem' else owners[owner]}/{subs[sub]}"
        name = param if param == "scale" else tf_params[param]
        if "_batch_norm" in path:
            name = {"kernel": "gamma", "bias": "beta"}.get(name, name)
        elif split and path.endswith(("_conv", "_conv_temporal")):
            path += "/_conv"
        if name == "kernel":
            if split and path.startswith("_feature/"):
                name = "depthwise_kernel"
            value = _to_tf(value, key, split)
        out[f"model/{outer}/{path}/{name}{_TF_SUFFIX}"] = value
    return out


# the PyTorch port (Atze00/MoViNet-pytorch, its `movinets/models.py`): blocks.b<stage>_l<layer>.<part>, each conv a
# `ConvBlock3D` holding conv_1 (the conv, "conv3d" or per-frame "conv2d", and its BN "norm") and, in the stream
# form, conv_2 (the temporal conv over time x pixels and its BN)
_PORT_BLOCK = re.compile(r"^blocks\.b(\d+)_l(\d+)\.(.+)$")
_PORT_UNITS = {"conv1.": "stem.", "conv7.": "head_project.", "classifier.0.conv_1.": "head_hidden.",
               "classifier.3.conv_1.": "fc."}
_PORT_PARTS = {"deep.": "feature.", "se.fc1.conv_1.": "se.reduce.", "se.fc2.conv_1.": "se.expand.",
               "res.0.": "skip.proj.", "res.1.": "skip.proj.", "alpha": "scale"}
_PORT_CONVS = {"conv_1.conv3d.": "conv.", "conv_1.conv2d.": "conv.", "conv_1.norm.": "bn.",
               "conv_2.conv2d.": "conv_temporal.", "conv_2.norm.": "bn_temporal.", "conv3d.": "", "conv2d.": ""}


def _swap_prefix(key: str, table: Dict[str, str]) -> str:
    """``key`` with the first prefix of ``table`` it starts with replaced (unchanged if none)."""
    theirs = next((t for t in table if key.startswith(t)), None)
    return key if theirs is None else table[theirs] + key[len(theirs):]


def _port_key(key: str, block_index: Dict[Tuple[int, int], int]) -> str:
    """Our key for one key of the PyTorch port's state dict."""
    key = _swap_prefix(key, _PORT_UNITS)
    m = _PORT_BLOCK.match(key)
    if m:
        key = f"blocks.{block_index[int(m[1]), int(m[2])]}.{_swap_prefix(m[3], _PORT_PARTS)}"
    for theirs, ours in _PORT_CONVS.items():
        if theirs in key:
            return key.replace(theirs, ours, 1)
    return key


def _from_port(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The port's state dict in our keys and shapes: its per-frame Conv2d kernels ``[out, in, kh, kw]``
    gain a time axis of 1, its temporal kernels ``[C, 1, kt, 1]`` (over time x pixels) a width of 1."""
    found = sorted({(int(m[1]), int(m[2])) for m in map(_PORT_BLOCK.match, state_dict) if m})
    block_index = {stage_layer: i for i, stage_layer in enumerate(found)}
    out = {}
    for key, value in state_dict.items():
        ours = _port_key(key, block_index)
        if value.dim() == 4:
            value = value.unsqueeze(-1) if ours.endswith("conv_temporal.weight") else value.unsqueeze(2)
        if ours in ("head_hidden.weight", "fc.weight"):
            value = value.reshape(value.shape[0], -1)  # 1x1(x1) conv kernels -> linear weights
        out[ours] = value
    return out


def checkpoint_filter_fn(checkpoint, model: MoViNet) -> Dict[str, torch.Tensor]:
    """Map an official MoViNet checkpoint, read into ``{TensorFlow variable name: tensor}``
    (`read_tf_checkpoint`; names as ``tf.train.list_variables`` gives them, ``model/`` prefixed,
    with or without ``/.ATTRIBUTES/VARIABLE_VALUE``), a state dict of the PyTorch port
    (Atze00/MoViNet-pytorch) or a zoo state dict, to our keys; the channels-last kernels are
    transposed. Names of other objects (the optimizer, the save counter) are dropped; unknown model
    weights pass through for the loader to report."""
    state_dict = checkpoint if isinstance(checkpoint, dict) else {}
    if "conv1.conv_1.norm.weight" in state_dict:
        return _from_port(state_dict)
    if not any(k.startswith(("model/", "layer_with_weights-")) for k in state_dict):
        from ._loading import unwrap_state_dict

        return unwrap_state_dict(checkpoint, family="a MoViNet")
    out = {}
    for key, value in state_dict.items():
        if key.startswith(("optimizer", "save_counter", "_CHECKPOINTABLE")):
            continue
        ours = _tf_name(key, len(model.blocks))
        param = key.replace(_TF_SUFFIX, "").rsplit("/", 1)[-1]
        if ours is None:
            out[key] = value
        else:
            out[ours] = _from_tf(value, key) if param in ("kernel", "depthwise_kernel") else value
    for key in [k for k in out if k.startswith(("head_hidden.weight", "fc.weight"))]:
        out[key] = out[key].reshape(out[key].shape[0], -1)  # 1x1x1 conv kernels -> linear weights
    return out


# -- registered variants -------------------------------------------------------------------
_PAPER = "Kondratyuk et al., MoViNets: Mobile Video Networks for Efficient Video Recognition, CVPR 2021"
_URL = "https://storage.googleapis.com/tf_model_garden/vision/movinet/"
_ZOO = "tensorflow/models official/projects/movinet/README.md (Kinetics 600)"
_SOURCE = "tensorflow/models (TensorFlow Model Garden)"
_PORT_URL = "https://github.com/Atze00/MoViNet-pytorch/raw/main/weights/"
_PORT_SOURCE = "Atze00/MoViNet-pytorch (an unofficial PyTorch port, weights converted from the official release)"
# arch: (frames, stride, crop, short side, published GFLOPs per video, (base top-1, top-5), (stream top-1, top-5));
# the clip, stride and sizes of configs/yaml/movinet_<arch>_k600_8x8.yaml's validation data (one clip, one crop)
# parameters (M) of the official Keras models with 600 classes, base and stream (their trainable variables)
_PARAMS_M = {"a0": (3.11, 3.75), "a1": (4.69, 6.45), "a2": (5.25, 7.33), "a3": (7.40, 10.99), "a4": (11.35, 18.14),
             "a5": (18.65, 31.50)}
_VARIANTS = {
    "a0": (50, 5, 172, 192, 2.7, (72.28, 90.92), (72.05, 90.63)),
    "a1": (50, 5, 172, 192, 6.0, (76.69, 93.40), (76.45, 93.25)),
    "a2": (50, 5, 224, 256, 10.0, (78.62, 94.17), (78.40, 94.05)),
    "a3": (120, 2, 256, 288, 57.0, (81.79, 95.67), (80.09, 94.84)),
    "a4": (80, 3, 290, 320, 110.0, (83.48, 96.16), (81.49, 95.66)),
    "a5": (120, 2, 320, 368, 280.0, (84.27, 96.39), (82.37, 95.79)),
}


def _register(arch: str, stream: bool) -> None:
    frames, stride, crop, short, gflops, base, streamed = _VARIANTS[arch]
    name = f"movinet_{arch}" + ("_stream" if stream else "")
    top1, top5 = streamed if stream else base
    views = f"1 clip of {frames} frames at stride {stride} (the whole 10 s video), 1 centre crop of {crop} px"
    ported = not stream or arch in ("a0", "a1", "a2")  # the port converted the base forms and the A0-A2 streams
    weights = Weights("kinetics600", 600, "kinetics600", (f"{_URL}movinet_{arch}_{'stream' if stream else 'base'}.tar.gz",),
                      (Result("kinetics600", top1, top5, views, _ZOO),), _SOURCE,
                      notes="a TensorFlow checkpoint: `zoo convert` it once (needs tensorflow-cpu), then load the "
                            "converted file" + ("; or take the tag kinetics600_pytorch, the same weights converted"
                                                if ported else ""))
    records = [weights]
    if ported:
        records.append(Weights(
            "kinetics600_pytorch", 600, "kinetics600",
            (f"{_PORT_URL}model{arch.upper()}{'_stream' if stream else ''}_statedict_v3",),
            (Result("kinetics600", top1, top5, views, f"{_ZOO}; the same weights, converted"),), _PORT_SOURCE,
            notes="an unofficial PyTorch port's conversion of the official checkpoint (no TensorFlow needed); "
                  "zoo runs the official network on it" + (" (the port's own code gates its squeeze-excitations "
                                                           "with 0.2x + 0.5, the official code with "
                                                           "relu6(x + 3) * 0.16667)" if stream else "")))
    info = ModelInfo(name=name, family="movinet", paper=_PAPER, num_frames=frames, sampling="dense",
                     sampling_rate=stride, crop_size=crop, resize_size=short, train_jitter=(short, round(short * 1.25)),
                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), test_views=(1, 1), num_classes=600,
                     dataset="kinetics600", min_size=32, ref_params_m=_PARAMS_M[arch][stream],
                     notes=("The causal stream form: (2+1)D causal temporal convs, cumulative squeeze-excitation; "
                            "predicts frame by frame (`zoo stream`). " if stream else
                            "The base form: 3D convs over the whole clip. ") +
                           f"The release's cost: {gflops:g} GFLOPs per {frames}-frame video (its own count; fvcore's "
                           f"is on the card).")

    def builder(**kwargs) -> MoViNet:
        return create_model(MoViNet, dict(arch=arch, causal=stream, dropout=0.2 if stream else 0.5), kwargs)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"MoViNet-{arch.upper()}, {'stream' if stream else 'base'} form (Kinetics-600 release)."
    # the compare bench: the A0 network of the same form (the position code kept where the release has it) at
    # 32 px, as many frames as the stride fits in a 32-frame SynthMotion clip (at most 16)
    code = {"position_code": True} if stream and arch in ("a3", "a4", "a5") else {}
    bench = BenchPreset(frames=min(16, 32 // stride), model_args=dict(arch="a0", **code))
    register_model(info, weights=tuple(records), bench=bench, filter_fn=checkpoint_filter_fn)(builder)
    globals()[name] = builder


for _arch in ARCHS:
    _register(_arch, stream=False)
    _register(_arch, stream=True)
