"""BQN: Huang & Bors, "Busy-Quiet Video Disentangling for Video Classification", WACV 2022.

Two TSM ResNets side by side (official russellllaputa/busy-quiet-net, MIT: ``src/bqn_resnet.py``,
``src/bpf.py`` and the ``src/model.py`` TSN that ``main_apex.py`` builds with ``--prefix FC``), each
segment given as 3 consecutive frames:

- the quiet pathway sees each segment's first frame (RGB);
- the busy pathway sees the segment's motion: the motion band-pass module (`MotionBandPass`) filters
  every frame with a learnable Laplacian of Gaussian (depthwise, sigma 1.1, 9x9, reflect padded,
  normalised to sum 1) and combines the segment's 3 frames with the learnable temporal filter
  ``[-1, 2, -1] / 3``;
- after every block, lateral links: the quiet pathway adds the busy one through a 1x1 conv + BN
  (``d_down``), the busy pathway adds the quiet one band-passed (sigma 0.9, 7x7, 3x3 in ``layer4``;
  the temporal filter over neighbouring segments, edge segments repeated) through a 1x1 conv + BN
  (``d_up``); both BNs start at zero, so training starts from two independent networks;
- every block of both pathways shifts 1/8 of its channels each way in time (TSM, residual branch);
- one classifier scores both pathways' pooled features; the two logits are averaged, then the
  segments' (TSN consensus).

The official code runs from 64 px up (its reflect padding needs maps larger than half a kernel: 2x2 in
``layer4``); below, zoo repeats the reflection (`reflect_pad`), so the bench network runs at 32 px.

The pathways are two shared trunks (`zoo.models._trunk2d.Trunk2D` with `zoo.models.tsm.TemporalShift`
plugged ``pre_residual``), run block by block here so the lateral links sit between their blocks. The
official layout (``base_model.path_c`` / ``path_f`` inside ``DuoPath`` blocks) maps by renaming
(`checkpoint_filter_fn`). The paper's quiet pathway is lower-resolution; the official code builds both
at full resolution and width, as here.

    [B, 3, T*3, H, W] -> quiet: first frames [B*T, 3, H, W]; busy: band-passed [B*T, 3, H, W]
                      -> stems -> blocks with lateral links -> GAP, dropout, fc each -> mean of the two
                      -> mean over T
"""
from __future__ import annotations

import math
import re
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import UsageError
from ._contract import VideoModel
from ._imagenet import imagenet_weights, is_torchvision, resnet_2d
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo
from ._loading import rename_keys, unwrap_state_dict
from ._registry import create_model, register_model
from ._trunk2d import Trunk2D
from .tsm import TemporalShift

__all__ = ["LaplacianOfGaussian", "TemporalBandPass", "MotionBandPass", "LateralLinks", "BQN", "checkpoint_filter_fn"]

