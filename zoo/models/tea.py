"""TEA: Li et al., "TEA: Temporal Excitation and Aggregation for Action Recognition", CVPR 2020.

A Res2Net-50 (26w x 4s: Gao et al., TPAMI 2019) over segments (TSN), each bottleneck with two temporal
modules:

- motion excitation (`MotionExcitation`, after ``conv1``): the features squeezed 16x (1x1 conv + BN), the
  difference between each frame's and the next frame's (the latter through a depthwise 3x3 conv), zero
  for the last frame, pooled, expanded back (1x1 conv + BN), ``sigmoid - 0.5``; the input is scaled by one
  plus that (``x + x * y``);
- multiple temporal aggregation (`TemporalAggregation`, before each of the Res2Net split convs, and on the
  split passed on): a depthwise temporal conv (kernel 3, zero padded) per split, initialised to the
  identity, and to a TSM-style shift (half the channels from the next frame, half from the previous) on the
  passed-on split; with Res2Net's hierarchical adds, each later split sees a wider temporal field.

Layout as the official Phoenix1327/tea-action-recognition code (``ops/tea50_8f.py``; the repository has no
licence file, so nothing is taken from it but the structure) and as TCPNet's copy of it
(``ops/torchvision/tea50_8f.py``, whose checkpoints are the TEA weights that exist): the official files
hard-code 8 or 16 segments; here the segment count is an argument. Written from the paper and the code.

The backbone is the shared trunk (`zoo.models._trunk2d.Trunk2D` with timm's ``res2net50_26w_4s``, whose
keys are the official Res2Net's): motion excitation at each block's ``post_conv1`` point, the aggregation at
its ``splits`` point; official keys ``*.me.*`` and ``*.shifts.*`` map to those (`checkpoint_filter_fn`).

    [B, 3, T, H, W] -> [B*T, 3, H, W] -> Res2Net trunk (ME, MTA) -> GAP -> dropout -> fc -> mean over T
"""
from __future__ import annotations

import re
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import UsageError
from ._contract import VideoModel
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo, Weights
from ._loading import rename_keys, unwrap_state_dict
from ._registry import create_model, register_model
from ._segment import SegmentConsensus
from ._trunk2d import Trunk2D

__all__ = ["MotionExcitation", "TemporalAggregation", "next_frame_difference", "plug_tea", "TEA", "TEA_RENAMES",
           "checkpoint_filter_fn"]


def next_frame_difference(now: torch.Tensor, moved: torch.Tensor, frames: int) -> torch.Tensor:
    """Feature-level motion of TEA's excitation and STM's motion module: for frames ``[N*T, C, H, W]``,
    ``moved`` at t + 1 minus ``now`` at t, zero for each clip's last frame (the same shape)."""
    now, moved = VideoModel.batch_to_clips(now, frames), VideoModel.batch_to_clips(moved, frames)
    return F.pad(moved[:, 1:] - now[:, :-1], (0, 0, 0, 0, 0, 0, 0, 1)).flatten(0, 1)


