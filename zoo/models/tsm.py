"""TSN and TSM: 2D ResNets over sampled segments, with or without temporal shift.

* TSN: Wang et al., "Temporal Segment Networks", ECCV 2016 — a per-frame 2D CNN whose
  per-frame logits are averaged over the segments (frame-order invariant).
* TSM: Lin et al., "TSM: Temporal Shift Module for Efficient Video Understanding", ICCV 2019
  — shifts 1/8 of the channels one frame forward and 1/8 one frame back (zero padded) inside
  every residual block, for zero extra FLOPs. Layout as the official
  mit-han-lab/temporal-shift-module code: ``blockres`` placement (shift on the residual
  branch before ``conv1``), ``block`` placement as an option, every other block for
  ResNet-101 and deeper, optional temporal pooling before ``layer2``. ``online=True`` is the
  paper's online variant (Sec. 3.3): 1/8 of the channels shifted one frame forward in time only,
  so a stream is run frame by frame, each shift caching the channels it hands to the next frame
  (`TSMStream`): one frame's cost per prediction.

The 2D backbone is the shared trunk (`zoo.models._trunk2d.Trunk2D`: timm's ResNet, its state-dict
keys torchvision's), the shift a `TemporalShift` plugged at each block's ``pre_residual`` point
(``pre_block`` for the ``block`` placement) and the temporal pool a `TemporalPool` after
``layer1``, so official TSM checkpoints map onto ``backbone.*`` with a few renames
(`checkpoint_filter_fn`).

    [B, 3, T, H, W] -> [B*T, 3, H, W] -> trunk (+ shifts) -> GAP -> dropout -> fc -> mean over T
"""
from __future__ import annotations

import math
import re
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import UsageError
from ._segment import SegmentConsensus
from ._loading import rename_keys, unwrap_state_dict
from ._export import register_export_form, register_int8_passthrough
from ._imagenet import imagenet_weights, is_torchvision, resnet_2d
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo, Result, Weights
from ._registry import create_model, register_model
from ._trunk2d import HookedBlock, Trunk2D

__all__ = ["temporal_shift", "TemporalShift", "TemporalPool", "shifted_blocks", "TSM", "TSMStream",
           "checkpoint_filter_fn", "SHIFT_PLACES"]

SHIFT_PLACES = ("blockres", "block")


def temporal_shift(x: torch.Tensor, num_segments: int, fold_div: int = 8, online: bool = False) -> torch.Tensor:
    """Shift channels along time: ``x`` is ``[N*T, C, H, W]`` with T = ``num_segments``.

    Channels ``[0, C/fold_div)`` take the next frame's values (t <- t+1), channels
    ``[C/fold_div, 2C/fold_div)`` the previous frame's (t <- t-1); frames shifted in from
    outside the clip are zeros. The other channels pass unchanged. ``online``: only channels
    ``[0, C/fold_div)`` move, and they take the previous frame's values (the online TSM; no
    frame sees the future). The output keeps ``x``'s memory layout (channels-last stays
    channels-last).
    """
    if torch.compiler.is_compiling():
        # Opaque to inductor: its pointwise rewrite of the slice copies below loses the
        # channels-last layout and splits the convs' fused epilogues (TSM-R50 compiled ran
        # slower than not compiled); as an extern call the compiled graph keeps both.
        return _temporal_shift_op(x, num_segments, fold_div, online)
    return _shift_copy(x, num_segments, fold_div, online=online)


def _shift_folds(c: int, fold_div: int, online: bool):
    """(channels taking the next frame's values, channels taking the previous frame's, the rest)."""
    fold = c // fold_div
    if online:
        return slice(0, 0), slice(0, fold), slice(fold, c)
    return slice(0, fold), slice(fold, 2 * fold), slice(2 * fold, c)


