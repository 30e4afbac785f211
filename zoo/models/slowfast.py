"""SlowFast: two 3D ResNets at two frame rates, joined by lateral connections.

Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019. Layer for layer
as PySlowFast (facebookresearch/SlowFast, ``video_model_builder.SlowFast``) and PyTorchVideo's
``create_slowfast``: stems 1x7x7 (slow, 64 ch) and 5x7x7 (fast, 64/beta_inv ch), bottleneck
stages whose first conv ("a") carries the temporal kernel (slow 1,1,3,3 / fast 3,3,3,3 for
res2..res5), no temporal downsampling, and time-strided conv laterals (kernel 5 or 7, stride
alpha, 2x the fast channels, BN, ReLU) concatenated into the slow pathway after the stem and
after res2, res3 and res4. The head average-pools each pathway with a kernel fixed by the
training crop (stride 1, fully convolutional at larger test crops), averages the windows,
concatenates (2048 + 256 = 2304 for R50) and classifies.

    x [B, 3, T, H, W] ------------------------------------------------> fast (T frames)
      '-> index_select(linspace(0, T-1, T/alpha)) -> slow (T/alpha frames)

    slow: stem --+-- res2 --+-- res3 --+-- res4 --+-- res5 --.
                 ^          ^          ^          ^          +-> pool, concat -> dropout -> fc
    fast: stem --'-- res2 --'-- res3 --'-- res4 --'-- res5 --'
          (each ^ is a lateral: conv [k,1,1] stride [alpha,1,1] -> BN -> ReLU, concat on C)

Official checkpoints in three layouts load through `checkpoint_filter_fn`: PySlowFast
``.pyth`` (``model_state``, ``s1.pathway0_stem...``), PySlowFast's Caffe2 ``.pkl`` (``blobs``,
``res2_0_branch2a_w`` / ``t_...`` for the fast pathway; read with `read_caffe2_pkl`) and
PyTorchVideo hub / model-zoo ``.pyth`` (``blocks.*``). Our eval output is logits: PySlowFast's
head applies a softmax at test time, PyTorchVideo's hub model does not.

`Stem`, `Bottleneck`, `Pathway`, the head's window pooling and the key converters live in the
shared trunk (`zoo.models._resnet3d`), which also serves the single-pathway ResNets of PySlowFast's
``ResNet`` class (`zoo.models.i3d_resnet`); they are re-exported here.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import BadCheckpoint, UsageError
from ._checks import check_input
from ._loading import unwrap_state_dict
from ._caffe2 import read_caffe2_pkl
from ._info import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD, BenchPreset, ModelInfo, Result, Weights
from ._registry import create_model, register_model
from ._resnet3d import (FAST_TEMPORAL_KERNELS, PTV_RESNET_POOL1, PTV_SLOWFAST, SLOW_TEMPORAL_KERNELS, STAGE_DEPTHS,
                        Bottleneck, Pathway, PTVLayout, Stem, block_temporal_kernels, bn3d, init_classifier,
                        init_weights, map_checkpoint, pool_windows, to_caffe2_layout, to_pyslowfast_layout,
                        to_pytorchvideo_layout, window_softmax, is_mmaction2)
from ._video_resnet import VideoClassifier

__all__ = ["SlowFast", "Bottleneck", "Stem", "Pathway", "FuseFastToSlow", "slow_indices", "block_temporal_kernels",
           "pool_windows", "init_weights", "init_classifier", "PTVLayout", "PTV_SLOWFAST", "PTV_RESNET_POOL1",
           "map_checkpoint", "checkpoint_filter_fn", "read_caffe2_pkl", "to_pyslowfast_layout",
           "to_pytorchvideo_layout", "to_caffe2_layout"]

SLOW_FRAMES = ("linspace", "strided")


def slow_indices(num_frames: int, alpha: int, rule: str = "linspace") -> torch.Tensor:
    """Frames of a ``num_frames`` clip fed to the slow pathway: ``"linspace"`` (PySlowFast
    ``PackPathway``): ``linspace(0, T-1, T // alpha)`` truncated, e.g. T=32, alpha=4 -> 0 4 8 13
    17 22 26 31; ``"strided"`` (MMAction2's nearest ``interpolate``): every alpha-th, 0 4 8 ... 28."""
    if rule == "strided":
        return torch.arange(0, num_frames - num_frames % alpha, alpha)
    return torch.linspace(0, num_frames - 1, num_frames // alpha, dtype=torch.float32).long()


class FuseFastToSlow(nn.Module):
    """Lateral: conv [k, 1, 1] stride [alpha, 1, 1] on the fast features -> BN -> ReLU (or the
    conv alone: MMAction2's laterals), concatenated onto the slow features along channels."""

    def __init__(self, fast_channels: int, channel_ratio: int, kernel: int, alpha: int, norm: bool = True):
        super().__init__()
        self.conv = nn.Conv3d(fast_channels, fast_channels * channel_ratio, (kernel, 1, 1),
                              stride=(alpha, 1, 1), padding=(kernel // 2, 0, 0), bias=False)
        self.bn = bn3d(fast_channels * channel_ratio) if norm else None

    def forward(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        lateral = self.conv(fast)
        if self.bn is not None:
            lateral = F.relu(self.bn(lateral), inplace=True)
        return torch.cat([slow, lateral], 1)


class SlowFast(VideoClassifier):
    """SlowFast ResNet (Feichtenhofer et al., ICCV 2019) on one ``[B, 3, T, H, W]`` clip.

    Args:
        num_classes: classifier outputs.
        depth: ResNet depth of both pathways (50 or 101; 26 is the small `zoo compare` network).
        alpha: frame-rate ratio; the slow pathway sees T/alpha frames, the lateral stride.
        beta_inv: the fast pathway has 1/beta_inv of the slow pathway's channels.
        fusion_kernel: temporal kernel of the lateral convs (5 for 4x16, 7 for 8x8 R50).
        fusion_ratio: lateral output channels = fusion_ratio x fast channels.
        num_frames: frames T of the training clip; with ``train_crop_size`` it fixes the head's
            pooling window (PySlowFast: ``[T/alpha, crop/32, crop/32]`` and ``[T, crop/32,
            crop/32]``, stride 1). Windows larger than the feature map are clipped to it, so
            smaller inputs pool globally.
        train_crop_size: the training crop size (224).
        dropout: dropout before the classifier.
        window_softmax: in eval mode, PySlowFast's test head (`window_softmax`: a softmax per
            pooling window, averaged; log-probabilities out) instead of logits; what its
            published numbers at 256 px crops were measured with.
        lateral_norm: BN + ReLU after each lateral conv (PySlowFast, PyTorchVideo); False: the
            conv alone (MMAction2).
        slow_frames: how the slow pathway's frames are picked (`slow_indices`): ``"linspace"``
            (PySlowFast) or ``"strided"`` (MMAction2).

    ``train_crop_size`` 0: the head pools each pathway's whole map (MMAction2's head).
    """

    def __init__(self, num_classes: int = 400, depth: int = 50, alpha: int = 4, beta_inv: int = 8,
                 fusion_kernel: int = 7, fusion_ratio: int = 2, num_frames: int = 32,
                 train_crop_size: int = 224, dropout: float = 0.5, window_softmax: bool = False,
                 lateral_norm: bool = True, slow_frames: str = "linspace"):
        super().__init__()
        if depth not in STAGE_DEPTHS:
            raise UsageError(f"depth must be one of {sorted(STAGE_DEPTHS)}, got {depth}")
        if num_frames % alpha:
            raise UsageError(f"num_frames ({num_frames}) must be a multiple of alpha ({alpha})")
        if slow_frames not in SLOW_FRAMES:
            raise UsageError(f"slow_frames must be one of {SLOW_FRAMES}, got {slow_frames!r}")
        if fusion_kernel % 2 == 0:
            raise UsageError(f"fusion_kernel must be odd to keep T/alpha slow frames, got {fusion_kernel}")
        self.num_classes = num_classes
        self.alpha = alpha
        self.slow_frames = slow_frames
        depths = STAGE_DEPTHS[depth]
        slow_width, fast_width = 64, 64 // beta_inv
        # Lateral i feeds the slow stage i: fast stem (8 ch) and res2..res4 outputs, x fusion_ratio.
        fast_outs = [fast_width] + [fast_width * 4 * 2 ** i for i in range(3)]
        self.fast = Pathway(fast_width, depths, FAST_TEMPORAL_KERNELS)
        self.slow = Pathway(slow_width, depths, SLOW_TEMPORAL_KERNELS,
                            extra_in=tuple(c * fusion_ratio for c in fast_outs))
        self.laterals = nn.ModuleList(FuseFastToSlow(c, fusion_ratio, fusion_kernel, alpha, lateral_norm)
                                      for c in fast_outs)
        self.num_features = self.slow.num_features + self.fast.num_features
        s = train_crop_size // 32 if train_crop_size else None
        self.pool_sizes = (None, None) if s is None else ((num_frames // alpha, s, s), (num_frames, s, s))
        self.window_softmax = window_softmax
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self, self.fc)

    # -- timm-style interface (get_classifier, reset_classifier, forward: `VideoClassifier`) ---
    def forward_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[B, 3, T, H, W]`` -> (slow ``[B, 2048, T/alpha, H/32, W/32]``, fast ``[B, 256, T, H/32, W/32]``)."""
        check_input(x, model=type(self).__name__, frames_multiple=self.alpha)
        fast = x
        slow = x.index_select(2, slow_indices(x.shape[2], self.alpha, self.slow_frames).to(x.device))
        slow, fast = self.slow.stem(slow), self.fast.stem(fast)
        slow = self.laterals[0](slow, fast)
        for i, (slow_stage, fast_stage) in enumerate(zip(self.slow.stages(), self.fast.stages())):
            slow, fast = slow_stage(slow), fast_stage(fast)
            if i + 1 < len(self.laterals):
                slow = self.laterals[i + 1](slow, fast)
        return slow, fast

    def forward_head(self, features: Tuple[torch.Tensor, torch.Tensor], pre_logits: bool = False) -> torch.Tensor:
        """Pool each pathway (`pool_windows` of ``pool_sizes``), concat, classify (or, with
        ``window_softmax`` in eval mode, PySlowFast's per-window softmax head)."""
        if self.window_softmax and not self.training and not pre_logits:
            return window_softmax(features, self.pool_sizes, self.fc)
        x = torch.cat([pool_windows(f, size) for f, size in zip(features, self.pool_sizes)], 1)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))


def checkpoint_filter_fn(checkpoint, model: SlowFast) -> Dict[str, torch.Tensor]:
    """Map an official SlowFast checkpoint or a zoo one to our keys.

    Accepts the raw object `read_checkpoint` returned: PySlowFast ``.pyth`` (``model_state``,
    keys ``s1.pathway0_stem.conv.weight``...), PyTorchVideo ``.pyth`` (``model_state``, keys
    ``blocks.0.multipathway_blocks.0.conv.weight``..., optionally ``model.``-prefixed as in
    PySlowFast's copies), Caffe2 ``.pkl`` (``{"blobs": {name: ndarray}}``), MMAction2 ``.pth``
    (``backbone.slow_path.*``, ``cls_head.fc_cls``: its head concatenates fast then slow) or a
    bare state dict. An MMAction2 file needs the model built with `MMACTION2_OPTIONS`.
    """
    raw = unwrap_state_dict(checkpoint, strip_prefixes=(), family="a SlowFast") \
        if isinstance(checkpoint, dict) and "blobs" not in checkpoint else None
    state_dict = map_checkpoint(checkpoint, model, ptv_layout=PTV_SLOWFAST, family="a SlowFast")
    if raw is not None and is_mmaction2(raw):
        _check_mmaction2_options(model)
        fast = model.fast.num_features  # MMAction2's head: [fast | slow] features; ours: [slow | fast]
        if "fc.weight" in state_dict:
            w = state_dict["fc.weight"]
            state_dict["fc.weight"] = torch.cat([w[:, fast:], w[:, :fast]], 1)
    return state_dict


# MMAction2's SlowFast: laterals are a plain conv, the slow frames every alpha-th, a global head pool
MMACTION2_OPTIONS = {"lateral_norm": False, "slow_frames": "strided", "train_crop_size": 0}


def _check_mmaction2_options(model: SlowFast) -> None:
    have = {"lateral_norm": model.laterals[0].bn is not None, "slow_frames": model.slow_frames,
            "train_crop_size": 0 if model.pool_sizes[0] is None else "set"}
    wrong = [k for k, v in MMACTION2_OPTIONS.items() if have[k] != v]
    if wrong:
        raise BadCheckpoint(f"an MMAction2 SlowFast checkpoint needs the model built with "
                         f"{', '.join(f'{k}={MMACTION2_OPTIONS[k]!r}' for k in wrong)} (or weights='kinetics400_mmaction2')")


# -- registered variants -------------------------------------------------------------------
_PAPER = "Feichtenhofer et al., SlowFast Networks for Video Recognition, ICCV 2019"
_VIEWS = "10 clips x 3 crops, 256 px (short side 256, 256x256 crops)"
_PYSF_ZOO = "facebookresearch/SlowFast MODEL_ZOO.md (Caffe2 weights)"
_PTV_ZOO = "facebookresearch/SlowFast projects/pytorchvideo/README.md (PyTorchVideo model zoo)"
_PYSF_URL = "https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/kinetics400/"
_PTV_URL = "https://dl.fbaipublicfiles.com/pytorchvideo/pysf_model_zoo/kinetics/"
_PYSF, _PTV = "facebookresearch/SlowFast (PySlowFast)", "facebookresearch/pytorchvideo"


def _info(name: str, **kw) -> ModelInfo:
    defaults = dict(name=name, family="slowfast", paper=_PAPER, num_frames=32, num_segments=1, frames_per_segment=1,
                    sampling="dense", sampling_rate=2, crop_size=256, resize_size=256, train_jitter=(256, 320),
                    mean=KINETICS_MEAN, std=KINETICS_STD, test_views=(10, 3), num_classes=400,
                    dataset="kinetics400", min_size=32, frames_arg="num_frames")
    defaults.update(kw)
    return ModelInfo(**defaults)


_BENCH = BenchPreset(frames=16, model_args=dict(depth=26, train_crop_size=32))  # frames_arg sets num_frames


# PySlowFast's test (which produced both zoos' numbers): a softmax per head window, then the mean
PYSLOWFAST_TEST = {"window_softmax": True}


_MMA_URL = "https://download.openmmlab.com/mmaction/v1.0/recognition/slowfast/"
_MMA_ZOO = "open-mmlab/mmaction2 configs/recognition/slowfast/metafile.yml"
_MMA_VIEWS = "32 frames at stride 2, 10 clips x 3 crops, 256 px (short side 256)"


def _mmaction2(config: str, stamp: str, top1: float, top5: float) -> Weights:
    """An MMAction2 release: its architecture options, ImageNet mean/std, softmax-averaged views."""
    return Weights("kinetics400_mmaction2", 400, "kinetics400", (f"{_MMA_URL}{config}/{config}_{stamp}.pth",),
                   (Result("kinetics400", top1, top5, _MMA_VIEWS, _MMA_ZOO),), "open-mmlab/mmaction2",
                   f"config {config}", model_args=MMACTION2_OPTIONS,
                   input_args={"mean": IMAGENET_MEAN, "std": IMAGENET_STD})


def _k400(tag: str, file: str, top1: float, top5: float, zoo: str, project: str) -> Weights:
    return Weights(tag, 400, "kinetics400", (file,), (Result("kinetics400", top1, top5, _VIEWS, zoo),), project,
                   eval_args=PYSLOWFAST_TEST)


@register_model(_info(
    "slowfast_4x16_r50", ref_gflops=36.34, ref_params_m=34.48,
    notes="32 input frames at stride 2; the slow pathway takes 4 of them (alpha 8). GFLOPs measured with "
          "fvcore on PySlowFast at 256x256 (the PyTorchVideo zoo quotes 36.69)."),
    weights=(_k400("kinetics400", _PYSF_URL + "SLOWFAST_4x16_R50.pkl", 75.6, 92.0, _PYSF_ZOO, _PYSF),
             _k400("kinetics400_pytorchvideo", _PTV_URL + "SLOWFAST_4x16_R50.pyth", 75.34, 91.89, _PTV_ZOO, _PTV),
             _mmaction2("slowfast_r50_8xb8-4x16x1-256e_kinetics400-rgb", "20220901-701b0f6f", 75.55, 92.35)),
    bench=_BENCH, filter_fn=checkpoint_filter_fn)
def slowfast_4x16_r50(**kwargs) -> SlowFast:
    """SlowFast 4x16 R50: alpha 8, lateral kernel 5."""
    return create_model(SlowFast, dict(depth=50, alpha=8, fusion_kernel=5), kwargs)


@register_model(_info(
    "slowfast_8x8_r50", ref_gflops=66.07, ref_params_m=34.57,
    notes="32 input frames at stride 2; the slow pathway takes 8 of them (alpha 4). Same network as "
          "PyTorchVideo's hub slowfast_r50. GFLOPs measured with fvcore on PySlowFast at 256x256 (the "
          "PyTorchVideo zoo quotes 65.71)."),
    weights=(_k400("kinetics400", _PYSF_URL + "SLOWFAST_8x8_R50.pkl", 77.0, 92.6, _PYSF_ZOO, _PYSF),
             _k400("kinetics400_pytorchvideo", _PTV_URL + "SLOWFAST_8x8_R50.pyth", 76.94, 92.69, _PTV_ZOO, _PTV),
             _mmaction2("slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb", "20220818-1cb6dfc8", 76.80, 92.99)),
    bench=_BENCH, filter_fn=checkpoint_filter_fn, aliases=("slowfast_r50",))
def slowfast_8x8_r50(**kwargs) -> SlowFast:
    """SlowFast 8x8 R50: alpha 4, lateral kernel 7 (also registered as ``slowfast_r50``)."""
    return create_model(SlowFast, dict(depth=50, alpha=4, fusion_kernel=7), kwargs)


@register_model(_info(
    "slowfast_8x8_r101", ref_gflops=126.43, ref_params_m=62.83,
    notes="PyTorchVideo hub slowfast_r101 / PySlowFast configs/Kinetics/pytorchvideo/SLOWFAST_8x8_R101: "
          "alpha 4, lateral kernel 5. GFLOPs measured with fvcore on PyTorchVideo's slowfast_r101 at 256x256 "
          "(126.43; the PyTorchVideo zoo quotes 127.20); params as the zoo (62.83 M)."),
    weights=(_k400("kinetics400", _PTV_URL + "SLOWFAST_8x8_R101.pyth", 77.90, 93.27, _PTV_ZOO, _PTV),),
    bench=_BENCH, filter_fn=checkpoint_filter_fn)
def slowfast_8x8_r101(**kwargs) -> SlowFast:
    """SlowFast 8x8 R101: alpha 4, lateral kernel 5 (PyTorchVideo's slowfast_r101)."""
    return create_model(SlowFast, dict(depth=101, alpha=4, fusion_kernel=5), kwargs)
