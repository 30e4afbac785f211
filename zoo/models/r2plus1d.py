"""R(2+1)D: ResNets whose 3x3x3 convs are factorised into 1x3x3 spatial + 3x1x1 temporal.

Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR 2018.
Built on the shared `VideoResNet` (`_video_resnet.py`), the torchvision pattern:

    [B,3,T,H,W] -> stem (1x7x7 /2 -> 3x1x1) -> layer1..4 of (2+1)D BasicBlocks (stride 1,2,2,2
    in time and space) -> global average pool -> fc

Each (2+1)D conv keeps the parameter count of the 3x3x3 conv it replaces through its mid
channels M = floor(27 N_in N_out / (9 N_in + 3 N_out)). Two rules for M (``mid_channels``):

* ``"torchvision"``: computed once per block from (inplanes, planes) and reused by both convs,
  so the second conv of a downsampling block is narrower than the paper's (layer2.0.conv2:
  230, paper 288). ``r2plus1d_18`` uses it and is key- and output-identical to
  ``torchvision.models.video.r2plus1d_18``.
* ``"paper"``: recomputed per conv, as the paper, VMZ PyTorch (``pt/vmz/models/utils.py``) and
  Caffe2 (``c2/lib/models/builder/video_model.py``). ``r2plus1d_34`` uses it, with Caffe2's BN
  epsilon 1e-3, so VMZ/IG-65M checkpoints load.

Official layouts read by `checkpoint_filter_fn`: torchvision/VMZ PyTorch state dicts (our own
keys, possibly ``module.``-prefixed or wrapped) and Caffe2 ``.pkl`` blob dicts
(``comp_{i}_conv_{j}_middle_w``, ...: the ``.pkl`` file itself, read by the safe Caffe2 reader, or
its unpickled ``blobs`` dict).
"""
from __future__ import annotations

import functools
import re
from typing import Dict, Sequence

import torch
import torch.nn as nn

from .._errors import BadCheckpoint, UsageError
from ._loading import rename_keys, unwrap_state_dict
from ._caffe2 import blobs_to_tensors, caffe2_blobs
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo, Result, Weights
from ._registry import create_model, register_model
from ._video_resnet import (MID_CHANNEL_RULES, BasicBlock, Conv2Plus1D, R2Plus1dStem, VideoResNet,
                            init_video_weights, midplanes_2plus1d)

__all__ = ["R2Plus1D", "checkpoint_filter_fn", "caffe2_blob_names", "DESIGNS", "MMACTION2_OPTIONS"]

DESIGNS = ("torchvision", "mmaction2")


class MidEpsConv2Plus1D(Conv2Plus1D):
    """`Conv2Plus1D` whose inner BN keeps PyTorch's epsilon (1e-5) whatever the block's: in
    MMAction2 ``Conv2plus1d`` builds its ``bn_s`` from its own default, not the model's 1e-3."""

    def __init__(self, in_planes: int, out_planes: int, midplanes=None, stride: int = 1, padding: int = 1,
                 bn_eps: float = 1e-5):
        super().__init__(in_planes, out_planes, midplanes, stride, padding, bn_eps=1e-5)


def factorised_shortcut(conv: nn.Conv3d) -> nn.Sequential:
    """A 1x1x1 projection as MMAction2 builds it from ``Conv2plus1d``: 1x1x1 conv (spatial stride)
    -> BN -> ReLU -> 1x1x1 conv (temporal stride), mid = floor(3 N_in N_out / (N_in + 3 N_out))."""
    n_in, n_out, s = conv.in_channels, conv.out_channels, conv.stride
    mid = midplanes_2plus1d(n_in, n_out, 3, 1)
    return nn.Sequential(nn.Conv3d(n_in, mid, 1, (1, s[1], s[2]), bias=False), nn.BatchNorm3d(mid),
                         nn.ReLU(inplace=True), nn.Conv3d(mid, n_out, 1, (s[0], 1, 1), bias=False))


