"""X3D: a tiny 2D network expanded along time, space, width and depth.

Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020. Layer
for layer as PySlowFast (facebookresearch/SlowFast, ``video_model_builder.X3D`` with
``resnet_helper.X3DTransform``, ``stem_helper.X3DStem``, ``head_helper.X3DHead``) and
PyTorchVideo's ``create_x3d``:

    [B, 3, T, H, W] -> stem: conv 1x3x3 /1,2,2 (3 -> 24) -> depthwise conv 5x1x1 -> BN -> ReLU
      -> res2..res5: inverted bottlenecks, 24/48/96/192 channels, 2.25x inside, the first block
         of each stage strided 2 in space (never in time)          [B, 192, T, H/32, W/32]
      -> conv5 1x1x1 (192 -> 432) -> BN -> ReLU
      -> average-pool windows [T, crop/32, crop/32] fixed by the training clip, stride 1
      -> lin5 1x1x1 (432 -> 2048, no BN) -> ReLU, per window -> mean of windows -> dropout -> fc

    block: conv_a 1x1x1 -> BN -> ReLU -> conv_b 3x3x3 depthwise (spatial stride) -> BN
           [-> squeeze-excitation, every other block from the first] -> swish
           -> conv_c 1x1x1 -> BN, + shortcut (1x1x1 conv + BN where the shape changes) -> ReLU

XS, S and M are one network (depth factor 2.2: 3, 5, 11, 7 blocks) seen at different clips and
crops (4 frames at 160 px, 13 at 160, 16 at 224 for training); L is deeper (factor 5.0: 5, 10,
25, 15 blocks) and trained on 16 frames at 312 px. The head's non-linearity after the pooling
(lin5 + ReLU) makes the windows matter: at a test crop larger than the training crop every window
goes through lin5 alone, as in both references.

`checkpoint_filter_fn` loads PySlowFast ``.pyth`` (``model_state``, ``s1.pathway0_stem.conv_xy``,
``s2.pathway0_res0.branch2.a``, ``head.lin_5``, ``head.projection``...) and PyTorchVideo ``.pyth``
(``model_state``, ``blocks.0.conv.conv_t``..., ``blocks.5.pool.post_conv``, ``blocks.5.proj``;
optionally ``model.``-prefixed, as in PySlowFast's copies of the PyTorchVideo zoo). PyTorchVideo
names the stem's spatial conv ``conv_t`` and its temporal conv ``conv_xy``: the filter maps each to
the conv of its shape. Our eval output is logits: both references end in a softmax.
"""
from __future__ import annotations

import math
import re
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import BadCheckpoint, UsageError
from ._checks import check_input
from ._info import KINETICS_MEAN, KINETICS_STD, BenchPreset, ModelInfo, Result, Weights
from ._loading import unwrap_state_dict
from ._registry import create_model, register_model
from ._resnet3d import bn3d, init_classifier, projection_shortcut, window_softmax
from ._video_resnet import VideoClassifier

__all__ = ["X3D", "X3DStem", "X3DBlock", "SqueezeExcite3d", "round_width", "stage_depths", "checkpoint_filter_fn",
           "to_pyslowfast_layout", "to_pytorchvideo_layout"]

STAGE_BLOCKS = (1, 2, 5, 3)  # the blocks of res2..res5 before the depth factor
STAGE_WIDTHS = (12, 24, 48, 96)  # res2..res5 output channels before the width factor (PySlowFast dim_res2..5)


def round_width(width: float, multiplier: float, min_width: Optional[int] = None, divisor: int = 1) -> int:
    """``width * multiplier`` rounded to a multiple of ``divisor`` (at least ``min_width``,
    default ``divisor``), one ``divisor`` more where rounding lost over 10 % (PySlowFast's
    ``round_width``: timm's ``make_divisible``)."""
    from timm.layers import make_divisible  # not at import: `zoo list` imports no timm

    return int(make_divisible(width * multiplier, divisor, min_width)) if multiplier else int(width)


