"""PAN: Persistence of Appearance + Various-timescale Aggregation Pooling over TSM.

Zhang et al., "PAN: Towards Fast Action Recognition via Learning Persistence of Appearance",
ACM MM 2020. Layer for layer as the official zhang-can/PAN-PyTorch code (`ops/PAN_modules.py`,
`ops/models.py`), with the PA maths of the torch version it was written for: the official
``nn.PairwiseDistance`` call reduced over the channel dim on old torch and crashes on current
torch; here it is written out as a norm over the channels.

* PA: a 3->8 7x7 conv on each of the m=4 consecutive frames of a segment, then the per-pixel L2
  norm (over the 8 channels) of the difference of consecutive feature maps: m-1 = 3 maps per
  segment at full input resolution, unnormalised.
* VAP replaces the classifier: max over time at timescales 1, 2, 4, ... (2^L - 1 slots for
  L = log2(T)), per-sample softmax weights over the slots from a bias-free S->4S->S MLP, weighted
  sum, dropout, fc.
* Networks (each a TSM-ResNet with VAP, input ``[B, 3, T*m, H, W]``, segment-major frames):
  ``lite`` = first frame of each segment + its 3 PA maps into a 6-channel conv1 (early fusion);
  ``rgb`` = the first frame of each segment; ``pa`` = the 3 PA maps into the 3-channel conv1.
  PAN Full averages the logits of separately trained ``rgb`` and ``pa`` networks, PAN En those
  of ``lite``, ``rgb`` and ``pa``.

    [B, 3, 8*4, H, W] -> segments [B*8, 4, 3, H, W] -+-> frame 0 ------------------------------+
                                                     +-> conv 7x7 (4 frames) -> ||F_i - F_i+1|| --+-> 6 ch
      -> TSM-ResNet (6-ch conv1) -> GAP [B, 8, D] -> VAP (1+2+4 slots, softmax-weighted sum) -> dropout -> fc
"""
from __future__ import annotations

import re
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import BadCheckpoint, UsageError
from ._checks import check_input
from ._contract import VideoModel
from ._loading import rename_keys, unwrap_state_dict
from ._imagenet import imagenet_weights, is_torchvision, resnet_2d
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo, Result, Weights
from ._registry import create_model, register_model
from .tsm import TSM, map_shift_keys

__all__ = ["PA", "VAP", "PANNet", "PANEnsemble", "widen_conv", "checkpoint_filter_fn", "MODALITIES"]

MODALITIES = ("lite", "rgb", "pa")
PA_EPS = 1e-6  # added to the difference before the norm, as the legacy pairwise_distance did