class R2Plus1D(VideoResNet):
    """R(2+1)D ResNet with BasicBlocks.

    Args:
        num_classes: classifier outputs.
        layers: BasicBlocks per stage ((2,2,2,2) for 18 layers, (3,4,6,3) for 34).
        mid_channels: ``"torchvision"`` or ``"paper"`` mid-channel rule (module docstring).
        bn_eps: BatchNorm epsilon (1e-5 torchvision, 1e-3 for Caffe2-trained VMZ weights).
        dropout: dropout before ``fc`` (0 in torchvision and VMZ).
        zero_init_residual: zero the last BN of each block at init.
        in_chans: input channels.
        design: ``"torchvision"`` (also VMZ's port) or ``"mmaction2"``: MMAction2's
            ``ResNet2Plus1d``, whose stem is a (2+1)D conv by the mid-channel rule (83 mid
            channels) followed by a max-pool, whose projections are (2+1)D 1x1x1 convs with a BN
            and ReLU inside, and whose inner BNs keep epsilon 1e-5.
    """

    def __init__(self, num_classes: int = 400, layers: Sequence[int] = (2, 2, 2, 2),
                 mid_channels: str = "torchvision", bn_eps: float = 1e-5, dropout: float = 0.0,
                 zero_init_residual: bool = False, in_chans: int = 3, design: str = "torchvision"):
        if design not in DESIGNS:
            raise UsageError(f"design must be one of {DESIGNS}, got {design!r}")
        mma = design == "mmaction2"
        stem = functools.partial(R2Plus1dStem, mid=0, mid_bn_eps=1e-5, pool=True) if mma else R2Plus1dStem
        maker = MidEpsConv2Plus1D if mma else Conv2Plus1D
        super().__init__(BasicBlock, [maker] * 4, layers, stem, num_classes=num_classes,
                         mid_channels=mid_channels, bn_eps=bn_eps, dropout=dropout,
                         zero_init_residual=zero_init_residual, in_chans=in_chans)
        self.design = design
        if mma:
            for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
                if stage[0].downsample is not None:
                    stage[0].downsample[0] = factorised_shortcut(stage[0].downsample[0])
            init_video_weights(self, zero_init_residual)


# -- official checkpoints ------------------------------------------------------------------
_BN_SUFFIXES = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}


def caffe2_blob_names(model: R2Plus1D) -> Dict[str, str]:
    """Our state-dict key -> VMZ Caffe2 blob name (``r3d_model.py`` naming).

    Blocks are numbered globally (``comp_0`` ... ``comp_15`` for 34 layers); in each (2+1)D conv
    ``_middle`` is the spatial half. Caffe2 stores the running variance as ``_riv``.
    """
    names = {}

    def bn(ours: str, blob: str):
        for attr, suffix in _BN_SUFFIXES.items():
            names[f"{ours}.{attr}"] = f"{blob}_{suffix}"

    names["stem.0.weight"] = "conv1_middle_w"
    bn("stem.1", "conv1_middle_spatbn_relu")
    names["stem.3.weight"] = "conv1_w"
    bn("stem.4", "conv1_spatbn_relu")
    i = 0
    for s in range(1, 5):
        for j, block in enumerate(getattr(model, f"layer{s}")):
            p = f"layer{s}.{j}"
            for c in (1, 2):
                names[f"{p}.conv{c}.0.0.weight"] = f"comp_{i}_conv_{c}_middle_w"
                bn(f"{p}.conv{c}.0.1", f"comp_{i}_spatbn_{c}_middle")
                names[f"{p}.conv{c}.0.3.weight"] = f"comp_{i}_conv_{c}_w"
                bn(f"{p}.conv{c}.1", f"comp_{i}_spatbn_{c}")
            if block.downsample is not None:
                names[f"{p}.downsample.0.weight"] = f"shortcut_projection_{i}_w"
                bn(f"{p}.downsample.1", f"shortcut_projection_{i}_spatbn")
            i += 1
    n = model.fc.out_features
    names["fc.weight"], names["fc.bias"] = f"last_out_L{n}_w", f"last_out_L{n}_b"
    return names


def _from_caffe2(blobs: Dict, model: R2Plus1D) -> Dict[str, torch.Tensor]:
    fc = [k for k in blobs if re.fullmatch(r"last_out_L\d+_w", k)]
    if len(fc) != 1:
        raise BadCheckpoint(f"Caffe2 blobs must hold exactly one 'last_out_L<classes>_w' classifier, found {fc}")
    n = int(fc[0][len("last_out_L"):-2])
    table = caffe2_blob_names(model)
    # the classifier blob is named after its size, which may differ from the model's
    table["fc.weight"], table["fc.bias"] = f"last_out_L{n}_w", f"last_out_L{n}_b"
    ours = {blob: key for key, blob in table.items()}
    # unmapped blobs stay under their own names so the loader reports them as unexpected
    return blobs_to_tensors(blobs, lambda name: ours.get(name, name), model.state_dict())


def _check_mid_rule(state_dict: Dict[str, torch.Tensor], model: R2Plus1D) -> None:
    """Name the mid-channel rule a checkpoint was built with when it differs from the model's."""
    key = "layer2.0.conv2.0.0.weight"  # first conv whose width the two rules disagree on
    if key not in state_dict or key not in model.state_dict():
        return
    have, want = state_dict[key].shape[0], model.state_dict()[key].shape[0]
    if have == want:
        return
    inplanes = model.layer2[0].conv1[0][0].in_channels
    widths = {"torchvision": midplanes_2plus1d(inplanes, 128), "paper": midplanes_2plus1d(128, 128)}
    rule = next((r for r in MID_CHANNEL_RULES if widths[r] == have), None)
    if rule is not None:
        raise BadCheckpoint(f"checkpoint uses the {rule!r} (2+1)D mid-channel rule ({key} has {have} mid channels) "
                         f"but the model uses {model.mid_channels!r} ({want}); build it with mid_channels={rule!r}")


