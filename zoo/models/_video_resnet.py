"""Video ResNet building blocks: one ResNet trunk with pluggable "conv makers".

The torchvision ``models/video/resnet.py`` pattern (Tran et al., CVPR 2018): R3D, MC3 and
R(2+1)D are one network whose blocks take a conv-maker class per stage; only the list of makers
differs. A maker is a module class called as ``maker(in, out, midplanes, stride, bn_eps=...)``
with a static ``get_downsample_stride(stride)``; the (2+1)D one is defined here. Module and
state-dict names follow torchvision exactly, so torchvision and VMZ checkpoints load as they are:

    stem.{0,3}  (1x7x7 spatial -> 3x1x1 temporal, 45 mid channels)
    layerN.i.conv1.0 = maker(in, out, mid, stride) ; conv1.1 BN ; conv1.2 ReLU
    layerN.i.conv2.0 = maker(out, out, mid)        ; conv2.1 BN
    layerN.0.downsample.{0,1} (1x1x1 conv, stride = maker.get_downsample_stride)
    fc

`VideoClassifier` is the head and model interface shared with other video families whose
trunks differ (P3D): global average pooling, dropout, ``fc``.
"""
from __future__ import annotations

from typing import Optional, Sequence, Type

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import UsageError
from ._checks import check_input
from ._contract import VideoModel

__all__ = ["MID_CHANNEL_RULES", "midplanes_2plus1d", "Conv2Plus1D", "BasicBlock",
           "R2Plus1dStem", "VideoClassifier", "VideoResNet", "check_video_input",
           "init_video_weights"]

# "torchvision": computed once per block from (inplanes, planes), reused by both convs;
# "paper": every (2+1)D conv computes its own from its (in, out) (paper, VMZ, Caffe2).
MID_CHANNEL_RULES = ("torchvision", "paper")


def midplanes_2plus1d(in_planes: int, out_planes: int, kt: int = 3, ks: int = 3) -> int:
    """Mid channels M of a (2+1)D conv with the parameters of a full kt x ks x ks conv
    (paper eq. 1): M = floor(kt ks^2 N_in N_out / (ks^2 N_in + kt N_out))."""
    return (in_planes * out_planes * kt * ks * ks) // (in_planes * ks * ks + kt * out_planes)


class Conv2Plus1D(nn.Sequential):
    """(2+1)D conv: 1xkxk spatial conv -> BN -> ReLU -> kx1x1 temporal conv.

    ``midplanes=None`` applies the paper rule to this conv's own (in, out). Spatial stride
    goes to the first conv, temporal stride to the second.
    """

    def __init__(self, in_planes: int, out_planes: int, midplanes: Optional[int] = None, stride: int = 1,
                 padding: int = 1, bn_eps: float = 1e-5):
        if midplanes is None:
            midplanes = midplanes_2plus1d(in_planes, out_planes)
        super().__init__(
            nn.Conv3d(in_planes, midplanes, (1, 3, 3), (1, stride, stride), (0, padding, padding), bias=False),
            nn.BatchNorm3d(midplanes, eps=bn_eps),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, (3, 1, 1), (stride, 1, 1), (padding, 0, 0), bias=False),
        )

    @staticmethod
    def get_downsample_stride(stride: int):
        return (stride, stride, stride)


