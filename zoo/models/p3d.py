"""P3D: Pseudo-3D residual networks.

Qiu et al., "Learning Spatio-Temporal Representation with Pseudo-3D Residual Networks",
ICCV 2017. Layout of the official Caffe prototxts (ZhaofanQiu/pseudo-3d-residual-networks) and
of the qijiezhao/pseudo-3d-pytorch port, whose checkpoints `checkpoint_filter_fn` loads:

    [B,3,T,H,W] -> 1x7x7 conv /2 -> max-pool 2x3x3 /2       T/2, H/4
      -> res2 -> tpool -> res3 -> tpool -> res4 -> tpool      3D P3D bottlenecks, T/16
      -> frames to batch -> res5 (2D ResNet bottlenecks)      each remaining frame alone
      -> average over frames and space -> dropout -> fc

A P3D bottleneck is 1x1x1 -> ST -> 1x1x1 (x4) + shortcut, where ST combines a 1x3x3 spatial
conv S and a 3x1x1 temporal conv T (each with BN + ReLU) as

    P3D-A: T(S(x))        P3D-B: S(x) + T(x)        P3D-C: S(x) + T(S(x))

and the type cycles A, B, C over all 3D blocks by a global counter (P3D-199: 47 blocks).
Spatial stride sits in the first 1x1 conv (Caffe ResNet); time is reduced only by the max
pools (kernel and stride 2). P3D-63/131/199 follow ResNet-50/101/152 depths.

Any clip length works, unlike the port (which reshapes ``(B, C, T', H, W)`` to ``(-1, C, H, W)``
before res5 and scrambles channels and time unless T == 16): the temporal pools round up
(``ceil_mode``), so no frame is dropped and T' = ceil(T / 16) >= 1; res5 runs on each of the T'
frames of each clip separately and the head averages them. At T = 16, the official input, this
is exactly the official network (and every pooling window is the official one for T a multiple
of 16).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from .._errors import UsageError
from ._loading import unwrap_state_dict
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo, Result, Weights
from ._registry import create_model, register_model
from ._video_resnet import VideoClassifier, check_video_input, init_video_weights

__all__ = ["PseudoConv3d", "P3DBottleneck", "P3D", "ST_TYPES", "checkpoint_filter_fn"]

ST_TYPES = ("A", "B", "C")


class PseudoConv3d(nn.Module):
    """The ST part of a P3D block: S = 1x3x3 conv + BN + ReLU, T = 3x1x1 conv + BN + ReLU,
    combined as type A (serial), B (parallel) or C (serial with a skip from S)."""

    def __init__(self, planes: int, st: str):
        super().__init__()
        if st not in ST_TYPES:
            raise UsageError(f"P3D block type must be one of {ST_TYPES}, got {st!r}")
        self.st = st
        self.conv_s = nn.Conv3d(planes, planes, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.bn_s = nn.BatchNorm3d(planes)
        self.conv_t = nn.Conv3d(planes, planes, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.bn_t = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.relu(self.bn_s(self.conv_s(x)))
        if self.st == "A":
            return self.relu(self.bn_t(self.conv_t(s)))
        if self.st == "B":
            return s + self.relu(self.bn_t(self.conv_t(x)))
        return s + self.relu(self.bn_t(self.conv_t(s)))

    def extra_repr(self) -> str:
        return f"P3D-{self.st}"


class P3DBottleneck(nn.Module):
    """1x1 (stride s) -> 3x3 -> 1x1 (x4) bottleneck. With ``st`` in A/B/C it is a 3D block whose
    middle conv is a `PseudoConv3d` (stride (1, s, s)); with ``st=None`` a plain 2D block (res5)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, st: Optional[str] = None,
                 downsample: Optional[nn.Module] = None):
        super().__init__()
        self.st = st
        conv, bn = (nn.Conv3d, nn.BatchNorm3d) if st else (nn.Conv2d, nn.BatchNorm2d)
        stride1 = (1, stride, stride) if st else stride
        self.conv1 = conv(inplanes, planes, 1, stride1, bias=False)
        self.bn1 = bn(planes)
        if st:
            self.conv2 = PseudoConv3d(planes, st)  # BN and ReLU inside
            self.bn2 = None
        else:
            self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = bn(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.bn2 is not None:
            out = self.relu(self.bn2(out))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def _temporal_pool() -> nn.MaxPool3d:
    return nn.MaxPool3d((2, 1, 1), (2, 1, 1), ceil_mode=True)


class P3D(VideoClassifier):
    """Pseudo-3D ResNet: res2-res4 of P3D bottlenecks, res5 2D.

    Args:
        num_classes: classifier outputs.
        layers: bottlenecks per stage ((3,4,6,3) P3D-63, (3,8,36,3) P3D-199).
        st_cycle: block types cycled over the 3D blocks by a global counter ("ABC"; the
            port's ablations use "AB", "A", ...).
        dropout: dropout before ``fc``.
        in_chans: input channels (3 RGB, 2 for the TV-L1 flow model).
    """

    def __init__(self, num_classes: int = 400, layers: Sequence[int] = (3, 4, 6, 3), st_cycle: str = "ABC",
                 dropout: float = 0.5, in_chans: int = 3):
        super().__init__()
        if len(layers) != 4:
            raise UsageError(f"P3D needs 4 stages, got layers={list(layers)}")
        if not st_cycle or any(t not in ST_TYPES for t in st_cycle):
            raise UsageError(f"st_cycle must be a non-empty string of {'/'.join(ST_TYPES)}, got {st_cycle!r}")
        self.st_cycle = st_cycle
        self.in_chans = in_chans
        # The official 2x3x3 /2 max-pool, split into its (separable) spatial and temporal parts
        # so that time can round up.
        self.stem = nn.Sequential(OrderedDict(
            conv=nn.Conv3d(in_chans, 64, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
            bn=nn.BatchNorm3d(64),
            relu=nn.ReLU(inplace=True),
            pool=nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            tpool=_temporal_pool(),
        ))
        self.inplanes = 64
        self._blocks_3d = 0
        self.layer1 = self._make_layer(64, layers[0], 1, three_d=True)
        self.tpool1 = _temporal_pool()
        self.layer2 = self._make_layer(128, layers[1], 2, three_d=True)
        self.tpool2 = _temporal_pool()
        self.layer3 = self._make_layer(256, layers[2], 2, three_d=True)
        self.tpool3 = _temporal_pool()
        self.layer4 = self._make_layer(512, layers[3], 2, three_d=False)
        self._init_head(512 * P3DBottleneck.expansion, num_classes, dropout)
        init_video_weights(self)

    def _make_layer(self, planes: int, blocks: int, stride: int, three_d: bool) -> nn.Sequential:
        out = planes * P3DBottleneck.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            conv, bn = (nn.Conv3d, nn.BatchNorm3d) if three_d else (nn.Conv2d, nn.BatchNorm2d)
            ds_stride = (1, stride, stride) if three_d else stride
            downsample = nn.Sequential(conv(self.inplanes, out, 1, ds_stride, bias=False), bn(out))
        stage = []
        for i in range(blocks):
            st = None
            if three_d:
                st = self.st_cycle[self._blocks_3d % len(self.st_cycle)]
                self._blocks_3d += 1
            stage.append(P3DBottleneck(self.inplanes, planes, stride if i == 0 else 1, st,
                                       downsample if i == 0 else None))
            self.inplanes = out
        return nn.Sequential(*stage)

    @property
    def block_types(self) -> str:
        """The ST type of every block in order, '2' for the 2D res5 blocks (e.g. 'ABCABCABCABCA222')."""
        stages = (self.layer1, self.layer2, self.layer3, self.layer4)
        return "".join(b.st or "2" for s in stages for b in s)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> res5 map ``[B, 2048, ceil(T/16), H/32, W/32]``."""
        check_video_input(x, self.in_chans, type(self).__name__)
        x = self.tpool1(self.layer1(self.stem(x)))
        x = self.tpool2(self.layer2(x))
        x = self.tpool3(self.layer3(x))
        b, c, t, h, w = x.shape
        x = self.layer4(x.transpose(1, 2).reshape(b * t, c, h, w))  # 2D on every frame alone
        return x.reshape(b, t, *x.shape[1:]).transpose(1, 2)


# -- official checkpoints ------------------------------------------------------------------
# qijiezhao/pseudo-3d-pytorch block attribute -> ours (3D blocks: conv2/conv3 are S/T; 2D
# blocks: conv_normal is the 3x3; conv4 is the expanding 1x1 in both).
_PORT_BLOCK = {"conv2": "conv2.conv_s", "bn2": "conv2.bn_s", "conv3": "conv2.conv_t", "bn3": "conv2.bn_t",
               "conv4": "conv3", "bn4": "bn3", "conv_normal": "conv2", "bn_normal": "bn2"}
_PORT_STEM = {"conv1_custom": "stem.conv", "bn1": "stem.bn"}
_BLOCK_KEY = re.compile(r"^(layer\d\.\d+)\.([a-z_0-9]+)\.(.+)$")


def _port_to_ours(key: str) -> str:
    m = _BLOCK_KEY.match(key)
    if m:
        return f"{m[1]}.{_PORT_BLOCK.get(m[2], m[2])}.{m[3]}"
    head, _, rest = key.partition(".")
    return f"{_PORT_STEM[head]}.{rest}" if head in _PORT_STEM else key


def checkpoint_filter_fn(checkpoint, model: P3D) -> Dict[str, torch.Tensor]:
    """Map a qijiezhao/pseudo-3d-pytorch checkpoint (``{'state_dict': ...}`` as in
    ``p3d_rgb_199.checkpoint.pth.tar``, optionally ``module.``-prefixed) or a zoo one to our keys."""
    state_dict = unwrap_state_dict(checkpoint, family="a P3D")
    if set(state_dict) <= set(model.state_dict()):
        return state_dict  # zoo layout
    return {_port_to_ours(k): v for k, v in state_dict.items()}


# -- registered variants -------------------------------------------------------------------
_PAPER = "Qiu et al., Learning Spatio-Temporal Representation with Pseudo-3D Residual Networks, ICCV 2017"
_PORT = "qijiezhao/pseudo-3d-pytorch"
_PORT_README = "qijiezhao/pseudo-3d-pytorch README (results 'out of the paper', UCF101 mean accuracy)"


_NOTES = ("Input 16x160x160 as the official prototxt and the port; the port normalises RGB in [0, 1] with "
          "ImageNet mean/std (the Caffe original subtracts a BGR mean). Sampling rate, resize and test views "
          "are not stated by the port (its scale_size property is 256); resize 182 is the paper's 182x242 "
          "training frame size (unconfirmed in the reference notes).")


def _info(name: str, notes: str = "", **kw) -> ModelInfo:
    defaults = dict(name=name, family="p3d", paper=_PAPER, num_frames=16, sampling="dense", sampling_rate=1,
                    crop_size=160, resize_size=182, mean=IMAGENET_MEAN, std=IMAGENET_STD, test_views=(1, 1),
                    num_classes=400, dataset="kinetics400", min_size=32, notes=f"{notes} {_NOTES}".strip())
    defaults.update(kw)
    return ModelInfo(**defaults)


_BENCH = BenchPreset(frames=16, model_args={"layers": [2, 2, 2, 2]})  # P3D-26-sized


@register_model(_info(
    "p3d_63", ref_gflops=8.51, ref_params_m=25.75,
    notes="Defined by the qijiezhao/pseudo-3d-pytorch port from ResNet-50; no weights or results were "
          "published for it."),
    bench=_BENCH, filter_fn=checkpoint_filter_fn)
def p3d_63(**kwargs) -> P3D:
    """P3D-63: ResNet-50 depths, 13 pseudo-3D blocks."""
    return create_model(P3D, dict(layers=(3, 4, 6, 3)), kwargs)


# The port's README withdrew its BaiduYun links; the files circulate only by hand.
_P3D_PAGE = "https://github.com/qijiezhao/pseudo-3d-pytorch (BaiduYun links withdrawn by the author)"


@register_model(_info(
    "p3d_199", ref_gflops=18.51, ref_params_m=66.49,
    notes="The Kinetics RGB checkpoint loads as is; the TV-L1 flow one needs in_chans=2. No Kinetics "
          "accuracy of these checkpoints is published; the results are UCF101 fine-tuning."),
    weights=(Weights("kinetics400", 400, "kinetics400", ("p3d_rgb_199.checkpoint.pth.tar",), (), _PORT,
                     "no Kinetics accuracy of this checkpoint is published", page=_P3D_PAGE),
             Weights("kinetics400_flow", 400, "kinetics400", ("p3d_flow_199.checkpoint.pth.tar",), (), _PORT,
                     "TV-L1 flow input (2 channels)", page=_P3D_PAGE, model_args={"in_chans": 2}),
             Weights("ucf101", 101, "ucf101", (),
                     (Result("ucf101", 91.2, None, "RGB, Kinetics pre-trained, fine-tuned end to end", _PORT_README),
                      Result("ucf101", 88.5, None, "RGB, Sports-1M pre-trained, fine-tuned end to end",
                             _PORT_README)),
                     _PORT, "published fine-tuning results; no fine-tuned checkpoint is released")),
    bench=_BENCH, filter_fn=checkpoint_filter_fn)
def p3d_199(**kwargs) -> P3D:
    """P3D-199: ResNet-152 depths, 47 pseudo-3D blocks cycling A, B, C."""
    return create_model(P3D, dict(layers=(3, 8, 36, 3)), kwargs)