# MMAction2's ResNet2Plus1d (ConvModule(conv=Conv2plus1d(conv_s, bn_s, conv_t), bn)) -> ours
_MMA_RENAMES = ((re.compile(r"^backbone\.conv1\.conv\.conv_s\."), "stem.0."),
                (re.compile(r"^backbone\.conv1\.conv\.bn_s\."), "stem.1."),
                (re.compile(r"^backbone\.conv1\.conv\.conv_t\."), "stem.3."),
                (re.compile(r"^backbone\.conv1\.bn\."), "stem.4."),
                (re.compile(r"^backbone\.(layer\d\.\d+\.(?:conv\d|downsample))\.conv\.conv_s\."), r"\1.0.0."),
                (re.compile(r"^backbone\.(layer\d\.\d+\.(?:conv\d|downsample))\.conv\.bn_s\."), r"\1.0.1."),
                (re.compile(r"^backbone\.(layer\d\.\d+\.(?:conv\d|downsample))\.conv\.conv_t\."), r"\1.0.3."),
                (re.compile(r"^backbone\.(layer\d\.\d+\.(?:conv\d|downsample))\.bn\."), r"\1.1."),
                (re.compile(r"^cls_head\.fc_cls\."), "fc."))
MMACTION2_OPTIONS = {"design": "mmaction2", "mid_channels": "paper", "bn_eps": 1e-3}


def _from_mmaction2(state_dict: Dict[str, torch.Tensor], model: R2Plus1D) -> Dict[str, torch.Tensor]:
    if model.design != "mmaction2":
        raise BadCheckpoint("an MMAction2 R(2+1)D checkpoint needs the model built with design='mmaction2' "
                         "(or weights='kinetics400_mmaction2')")
    return rename_keys(state_dict, _MMA_RENAMES)


def checkpoint_filter_fn(checkpoint, model: R2Plus1D) -> Dict[str, torch.Tensor]:
    """Map a torchvision / VMZ PyTorch state dict (bare, ``module.``-prefixed, or inside
    ``state_dict``/``model_state``/``model``), a VMZ Caffe2 blob dict (the ``.pkl``'s ``blobs``)
    or an MMAction2 ``ResNet2Plus1d`` checkpoint (``design='mmaction2'``) to our keys."""
    checkpoint = caffe2_blobs(checkpoint) or checkpoint
    checkpoint = unwrap_state_dict(checkpoint, family="an R(2+1)D")
    if "conv1_middle_w" in checkpoint:
        state_dict = _from_caffe2(checkpoint, model)
    elif "cls_head.fc_cls.weight" in checkpoint:
        state_dict = _from_mmaction2(checkpoint, model)
    else:
        state_dict = checkpoint
    _check_mid_rule(state_dict, model)
    return state_dict


# -- registered variants -------------------------------------------------------------------
_PAPER = "Tran et al., A Closer Look at Spatiotemporal Convolutions for Action Recognition, CVPR 2018"
_TV_MEAN = (0.43216, 0.394666, 0.37645)  # torchvision video preset (also VMZ pt/vmz/func/test.py)
_TV_STD = (0.22803, 0.22145, 0.216989)


def _info(name: str, **kw) -> ModelInfo:
    defaults = dict(name=name, family="r2plus1d", paper=_PAPER, sampling="dense", crop_size=112, resize_size=128,
                    mean=_TV_MEAN, std=_TV_STD, num_classes=400, dataset="kinetics400", min_size=16)
    defaults.update(kw)
    return ModelInfo(**defaults)


@register_model(_info(
    "r2plus1d_18", num_frames=16, sampling_rate=2, test_views=(5, 1), ref_gflops=40.65, ref_params_m=31.51,
    notes="torchvision resamples videos to 15 fps and takes 16 consecutive frames: sampling_rate 2 is that "
          "protocol on 30 fps sources. Its eval resize is a fixed 128x171 (not aspect-preserving); resize_size "
          "128 is the short side. GFLOPs are fvcore's (conv 40.52, torchvision's _ops, + BN 0.13)."),
    weights=(Weights("kinetics400", 400, "kinetics400", ("https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth",),
                     (Result("kinetics400", 67.463, 86.175,
                             "5 clips x 1 centre crop 112 (resize 128x171), 16 consecutive frames at 15 fps",
                             "torchvision R2Plus1D_18_Weights.KINETICS400_V1"),), "pytorch/vision"),),
    bench=BenchPreset(frames=16), filter_fn=checkpoint_filter_fn)
