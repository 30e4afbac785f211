"""TAda2D: Huang et al., "TAda! Temporally-Adaptive Convolutions for Video Understanding", ICLR 2022.

A ResNet-50 whose bottleneck 3x3 convs are temporally-adaptive: frame t is convolved with the
base kernel calibrated by a factor per input channel, ``W_t = alpha_t * W``, where ``alpha`` comes
from a small MLP over time (`RouteFunc`: each frame's spatially pooled features plus a 1x1 conv of
the clip's global pool, a temporal conv reducing the channels 4x, BN, ReLU, a temporal conv back,
zero-initialised, plus one, so training starts from the 2D network). The BN after that conv gets a
second branch beside it, a temporal average pool (3 frames, zero padded, divided by 3) through its
own zero-initialised BN (`PooledBN`). Layout as the official alibaba-mmai-research/TAdaConv code
(``TAdaConv2d``, ``RouteFuncMLP``, ``TAda2DBlock`` on its ``ResNet3D`` with ``Base2DStem``): no max
pool after the stem, the first block of ``layer1`` strides 2 instead; head: the clip's global average
pool, dropout 0.5, a linear classifier (the official head's softmax at test time is left out: zoo
models return logits).

Calibrating a kernel's input channels is the same as scaling the conv's input channels first, so the
adaptive conv runs as ``conv2d(x * alpha, W)`` — one ordinary conv over all frames, where the official
code builds a kernel per frame and runs a grouped conv (equal up to rounding; see the parity check).

The 2D backbone is the shared trunk (`zoo.models._trunk2d.Trunk2D`, ``stem_pool=False``): the adaptive
conv is plugged at each block's ``conv2`` point and the pooled branch at ``bn2``, so torchvision's
ImageNet ResNet-50 (the official recipes' initialisation) loads as it is, and official checkpoints
map by renaming (`checkpoint_filter_fn`).

    [B, 3, T, H, W] -> [B*T, 3, H, W] -> trunk (adaptive convs) -> mean over T, H, W -> dropout -> fc
"""
from __future__ import annotations

import re
from typing import Dict, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import UsageError
from ._contract import VideoModel
from ._imagenet import imagenet_weights, is_torchvision, resnet_2d
from ._info import KINETICS_MEAN, KINETICS_STD, BenchPreset, ModelInfo, Result, Weights
from ._loading import rename_keys, unwrap_state_dict
from ._registry import create_model, register_model
from ._trunk2d import Trunk2D

__all__ = ["RouteFunc", "TAdaConv2d", "PooledBN", "TAda2D", "checkpoint_filter_fn"]


