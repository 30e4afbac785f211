"""STM: Jiang et al., "STM: SpatioTemporal and Motion Encoding for Action Recognition", ICCV 2019.

Implemented from the paper: no official code was released. A ResNet-50 over segments (TSN), every
residual block an STM block: after the block's 1x1 reduction, two modules side by side whose outputs
are summed before the 1x1 expansion (the paper's fourth figure), no temporal reduction before the final
average of the frames' scores (its third figure):

- the channel-wise spatiotemporal module (`CSTM`): a channel-wise temporal conv (one kernel of 3
  taps per channel, over the frames of each clip, zero padded) followed by the block's 3x3 conv;
  the temporal kernels start as a shift, the first quarter of the channels ``[1, 0, 0]``, the last
  quarter ``[0, 0, 1]``, the rest ``[0, 1, 0]`` (the paper's implementation details);
- the channel-wise motion module (`CMM`): a 1x1 conv reducing the channels 16x, a channel-wise
  3x3 conv of frame t + 1 minus frame t, zero for the last frame, a 1x1 conv back to the block's width;
  its parameters start at random.

What the paper does not say, and what this code does about it: the BN and ReLU placement is the
ResNet bottleneck's (the 3x3 conv, now the CSTM, followed by its BN and ReLU; the motion branch is
added to that; the sum goes to the 1x1 expansion); the motion branch has a BN after its reduction and
none after its expansion; in a block that downsamples (its 3x3 conv strides 2), the motion branch's
output is max-pooled 2x2 (ceil mode, so odd map sizes agree with the strided conv). An early draft of
the first author's code, which circulates on GitHub, makes the same three choices.

The backbone is the shared trunk (`zoo.models._trunk2d.Trunk2D`): the CSTM replaces each block's
``conv2`` (keeping its 3x3 weight under the same key, so torchvision's ImageNet ResNet-50, the paper's
initialisation, loads as it is) and the CMM is plugged ``beside_conv2``.

    [B, 3, T, H, W] -> [B*T, 3, H, W] -> trunk (STM blocks) -> GAP -> dropout -> fc -> mean over T
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn as nn

from .._errors import UsageError
from ._imagenet import imagenet_weights, is_torchvision, resnet_2d
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo
from ._loading import unwrap_state_dict
from ._registry import create_model, register_model
from ._segment import SegmentConsensus
from ._trunk2d import Trunk2D
from .tea import TemporalAggregation, next_frame_difference

__all__ = ["CSTM", "CMM", "STM", "checkpoint_filter_fn"]


class CSTM(nn.Conv2d):
    """The channel-wise spatiotemporal module in place of a block's 3x3 ``conv`` (its ``weight``, same
    key and shape): the channel-wise temporal conv (``temporal``: `zoo.models.tea.TemporalAggregation`,
    kernel 3, STM's quarter-shift start), then the 3x3 conv. ``[N*T, C, H, W]`` -> the conv's output."""

    def __init__(self, conv: nn.Conv2d, num_segments: int):
        if conv.groups != 1 or conv.bias is not None:
            raise UsageError("the CSTM wraps a plain conv without bias (groups 1)")
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         conv.dilation, bias=False)
        self.weight = conv.weight
        self.temporal = TemporalAggregation(conv.in_channels, num_segments, "quarter_shift")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.temporal(x), self.weight, self.bias)  # a folded BN sets the bias


class CMM(nn.Module):
    """The channel-wise motion module: ``[N*T, C, H, W]`` -> ``[N*T, C, H / stride, W / stride]`` (see the
    module docstring). ``reduce`` (1x1, C -> C / ``reduction``) and ``bn``; ``motion``, the channel-wise
    3x3 conv applied to frame t + 1 before frame t is subtracted; ``expand`` (1x1, back to C)."""

    def __init__(self, channels: int, num_segments: int, stride: int = 1, reduction: int = 16):
        super().__init__()
        if num_segments < 2:
            raise UsageError(f"the motion module compares frames: num_segments must be at least 2, got {num_segments}")
        if stride not in (1, 2):
            raise UsageError(f"the motion module follows a 3x3 conv of stride 1 or 2, got {stride}")
        squeezed = channels // reduction
        if squeezed < 1:
            raise UsageError(f"{channels} channels cannot be reduced {reduction}x")
        self.num_segments = num_segments
        self.reduce = nn.Conv2d(channels, squeezed, 1, bias=False)
        self.bn = nn.BatchNorm2d(squeezed)
        self.motion = nn.Conv2d(squeezed, squeezed, 3, padding=1, groups=squeezed, bias=False)
        self.expand = nn.Conv2d(squeezed, channels, 1, bias=False)
        self.pool = nn.MaxPool2d(2, ceil_mode=True) if stride == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.bn(self.reduce(x))
        out = self.expand(next_frame_difference(squeezed, self.motion(squeezed), self.num_segments))
        return out if self.pool is None else self.pool(out)

    def extra_repr(self) -> str:
        return f"T={self.num_segments}"


class STM(SegmentConsensus):
    """STM (see the module docstring): TSN over a ResNet whose every block is an STM block.

    Args:
        num_classes: classifier outputs.
        num_segments: frames (segments) per clip, T.
        backbone: timm ResNet name (resnet50 as in the paper; in resnet18/34 the modules sit at each
            basic block's second 3x3 conv).
        dropout: dropout before the classifier.
        in_chans: input channels.
    """

    def __init__(self, num_classes: int = 174, num_segments: int = 8, backbone: str = "resnet50",
                 dropout: float = 0.5, in_chans: int = 3):
        super().__init__()
        if not backbone.startswith("resnet"):
            raise UsageError(f"STM blocks replace ResNet blocks: backbone must be a timm ResNet, got {backbone!r}")
        self.num_classes, self.num_segments = num_classes, num_segments
        self.backbone = Trunk2D(backbone, in_chans)
        self.backbone.plug("conv2", lambda s, j, block: CSTM(block.conv2, num_segments))
        self.backbone.plug("beside_conv2", lambda s, j, block: CMM(block.conv2.in_channels, num_segments,
                                                                   block.conv2.stride[0]))
        self.num_features = self.backbone.num_features
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_classifier(num_classes)


def checkpoint_filter_fn(checkpoint, model: STM) -> Dict[str, torch.Tensor]:
    """A zoo STM checkpoint, or torchvision's ImageNet ResNet (the paper's initialisation: the temporal
    convs keep their shift start, the motion modules their random one)."""
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=("module.",), family="an STM")
    own = model.state_dict()
    if is_torchvision(state_dict):
        return resnet_2d(state_dict, own, "backbone.", "fc.")
    return state_dict


# -- registered variants -------------------------------------------------------------------
_PAPER = "Jiang et al., STM: SpatioTemporal and Motion Encoding for Action Recognition, ICCV 2019"


@register_model(ModelInfo(
    name="stm_r50", family="stm", paper=_PAPER, num_frames=8, num_segments=8, sampling="segment",
    crop_size=224, resize_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, test_views=(10, 3), num_classes=174,
    dataset="something-something-v1", frames_arg="num_segments",
    # the paper's cost (Something-Something v1, 174 classes, 224 px): 33.3 G FLOPs per view at 8 frames,
    # 66.5 G at 16, 24.0 M parameters; fvcore counts zoo's model at 33.26 G and 66.51 G, 24.04 M
    ref_gflops=33.3, ref_params_m=24.0,
    notes="Implemented from the paper (no official code was released; no weights). The paper's test: 10 clips "
          "sampled at random, 3 crops of 256 resized to 224, softmax averaged; zoo's views are 10 clips x 3 "
          "crops of 224 at scale 256. Reference cost: the paper's."),
    weights=(imagenet_weights("resnet50", "ImageNet initialisation, as the paper trains from; the channel-wise "
                                          "temporal convs keep their shift start, the motion modules their random "
                                          "one; ImageNet class names in torchvision's order"),),
    bench=BenchPreset(frames=8, model_args={"backbone": "resnet18"}), filter_fn=checkpoint_filter_fn)
def stm_r50(**kwargs) -> STM:
    """STM on ResNet-50: every block's 3x3 conv a CSTM, a CMM beside it."""
    return create_model(STM, {}, kwargs)