def stage_depths(depth_factor: float) -> Tuple[int, ...]:
    """Blocks in res2..res5: ``ceil(depth_factor * (1, 2, 5, 3))`` -> (3, 5, 11, 7) at 2.2."""
    return tuple(int(math.ceil(depth_factor * n)) for n in STAGE_BLOCKS)


class X3DStem(nn.Module):
    """Conv 1x3x3 stride (1, 2, 2) -> depthwise conv kx1x1 -> BN -> ReLU (no max-pool)."""

    def __init__(self, out_channels: int, temporal_kernel: int = 5, in_channels: int = 3):
        super().__init__()
        self.conv_xy = nn.Conv3d(in_channels, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1),
                                 bias=False)
        self.conv_t = nn.Conv3d(out_channels, out_channels, (temporal_kernel, 1, 1),
                                padding=(temporal_kernel // 2, 0, 0), groups=out_channels, bias=False)
        self.bn = bn3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv_t(self.conv_xy(x))), inplace=True)


class SqueezeExcite3d(nn.Module):
    """Global average pool -> 1x1x1 conv (bias) -> ReLU -> 1x1x1 conv (bias) -> sigmoid, scaling
    the channels; the squeezed width is ``round_width(channels, ratio, 8, 8)`` (PySlowFast ``SE``)."""

    def __init__(self, channels: int, ratio: float = 0.0625):
        super().__init__()
        squeezed = round_width(channels, ratio, min_width=8, divisor=8)
        self.fc1 = nn.Conv3d(channels, squeezed, 1)
        self.fc2 = nn.Conv3d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.fc1(x.mean((2, 3, 4), keepdim=True)), inplace=True)
        return x * torch.sigmoid(self.fc2(s))