FRAMES_PER_SEGMENT = 3  # the temporal filter's taps: each segment's frames at the input


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``x`` padded by ``pad`` on each side of its last two dimensions by reflection (as the official
    code pads). Where a map is too small for that (``pad`` >= its size: the official code fails there),
    the reflection repeats (numpy's ``reflect``), and a 1-pixel map is replicated."""
    while pad > 0:
        step = min(pad, min(x.shape[-2:]) - 1)
        if step == 0:
            return F.pad(x, (pad,) * 4, mode="replicate")
        x, pad = F.pad(x, (step,) * 4, mode="reflect"), pad - step
    return x


class LaplacianOfGaussian(nn.Module):
    """A learnable depthwise spatial filter (official ``LoG``), each channel's kernel starting as the
    Laplacian of Gaussian of ``sigma`` on a ``kernel_size`` grid, normalised to sum 1; the input padded
    by reflection (`reflect_pad`) so the map keeps its size."""

    def __init__(self, channels: int, sigma: float, kernel_size: int):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise UsageError(f"a Laplacian-of-Gaussian kernel size is odd and positive, got {kernel_size}")
        self.pad = (kernel_size - 1) // 2
        r = torch.arange(kernel_size, dtype=torch.float32) - (kernel_size - 1) / 2
        d2 = r[:, None] ** 2 + r[None, :] ** 2
        kernel = (-1 / (math.pi * sigma ** 4)) * (1 - d2 / (2 * sigma ** 2)) * torch.exp(-d2 / (2 * sigma ** 2))
        kernel = kernel / kernel.sum()
        self.weight = nn.Parameter(kernel.expand(channels, 1, kernel_size, kernel_size).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(reflect_pad(x, self.pad), self.weight, groups=x.shape[1])


class TemporalBandPass(nn.Module):
    """The learnable depthwise temporal filter (official ``LO``), starting as ``[-1, 2, -1] / 3`` per channel
    (weight ``[C, 1, 3]``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter((torch.tensor([-1.0, 2.0, -1.0]) / 3).expand(channels, 1, 3).clone())

    def forward(self, x: torch.Tensor, stride: int) -> torch.Tensor:
        """``x`` ``[N, C, L, H, W]`` (L frames of each clip, already padded as needed) -> ``[N, C, L', H, W]``."""
        return F.conv3d(x, self.weight[..., None, None], stride=(stride, 1, 1), groups=x.shape[1])


class MotionBandPass(nn.Module):
    """The motion band-pass module (official ``MotionBandPassFilter``): ``conv_s`` (`LaplacianOfGaussian`) on
    every frame, then ``conv_t`` (`TemporalBandPass`) over time. ``per_segment=True`` (the input module):
    ``[N*T*3, C, H, W]`` (each segment's 3 frames) -> ``[N*T, C, H, W]``, the filter over each segment's
    frames; otherwise ``[N*T, C, H, W]`` -> the same, the filter over neighbouring segments, the first and
    last segments repeated at the edges."""

    def __init__(self, channels: int, num_segments: int, sigma: float, kernel_size: int, per_segment: bool = False):
        super().__init__()
        self.num_segments, self.per_segment = num_segments, per_segment
        self.conv_s = LaplacianOfGaussian(channels, sigma, kernel_size)
        self.conv_t = TemporalBandPass(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_s(x)
        frames = self.num_segments * (FRAMES_PER_SEGMENT if self.per_segment else 1)
        clips = VideoModel.batch_to_clips(x, frames).transpose(1, 2)  # [N, C, L, H, W]
        if self.per_segment:
            out = self.conv_t(clips, FRAMES_PER_SEGMENT)
        else:
            out = self.conv_t(torch.cat([clips[:, :, :1], clips, clips[:, :, -1:]], 2), 1)
        return VideoModel.frames_to_batch(out)

    def extra_repr(self) -> str:
        return f"T={self.num_segments}, per_segment={self.per_segment}"


def _conv_bn(channels: int) -> nn.Sequential:
    """1x1 conv + BN, the BN at zero: a link that starts silent."""
    link = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
    nn.init.kaiming_normal_(link[0].weight, mode="fan_out", nonlinearity="relu")
    nn.init.zeros_(link[1].weight)
    nn.init.zeros_(link[1].bias)
    link[1].weight.zero_init = link[1].bias.zero_init = True  # (read by tests that fill weights at random)
    return link


class LateralLinks(nn.Module):
    """The links after one block (official ``DuoPath``'s ``lateral_c``): ``(quiet, busy)`` ->
    ``(quiet + d_down(busy), busy + d_up(mbpf(quiet)))``."""

    def __init__(self, channels: int, num_segments: int, sigma: float, kernel_size: int):
        super().__init__()
        self.mbpf = MotionBandPass(channels, num_segments, sigma, kernel_size)
        self.d_up = _conv_bn(channels)
        self.d_down = _conv_bn(channels)

    def forward(self, quiet: torch.Tensor, busy: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        band = self.mbpf(quiet)
        return quiet + self.d_down(busy), self.d_up(band) + busy


LATERAL_KERNELS = (7, 7, 7, 3)  # the lateral band-pass kernel size per stage (official _make_layer)


class BQN(VideoModel):
    """BQN (see the module docstring): input ``[B, 3, T*3, H, W]``, each segment's 3 consecutive frames.

    Args:
        num_classes: classifier outputs.
        num_segments: segments per clip, T.
        backbone: timm ResNet name of both pathways (resnet50 as released).
        shift_div: 1/shift_div of each block's channels move each way in time (TSM).
        lateral_kernels: the lateral band-pass kernel size per stage (the official 7, 7, 7, 3).
        dropout: dropout before the classifier.
    """

    fc_std = 0.001  # the official ResNet's classifier initialisation

    def __init__(self, num_classes: int = 400, num_segments: int = 16, backbone: str = "resnet50",
                 shift_div: int = 8, lateral_kernels: Sequence[int] = LATERAL_KERNELS, dropout: float = 0.5):
        super().__init__()
        if num_segments < 1:
            raise UsageError(f"num_segments must be positive, got {num_segments}")
        if len(lateral_kernels) != 4:
            raise UsageError(f"lateral_kernels are 4 kernel sizes, one per stage, got {tuple(lateral_kernels)}")
        self.num_classes, self.num_segments = num_classes, num_segments
        self.mbpf1 = MotionBandPass(3, num_segments, sigma=1.1, kernel_size=9, per_segment=True)
        self.quiet, self.busy = Trunk2D(backbone), Trunk2D(backbone)
        for trunk in (self.quiet, self.busy):
            trunk.plug("pre_residual", lambda s, j, block: TemporalShift(num_segments, shift_div))
        self.laterals = nn.ModuleList(
            nn.ModuleList(LateralLinks(block.out_channels, num_segments, 0.9, lateral_kernels[s]) for block in stage)
            for s, stage in enumerate(self.quiet.stages))
        self.num_features = self.quiet.num_features
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_classifier(num_classes)

    @property
    def num_frames(self) -> int:
        return self.num_segments * FRAMES_PER_SEGMENT

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T*3, H, W]`` -> pooled features of each segment and pathway ``[B, T, 2, D]`` (quiet, busy)."""
        frames = self.clip_frames(x)  # [B*T*3, 3, H, W]
        quiet = frames.view(-1, FRAMES_PER_SEGMENT, *frames.shape[1:])[:, 0]
        quiet, busy = self.quiet.stem(quiet), self.busy.stem(self.mbpf1(frames))
        for quiet_stage, busy_stage, links in zip(self.quiet.stages, self.busy.stages, self.laterals):
            for quiet_block, busy_block, link in zip(quiet_stage, busy_stage, links):
                quiet, busy = link(quiet_block(quiet), busy_block(busy))
        pooled = torch.stack([quiet.mean((2, 3)), busy.mean((2, 3))], 1)  # [B*T, 2, D]
        return pooled.view(-1, self.num_segments, 2, pooled.shape[-1])

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``[B, T, 2, D]`` -> logits ``[B, K]``: both pathways scored, averaged, then the segments'."""
        if pre_logits:
            return features.mean((1, 2))
        return self.fc(self.dropout(features)).mean(2).mean(1)


# -- official checkpoints ------------------------------------------------------------------
_RENAMES = (
    (re.compile(r"^module\."), ""),
    (re.compile(r"^base_model\."), ""),
    (re.compile(r"^conv1\."), "quiet.conv1."),
    (re.compile(r"^bn1\."), "quiet.bn1."),
    (re.compile(r"^d_conv1\."), "busy.conv1."),
    (re.compile(r"^d_bn1\."), "busy.bn1."),
    (re.compile(r"^layer(\d)\.(\d+)\.path_c\."), r"quiet.layer\1.\2."),
    (re.compile(r"^layer(\d)\.(\d+)\.path_f\."), r"busy.layer\1.\2."),
    (re.compile(r"^layer(\d)\.(\d+)\.(mbpf|d_up|d_down)\."), lambda m: f"laterals.{int(m[1]) - 1}.{m[2]}.{m[3]}."),
)


def checkpoint_filter_fn(checkpoint, model: BQN) -> Dict[str, torch.Tensor]:
    """Map an official BQN checkpoint (TSN layout ``module.base_model.*``: ``conv1`` / ``d_conv1`` stems,
    ``layerX.Y.path_c`` / ``path_f`` blocks with ``mbpf``, ``d_up``, ``d_down``, ``fc``), torchvision's
    ImageNet ResNet (into both pathways: the band-pass filters and links keep their initialisation) or a
    zoo one to our keys."""
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family="a BQN")
    own = model.state_dict()
    if set(state_dict) <= set(own):
        return state_dict  # already zoo layout
    if is_torchvision(state_dict):
        both = resnet_2d(state_dict, own, "quiet.", "fc.")
        return {**both, **{k: v for k, v in resnet_2d(state_dict, own, "busy.", "fc.").items()
                           if k.startswith("busy.")}}
    return rename_keys(state_dict, _RENAMES)


# -- registered variants -------------------------------------------------------------------
_PAPER = "Huang & Bors, Busy-Quiet Video Disentangling for Video Classification, WACV 2022"


@register_model(ModelInfo(
    name="bqn_r50", family="bqn", paper=_PAPER, num_frames=16 * FRAMES_PER_SEGMENT, num_segments=16,
    frames_per_segment=FRAMES_PER_SEGMENT, sampling="segment", crop_size=256, resize_size=256,
    segment_clips="dense_sample", mean=IMAGENET_MEAN, std=IMAGENET_STD, test_views=(10, 3), num_classes=400,
    dataset="kinetics400",
    frames_arg="num_segments",
    # the official resnet50(num_segments=16, data_length=3, num_classes=400) counted by fvcore at
    # [16, 9, 256, 256] (its TSN input) in the parity environment: 316.21 GFLOPs (zoo: 316.20)
    ref_gflops=316.21, ref_params_m=88.68,
    notes="No weights were released (the official README: 'Coming soon'; the models are being re-trained). "
          "The Kinetics recipe: 16 segments of 3 consecutive frames from TSM's dense windows (--dense_sample, "
          "training included), 10 clips x 3 crops of 256 at test (full resolution)."),
    weights=(imagenet_weights("resnet50", "ImageNet initialisation of both pathways (the official code loads a "
                                          "two-ResNet ImageNet file it does not publish); the band-pass filters "
                                          "and lateral links keep their initialisation; ImageNet class names in "
                                          "torchvision's order"),),
    # 8 segments of 3 frames (at 32 px, layer3's and layer4's maps are smaller than the official code's
    # reflect padding allows: see reflect_pad)
    bench=BenchPreset(frames=8 * FRAMES_PER_SEGMENT, model_args={"backbone": "resnet18"}),
    filter_fn=checkpoint_filter_fn)
def bqn_r50(**kwargs) -> BQN:
    """BQN on two TSM ResNet-50 pathways (busy and quiet) with band-passed lateral links."""
    return create_model(BQN, {}, kwargs)