def _shift_copy(x: torch.Tensor, num_segments: int, fold_div: int, reverse: bool = False,
                online: bool = False) -> torch.Tensor:
    # one write of the output, no full-tensor temporaries (faster than a clone plus rewriting the
    # two shifted folds, and than the official zeros_like form, in either layout); ``reverse`` swaps
    # the two directions (the shift's adjoint, for backward)
    nt, c, h, w = x.shape
    x5 = x.reshape(nt // num_segments, num_segments, c, h, w)  # a view unless x has odd strides
    from_next, from_prev, rest = _shift_folds(c, fold_div, online)
    if reverse:
        from_next, from_prev = from_prev, from_next
    out = torch.empty_like(x5)
    out[:, :-1, from_next] = x5[:, 1:, from_next]
    out[:, -1:, from_next] = 0
    out[:, 1:, from_prev] = x5[:, :-1, from_prev]
    out[:, :1, from_prev] = 0
    out[:, :, rest] = x5[:, :, rest]
    return out.view(nt, c, h, w)


# flexible_layout: inductor hands the op its input in the layout it has (channels-last), not in the
# layout it was traced with (an exported program's is contiguous), which would cost a copy each way
@torch.library.custom_op("zoo::temporal_shift", mutates_args=(), tags=(torch.Tag.flexible_layout,))
def _temporal_shift_op(x: torch.Tensor, num_segments: int, fold_div: int, online: bool) -> torch.Tensor:
    return _shift_copy(x, num_segments, fold_div, online=online)


@_temporal_shift_op.register_fake
def _(x: torch.Tensor, num_segments: int, fold_div: int, online: bool) -> torch.Tensor:
    return torch.empty_like(x)


def _temporal_shift_setup(ctx, inputs, output):
    ctx.num_segments, ctx.fold_div, ctx.online = inputs[1], inputs[2], inputs[3]


def _temporal_shift_backward(ctx, grad):
    return _shift_copy(grad, ctx.num_segments, ctx.fold_div, reverse=True, online=ctx.online), None, None, None


_temporal_shift_op.register_autograd(_temporal_shift_backward, setup_context=_temporal_shift_setup)


def _shift_export_form(x: torch.Tensor, num_segments: int, fold_div: int, online: bool) -> torch.Tensor:
    """The shift as slices and concatenations (no in-place writes): what exported programs hold."""
    nt, c, h, w = x.shape
    x5 = x.reshape(-1, num_segments, c, h, w)
    from_next, from_prev, rest = _shift_folds(c, fold_div, online)
    parts = []
    if from_next.stop > from_next.start:
        parts.append(torch.cat([x5[:, 1:, from_next], torch.zeros_like(x5[:, :1, from_next])], 1))
    parts.append(torch.cat([torch.zeros_like(x5[:, :1, from_prev]), x5[:, :-1, from_prev]], 1))
    parts.append(x5[:, :, rest])
    return torch.cat(parts, 2).reshape(nt, c, h, w)


register_export_form(torch.ops.zoo.temporal_shift.default, _shift_export_form)
register_int8_passthrough(torch.ops.zoo.temporal_shift.default)  # copies values, fills zeros


class TemporalShift(nn.Module):
    """TSM's shift as a module of the 2D trunk (`zoo.models._trunk2d`): `temporal_shift` of its
    input over ``num_segments`` frames, or, while a `TSMStream` runs, the streaming shift (one
    frame per call, the channels from the previous frame cached). No parameters."""

    def __init__(self, num_segments: int, fold_div: int = 8, online: bool = False):
        super().__init__()
        self.num_segments, self.fold_div, self.online = num_segments, fold_div, online
        self.stream_cache = None  # None: offline; `_START`, then the cached channels, while streaming

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stream_cache is None:
            return temporal_shift(x, self.num_segments, self.fold_div, self.online)
        fold = x.shape[1] // self.fold_div
        previous = torch.zeros_like(x[:, :fold]) if self.stream_cache is _START else self.stream_cache
        if previous.shape != x[:, :fold].shape:
            raise UsageError(f"a TSM stream keeps its batch and frame size: got {tuple(x.shape)} after a frame of "
                             f"{tuple(previous.shape)} in its first {fold} channels; call reset() to start a new stream")
        self.stream_cache = x[:, :fold].clone()
        out = x.clone()
        out[:, :fold] = previous
        return out

    def extra_repr(self) -> str:
        way = "from the past (online)" if self.online else "each way"
        return f"T={self.num_segments}, 1/{self.fold_div} of the channels {way}"


_START = object()  # a stream's cache before its first frame (the past is zeros, as offline)


class TemporalPool(nn.Module):
    """TSM's temporal pool (official ``tpool``) between the trunk's first two stages: max over
    time, kernel 3, stride 2, so the later stages see half the frames."""

    def __init__(self, num_segments: int):
        super().__init__()
        self.num_segments = num_segments

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        x = x.view(nt // self.num_segments, self.num_segments, c, h, w).transpose(1, 2)
        x = F.max_pool3d(x, kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        return x.transpose(1, 2).reshape(-1, c, h, w)


def _shift_every(stage_depths) -> int:
    # Official rule: with 23+ blocks in layer3 (ResNet-101 and deeper) only every other block
    # of every stage is shifted.
    return 2 if stage_depths[2] >= 23 else 1


def shifted_blocks(model: nn.Module):
    """``(block name, placement)`` of every block of ``model`` with a temporal shift: ``blockres``
    (its residual branch, before ``conv1``) or ``block`` (its whole input)."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, HookedBlock):
            if isinstance(m.pre_residual, TemporalShift):
                out.append((name, "blockres"))
            elif isinstance(m.pre_block, TemporalShift):
                out.append((name, "block"))
    return out


class TSM(SegmentConsensus):
    """TSN/TSM on the 2D trunk (`zoo.models._trunk2d.Trunk2D`, timm's ResNet). ``shift=False``
    gives the TSN baseline.

    Args:
        num_classes: classifier outputs.
        num_segments: frames (segments) per clip, T.
        backbone: timm ResNet name (resnet18/34/50/101/152).
        shift: plug temporal shifts (TSM) into the trunk, or not (TSN).
        shift_div: 1/shift_div of the channels move each way.
        shift_place: ``'blockres'`` (residual branch, official default) or ``'block'``.
        temporal_pool: max-pool time by 2 after ``layer1`` (official ``tpool``).
        dropout: dropout before the classifier.
        in_chans: input channels of ``conv1`` (PAN Lite feeds 6).
        online: the online TSM: 1/shift_div of the channels shifted from the previous frame only
            (no frame sees the future), so it runs frame by frame on a stream (`TSMStream`).
        attention: ``"eca"``: ECA channel attention in every block (`zoo.models._trunk2d.ECA`; the
            ``imagenet_eca`` weights are ECA-ResNet-50's); None: none.
        attention_kernels: ECA's kernel size per stage (default ECA-ResNet-50's 3, 5, 5, 7).
    """

    def __init__(self, num_classes: int = 174, num_segments: int = 8, backbone: str = "resnet50",
                 shift: bool = True, shift_div: int = 8, shift_place: str = "blockres",
                 temporal_pool: bool = False, dropout: float = 0.5, in_chans: int = 3, online: bool = False,
                 attention: Optional[str] = None, attention_kernels: Optional[Sequence[int]] = None):
        super().__init__()
        if online and (temporal_pool or not shift):
            raise UsageError("online=True is a TSM with shifts and without temporal_pool (it pools over time)")
        if shift_place not in SHIFT_PLACES:
            raise UsageError(f"shift_place must be one of {SHIFT_PLACES}, got {shift_place!r}")
        if temporal_pool and num_segments % 2:
            raise UsageError(f"temporal_pool halves time: num_segments must be even, got {num_segments}")
        self.num_classes = num_classes
        self.num_segments = num_segments
        self.temporal_pool = temporal_pool
        self.online = online
        self.backbone = Trunk2D(backbone, in_chans, attention=attention, attention_kernels=attention_kernels)
        self.num_features = self.backbone.num_features
        if shift:
            self._plug_shifts(shift_div, shift_place)
        if temporal_pool:
            self.backbone.plug_between(1, TemporalPool(num_segments))
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_classifier(num_classes)

    def _plug_shifts(self, fold_div: int, place: str):
        every = _shift_every([len(s) for s in self.backbone.stages])

        def shift(stage: int, index: int, block) -> Optional[TemporalShift]:
            if index % every:
                return None
            if place == "blockres":
                # the shift used to wrap conv1 in a new conv, whose initialisation drew from the
                # generator: the same draw keeps a seeded build's weights (and every seeded
                # training run) what they were
                nn.init.kaiming_uniform_(torch.empty_like(block.conv1.weight), a=math.sqrt(5))
            segments = self.num_segments // 2 if (self.temporal_pool and stage > 0) else self.num_segments
            return TemporalShift(segments, fold_div, self.online)

        self.backbone.plug("pre_residual" if place == "blockres" else "pre_block", shift)

    def forward_frames(self, x: torch.Tensor, segments: Optional[int] = None) -> torch.Tensor:
        """The trunk over ``[B*T, C, H, W]`` frames -> pooled features ``[B, T', D]`` (T: ``segments``,
        default ``num_segments``; a `TSMStream` passes one frame per clip; T' = T / 2 with the
        temporal pool)."""
        segments = segments or self.num_segments
        x = self.backbone(x).mean((2, 3))
        return x.view(-1, segments // 2 if self.temporal_pool else segments, x.shape[1])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> per-frame pooled features ``[B, T', D]``."""
        return self.forward_frames(self.clip_frames(x))

    def stream(self) -> "TSMStream":
        """This online model run frame by frame (`TSMStream`)."""
        return TSMStream(self)


class TSMStream:
    """An online TSM (``online=True``) run on a stream, one frame per call (Lin et al., ICCV 2019,
    Sec. 3.3): each shift keeps the channels it hands to the next frame, so a call costs one
    frame of the 2D backbone. A call returns that frame's logits; the mean over frames 1..T equals
    the offline model's logits on those T frames (TSM averages per-frame logits).

        with TSMStream(model.eval()) as stream:
            for frame in frames:               # [B, 3, H, W], normalised as the model's clips are
                logits = stream(frame)         # [B, num_classes]

    While a stream is open the model's shifts stream; closing it (or leaving the ``with``) makes
    it an offline model again. ``reset()`` starts a new stream (the past is zeros again).
    """

    def __init__(self, model: TSM):
        if not getattr(model, "online", False):
            raise UsageError("TSMStream runs an online TSM: build it with online=True "
                             "(zoo.build('tsm_r50', online=True), --model-arg online=true)")
        if model.training:
            raise UsageError("TSMStream runs an eval-mode model: call model.eval() first")
        self.model = model
        self.shifts = [m for m in model.modules() if isinstance(m, TemporalShift)]
        self.reset()

    def reset(self) -> None:
        """Start a new stream: the next frame is the first (frames before it are zeros)."""
        for m in self.shifts:
            m.stream_cache = _START
        self.frames = 0

    def close(self) -> None:
        """Return the model to offline use."""
        for m in self.shifts:
            m.stream_cache = None

    def __enter__(self) -> "TSMStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, frame: torch.Tensor) -> torch.Tensor:
        if frame.dim() != 4 or frame.shape[1] != 3:
            raise UsageError(f"a TSM stream takes one frame per clip, [B, 3, H, W]; got {tuple(frame.shape)}")
        if self.shifts and self.shifts[0].stream_cache is None:
            raise RuntimeError("this TSMStream is closed: open a new one")
        with torch.no_grad():
            logits = self.model.forward_head(self.model.forward_frames(frame, segments=1))
        self.frames += 1
        return logits


# -- official checkpoints ------------------------------------------------------------------
_TSM_RENAMES = (
    (re.compile(r"^module\."), ""),
    (re.compile(r"^base_model\.(fc|classifier)\."), "fc."),  # heads trained with dropout=0
    (re.compile(r"^new_fc\."), "fc."),
    (re.compile(r"^base_model\."), "backbone."),
)


# MMAction2's ResNet / ResNetTSM (ConvModule: conv + bn; TemporalShift wraps conv1.conv as .net) + TSN/TSM head
_MMA_RENAMES = (
    (re.compile(r"^backbone\.conv1\.conv\."), "backbone.conv1."),
    (re.compile(r"^backbone\.conv1\.bn\."), "backbone.bn1."),
    (re.compile(r"^(backbone\.layer\d\.\d+\.conv\d)\.conv\."), r"\1."),
    (re.compile(r"^(backbone\.layer\d\.\d+)\.conv(\d)\.bn\."), r"\1.bn\2."),
    (re.compile(r"^(backbone\.layer\d\.\d+\.downsample)\.conv\."), r"\1.0."),
    (re.compile(r"^(backbone\.layer\d\.\d+\.downsample)\.bn\."), r"\1.1."),
    (re.compile(r"^cls_head\.fc_cls\."), "fc."),
)


def map_shift_keys(state_dict: Dict[str, torch.Tensor], model_keys) -> Dict[str, torch.Tensor]:
    """Drop the shift wrappers of official keys (and of earlier zoo checkpoints) where the model
    has the plain key: official TSM wraps shifted modules as ``.net`` (``conv1.net.weight``,
    blockres; ``layerX.N.net.*``, block placement; ``layer2.net.N.*``, temporal pool), and zoo
    wrapped a ``block``-placement block as ``.block``. The trunk's shifts are parameter-free
    modules beside the convs, so every wrapped key has a plain one."""
    model_keys = set(model_keys)
    out = {}
    for k, v in state_dict.items():
        if k not in model_keys:
            plain = k.replace(".net.", ".").replace(".block.", ".")
            k = plain if plain in model_keys else k
        out[k] = v
    return out


def checkpoint_filter_fn(checkpoint, model: TSM) -> Dict[str, torch.Tensor]:
    """Map an official TSM/TSN checkpoint (``{'state_dict': ...}``, ``module.`` prefix,
    ``base_model.*``, ``.net`` shift wrappers, ``new_fc.*``), an MMAction2 one (``backbone.conv1.conv``,
    ``layerX.N.conv1.conv.net`` shift wrappers, ``cls_head.fc_cls``), torchvision's ImageNet ResNet
    (the recipes' initialisation) or a zoo one to our keys."""
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family="a TSM/TSN")
    own = model.state_dict()
    if set(state_dict) <= set(own):
        return state_dict  # already zoo layout
    image = {k.removeprefix("module."): v for k, v in state_dict.items()}  # ECANet saves its DataParallel model
    if is_torchvision(image):  # torchvision's ResNet, or ECA-ResNet (its ``eca`` modules sit at post_bn3)
        return resnet_2d({k.replace(".eca.", ".post_bn3."): v for k, v in image.items()}, own, "backbone.", "fc.")
    if "cls_head.fc_cls.weight" in state_dict:
        return map_shift_keys(rename_keys(state_dict, _MMA_RENAMES), own)
    return map_shift_keys(rename_keys(state_dict, _TSM_RENAMES), own)


# -- registered variants -------------------------------------------------------------------
_TSM_PAPER = "Lin et al., TSM: Temporal Shift Module for Efficient Video Understanding, ICCV 2019"
_TSN_PAPER = "Wang et al., Temporal Segment Networks: Towards Good Practices for Deep Action Recognition, ECCV 2016"
_TSM_README = "mit-han-lab/temporal-shift-module README"


_TSM_REPO = "mit-han-lab/temporal-shift-module"
# the README's host since 2023-10 (commit 2854869); older copies name hanlab.mit.edu or file.lzhu.me
_TSM_URL = "https://hanlab18.mit.edu/projects/tsm/models/"
_SSV1, _SSV2, _K400 = "something-something-v1", "something-something-v2", "kinetics400"
_BENCH = BenchPreset(frames=8, model_args={"backbone": "resnet18"})
_MMA_URL = "https://download.openmmlab.com/mmaction/v1.0/recognition/"
_MMA_ZOO = "open-mmlab/mmaction2 metafile.yml, "
_IMAGENET_NOTE = "ImageNet initialisation of the backbone, as the TSN/TSM recipes train from"


def _mmaction2(family: str, config: str, stamp: str, result: Result, tag: str = "kinetics400_mmaction2") -> Weights:
    """An MMAction2 release (its keys are mapped by `checkpoint_filter_fn`; same network and mean/std)."""
    return Weights(tag, 174 if "sthv2" in config else 400, result.dataset,
                   (f"{_MMA_URL}{family}/{config}/{config}_{stamp}.pth",), (result,), "open-mmlab/mmaction2",
                   f"config {config}")


# ECA-ResNet-50 on ImageNet (Wang et al., CVPR 2020): Google Drive or Baidu only
_ECA_IMAGENET = Weights(
    "imagenet_eca", 1000, "imagenet", ("eca_resnet50_k3557.pth.tar",), (), "BangguWu/ECANet",
    "ImageNet initialisation with ECA channel attention in every block (attention='eca', kernels 3, 5, 5, 7): "
    "ECA-Net50, 77.42 / 93.62 top-1 / top-5 on ImageNet, 24.37 M parameters, 3.86 GFLOPs (BangguWu/ECANet README); "
    "ImageNet class names in torchvision's order (the ILSVRC synset order both use)",
    page="https://drive.google.com/open?id=1670rce333c_lyMWFzBlNZoVUvtxbCF_U (or https://pan.baidu.com/s/"
         "18LXDcxy8qG66h-7FlWW4SA, code no6u)",
    model_args={"attention": "eca"})


def _info(name: str, paper: str, **kw) -> ModelInfo:
    defaults = dict(name=name, family="tsm", paper=paper, num_frames=8, num_segments=8, sampling="segment",
                    crop_size=224, resize_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, test_views=(1, 1),
                    num_classes=174, dataset=_SSV2, frames_arg="num_segments")
    defaults.update(kw)
    return ModelInfo(**defaults)


def _create_tsm(variant_args, kwargs) -> TSM:
    return create_model(TSM, variant_args, kwargs)


@register_model(_info(
    "tsn_r50", _TSN_PAPER, num_classes=400, dataset=_K400, ref_gflops=32.88, ref_params_m=24.33,
    notes="The released TSN checkpoint was trained with 5 segments and is tested with 8."),
    weights=(Weights("kinetics400", 400, _K400, (_TSM_URL + "TSM_kinetics_RGB_resnet50_avg_segment5_e50.pth",),
                     (Result(_K400, 68.8, None, "8 segments x 1 clip, 1 centre crop 224", _TSM_README),
                      Result(_K400, 69.9, None, "8 segments x 1 clip x 10 crops (oversample), 224", _TSM_README),
                      Result(_K400, 70.6, None, "8 frames x 10 dense clips x 3 crops, 256 (full res)", _TSM_README)),
                     _TSM_REPO, "trained with 5 segments, tested with 8"),
             _mmaction2("tsn", "tsn_imagenet-pretrained-r50_8xb32-1x1x8-100e_kinetics400-rgb", "20220906-2692d16c",
                        Result(_K400, 74.12, 91.34, "25 frames x 10 crops (224), scores averaged", _MMA_ZOO + "tsn")),
             imagenet_weights("resnet50", _IMAGENET_NOTE), _ECA_IMAGENET),
    bench=_BENCH, filter_fn=checkpoint_filter_fn)
def tsn_r50(**kwargs) -> TSM:
    """TSN baseline: ResNet-50 per frame, average consensus, no temporal modelling."""
    return _create_tsm(dict(backbone="resnet50", shift=False), kwargs)


@register_model(_info("tsm_r50", _TSM_PAPER, ref_gflops=32.88, ref_params_m=23.86),
    weights=(Weights("sthv2", 174, _SSV2, (_TSM_URL + "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth",),
                     (Result(_SSV2, 61.2, None, "8 segments x 2 clips x 3 crops, 256 (full res)", _TSM_README),),
                     _TSM_REPO),
             Weights("sthv2_16f", 174, _SSV2,
                     (_TSM_URL + "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth",),
                     (Result(_SSV2, 63.1, None, "16 segments x 2 clips x 3 crops, 256 (full res)", _TSM_README),),
                     _TSM_REPO, model_args={"num_segments": 16}),
             Weights("sthv1", 174, _SSV1, (_TSM_URL + "TSM_something_RGB_resnet50_shift8_blockres_avg_segment8_e45.pth",),
                     (Result(_SSV1, 45.6, None, "8 segments x 1 clip, 1 centre crop 224", _TSM_README),
                      Result(_SSV1, 47.2, None, "8 segments x 2 clips x 3 crops (full res x 2 clips)", _TSM_README)),
                     _TSM_REPO),
             Weights("sthv1_16f", 174, _SSV1,
                     (_TSM_URL + "TSM_something_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth",),
                     (Result(_SSV1, 47.2, None, "16 segments x 1 clip, 1 centre crop 224", _TSM_README),
                      Result(_SSV1, 48.4, None, "16 segments x 2 clips x 3 crops (full res x 2 clips)", _TSM_README)),
                     _TSM_REPO, model_args={"num_segments": 16}),
             Weights("kinetics400", 400, _K400, (_TSM_URL + "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",),
                     (Result(_K400, 71.2, None, "8 segments x 1 clip, 1 centre crop 224", _TSM_README),
                      Result(_K400, 72.8, None, "8 segments x 1 clip x 10 crops (oversample), 224", _TSM_README)),
                     _TSM_REPO, "uniform (segment) sampling"),
             Weights("kinetics400_16f", 400, _K400,
                     (_TSM_URL + "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment16_e50.pth",),
                     (Result(_K400, 72.6, None, "16 segments x 1 clip, 1 centre crop 224", _TSM_README),
                      Result(_K400, 73.7, None, "16 segments x 1 clip x 10 crops (oversample), 224", _TSM_README)),
                     _TSM_REPO, "uniform (segment) sampling", model_args={"num_segments": 16}),
             Weights("kinetics400_dense", 400, _K400,
                     (_TSM_URL + "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense.pth",),
                     (Result(_K400, 74.1, None, "8 frames x 10 dense clips x 3 crops, 256 (full res)", _TSM_README),),
                     _TSM_REPO, "trained and tested with I3D dense sampling: 8 frames, one every 8",
                     input_args={"sampling": "dense", "sampling_rate": 8, "test_views": (10, 3)}),
             _mmaction2("tsm", "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb", "20220831-64d69186",
                        Result(_K400, 73.18, 90.56, "8 segments x 1 clip x 10 crops (224)", _MMA_ZOO + "tsm")),
             _mmaction2("tsm", "tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb", "20230317-be0fc26e",
                        Result(_SSV2, 62.72, 87.70, "8 segments x 2 clips x 3 crops, 256", _MMA_ZOO + "tsm"),
                        tag="sthv2_mmaction2"),
             imagenet_weights("resnet50", _IMAGENET_NOTE), _ECA_IMAGENET),
    bench=_BENCH, filter_fn=checkpoint_filter_fn)
def tsm_r50(**kwargs) -> TSM:
    """TSM ResNet-50, residual shift of 1/8 channels each way in every block."""
    return _create_tsm(dict(backbone="resnet50"), kwargs)


@register_model(_info("tsm_r101", _TSM_PAPER, ref_gflops=62.66, ref_params_m=42.86),
    weights=(Weights("sthv2", 174, _SSV2, (_TSM_URL + "TSM_somethingv2_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth",),
                     (Result(_SSV2, 63.3, None, "8 segments x 2 clips x 3 crops, 256 (full res)", _TSM_README),),
                     _TSM_REPO),
             Weights("sthv1", 174, _SSV1, (_TSM_URL + "TSM_something_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth",),
                     (Result(_SSV1, 46.9, None, "8 segments x 1 clip, 1 centre crop 224", _TSM_README),
                      Result(_SSV1, 48.7, None, "8 segments x 2 clips x 3 crops (full res x 2 clips)", _TSM_README)),
                     _TSM_REPO),
             imagenet_weights("resnet101", _IMAGENET_NOTE)),
    bench=_BENCH, filter_fn=checkpoint_filter_fn)
def tsm_r101(**kwargs) -> TSM:
    """TSM ResNet-101; only every other block is shifted (official rule for 23+ blocks in layer3)."""
    return _create_tsm(dict(backbone="resnet101"), kwargs)