class X3DBlock(nn.Module):
    """The inverted bottleneck (PySlowFast ``ResBlock`` + ``X3DTransform``): see the module docstring.
    ``shortcut_bn`` False: a shortcut conv without BN (PyTorchVideo's, where only the stride changes)."""

    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, stride: int = 1,
                 se_ratio: float = 0.0, temporal_kernel: int = 3, shortcut_bn: bool = True):
        super().__init__()
        self.conv_a = nn.Conv3d(in_channels, inner_channels, 1, bias=False)
        self.bn_a = bn3d(inner_channels)
        self.conv_b = nn.Conv3d(inner_channels, inner_channels, (temporal_kernel, 3, 3), stride=(1, stride, stride),
                                padding=(temporal_kernel // 2, 1, 1), groups=inner_channels, bias=False)
        self.bn_b = bn3d(inner_channels)
        self.se = SqueezeExcite3d(inner_channels, se_ratio) if se_ratio > 0 else None
        self.conv_c = nn.Conv3d(inner_channels, out_channels, 1, bias=False)
        self.bn_c = bn3d(out_channels)
        self.shortcut = projection_shortcut(in_channels, out_channels, stride, norm=shortcut_bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        y = F.relu(self.bn_a(self.conv_a(x)), inplace=True)
        y = self.bn_b(self.conv_b(y))
        if self.se is not None:
            y = self.se(y)
        y = self.bn_c(self.conv_c(F.silu(y, inplace=True)))
        return F.relu(y + identity, inplace=True)


class X3D(VideoClassifier):
    """X3D (Feichtenhofer, CVPR 2020) on one ``[B, 3, T, H, W]`` clip.

    Args:
        num_classes: classifier outputs.
        depth_factor: blocks per stage, ``ceil(depth_factor * (1, 2, 5, 3))`` (2.2: XS, S, M; 5.0: L).
        width_factor: the stem and stage widths over the base (2.0 in every released model).
        bottleneck_factor: inner channels over a block's output channels (2.25).
        head_width: lin5's output channels (2048), the pooled feature the classifier reads.
        se_ratio: squeeze-excitation width over a block's inner width, on blocks 0, 2, 4... of each
            stage (0.0625; 0: none).
        num_frames: frames T of the training clip; with ``train_crop_size`` it fixes the head's
            pooling window ``[T, ceil(crop/32), ceil(crop/32)]``, stride 1 (clipped to the map,
            so smaller inputs pool globally).
        train_crop_size: the training crop (160 XS/S, 224 M, 312 L); 0: the head pools the whole map.
        dropout: dropout before the classifier.
        window_softmax: in eval mode, PySlowFast's test head (a softmax per pooling window,
            averaged; log-probabilities out) instead of logits, as its published numbers.
        strided_shortcut_bn: a BN after a shortcut conv that only strides (res2's first block:
            24 -> 24 channels) as in PySlowFast; False: none there, as in PyTorchVideo's
            ``create_x3d_res_block`` (its releases need it).
    """

    def __init__(self, num_classes: int = 400, depth_factor: float = 2.2, width_factor: float = 2.0,
                 bottleneck_factor: float = 2.25, head_width: int = 2048, se_ratio: float = 0.0625,
                 num_frames: int = 13, train_crop_size: int = 160, dropout: float = 0.5,
                 window_softmax: bool = False, strided_shortcut_bn: bool = True):
        super().__init__()
        if depth_factor <= 0 or width_factor <= 0:
            raise UsageError(f"depth_factor and width_factor must be positive, got {depth_factor}, {width_factor}")
        self.num_classes = num_classes
        stem_width = round_width(12, width_factor)
        self.stem = X3DStem(stem_width)
        in_ch = stem_width
        self.depths = stage_depths(depth_factor)
        for i, (depth, base) in enumerate(zip(self.depths, STAGE_WIDTHS)):
            out = round_width(base, width_factor)
            inner = int(bottleneck_factor * out)
            blocks = [X3DBlock(in_ch if j == 0 else out, inner, out, stride=2 if j == 0 else 1,
                               se_ratio=se_ratio if j % 2 == 0 else 0.0,
                               shortcut_bn=strided_shortcut_bn or in_ch != out) for j in range(depth)]
            self.add_module(f"res{i + 2}", nn.Sequential(*blocks))
            in_ch = out
        self.conv5 = nn.Conv3d(in_ch, inner, 1, bias=False)
        self.bn5 = bn3d(inner)
        self.lin5 = nn.Conv3d(inner, head_width, 1, bias=False)
        self.num_features = head_width
        s = math.ceil(train_crop_size / 32) if train_crop_size else None
        self.pool_size = None if s is None else (num_frames, s, s)
        self.window_softmax = window_softmax
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(head_width, num_classes)
        _init_weights(self)

    def stages(self) -> List[nn.Sequential]:
        return [self.res2, self.res3, self.res4, self.res5]

    # -- timm-style interface (get_classifier, reset_classifier, forward: `VideoClassifier`) ---
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> ``[B, 192, T, H/32, W/32]`` (the last stage, before conv5)."""
        check_input(x, model=type(self).__name__)
        x = self.stem(x)
        for stage in self.stages():
            x = stage(x)
        return x

    def head_windows(self, features: torch.Tensor) -> torch.Tensor:
        """conv5 -> BN -> ReLU -> stride-1 average-pool windows of ``pool_size`` (clipped to the
        map; the whole map when None) -> lin5 -> ReLU: ``[B, 2048, t, h, w]``, one vector per window."""
        x = F.relu(self.bn5(self.conv5(features)), inplace=True)
        dims = tuple(x.shape[2:])
        window = dims if self.pool_size is None else tuple(min(k, d) for k, d in zip(self.pool_size, dims))
        return F.relu(self.lin5(F.avg_pool3d(x, window, stride=1)), inplace=True)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """`head_windows`, their mean, dropout, ``fc`` (the mean of the windows' logits); with
        ``window_softmax`` in eval mode, PySlowFast's per-window softmax instead."""
        windows = self.head_windows(features)
        if self.window_softmax and not self.training and not pre_logits:
            return window_softmax([windows], [(1, 1, 1)], self.fc)
        x = windows.mean((2, 3, 4))
        return x if pre_logits else self.fc(self.dropout(x))


def _init_weights(model: X3D) -> None:
    """PySlowFast's ``init_weights`` with ``ZERO_INIT_FINAL_BN``: ``c2_msra_fill`` convs (zero
    biases), unit BN but for each block's last (zero), N(0, 0.01) classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, X3DBlock):
            nn.init.zeros_(m.bn_c.weight)
    init_classifier(model.fc)


# -- official checkpoints ------------------------------------------------------------------
_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_PARAM = r"(weight|bias)"
# (zoo key pattern, PySlowFast key, PyTorchVideo key): \1.. are the pattern's groups
_LAYOUTS = (
    (r"stem\.conv_xy\.weight", r"s1.pathway0_stem.conv_xy.weight", r"blocks.0.conv.conv_t.weight"),
    (r"stem\.conv_t\.weight", r"s1.pathway0_stem.conv.weight", r"blocks.0.conv.conv_xy.weight"),
    (rf"stem\.bn\.{_BN}", r"s1.pathway0_stem.bn.\1", r"blocks.0.norm.\1"),
    (r"res(\d)\.(\d+)\.conv_([abc])\.weight", r"s\1.pathway0_res\2.branch2.\3.weight",
     r"blocks.{\1-1}.res_blocks.\2.branch2.conv_\3.weight"),
    (rf"res(\d)\.(\d+)\.bn_([ac])\.{_BN}", r"s\1.pathway0_res\2.branch2.\3_bn.\4",
     r"blocks.{\1-1}.res_blocks.\2.branch2.norm_\3.\4"),
    (rf"res(\d)\.(\d+)\.bn_b\.{_BN}", r"s\1.pathway0_res\2.branch2.b_bn.\3",
     r"blocks.{\1-1}.res_blocks.\2.branch2.norm_b.0.\3"),
    (rf"res(\d)\.(\d+)\.se\.fc1\.{_PARAM}", r"s\1.pathway0_res\2.branch2.se.fc1.\3",
     r"blocks.{\1-1}.res_blocks.\2.branch2.norm_b.1.block.0.\3"),
    (rf"res(\d)\.(\d+)\.se\.fc2\.{_PARAM}", r"s\1.pathway0_res\2.branch2.se.fc2.\3",
     r"blocks.{\1-1}.res_blocks.\2.branch2.norm_b.1.block.2.\3"),
    (r"res(\d)\.(\d+)\.shortcut\.conv\.weight", r"s\1.pathway0_res\2.branch1.weight",
     r"blocks.{\1-1}.res_blocks.\2.branch1_conv.weight"),
    (rf"res(\d)\.(\d+)\.shortcut\.bn\.{_BN}", r"s\1.pathway0_res\2.branch1_bn.\3",
     r"blocks.{\1-1}.res_blocks.\2.branch1_norm.\3"),
    (r"conv5\.weight", r"head.conv_5.weight", r"blocks.5.pool.pre_conv.weight"),
    (rf"bn5\.{_BN}", r"head.conv_5_bn.\1", r"blocks.5.pool.pre_norm.\1"),
    (r"lin5\.weight", r"head.lin_5.weight", r"blocks.5.pool.post_conv.weight"),
    (rf"fc\.{_PARAM}", r"head.projection.\1", r"blocks.5.proj.\1"),
)
_STAGE_INDEX = re.compile(r"\{(\d)-1\}")  # PyTorchVideo's blocks.{stage - 1}


def _official_key(key: str, layout: int) -> str:
    """The PySlowFast (``layout`` 1) or PyTorchVideo (2) name of one of our keys."""
    for rule in _LAYOUTS:
        m = re.fullmatch(rule[0], key)
        if m:
            name = m.expand(rule[layout])
            return _STAGE_INDEX.sub(lambda s: str(int(s[1]) - 1), name)
    raise KeyError(f"no official X3D name for zoo key {key!r}")


def to_pyslowfast_layout(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our state dict under PySlowFast's key names (as in its ``.pyth`` ``model_state``)."""
    return {_official_key(k, 1): v for k, v in state_dict.items()}


def to_pytorchvideo_layout(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our state dict under PyTorchVideo ``create_x3d``'s key names (``blocks.*``)."""
    return {_official_key(k, 2): v for k, v in state_dict.items()}


def checkpoint_filter_fn(checkpoint, model: X3D) -> Dict[str, torch.Tensor]:
    """Map a PySlowFast or PyTorchVideo X3D checkpoint (``model_state`` or a bare state dict,
    ``module.``/``model.`` prefixes stripped), or a zoo one, to our keys; unknown keys pass
    through for the loader to report."""
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=("module.", "model."), family="an X3D")
    own = model.state_dict()
    if set(state_dict) <= set(own):
        return state_dict
    layout = 2 if any(k.startswith("blocks.") for k in state_dict) else 1
    file_has_bn = _official_key("res2.0.shortcut.bn.weight", layout) in state_dict
    if file_has_bn != ("res2.0.shortcut.bn.weight" in own):
        raise BadCheckpoint(f"this X3D checkpoint {'has' if file_has_bn else 'has no'} BN on res2's first shortcut: "
                            f"build the model with strided_shortcut_bn={file_has_bn} (PyTorchVideo's releases have "
                            f"none: weights='kinetics400_pytorchvideo')")
    table = {_official_key(k, layout): k for k in own}
    return {table.get(k, k): v for k, v in state_dict.items()}


# -- registered variants -------------------------------------------------------------------
_PAPER = "Feichtenhofer, X3D: Expanding Architectures for Efficient Video Recognition, CVPR 2020"
_PYSF_URL = "https://dl.fbaipublicfiles.com/pyslowfast/x3d_models/"
_PTV_URL = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/"
_PYSF_ZOO = "facebookresearch/SlowFast MODEL_ZOO.md (X3D models)"
_PTV_ZOO = "facebookresearch/pytorchvideo docs/source/model_zoo.md (Kinetics-400)"
_PYSF, _PTV = "facebookresearch/SlowFast (PySlowFast)", "facebookresearch/pytorchvideo"
_PYSLOWFAST_TEST = {"window_softmax": True}  # PySlowFast's test head, behind both zoos' numbers
# PyTorchVideo's X3D has no BN on res2's first shortcut (a stride-only 24 -> 24 conv)
PYTORCHVIDEO_OPTIONS = {"strided_shortcut_bn": False}


def _weights(file: str, crop: int, pysf: Tuple[float, float], ptv: Tuple[float, float]) -> Tuple[Weights, ...]:
    """The PySlowFast release (10-view and 30-view top-1 published) and PyTorchVideo's (top-1, top-5 at 30 views)."""
    views = f"10 clips x 3 crops, {crop} px (short side {crop}, {crop}x{crop} crops)"
    view10 = "10 clips x 1 centre crop (PySlowFast's 10-view test)"
    return (Weights("kinetics400", 400, "kinetics400", (f"{_PYSF_URL}{file.lower()}.pyth",),
                    (Result("kinetics400", pysf[1], None, views, _PYSF_ZOO),
                     Result("kinetics400", pysf[0], None, view10, _PYSF_ZOO)), _PYSF, eval_args=_PYSLOWFAST_TEST),
            Weights("kinetics400_pytorchvideo", 400, "kinetics400", (f"{_PTV_URL}{file}.pyth",),
                    (Result("kinetics400", ptv[0], ptv[1], views, _PTV_ZOO),), _PTV, model_args=PYTORCHVIDEO_OPTIONS,
                    eval_args=_PYSLOWFAST_TEST))


def _info(name: str, frames: int, rate: int, crop: int, jitter: Tuple[int, int], **kw) -> ModelInfo:
    return ModelInfo(name=name, family="x3d", paper=_PAPER, num_frames=frames, num_segments=1, frames_per_segment=1,
                     sampling="dense", sampling_rate=rate, crop_size=crop, resize_size=crop, train_jitter=jitter,
                     mean=KINETICS_MEAN, std=KINETICS_STD, test_views=(10, 3), num_classes=400,
                     dataset="kinetics400", min_size=32, frames_arg="num_frames", **kw)




def _bench(frames: int) -> BenchPreset:
    """The compare bench: the XS/S/M network (depth factor 2.2, also for L) at 32 px, as many frames as the
    model's stride fits in a 32-frame SynthMotion clip."""
    return BenchPreset(frames=frames, model_args=dict(train_crop_size=32, depth_factor=2.2))
# Costs: ``ref_gflops`` is fvcore's count (convs, BN, fc) of PySlowFast's own X3D at the test crop, one view.
# PySlowFast's MODEL_ZOO counts the convolutions alone at the training crop (`PYSLOWFAST_CONV_GFLOPS`,
# checked in tests/test_x3d.py); the PyTorchVideo zoo's figures (0.91, 2.96, 6.72, 26.64) are 4-5 % above
# what fvcore gives on PyTorchVideo's own model at its test crop (0.87, 2.82, 6.40, 25.52), a count zoo
# does not reproduce.
PYSLOWFAST_CONV_GFLOPS = {"x3d_xs": (160, 0.60), "x3d_s": (160, 1.96), "x3d_m": (224, 4.73), "x3d_l": (312, 18.37)}
_COST = ("GFLOPs: fvcore on PySlowFast's X3D at the {test} px test crop, one view; PySlowFast's MODEL_ZOO quotes "
         "{conv}, the convolutions alone at the {train} px training crop (zoo: the same), the PyTorchVideo zoo "
         "{ptv}, which fvcore does not reproduce (it gives {ptv_fv} on PyTorchVideo's own model).")


@register_model(_info(
    "x3d_xs", 4, 12, 182, (182, 228), ref_gflops=0.87, ref_params_m=3.79,
    notes="4 frames at stride 12, trained on 160 px crops, tested at 182. " + _COST.format(
        test=182, conv=0.60, train=160, ptv=0.91, ptv_fv=0.87)),
    weights=_weights("X3D_XS", 182, (68.7, 69.5), (69.12, 88.63)), bench=_bench(2), filter_fn=checkpoint_filter_fn)
def x3d_xs(**kwargs) -> X3D:
    """X3D-XS: depth factor 2.2, 4-frame head window at 160 px."""
    return create_model(X3D, dict(depth_factor=2.2, num_frames=4, train_crop_size=160), kwargs)


@register_model(_info(
    "x3d_s", 13, 6, 182, (182, 228), ref_gflops=2.82, ref_params_m=3.79,
    notes="13 frames at stride 6, trained on 160 px crops, tested at 182. " + _COST.format(
        test=182, conv=1.96, train=160, ptv=2.96, ptv_fv=2.82)),
    weights=_weights("X3D_S", 182, (73.1, 73.5), (73.33, 91.27)), bench=_bench(5), filter_fn=checkpoint_filter_fn)
def x3d_s(**kwargs) -> X3D:
    """X3D-S: depth factor 2.2, 13-frame head window at 160 px."""
    return create_model(X3D, dict(depth_factor=2.2, num_frames=13, train_crop_size=160), kwargs)


@register_model(_info(
    "x3d_m", 16, 5, 256, (256, 320), ref_gflops=6.40, ref_params_m=3.79,
    notes="16 frames at stride 5, trained on 224 px crops, tested at 256. " + _COST.format(
        test=256, conv=4.73, train=224, ptv=6.72, ptv_fv=6.40)),
    weights=_weights("X3D_M", 256, (75.1, 76.2), (75.94, 92.72)), bench=_bench(6), filter_fn=checkpoint_filter_fn)
def x3d_m(**kwargs) -> X3D:
    """X3D-M: depth factor 2.2, 16-frame head window at 224 px."""
    return create_model(X3D, dict(depth_factor=2.2, num_frames=16, train_crop_size=224), kwargs)


@register_model(_info(
    "x3d_l", 16, 5, 356, (356, 446), ref_gflops=25.53, ref_params_m=6.15,
    notes="16 frames at stride 5, trained on 312 px crops, tested at 356. " + _COST.format(
        test=356, conv=18.37, train=312, ptv=26.64, ptv_fv=25.52)),
    weights=_weights("X3D_L", 356, (76.9, 77.5), (77.44, 93.31)), bench=_bench(6), filter_fn=checkpoint_filter_fn)
def x3d_l(**kwargs) -> X3D:
    """X3D-L: depth factor 5.0, 16-frame head window at 312 px."""
    return create_model(X3D, dict(depth_factor=5.0, num_frames=16, train_crop_size=312), kwargs)