class RouteFunc(nn.Module):
    """The calibration MLP (official ``RouteFuncMLP``): ``[N*T, C, H, W]`` -> ``alpha`` ``[N*T, C, 1, 1]``.

    ``g`` (1x1, with bias) maps the clip's global average pool, which is added to every frame's
    spatial average; ``a`` (temporal kernel ``kernels[0]``, C -> C / ``reduction``, with bias), ``bn``,
    ReLU, ``b`` (temporal kernel ``kernels[1]``, back to C, no bias, zero-initialised); plus one.
    Temporal convs are zero padded to keep T."""

    def __init__(self, channels: int, num_frames: int, reduction: int = 4, kernels: Sequence[int] = (3, 3)):
        super().__init__()
        self.num_frames = num_frames
        hidden = channels // reduction
        self.g = nn.Conv1d(channels, channels, 1)
        self.a = nn.Conv1d(channels, hidden, kernels[0], padding=kernels[0] // 2)
        self.bn = nn.BatchNorm1d(hidden)
        self.b = nn.Conv1d(hidden, channels, kernels[1], padding=kernels[1] // 2, bias=False)
        nn.init.zeros_(self.b.weight)  # alpha starts at one: the 2D network's conv
        self.b.weight.zero_init = True  # (read by tests that fill weights at random)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c = x.shape[:2]
        frames = x.mean((2, 3)).view(nt // self.num_frames, self.num_frames, c).transpose(1, 2)  # [N, C, T]
        z = frames + self.g(frames.mean(2, keepdim=True))
        alpha = self.b(F.relu(self.bn(self.a(z)))) + 1
        return alpha.transpose(1, 2).reshape(nt, c, 1, 1)

    def extra_repr(self) -> str:
        return f"T={self.num_frames}"


class TAdaConv2d(nn.Conv2d):
    """A temporally-adaptive 2D conv (official ``TAdaConv2d`` with ``cal_dim="cin"``): the base kernel
    ``weight`` (the 2D conv's, same key and shape) with each frame's input channels calibrated by
    ``rf`` (`RouteFunc`), computed as the conv of the calibrated input."""

    def __init__(self, conv: nn.Conv2d, num_frames: int, reduction: int = 4, kernels: Sequence[int] = (3, 3)):
        if conv.groups != 1 or conv.bias is not None:
            raise UsageError("TAdaConv2d calibrates a plain conv without bias (groups 1)")
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         conv.dilation, bias=False)
        self.weight = conv.weight
        self.rf = RouteFunc(conv.in_channels, num_frames, reduction, kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x * self.rf(x), self.weight, None)


class PooledBN(nn.BatchNorm2d):
    """The BN after the adaptive conv (its parameters under the BN's own keys) plus TAda2D's pooled
    branch: ``bn(y) + pool_bn(avg_t(y))``, ``avg_t`` a temporal average over ``kernel`` frames, zero
    padded and always divided by ``kernel`` (``AvgPool3d`` with ``count_include_pad``), ``pool_bn``
    zero-initialised (the branch starts silent)."""

    def __init__(self, bn: nn.BatchNorm2d, num_frames: int, kernel: int = 3):
        super().__init__(bn.num_features, bn.eps, bn.momentum)
        if kernel % 2 != 1:
            raise UsageError(f"the temporal pool needs an odd kernel, got {kernel}")
        self.num_frames, self.kernel = num_frames, kernel
        self.pool_bn = nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum)
        nn.init.zeros_(self.pool_bn.weight)
        nn.init.zeros_(self.pool_bn.bias)
        self.pool_bn.weight.zero_init = self.pool_bn.bias.zero_init = True

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return super().forward(y) + self.pool_bn(self.temporal_average(y))

    def temporal_average(self, y: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = y.shape
        r = self.kernel // 2
        y5 = y.reshape(nt // self.num_frames, self.num_frames, c, h, w)
        padded = F.pad(y5, (0, 0, 0, 0, 0, 0, r, r))
        total = padded[:, :self.num_frames]
        for i in range(1, self.kernel):
            total = total + padded[:, i:i + self.num_frames]
        return (total / self.kernel).reshape(nt, c, h, w)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pooled over {self.kernel} of T={self.num_frames}"


class TAda2D(VideoModel):
    """TAda2D (see the module docstring).

    Args:
        num_classes: classifier outputs.
        num_frames: frames per clip, T (the calibration and the pool run over them).
        backbone: timm ResNet name (resnet50 as released; resnet18/34 put the adaptive conv on the
            second 3x3 of each basic block, which the official code does not build).
        route_reduction: channel reduction of the calibration MLP.
        route_kernels: temporal kernel sizes of its two convs.
        pool_kernel: frames of the pooled branch's temporal average; 0 leaves the branch out.
        dropout: dropout before the classifier.
        in_chans: input channels.
    """

    fc_std = 0.01  # the official ResNet initialisation's classifier

    def __init__(self, num_classes: int = 400, num_frames: int = 8, backbone: str = "resnet50",
                 route_reduction: int = 4, route_kernels: Sequence[int] = (3, 3), pool_kernel: int = 3,
                 dropout: float = 0.5, in_chans: int = 3):
        super().__init__()
        if len(route_kernels) != 2 or any(k < 1 or k % 2 == 0 for k in route_kernels):
            raise UsageError(f"route_kernels are two odd temporal kernel sizes, got {tuple(route_kernels)}")
        self.num_classes, self.num_frames = num_classes, num_frames
        self.backbone = Trunk2D(backbone, in_chans, stem_pool=False)
        self.num_features = self.backbone.num_features
        self.backbone.plug("conv2", lambda s, j, block: TAdaConv2d(block.conv2, num_frames, route_reduction,
                                                                   route_kernels))
        if pool_kernel:
            self.backbone.plug("bn2", lambda s, j, block: PooledBN(block.bn2, num_frames, pool_kernel))
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> per-frame pooled features ``[B, T, D]``."""
        x = self.backbone(self.clip_frames(x)).mean((2, 3))
        return x.view(-1, self.num_frames, x.shape[1])

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Per-frame features ``[B, T, D]`` -> clip logits ``[B, K]`` (the clip's average, then fc)."""
        x = features.mean(1)
        return x if pre_logits else self.fc(self.dropout(x))


# -- official checkpoints ------------------------------------------------------------------
# official ResNet3D (conv1 = stem, conv2..conv5 = stages of res_1.. blocks) + BaseHead -> the trunk
_RENAMES = (
    (re.compile(r"^module\."), ""),
    (re.compile(r"^backbone\.conv1\.a\."), "backbone.conv1."),
    (re.compile(r"^backbone\.conv1\.a_bn\."), "backbone.bn1."),
    (re.compile(r"^backbone\.conv(\d)\.res_(\d+)\."), lambda m: f"backbone.layer{int(m[1]) - 1}.{int(m[2]) - 1}."),
    (re.compile(r"\.short_cut\."), ".downsample.0."),
    (re.compile(r"\.short_cut_bn\."), ".downsample.1."),
    (re.compile(r"\.conv_branch\.a\."), ".conv1."),
    (re.compile(r"\.conv_branch\.a_bn\."), ".bn1."),
    (re.compile(r"\.conv_branch\.b\."), ".conv2."),
    (re.compile(r"\.conv_branch\.b_rf\."), ".conv2.rf."),
    (re.compile(r"\.conv_branch\.b_bn\."), ".bn2."),
    (re.compile(r"\.conv_branch\.b_avgpool_bn\."), ".bn2.pool_bn."),
    (re.compile(r"\.conv_branch\.c\."), ".conv3."),
    (re.compile(r"\.conv_branch\.c_bn\."), ".bn3."),
    (re.compile(r"^head\.out\."), "fc."),
)


def checkpoint_filter_fn(checkpoint, model: TAda2D) -> Dict[str, torch.Tensor]:
    """Map an official TAda2D checkpoint (``{'model_state': ...}``, ``backbone.conv2.res_1.conv_branch.b.weight``
    of shape ``[1, 1, O, I, 3, 3]``, 3D convs with unit temporal kernels, ``head.out``), torchvision's
    ImageNet ResNet (the recipes' initialisation: the calibration and the pooled branch keep their
    zero-initialised start) or a zoo one to our keys. Official tensors are reshaped to ours where only
    unit dimensions differ."""
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family="a TAda2D")
    own = model.state_dict()
    if set(state_dict) <= set(own):
        return state_dict  # already zoo layout
    if is_torchvision(state_dict):
        return resnet_2d(state_dict, own, "backbone.", "fc.")
    out = {}
    for k, v in rename_keys(state_dict, _RENAMES).items():
        if k in own and v.shape != own[k].shape and v.numel() == own[k].numel():
            v = v.reshape(own[k].shape)  # [O, I, 1, k, k] and [1, 1, O, I, k, k] -> [O, I, k, k]; [O, I, k, 1, 1] -> [O, I, k]
        out[k] = v
    return out


# -- registered variants -------------------------------------------------------------------
_PAPER = "Huang et al., TAda! Temporally-Adaptive Convolutions for Video Understanding, ICLR 2022"
_REPO = "alibaba-mmai-research/TAdaConv"
_ZOO = "alibaba-mmai-research/TAdaConv MODEL_ZOO.md"
_K400, _SSV2 = "kinetics400", "something-something-v2"
_DRIVE = "https://drive.google.com/file/d/{}/view (or https://pan.baidu.com/s/{}, code {})"
_LABELS = ("the release publishes label indices only (its own annotation lists); class names in the dataset's "
           "standard order")
_TEST = "test scale 256, crop 256"


def _release(tag: str, dataset: str, top1: float, top5: float, views: str, page: str, notes: str,
              model_args=None, input_args=None) -> Weights:
    # the page names no file: the name is the one zoo caches it under (``--from`` takes any name)
    file = f"tada2d_r50_{tag}.pyth"
    return Weights(tag, 400 if dataset == _K400 else 174, dataset, (file,), (Result(dataset, top1, top5, views, _ZOO),),
                   _REPO, f"{notes}; {_LABELS}; the page names no file: cached as {file}", page=page,
                   model_args=model_args or {}, input_args=input_args or {})


_SSV2_PROTOCOL = {"sampling": "segment", "sampling_rate": 1, "test_views": (2, 3)}


@register_model(ModelInfo(
    name="tada2d_r50", family="tada2d", paper=_PAPER, num_frames=8, num_segments=1, sampling="dense",
    sampling_rate=8, crop_size=256, resize_size=256, train_jitter=(256, 340), mean=KINETICS_MEAN, std=KINETICS_STD,
    test_views=(10, 3), num_classes=400, dataset=_K400, frames_arg="num_frames",
    # the official code's own count: its model built from configs/pool/backbone/tada2d.yaml (400 classes),
    # fvcore at [1, 3, 8, 256, 256], in the parity environment (86.80 GFLOPs at 16 frames)
    ref_gflops=43.40, ref_params_m=27.49,
    notes="The official recipes train 224 crops from a short side in [224, 340] and test 256 crops at scale 256; "
          "zoo trains at the test crop (short side in [256, 340]). No max pool after the stem: layer1 strides 2. "
          "Reference cost: the official code's model counted by fvcore."),
    weights=(
        _release("kinetics400", _K400, 76.7, 92.6, f"8 frames x 8 (dense) x 10 clips x 3 crops, {_TEST}",
                 _DRIVE.format("1YsbTKLoDwxtStAsP5oxUMbIsw85NvY0O", "1rPPZtVDlEoftkg-r_Di59w", "p06d"),
                 "config configs/projects/tada/k400/tada2d_8x8.yaml"),
        _release("kinetics400_16x5", _K400, 77.4, 93.1, f"16 frames x 5 (dense) x 10 clips x 3 crops, {_TEST}",
                 _DRIVE.format("1UQDurxakmnDxa5D2tBuTqTH60BVyW3XM", "1MzFCZU1G1JR2ur9gWd3hCg", "6k8h"),
                 "config configs/projects/tada/k400/tada2d_16x5.yaml",
                 model_args={"num_frames": 16}, input_args={"sampling_rate": 5}),
        _release("sthv2", _SSV2, 64.2, 88.0, f"8 segments x 2 clips x 3 crops, {_TEST}",
                 _DRIVE.format("16y6dDf-hcMmJ2jDCV9tRla8aRJZKJXSk", "1CWy35SlWMbKnYqZXESndKg", "dlil"),
                 "config configs/projects/tada/ssv2/tada2d_8f.yaml; top-1 64.2 in MODEL_ZOO.md, 64.0 in "
                 "projects/tada/README.md", input_args={**_SSV2_PROTOCOL, "num_segments": 8, "num_frames": 8}),
        _release("sthv2_16f", _SSV2, 65.6, 89.1, f"16 segments x 2 clips x 3 crops, {_TEST}",
                 _DRIVE.format("1xwCxuFW6DZ0xpEsp_tFJYQRGuHPJe4uS", "1GKUKyDytaKKeCBAerh-4IQ", "f857"),
                 "config configs/projects/tada/ssv2/tada2d_16f.yaml",
                 model_args={"num_frames": 16}, input_args={**_SSV2_PROTOCOL, "num_segments": 16, "num_frames": 16}),
        imagenet_weights("resnet50", "ImageNet initialisation of the backbone, as the TAda2D recipes train from "
                                     "(TRAIN.INIT in1k); the calibration and the pooled branch start at their "
                                     "zero initialisation")),
    # 4 frames at the release's stride 8 span SynthMotion's 32-frame clips
    bench=BenchPreset(frames=4, model_args={"backbone": "resnet18"}), filter_fn=checkpoint_filter_fn)
def tada2d_r50(**kwargs) -> TAda2D:
    """TAda2D ResNet-50: every bottleneck's 3x3 conv temporally adaptive, with the pooled branch."""
    return create_model(TAda2D, {}, kwargs)