def r2plus1d_18(**kwargs) -> R2Plus1D:
    """R(2+1)D-18, torchvision layout (loads torchvision's Kinetics-400 weights strictly)."""
    return create_model(R2Plus1D, dict(layers=(2, 2, 2, 2), mid_channels="torchvision"), kwargs)


# VMZ's Caffe2 weights converted to PyTorch by moabitcoin/ig65m-pytorch (GitHub release assets; the
# file names carry torch.hub's sha256 prefix). The IG-65M-only releases (487 hashtag classes) are not listed:
# their class names are not published.
_IG65M = "https://github.com/moabitcoin/ig65m-pytorch/releases/download/v1.0.0/"
_VMZ_ZOO = "VMZ c2/tutorials/model_zoo.md (IG-65M pre-trained, Kinetics fine-tuned)"
_VMZ_PORT = "facebookresearch/VMZ (converted by moabitcoin/ig65m-pytorch)"
_MMA_URL = "https://download.openmmlab.com/mmaction/v1.0/recognition/r2plus1d/"


def _mmaction2(tag: str, config: str, stamp: str, top1: float, top5: float, *, frames: int, rate: int) -> Weights:
    """An MMAction2 ``ResNet2Plus1d`` release: its design, ImageNet mean/std, 10 clips x 3 crops at 256."""
    views = f"{frames} frames at stride {rate}, 10 clips x 3 crops, 256 px (short side 256)"
    return Weights(tag, 400, "kinetics400", (f"{_MMA_URL}{config}/{config}_{stamp}.pth",),
                   (Result("kinetics400", top1, top5, views, "open-mmlab/mmaction2 configs/recognition/r2plus1d/"
                                                              "metafile.yml"),),
                   "open-mmlab/mmaction2", f"config {config}; trained from scratch", model_args=MMACTION2_OPTIONS,
                   input_args={"num_frames": frames, "sampling_rate": rate, "crop_size": 256, "resize_size": 256,
                               "test_views": (10, 3), "mean": IMAGENET_MEAN, "std": IMAGENET_STD})


@register_model(_info(
    "r2plus1d_34", num_frames=8, sampling_rate=1, test_views=(10, 1), ref_gflops=38.2, ref_params_m=63.70,
    notes="VMZ mid-channel rule (per conv) and Caffe2 BN epsilon 1e-3. The model takes any clip length: "
          "the 32-frame release (r2plus1d_34_clip32_ft_kinetics_from_ig65m, 80.0 top-1) loads too and "
          "needs 32-frame clips. A Caffe2 .pkl of {'blobs': ...} is read by a numpy-only unpickler "
          "(torch.load(weights_only=True) refuses pickles of numpy arrays). The VMZ zoo's GFLOPs (49.8) are ~1.3x the fvcore count at 112 px."),
    weights=(Weights("kinetics400", 400, "kinetics400", (_IG65M + "r2plus1d_34_clip8_ft_kinetics_from_ig65m-0aa0550b.pth",),
                     (Result("kinetics400", 74.9, 91.8,
                             "video-level, 10 uniform clips x 1 centre crop 112 (resize 128x171), 8 frames",
                             _VMZ_ZOO),),
                     _VMZ_PORT, "IG-65M pre-trained, Kinetics fine-tuned, 8-frame clips"),
             Weights("kinetics400_32f", 400, "kinetics400",
                     (_IG65M + "r2plus1d_34_clip32_ft_kinetics_from_ig65m-ade133f1.pth",),
                     (Result("kinetics400", 80.0, 94.2,
                             "video-level, 10 uniform clips x 1 centre crop 112 (resize 128x171), 32 frames",
                             _VMZ_ZOO),),
                     _VMZ_PORT, "IG-65M pre-trained, Kinetics fine-tuned, 32-frame clips",
                     input_args={"num_frames": 32}),
             _mmaction2("kinetics400_mmaction2", "r2plus1d_r34_8xb8-8x8x1-180e_kinetics400-rgb", "20220812-47cfe041",
                        69.76, 88.41, frames=8, rate=8),
             _mmaction2("kinetics400_32f_mmaction2", "r2plus1d_r34_8xb8-32x2x1-180e_kinetics400-rgb",
                        "20220812-4270588c", 75.46, 92.28, frames=32, rate=2)),
    bench=BenchPreset(frames=16, model_args={"layers": [2, 2, 2, 2]}),  # 18 layers, VMZ mid-channel rule, BN eps
    filter_fn=checkpoint_filter_fn)
def r2plus1d_34(**kwargs) -> R2Plus1D:
    """R(2+1)D-34, VMZ layout (paper mid-channel rule, BN eps 1e-3)."""
    return create_model(R2Plus1D, dict(layers=(3, 4, 6, 3), mid_channels="paper", bn_eps=1e-3), kwargs)