class PA(nn.Module):
    """Persistence of Appearance: ``[N, m, 3, H, W]`` segments -> ``[N, m-1, H, W]`` motion maps.

    ``PA_i = || conv(x_i) - conv(x_{i+1}) + 1e-6 ||_2`` over the conv's channels, per pixel.
    The conv runs once over all m frames; only the m-1 differences are materialised besides.
    (Its bias cancels in the differences, so its gradient is zero up to rounding; it is kept for
    checkpoint compatibility.)

    `prepare_inference` (called by `zoo.optimize`) switches to the equal form
    ``conv_without_bias(x_i - x_{i+1})``, the conv being linear: m-1 convs instead of m (a quarter
    fewer MACs for m=4), and in bf16 no cancellation between two rounded feature maps.
    """

    def __init__(self, frames_per_segment: int = 4, channels: int = 8, kernel_size: int = 7):
        super().__init__()
        if frames_per_segment < 2:
            raise UsageError(f"PA needs at least 2 frames per segment, got {frames_per_segment}")
        self.frames_per_segment = frames_per_segment
        self.difference_first = False
        self.conv = nn.Conv2d(3, channels, kernel_size, 1, kernel_size // 2)
        nn.init.normal_(self.conv.weight, 0, 0.001)
        nn.init.zeros_(self.conv.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 5 or frames.shape[1] != self.frames_per_segment or frames.shape[2] != 3:
            raise UsageError(f"PA expects segments [N, {self.frames_per_segment}, 3, H, W], "
                             f"got {list(frames.shape)}")
        n, m, c, h, w = frames.shape
        # The conv runs in its weight's layout, as every conv does: the default (NCHW) as built,
        # channels-last once `zoo.optimize` (or the user) converts the model, where oneDNN runs
        # this 3->8 7x7 conv ~7x faster on CPU and the channel norm reduces over contiguous memory.
        layout = torch.channels_last if self.conv.weight.is_contiguous(memory_format=torch.channels_last) \
            else torch.contiguous_format
        if self.difference_first:
            frames = torch.sub(frames[:, :-1], frames[:, 1:]).reshape(n * (m - 1), c, h, w)
            diff = F.conv2d(frames.contiguous(memory_format=layout), self.conv.weight, None, self.conv.stride,
                            self.conv.padding)
            diff = diff.view(n, m - 1, -1, h, w).add_(PA_EPS)
        else:
            frames = frames.reshape(n * m, c, h, w).contiguous(memory_format=layout)
            feats = self.conv(frames).view(n, m, -1, h, w)
            diff = torch.sub(feats[:, :-1], feats[:, 1:]).add_(PA_EPS)
        return torch.linalg.vector_norm(diff, ord=2, dim=2)

    def prepare_inference(self) -> None:
        """Convolve frame differences instead of differencing convolutions (see the class docstring)."""
        self.difference_first = True

    def extra_repr(self):
        return f"frames_per_segment={self.frames_per_segment}, difference_first={self.difference_first}"


class VAP(nn.Module):
    """Various-timescale Aggregation Pooling: per-frame features ``[B, T, D]`` -> logits ``[B, K]``.

    Level i (timescale s = 2^i, i < log2 T) max-pools frames ``{j, j+s, j+2s, ...}`` for each
    j < s (the official dilated ``MaxPool3d``), giving 1 + 2 + 4 + ... = S slots; a bias-free
    S -> 4S -> S MLP on the slots' channel means gives softmax weights over the slots.
    """

    def __init__(self, num_segments: int, num_features: int, num_classes: int, dropout: float = 0.5):
        super().__init__()
        levels = num_segments.bit_length() - 1  # int(log2(T))
        if levels < 1 or num_segments % (1 << (levels - 1)):
            raise UsageError(f"VAP needs num_segments >= 2 and divisible by 2^(floor(log2 T) - 1), "
                             f"got {num_segments} (use a power of two such as 8 or 16)")
        self.num_segments = num_segments
        self.timescales = tuple(1 << i for i in range(levels))
        self.num_slots = sum(self.timescales)
        s = self.num_slots
        self.tes = nn.Sequential(nn.Linear(s, 4 * s, bias=False), nn.ReLU(inplace=True),
                                 nn.Linear(4 * s, s, bias=False))
        self.dropout = nn.Dropout(dropout)
        self.pred = nn.Linear(num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                self._init_linear(m)

    @staticmethod
    def _init_linear(m: nn.Linear):
        nn.init.normal_(m.weight, 0, 0.001)
        if m.bias is not None:
            nn.init.zeros_(m.bias)

    def reset_classifier(self, num_classes: int):
        self.pred = nn.Linear(self.pred.in_features, num_classes)
        self._init_linear(self.pred)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` -> timescale slots ``[B, S, D]`` (timescale 1 first)."""
        if x.dim() != 3 or x.shape[1] != self.num_segments:
            raise UsageError(f"VAP expects per-frame features [B, {self.num_segments}, D], got {list(x.shape)}")
        b, t, d = x.shape
        return torch.cat([x.view(b, t // s, s, d).amax(1) for s in self.timescales], 1)

    def slot_weights(self, slots: torch.Tensor) -> torch.Tensor:
        """Per-sample softmax weights ``[B, S]`` over the slots."""
        return F.softmax(self.tes(slots.mean(2)), dim=1)

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` -> clip embedding ``[B, D]``."""
        slots = self.pool(x)
        return (slots * self.slot_weights(slots).unsqueeze(2)).sum(1)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.aggregate(x)
        return x if pre_logits else self.pred(self.dropout(x))


def widen_conv(conv: nn.Conv2d, in_chans: int) -> nn.Conv2d:
    """A copy of ``conv`` with ``in_chans`` inputs, each given the mean of its input kernels
    (the official PAN Lite initialisation of the 6-channel conv1 from an RGB one)."""
    new = nn.Conv2d(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight.mean(1, keepdim=True).expand_as(new.weight))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


class PANNet(TSM):
    """One PAN network: (PA front end) + TSM-ResNet (residual shift, 1/8 each way) + VAP head.

    Args:
        num_classes: classifier outputs.
        num_segments: segments per clip, T.
        frames_per_segment: consecutive frames per segment, m (PA makes m-1 maps).
        backbone: timm ResNet name.
        modality: ``'lite'`` (first frame + PA, 6-channel conv1), ``'rgb'`` (first frame of
            each segment) or ``'pa'`` (PA maps only).
        dropout: dropout inside VAP, after aggregation.
        shift_div: 1/shift_div of the channels move each way.
    """

    def __init__(self, num_classes: int = 174, num_segments: int = 8, frames_per_segment: int = 4,
                 backbone: str = "resnet50", modality: str = "lite", dropout: float = 0.5, shift_div: int = 8):
        if modality not in MODALITIES:
            raise UsageError(f"modality must be one of {MODALITIES}, got {modality!r}")
        super().__init__(num_classes, num_segments, backbone, shift=True, shift_div=shift_div, dropout=0.0)
        self.modality = modality
        self.frames_per_segment = frames_per_segment
        self.pa = None if modality == "rgb" else PA(frames_per_segment)
        in_chans = {"rgb": 3, "pa": frames_per_segment - 1, "lite": 3 + frames_per_segment - 1}[modality]
        if in_chans != 3:
            self.backbone.conv1 = widen_conv(self.backbone.conv1, in_chans)
        self.dropout = nn.Identity()  # PAN's dropout sits inside VAP, after aggregation
        self.fc = VAP(num_segments, self.num_features, num_classes, dropout)

    @property
    def num_frames(self) -> int:
        return self.num_segments * self.frames_per_segment

    def get_classifier(self) -> nn.Module:
        return self.fc.pred

    def reset_classifier(self, num_classes: int):
        self.num_classes = num_classes
        self.fc.reset_classifier(num_classes)

    def segments(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T*m, H, W]`` -> ``[B*T, m, 3, H, W]``."""
        b, c, _, h, w = x.shape
        return x.transpose(1, 2).reshape(b * self.num_segments, self.frames_per_segment, c, h, w)

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T*m, H, W]`` -> what the ResNet sees, ``[B*T, C, H, W]`` (C = 6, 3 or 3)."""
        if self.modality == "rgb":
            return self.frames_to_batch(x[:, :, ::self.frames_per_segment])
        seg = self.segments(x)
        pa = self.pa(seg)
        return pa if self.modality == "pa" else torch.cat((seg[:, 0], pa), 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T*m, H, W]`` -> per-segment pooled features ``[B, T, D]``."""
        check_input(x, num_frames=self.num_frames, model=f"PAN {self.modality} network")
        return self.forward_frames(self.network_input(x))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.fc(features, pre_logits=pre_logits)


class PANEnsemble(VideoModel):
    """Separately trained PAN networks whose logits are averaged (the official ``test_models.py``
    fusion with the default coefficients): PAN Full = ``('rgb', 'pa')``, PAN En =
    ``('lite', 'rgb', 'pa')``. Each network is an attribute ``<modality>_net``;
    `forward_streams` returns each one's logits.

    Input ``[B, 3, T*(m+1), H, W]`` with ``centre_frame`` (the default): each segment's ``m``
    consecutive frames (the PA and Lite networks') followed by the frame the official RGB loader
    picks in that segment (``new_length=1``: up to 3 frames from the PA segment's first), which
    the RGB network sees. ``centre_frame=False``: ``[B, 3, T*m, H, W]``, the RGB network takes
    each segment's first frame (not the official protocol).
    """

    def __init__(self, num_classes: int = 174, num_segments: int = 8, frames_per_segment: int = 4,
                 backbone: str = "resnet50", streams: Sequence[str] = ("rgb", "pa"), dropout: float = 0.5,
                 shift_div: int = 8, centre_frame: bool = True):
        super().__init__()
        streams = tuple(streams)
        if not streams or len(set(streams)) != len(streams) or not set(streams) <= set(MODALITIES):
            raise UsageError(f"streams must be distinct entries of {MODALITIES}, got {streams}")
        self.streams = streams
        for s in streams:
            self.add_module(f"{s}_net", PANNet(num_classes, num_segments, frames_per_segment, backbone, s,
                                               dropout, shift_div))
        self.num_classes = num_classes
        self.num_segments = num_segments
        self.frames_per_segment = frames_per_segment
        self.centre_frame = centre_frame
        self.num_features = sum(n.num_features for n in self.nets.values())

    @property
    def num_frames(self) -> int:
        return self.num_segments * (self.frames_per_segment + int(self.centre_frame))

    @property
    def nets(self) -> Dict[str, PANNet]:
        return {s: getattr(self, f"{s}_net") for s in self.streams}

    def networks(self) -> Dict[str, PANNet]:
        """The separately trained networks, by stream (``rgb``, ``pa``; PAN En: also ``diff``)."""
        return self.nets

    def get_classifier(self) -> List[nn.Module]:
        return [n.get_classifier() for n in self.nets.values()]

    def reset_classifier(self, num_classes: int):
        self.num_classes = num_classes
        for n in self.nets.values():
            n.reset_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """``[B, 3, T*(m+1), H, W]`` (``[B, 3, T*m, H, W]`` without ``centre_frame``) -> one
        ``[B, T, D]`` feature tensor per stream."""
        check_input(x, num_frames=self.num_frames, model=f"PAN ensemble {'+'.join(self.streams)}")
        if not self.centre_frame:
            return [n.forward_features(x) for n in self.nets.values()]
        b, c, _, h, w = x.shape
        segments = x.reshape(b, c, self.num_segments, self.frames_per_segment + 1, h, w)
        consecutive = segments[:, :, :, :-1].reshape(b, c, -1, h, w)
        centres = segments[:, :, :, -1]  # [B, 3, T, H, W]
        return [n.forward_frames(n.frames_to_batch(centres)) if s == "rgb" else n.forward_features(consecutive)
                for s, n in self.nets.items()]

    def forward_head(self, features: Sequence[torch.Tensor], pre_logits: bool = False) -> torch.Tensor:
        """Mean of the streams' logits, or (``pre_logits``) their concatenated VAP embeddings."""
        outs = [n.forward_head(f, pre_logits) for n, f in zip(self.nets.values(), features)]
        return torch.cat(outs, 1) if pre_logits else torch.stack(outs).mean(0)

    def forward_streams(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Each stream's logits, by modality."""
        feats = self.forward_features(x)
        return {s: n.forward_head(f) for (s, n), f in zip(self.nets.items(), feats)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- official checkpoints ------------------------------------------------------------------
_PAN_RENAMES = (
    (re.compile(r"^module\."), ""),
    (re.compile(r"^PA\.shallow_conv\."), "pa.conv."),
    (re.compile(r"^base_model\.fc\.TES\."), "fc.tes."),
    (re.compile(r"^base_model\.fc\.pred\."), "fc.pred."),
    (re.compile(r"^base_model\."), "backbone."),
)
_OFFICIAL_NAME = {"lite": "Lite", "rgb": "RGB", "pa": "PA"}


def _modality_of(state_dict: Dict[str, torch.Tensor]):
    conv1 = state_dict.get("backbone.conv1.weight")
    if conv1 is None:
        return None
    if "pa.conv.weight" not in state_dict:
        return "rgb"
    return "pa" if conv1.shape[1] == 3 else "lite"


def _filter_one(checkpoint, net: PANNet, where: str, order: str) -> Dict[str, torch.Tensor]:
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family="a PAN")
    own = net.state_dict()
    if is_torchvision(state_dict):  # ImageNet initialisation: PA and VAP's TES keep their own
        return resnet_2d(state_dict, own, "backbone.", "fc.pred.")
    if not set(state_dict) <= set(own):
        state_dict = map_shift_keys(rename_keys(state_dict, _PAN_RENAMES), own)
    found = _modality_of(state_dict)
    if found is not None and found != net.modality:
        raise BadCheckpoint(f"{where} is a PAN {_OFFICIAL_NAME[found]} network but a PAN "
                         f"{_OFFICIAL_NAME[net.modality]} one is expected here; {order}")
    return state_dict


def checkpoint_filter_fn(checkpoint, model) -> Dict[str, torch.Tensor]:
    """Map official PAN checkpoints (``PAN_{Lite,RGB,PA}_*.pth.tar``: ``{'state_dict': ...}``,
    ``module.`` prefix, ``PA.shallow_conv.*``, ``base_model.*`` with ``.net`` shift wrappers,
    ``base_model.fc.{TES,pred}.*``), torchvision's ImageNet ResNet (PAN's initialisation; one file
    for every stream of an ensemble) or zoo state dicts to our keys.

    Ensembles take a list with one file per stream, in the model's stream order:
    ``pan_full_*``: [RGB, PA]; ``pan_en_*``: [Lite, RGB, PA]. A zoo-layout state dict of the
    whole ensemble can be passed as a single file.
    """
    if isinstance(model, PANEnsemble):
        order = "pass " + ", ".join(f"PAN_{_OFFICIAL_NAME[s]}" for s in model.streams) + " in that order"
        if isinstance(checkpoint, (list, tuple)):
            if len(checkpoint) != len(model.streams):
                raise BadCheckpoint(f"this PAN ensemble takes {len(model.streams)} checkpoint files, "
                                 f"got {len(checkpoint)}; {order}")
            out = {}
            for i, (ckpt, (s, net)) in enumerate(zip(checkpoint, model.nets.items())):
                sd = _filter_one(ckpt, net, f"checkpoint #{i + 1}", order)
                out.update({f"{s}_net.{k}": v for k, v in sd.items()})
            return out
        state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family="a PAN")
        if isinstance(state_dict, dict) and state_dict and set(state_dict) <= set(model.state_dict()):
            return state_dict  # zoo layout of the whole ensemble
        if isinstance(state_dict, dict) and is_torchvision(state_dict):  # one ImageNet file under every stream
            return {f"{s}_net.{k}": v for s, net in model.nets.items()
                    for k, v in resnet_2d(state_dict, net.state_dict(), "backbone.", "fc.pred.").items()}
        raise BadCheckpoint(f"this PAN ensemble is released as {len(model.streams)} files: "
                         f"use weights=[...] and {order}")
    if isinstance(checkpoint, (list, tuple)):
        if len(checkpoint) != 1:
            raise BadCheckpoint(f"a single PAN network takes one checkpoint file, got {len(checkpoint)}; "
                             "for RGB + PA use pan_full_*, for Lite + RGB + PA pan_en_*")
        checkpoint = checkpoint[0]
    return _filter_one(checkpoint, model, "the checkpoint",
                       "for RGB + PA files use pan_full_*, for Lite + RGB + PA pan_en_*")


# -- registered variants -------------------------------------------------------------------
_PAPER = "Zhang et al., PAN: Towards Fast Action Recognition via Learning Persistence of Appearance, ACM MM 2020"
_README = "zhang-can/PAN-PyTorch README"
_CENTRE = "8 segments x 4 frames, 1 clip x 1 centre crop 224"
_FULL_RES = "8 segments x 4 frames, 2 clips x 1 full-res centre crop 256"


_DATASETS = (("sthv2", "something-something-v2", "somethingv2"), ("sthv1", "something-something-v1", "something"))


def _file(modality: str, dataset: str, epochs: int) -> str:
    return f"PAN_{modality}_{dataset}_resnet50_shift8_blockres_avg_segment8_e{epochs}.pth.tar"


# The releases are on Google Drive or Weiyun only (no direct URL): one folder per dataset and backbone.
_DRIVE = "https://drive.google.com/drive/folders/{} (or https://share.weiyun.com/{})"
_PAGES = {("sthv2", 50): _DRIVE.format("1dqMphONnGLBxhArMazr281Ix4qOX58MI", "oXQY3rx7"),
          ("sthv1", 50): _DRIVE.format("1Be3o8pesPrk8uEoBNd4OW6qtKkeXoVBU", "F2PJnUiE"),
          ("sthv2", 101): _DRIVE.format("1NL-CNQPLfV3abnJDMcz3AF4WFsH7LDhN", "oSOgog0J"),
          ("sthv1", 101): _DRIVE.format("1sD242c3rkhIjTPxJiyPnXRx7zKLnA12b", "bqouigPA")}


_IMAGENET = ("ImageNet initialisation of every stream's backbone, as PAN trains from (Lite: conv1's RGB mean on "
             "all 6 channels); PA and VAP start fresh")


def _weights(v1, v2, views, streams=(), notes: str = "", depth: int = 50) -> tuple:
    """sthv2 and sthv1 records: top-1/top-5 pairs ``v2``/``v1``, one file per (modality, epochs) stream;
    then the ImageNet initialisation."""
    return tuple(Weights(tag, 174, dataset, tuple(_file(m, name, e) for m, e in streams),
                         (Result(dataset, top[0], top[1], views, _README),), "zhang-can/PAN-PyTorch", notes,
                         page=_PAGES[tag, depth])
                 for (tag, dataset, name), top in zip(_DATASETS, (v2, v1))) + \
        (imagenet_weights(f"resnet{depth}", _IMAGENET),)


def _info(name: str, **kw) -> ModelInfo:
    defaults = dict(name=name, family="pan", paper=_PAPER, num_frames=32, num_segments=8, frames_per_segment=4,
                    sampling="segment", crop_size=224, resize_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    test_views=(1, 1), num_classes=174, dataset="something-something-v2", min_size=32,
                    frames_arg="num_segments")
    defaults.update(kw)
    return ModelInfo(**defaults)


_BENCH = BenchPreset(frames=32, model_args={"backbone": "resnet18"})  # 8 segments x 4 frames
# ensembles: 8 segments x (4 consecutive frames + the RGB stream's centre frame)
_ENSEMBLE = dict(num_frames=40, centre_frame=True)
# the bench networks of the ensembles keep the 32-frame input (each segment's first frame to the RGB
# stream) they were measured with: the from-scratch SynthMotion comparison needs no release protocol
_ENSEMBLE_BENCH = BenchPreset(frames=32, model_args={"backbone": "resnet18", "centre_frame": False})
_LITE, _RGB, _PA = ("Lite", 80), ("RGB", 50), ("PA", 80)


_EN_NOTES = ("Published accuracy uses 2 clips x a 256x256 full-res centre crop; ref_gflops is one 224 view "
             "(the README's per-view cost at 256 is {}). Weights: [Lite, RGB, PA] files in that order.")


@register_model(_info(
    "pan_lite_r50", ref_gflops=35.71, ref_params_m=23.876,
    notes="One network, early fusion: frame 0 of each segment + its 3 PA maps into a 6-channel conv1."),
    weights=_weights((48.0, 76.1), (60.8, 86.7), _CENTRE, (_LITE,)), bench=_BENCH, filter_fn=checkpoint_filter_fn)
def pan_lite_r50(**kwargs) -> PANNet:
    """PAN Lite, TSM-ResNet-50 + PA early fusion + VAP."""
    return create_model(PANNet, dict(backbone="resnet50", modality="lite"), kwargs)


@register_model(_info(
    "pan_full_r50", **_ENSEMBLE, ref_gflops=67.64, ref_params_m=47.731,
    notes="Logit average of a separately trained RGB and PA-only network. Weights: [RGB, PA] files in that order."),
    weights=_weights((50.5, 79.2), (63.8, 88.6), _CENTRE, (_RGB, _PA)), bench=_ENSEMBLE_BENCH,
    filter_fn=checkpoint_filter_fn)
def pan_full_r50(**kwargs) -> PANEnsemble:
    """PAN Full: RGB and PA TSM-ResNet-50 + VAP networks, logits averaged."""
    return create_model(PANEnsemble, dict(backbone="resnet50", streams=("rgb", "pa")), kwargs)


@register_model(_info(
    "pan_en_r50", **_ENSEMBLE, ref_gflops=103.35, ref_params_m=71.607, notes=_EN_NOTES.format("46.6 + 88.4 GFLOPs")),
    weights=_weights((53.4, 81.1), (66.2, 90.1), _FULL_RES, (_LITE, _RGB, _PA)), bench=_ENSEMBLE_BENCH,
    filter_fn=checkpoint_filter_fn)
def pan_en_r50(**kwargs) -> PANEnsemble:
    """PAN En: PAN Lite + PAN Full (RGB, PA) ResNet-50 networks, logits averaged."""
    return create_model(PANEnsemble, dict(backbone="resnet50", streams=("lite", "rgb", "pa")), kwargs)


_R101_NOTES = ("The README publishes ResNet-101 accuracy only for PAN En (see pan_en_r101) and names no R101 "
               "files. Only every other block is shifted (TSM rule for R101).")


@register_model(_info(
    "pan_lite_r101", ref_gflops=65.49, ref_params_m=42.868,
    notes="One network, early fusion (as pan_lite_r50). " + _R101_NOTES),
    bench=_BENCH, filter_fn=checkpoint_filter_fn)
def pan_lite_r101(**kwargs) -> PANNet:
    """PAN Lite, TSM-ResNet-101 + PA early fusion + VAP."""
    return create_model(PANNet, dict(backbone="resnet101", modality="lite"), kwargs)


@register_model(_info(
    "pan_full_r101", **_ENSEMBLE, ref_gflops=127.20, ref_params_m=85.715,
    notes="RGB + PA networks, logits averaged; weights: [RGB, PA] files in that order. " + _R101_NOTES),
    bench=_ENSEMBLE_BENCH, filter_fn=checkpoint_filter_fn)
def pan_full_r101(**kwargs) -> PANEnsemble:
    """PAN Full: RGB and PA TSM-ResNet-101 + VAP networks, logits averaged."""
    return create_model(PANEnsemble, dict(backbone="resnet101", streams=("rgb", "pa")), kwargs)


@register_model(_info(
    "pan_en_r101", **_ENSEMBLE, ref_gflops=192.69, ref_params_m=128.583,
    notes=_EN_NOTES.format("85.6 + 166.1 GFLOPs") + " The README names no R101 files; only every other "
    "block is shifted (TSM rule for R101)."),
    weights=_weights((55.3, 82.8), (66.5, 90.6), _FULL_RES, notes="the README names no R101 files", depth=101),
    bench=_ENSEMBLE_BENCH,
    filter_fn=checkpoint_filter_fn)
def pan_en_r101(**kwargs) -> PANEnsemble:
    """PAN En with ResNet-101 networks (Lite + RGB + PA), logits averaged."""
    return create_model(PANEnsemble, dict(backbone="resnet101", streams=("lite", "rgb", "pa")), kwargs)