class BasicBlock(nn.Module):
    """Two maker convs with BN, identity or 1x1x1-projection shortcut (torchvision layout)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, conv_maker: Type[nn.Module], stride: int = 1,
                 downsample: Optional[nn.Module] = None, mid_channels: str = "torchvision", bn_eps: float = 1e-5):
        super().__init__()
        mid = midplanes_2plus1d(inplanes, planes) if mid_channels == "torchvision" else None
        self.conv1 = nn.Sequential(conv_maker(inplanes, planes, mid, stride, bn_eps=bn_eps),
                                   nn.BatchNorm3d(planes, eps=bn_eps), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_maker(planes, planes, mid, bn_eps=bn_eps), nn.BatchNorm3d(planes, eps=bn_eps))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class R2Plus1dStem(nn.Sequential):
    """1x7x7 conv (stride 1,2,2) to ``mid`` channels -> BN -> ReLU -> 3x1x1 conv to 64 -> BN -> ReLU
    [-> max-pool 1x3x3 stride 1,2,2].

    ``mid``: 45 (torchvision, VMZ); 0: the (2+1)D rule for a 3x7x7 conv (83 from RGB, MMAction2).
    ``mid_bn_eps``: epsilon of the first BN (default ``bn_eps``); ``pool``: MMAction2's max-pool.
    """

    def __init__(self, in_chans: int = 3, bn_eps: float = 1e-5, mid: int = 45, mid_bn_eps: Optional[float] = None,
                 pool: bool = False):
        mid = mid or midplanes_2plus1d(in_chans, 64, 3, 7)
        layers = [
            nn.Conv3d(in_chans, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            nn.BatchNorm3d(mid, eps=bn_eps if mid_bn_eps is None else mid_bn_eps),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, 64, (3, 1, 1), 1, (1, 0, 0), bias=False),
            nn.BatchNorm3d(64, eps=bn_eps),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        super().__init__(*layers)


def check_video_input(x: torch.Tensor, in_chans: int, model: str) -> None:
    """`check_input` for ``[B, in_chans, T, H, W]`` (optical-flow models take 2 channels)."""
    if in_chans == 3:
        return check_input(x, model=model)
    if not (isinstance(x, torch.Tensor) and x.dim() == 5 and x.shape[1] == in_chans and x.is_floating_point()):
        got = f"{list(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise UsageError(f"{model} expects input [B, {in_chans}, T, H, W] (built with in_chans={in_chans}), got {got}")


def init_video_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """Kaiming-normal (fan_out) convs, unit BN, N(0, 0.01) linear layers (torchvision's init)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv3d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.conv2[1].weight)


class VideoClassifier(VideoModel):
    """Head and interface shared by the video CNNs: ``forward_features`` gives the last feature
    map ``[B, C, T', H', W']``; the head averages it over time and space, then dropout -> ``fc``."""

    num_classes: int
    num_features: int

    def _init_head(self, num_features: int, num_classes: int, dropout: float) -> None:
        self.num_features = num_features
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(num_features, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = F.adaptive_avg_pool3d(features, 1).flatten(1)
        return x if pre_logits else self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class VideoResNet(VideoClassifier):
    """ResNet of maker-built blocks (torchvision ``VideoResNet`` layout and init).

    Args:
        block: residual block class (`BasicBlock`).
        conv_makers: one conv-maker class per stage.
        layers: blocks per stage.
        stem: stem class, called as ``stem(in_chans=..., bn_eps=...)``.
        num_classes: classifier outputs.
        mid_channels: (2+1)D mid-channel rule, one of `MID_CHANNEL_RULES`.
        bn_eps: BatchNorm epsilon (1e-5 torchvision, 1e-3 Caffe2/VMZ).
        dropout: dropout before ``fc`` (none in torchvision/VMZ).
        zero_init_residual: zero the last BN of each block.
        in_chans: input channels.
    """

    def __init__(self, block: Type[nn.Module], conv_makers: Sequence[Type[nn.Module]], layers: Sequence[int],
                 stem: Type[nn.Module], num_classes: int = 400, mid_channels: str = "torchvision",
                 bn_eps: float = 1e-5, dropout: float = 0.0, zero_init_residual: bool = False, in_chans: int = 3):
        super().__init__()
        if mid_channels not in MID_CHANNEL_RULES:
            raise UsageError(f"mid_channels must be one of {MID_CHANNEL_RULES}, got {mid_channels!r}")
        if len(conv_makers) != 4 or len(layers) != 4:
            raise UsageError(f"need 4 stages: got {len(conv_makers)} conv makers and layers={list(layers)}")
        self.mid_channels = mid_channels
        self.in_chans = in_chans
        self.bn_eps = bn_eps
        self.inplanes = 64
        self.stem = stem(in_chans=in_chans, bn_eps=bn_eps)
        for i, (maker, n, planes) in enumerate(zip(conv_makers, layers, (64, 128, 256, 512))):
            setattr(self, f"layer{i + 1}", self._make_layer(block, maker, planes, n, stride=1 if i == 0 else 2))
        self._init_head(512 * block.expansion, num_classes, dropout)
        init_video_weights(self, zero_init_residual)

    def _make_layer(self, block, conv_maker, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            ds_stride = conv_maker.get_downsample_stride(stride)
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * block.expansion, 1, ds_stride, bias=False),
                nn.BatchNorm3d(planes * block.expansion, eps=self.bn_eps))
        kw = dict(mid_channels=self.mid_channels, bn_eps=self.bn_eps)
        stage = [block(self.inplanes, planes, conv_maker, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes, conv_maker, **kw) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> last feature map ``[B, 512, T/8, H/16, W/16]`` (rounded up)."""
        check_video_input(x, self.in_chans, type(self).__name__)
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