class MotionExcitation(nn.Module):
    """TEA's motion excitation (official ``MEModule``): ``[N*T, C, H, W]`` -> the same, each frame's channels
    excited by its feature difference to the next frame (see the module docstring)."""

    def __init__(self, channels: int, num_segments: int, reduction: int = 16):
        super().__init__()
        if num_segments < 2:
            raise UsageError(f"motion excitation compares frames: num_segments must be at least 2, got {num_segments}")
        self.num_segments = num_segments
        squeezed = channels // reduction
        self.conv1 = nn.Conv2d(channels, squeezed, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(squeezed)
        self.conv2 = nn.Conv2d(squeezed, squeezed, 3, padding=1, groups=squeezed, bias=False)
        self.conv3 = nn.Conv2d(squeezed, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.bn1(self.conv1(x))
        diff = next_frame_difference(squeezed, self.conv2(squeezed), self.num_segments)
        y = self.bn3(self.conv3(diff.mean((2, 3), keepdim=True)))
        return x + x * (torch.sigmoid(y) - 0.5)

    def extra_repr(self) -> str:
        return f"T={self.num_segments}"


AGGREGATION_INITS = ("identity", "shift", "quarter_shift")


class TemporalAggregation(nn.Module):
    """A depthwise temporal conv (official ``ShiftModule``; kernel 3, zero padded, no bias) over the frames
    of each clip: ``[N*T, C, H, W]`` -> the same. ``init="identity"`` starts as the identity (the official
    ``fixed`` mode: centre tap 1), ``"shift"`` as a shift (the official ``shift`` mode: the first
    ``C / fold_div`` channels take the next frame, the next ``C / fold_div`` the previous one, the rest
    stay; TEA's ``fold_div`` is 2, EAN's 8), ``"quarter_shift"`` as STM's (the first quarter takes the
    previous frame, the last quarter the next, the rest stay). The weight keeps the official Conv1d's shape
    ``[C, 1, 3]`` (key ``conv.weight``)."""

    def __init__(self, channels: int, num_segments: int, init: str = "identity", fold_div: int = 2):
        super().__init__()
        if init not in AGGREGATION_INITS:
            raise UsageError(f"init must be one of {AGGREGATION_INITS}, got {init!r}")
        if channels % fold_div:
            raise UsageError(f"the aggregation splits channels in {fold_div} folds: {channels} does not divide")
        self.num_segments = num_segments
        self.conv = nn.Conv1d(channels, channels, 3, padding=1, groups=channels, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            if init == "identity":
                self.conv.weight[:, 0, 1] = 1
            elif init == "shift":
                fold = channels // fold_div
                self.conv.weight[:fold, 0, 2] = 1  # t <- t + 1
                self.conv.weight[fold:2 * fold, 0, 0] = 1  # t <- t - 1
                self.conv.weight[2 * fold:, 0, 1] = 1
            else:
                quarter = channels // 4
                self.conv.weight[:quarter, 0, 0] = 1  # t <- t - 1
                self.conv.weight[quarter:channels - quarter, 0, 1] = 1
                self.conv.weight[channels - quarter:, 0, 2] = 1  # t <- t + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        clips = VideoModel.batch_to_clips(x, self.num_segments).transpose(1, 2)  # [N, C, T, H, W]
        out = F.conv3d(clips, self.conv.weight[..., None, None], padding=(1, 0, 0), groups=x.shape[1])
        return VideoModel.frames_to_batch(out)

    def extra_repr(self) -> str:
        return f"T={self.num_segments}"


def plug_tea(trunk: Trunk2D, num_segments: int) -> None:
    """Motion excitation and multiple temporal aggregation in every block of a Res2Net trunk."""
    trunk.plug("post_conv1", lambda s, j, block: MotionExcitation(block.conv1.out_channels, num_segments))
    trunk.plug("splits", lambda s, j, block: nn.ModuleList(
        [TemporalAggregation(block.width, num_segments) for _ in range(block.scale - 1)]
        + [TemporalAggregation(block.width, num_segments, "shift")]))


class TEA(SegmentConsensus):
    """TEA (see the module docstring): TSN over a Res2Net trunk with motion excitation and aggregation.

    Args:
        num_classes: classifier outputs.
        num_segments: frames (segments) per clip, T.
        backbone: timm Res2Net name (res2net50_26w_4s as in the paper).
        dropout: dropout before the classifier.
        in_chans: input channels.
    """

    def __init__(self, num_classes: int = 400, num_segments: int = 8, backbone: str = "res2net50_26w_4s",
                 dropout: float = 0.5, in_chans: int = 3):
        super().__init__()
        if not backbone.startswith("res2net"):
            raise UsageError(f"TEA's modules sit in Res2Net blocks: backbone must be a timm Res2Net, got {backbone!r}")
        self.num_classes, self.num_segments = num_classes, num_segments
        self.backbone = Trunk2D(backbone, in_chans)
        plug_tea(self.backbone, num_segments)
        self.num_features = self.backbone.num_features
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_classifier(num_classes)


# -- official checkpoints ------------------------------------------------------------------
# the TEA modules' official names -> the trunk's points (also used by TCPNet's TEA backbone)
TEA_RENAMES = (
    (re.compile(r"\.me\."), ".post_conv1."),
    (re.compile(r"\.shifts\."), ".splits."),
)
_RENAMES = ((re.compile(r"^module\."), ""), (re.compile(r"^base_model\."), "backbone."),
            (re.compile(r"^new_fc\."), "fc."), *TEA_RENAMES)


def checkpoint_filter_fn(checkpoint, model: TEA) -> Dict[str, torch.Tensor]:
    """Map an official TEA checkpoint (TSN layout: ``module.base_model.*`` with ``me`` and ``shifts``,
    ``new_fc``), an ImageNet Res2Net (``conv1.weight`` .. ``fc.*``, the official Res2Net's and timm's keys:
    the TEA modules keep their initialisation) or a zoo one to our keys."""
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family="a TEA")
    own = model.state_dict()
    if set(state_dict) <= set(own):
        return state_dict  # already zoo layout
    image = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if "conv1.weight" in image and "layer1.0.convs.0.weight" in image:  # an ImageNet Res2Net
        mapped = {("fc." + k[3:] if k.startswith("fc.") else "backbone." + k): v for k, v in image.items()}
        return {**own, **mapped}
    return rename_keys(state_dict, _RENAMES)


# -- registered variants -------------------------------------------------------------------
_PAPER = "Li et al., TEA: Temporal Excitation and Aggregation for Action Recognition, CVPR 2020"
_RES2NET = "https://shanghuagao.oss-cn-beijing.aliyuncs.com/res2net/res2net50_26w_4s-06e79181.pth"


@register_model(ModelInfo(
    name="tea_r50", family="tea", paper=_PAPER, num_frames=8, num_segments=8, sampling="segment",
    crop_size=224, resize_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, test_views=(1, 1), num_classes=400,
    dataset="kinetics400", frames_arg="num_segments",
    # the official tea50_8f (400 classes) counted by fvcore at 8 x 224: 34.75 GFLOPs, as the paper's 35 G
    # (8 frames; 69.49 at 16 frames, the paper's 70 G)
    ref_gflops=34.75, ref_params_m=24.92,
    notes="No TEA-only weights were released (the official README: models to be retrained); TCPNet's TEA "
          "checkpoints are tcp_tea_r50. Test views: the paper's efficient protocol (1 clip, 1 centre crop)."),
    weights=(Weights("imagenet", 1000, "imagenet", (_RES2NET,), (), "Res2Net/Res2Net-PretrainedModels",
                     "ImageNet initialisation: Res2Net-50 26w x 4s (the TEA recipes' start; the official TEA "
                     "code's model_urls); the excitation and aggregation keep their initialisation; ImageNet "
                     "class names in torchvision's order; the name's 06e79181 is not a published sha256: "
                     "pinned on first use", digests=("",)),),
    bench=BenchPreset(frames=8, model_args={}), filter_fn=checkpoint_filter_fn)
def tea_r50(**kwargs) -> TEA:
    """TEA on Res2Net-50 26w x 4s: motion excitation and multiple temporal aggregation in every block."""
    return create_model(TEA, {}, kwargs)
