"""I3D ResNet: a 3D ResNet-50 whose bottlenecks inflate conv "a" to 3x1x1 in a per-stage pattern.

Wang et al., "Non-local Neural Networks", CVPR 2018 (its I3D baseline, inflated as Carreira &
Zisserman, CVPR 2017), in the 8x8 setting of PySlowFast (``video_model_builder.ResNet`` with
``MODEL.ARCH: i3d``, ``configs/Kinetics/I3D_8x8_R50.yaml``) and PyTorchVideo's hub ``i3d_r50``
(``create_resnet``), layer for layer: a 5x7x7 stem, ResNet-50 bottleneck stages whose conv "a"
is 3x1x1 or 1x1x1 (res2 3,3,3; res3 3,1,3,1; res4 3,1,3,1,3,1; res5 1,3,1), a 2x1x1 temporal
max-pool after res2, and SlowFast's head for one pathway (average-pool windows fixed by the
training clip and crop, stride 1, dropout, fc). No non-local blocks.

    [B, 3, T, H, W] -> stem: conv 5x7x7 /1,2,2 -> BN -> ReLU -> max-pool 1x3x3 /1,2,2
      -> res2 (kt 3,3,3) -> max-pool 2x1x1 /2,1,1 -> res3 (kt 3,1,3,1) /2
      -> res4 (kt 3,1,3,1,3,1) /2 -> res5 (kt 1,3,1) /2          [B, 2048, T/2, H/32, W/32]
      -> mean of avg-pool windows [T/2, crop/32, crop/32] stride 1 -> dropout -> fc

Built from the shared trunk's `Stem`, `Bottleneck` and `Pathway` (`zoo.models._resnet3d`): the keys are
``backbone.stem.*``, ``backbone.res2.0.conv_a.*``..., ``fc.*``. `checkpoint_filter_fn` loads
PyTorchVideo hub / model-zoo ``.pyth`` (``model_state``, ``blocks.0.conv.weight``...; the pool
is ``blocks.2``, the head ``blocks.6.proj``), PySlowFast ``.pyth`` (``model_state``,
``s1.pathway0_stem.conv.weight``, ``s2.pathway0_res0.branch2.a.weight``...,
``head.projection.weight``) and PySlowFast's Caffe2 ``.pkl`` (``blobs``). Our eval output is
logits: PySlowFast's head applies a softmax at test time, PyTorchVideo's hub model does not.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn as nn

from .._errors import BadCheckpoint, UsageError
from ._checks import check_input
from ._loading import unwrap_state_dict
from ._imagenet import imagenet_weights, is_torchvision, resnet_3d
from ._info import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD, BenchPreset, ModelInfo, Result, Weights
from ._registry import create_model, register_model
from ._video_resnet import VideoClassifier
from ._resnet3d import (PTV_RESNET_POOL1, STAGE_DEPTHS, Pathway, init_weights, is_mmaction2, map_checkpoint,
                        pool_windows, window_softmax)

__all__ = ["I3DResNet", "I3D_TEMPORAL_KERNELS", "TEMPORAL_POOL", "PTV_LAYOUT", "checkpoint_filter_fn"]

# Temporal kernel of the stem, then of conv "a" in res2..res5, a tuple cycled over the stage's
# blocks: PySlowFast _TEMPORAL_KERNEL_BASIS["i3d"], PyTorchVideo i3d_r50's stage_conv_a_kernel_size.
I3D_TEMPORAL_KERNELS = (5, 3, (3, 1), (3, 1), (1, 3))
# Max-pool [2, 1, 1] stride [2, 1, 1] after res2: PySlowFast _POOL1["i3d"], PyTorchVideo stage1_pool.
TEMPORAL_POOL = 2
# PyTorchVideo create_resnet(stage1_pool=...): stem blocks.0, res2 blocks.1, pool blocks.2, res3..res5
# blocks.3..5, head blocks.6
PTV_LAYOUT = PTV_RESNET_POOL1
_PYSLOWFAST_TEST = {"window_softmax": True}  # PySlowFast's test head, behind both zoos' numbers


class I3DResNet(VideoClassifier):
    """I3D ResNet (PySlowFast ``ResNet``, arch ``i3d``) on one ``[B, 3, T, H, W]`` clip, T even.

    Args:
        num_classes: classifier outputs.
        depth: ResNet depth (50 or 101; 26 is the small `zoo compare` network).
        num_frames: frames T of the training clip; with ``train_crop_size`` it fixes the head's
            pooling window ``[T/2, crop/32, crop/32]``, stride 1 (PySlowFast ``ResNetBasicHead``;
            PyTorchVideo's ``head_pool_kernel_size=(4, 7, 7)`` for 8 frames at 224). Windows
            larger than the feature map are clipped to it, so smaller inputs pool globally.
        train_crop_size: the training crop size (224); 0: the head pools the whole map
            (MMAction2's ``I3DHead``).
        dropout: dropout before the classifier.
        window_softmax: in eval mode, PySlowFast's test head (a softmax per pooling window,
            averaged; log-probabilities out) instead of logits, as its published numbers.
        stem_strides: temporal strides of the stem conv and its max-pool: (1, 1) in PySlowFast
            and PyTorchVideo, (2, 2) in MMAction2 (``conv1_stride_t``, ``pool1_stride_t``).
    """

    def __init__(self, num_classes: int = 400, depth: int = 50, num_frames: int = 8,
                 train_crop_size: int = 224, dropout: float = 0.5, window_softmax: bool = False,
                 stem_strides: Tuple[int, int] = (1, 1)):
        super().__init__()
        if depth not in STAGE_DEPTHS:
            raise UsageError(f"depth must be one of {sorted(STAGE_DEPTHS)}, got {depth}")
        if num_frames < TEMPORAL_POOL or num_frames % TEMPORAL_POOL:
            raise UsageError(f"num_frames must be a positive multiple of {TEMPORAL_POOL} (the temporal pool after "
                             f"res2), got {num_frames}")
        self.num_classes = num_classes
        self.backbone = Pathway(64, STAGE_DEPTHS[depth], I3D_TEMPORAL_KERNELS, temporal_pool=TEMPORAL_POOL,
                                stem_strides=tuple(stem_strides))
        self.num_features = self.backbone.num_features
        s = train_crop_size // 32 if train_crop_size else None
        self.pool_size = None if s is None else (num_frames // TEMPORAL_POOL, s, s)
        self.window_softmax = window_softmax
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        init_weights(self, self.fc)

    # -- timm-style interface (get_classifier, reset_classifier, forward: `VideoClassifier`) ---
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> ``[B, 2048, T/2, H/32, W/32]``."""
        check_input(x, model=type(self).__name__, frames_multiple=TEMPORAL_POOL)
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """`pool_windows` of ``pool_size``, then dropout and ``fc`` (or, with ``window_softmax``
        in eval mode, PySlowFast's per-window softmax head)."""
        if self.window_softmax and not self.training and not pre_logits:
            return window_softmax([features], [self.pool_size], self.fc)
        x = pool_windows(features, self.pool_size)
        if pre_logits:
            return x
        return self.fc(self.dropout(x))


# -- official checkpoints ------------------------------------------------------------------
def checkpoint_filter_fn(checkpoint, model: I3DResNet) -> Dict[str, torch.Tensor]:
    """Map an official I3D ResNet checkpoint or a zoo one to our keys.

    Accepts the raw object `read_checkpoint` returned: PyTorchVideo ``.pyth`` (``model_state``,
    keys ``blocks.0.conv.weight``..., optionally ``model.``-prefixed as in PySlowFast's copies),
    PySlowFast ``.pyth`` (``model_state``, keys ``s1.pathway0_stem.conv.weight``...), Caffe2
    ``.pkl`` (``{"blobs": {name: ndarray}}``), MMAction2 ``.pth`` (``backbone.conv1.conv``,
    ``cls_head.fc_cls``; needs the model built with `MMACTION2_OPTIONS`), torchvision's ImageNet
    ResNet-50 (inflated, MMAction2's initialisation) or a bare state dict.
    """
    raw = unwrap_state_dict(checkpoint, strip_prefixes=(), family="an I3D ResNet") \
        if isinstance(checkpoint, dict) and "blobs" not in checkpoint else None
    if raw is not None and is_torchvision(raw):
        return resnet_3d(raw, model.state_dict())
    if raw is not None and is_mmaction2(raw):
        have = {"stem_strides": model.backbone.stem.conv.stride[0], "train_crop_size": model.pool_size}
        if have != {"stem_strides": 2, "train_crop_size": None}:
            raise BadCheckpoint("an MMAction2 I3D checkpoint needs the model built with stem_strides=(2, 2) and "
                             "train_crop_size=0 (its stem and pool1 stride 2 in time, a global head pool), "
                             "or weights='kinetics400_mmaction2'")
    return map_checkpoint(checkpoint, model, ptv_layout=PTV_LAYOUT, family="an I3D ResNet")


# MMAction2's I3D: stem conv and pool1 temporal stride 2 (conv1_stride_t, pool1_stride_t), global head pool
MMACTION2_OPTIONS = {"stem_strides": [2, 2], "train_crop_size": 0}


# -- registered variants -------------------------------------------------------------------
_PAPER = "Wang et al., Non-local Neural Networks, CVPR 2018 (its I3D ResNet-50 baseline)"
_VIEWS = "10 clips x 3 crops, 256 px (short side 256, 256x256 crops)"
_PTV_ZOO = "facebookresearch/SlowFast projects/pytorchvideo/README.md (PyTorchVideo model zoo)"
_PYSF_ZOO = "facebookresearch/SlowFast MODEL_ZOO.md (Caffe2 weights)"
_MMA_CONFIG = "i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb"
_MMA_FILE = (f"https://download.openmmlab.com/mmaction/v1.0/recognition/i3d/{_MMA_CONFIG}/"
             f"{_MMA_CONFIG}_20220812-e213c223.pth")


@register_model(ModelInfo(
    name="i3d_r50", family="i3d_resnet", paper=_PAPER, num_frames=8, num_segments=1, frames_per_segment=1,
    sampling="dense", sampling_rate=8, crop_size=256, resize_size=256, train_jitter=(256, 320),
    mean=KINETICS_MEAN, std=KINETICS_STD, test_views=(10, 3), num_classes=400, dataset="kinetics400",
    ref_gflops=37.28, ref_params_m=28.04,
    min_size=32, frames_arg="num_frames",
    notes="8 input frames at stride 8 (64 source frames), trained on 224 crops. Same network as PyTorchVideo's "
          "hub i3d_r50 and PySlowFast's configs/Kinetics/I3D_8x8_R50. GFLOPs measured with fvcore on PyTorchVideo's "
          "i3d_r50 at 256x256 (28.54 at 224x224; the PyTorchVideo zoo quotes 37.53)."),
    weights=(Weights("kinetics400", 400, "kinetics400",
                     ("https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/I3D_8x8_R50.pyth",),
                     (Result("kinetics400", 73.27, 90.70, _VIEWS, _PTV_ZOO),), "facebookresearch/pytorchvideo",
                     eval_args=_PYSLOWFAST_TEST),
             Weights("kinetics400_pyslowfast", 400, "kinetics400",
                     ("https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/kinetics400/I3D_8x8_R50.pkl",),
                     (Result("kinetics400", 73.5, 90.8, _VIEWS, _PYSF_ZOO),), "facebookresearch/SlowFast (PySlowFast)",
                     eval_args=_PYSLOWFAST_TEST),
             Weights("kinetics400_mmaction2", 400, "kinetics400", (_MMA_FILE,),
                     (Result("kinetics400", 73.47, 91.27, "32 frames at stride 2, 10 clips x 3 crops, 256 px",
                             "open-mmlab/mmaction2 configs/recognition/i3d/metafile.yml"),), "open-mmlab/mmaction2",
                     "config i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb",
                     model_args=MMACTION2_OPTIONS,
                     input_args={"num_frames": 32, "sampling_rate": 2, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}),
             imagenet_weights("resnet50", "2D ResNet-50 inflated to 3D (each kernel repeated over its temporal size "
                              "and divided by it), as MMAction2's ImageNet-pretrained I3D starts; ImageNet mean/std",
                              input_args={"mean": IMAGENET_MEAN, "std": IMAGENET_STD})),
    # 4 frames: at sampling rate 8 they span the 32 frames of a SynthMotion clip (frames_arg sets num_frames)
    bench=BenchPreset(frames=4, model_args=dict(depth=26, train_crop_size=32)),
    filter_fn=checkpoint_filter_fn)
def i3d_r50(**kwargs) -> I3DResNet:
    """I3D ResNet-50, 8x8 (PyTorchVideo's hub i3d_r50, PySlowFast's I3D_8x8_R50)."""
    return create_model(I3DResNet, dict(depth=50), kwargs)
