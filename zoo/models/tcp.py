"""TCPNet: Gao et al., "Temporal-attentive Covariance Pooling Networks for Video Recognition", NeurIPS 2021.

A 2D ResNet over segments (TSN) whose global average pool is replaced by temporal-attentive covariance
pooling (`TCPHead`), a second-order video representation:

1. two 1x1 reductions of the last feature map, 2048 -> 256 -> 128 channels, each with BN and ReLU;
2. temporal attention (`TCPAttention`): the temporal self-attention `TSA` (each frame's positions attend
   over the previous frame's, through 1x1 embeddings of the frames one and two steps back, softmax
   over positions, a zero-initialised BN, added to the input), the temporal channel attention `TCA`
   (sigmoid gates from the pooled differences to the frames one and two steps back, cyclically, through
   a shared two-layer MLP, scaling the attended features), and a temporal conv over the frames (kernel
   ``T // 2 + 1``, circular padding, zero-initialised weight) added back to the input, then ReLU;
3. the covariance of the 128 channels over all of the clip's positions (every frame's every location),
4. its matrix square root by 3 Newton-Schulz iterations on the trace-normalised matrix (iSQRT-COV:
   Li et al., CVPR 2018), scaled back by the square root of the trace;
5. the upper triangle, row by row (128 * 129 / 2 = 8256 values), dropout 0.5 and the classifier.

The backbone is the shared trunk (`zoo.models._trunk2d.Trunk2D`) with ``last_stride=1``: ``layer4`` keeps
``layer3``'s resolution (14 x 14 at 224), as the official code's ResNet-50 (``ops/torchvision/resnet.py``);
``tcp_tea_r50`` puts TEA's Res2Net trunk there (`zoo.models.tea`), ``tcp_tsn_r152`` the official
pre-activation ResNet-152 (`PreactResNet`, fed 0-255 pixels).
Layout as the official ZilinGao/Temporal-attentive-Covariance-Pooling-Networks-for-Video-Recognition code
(``ops/TCP/*.py``, ``ops/MPNCOV/MPNCOV.py``): the head's modules keep the official names (``layer_reduce1``,
``TCP_att.TSA.conv_phi_1``, ...), so official checkpoints, in the current and the older ``iSQRT`` layout
its test script remaps, load by renaming (`checkpoint_filter_fn`).

    [B, 3, T, H, W] -> [B*T, 3, H, W] -> trunk (last stride 1) -> TCP head [B, 8256] -> dropout -> fc

Written from the paper and the official code; the covariance is computed as the centred product
(the official code multiplies by an M x M centring matrix, M the clip's positions), equal up to rounding.
"""
from __future__ import annotations

import re
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import BadCheckpoint, UsageError
from ._contract import VideoModel
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo, Result, Weights
from ._loading import rename_keys, unwrap_state_dict
from ._registry import create_model, register_model
from ._trunk2d import Trunk2D
from .tea import TEA_RENAMES, plug_tea

__all__ = ["TSA", "TCA", "TCPAttention", "TCPHead", "TCPNet", "covariance", "sqrtm_newton_schulz",
           "upper_triangle", "checkpoint_filter_fn"]



def _silent(module: nn.Module) -> None:
    """Zero a branch's last layer (it starts silent) and mark its tensors for tests that fill weights at random."""
    for p in module.parameters(recurse=False):
        nn.init.zeros_(p)
        p.zero_init = True


class TSA(nn.Module):
    """Temporal self-attention (official ``TSA``): frame t's output at each position is a softmax-weighted
    sum, over the positions, of a 1x1 embedding of frame t (``conv_phi0``); the weights compare an
    embedding of frame t-1 (``conv_phi_1``) with one of frame t-2 (``conv_phi_2``), scaled by
    ``dim ** -0.5`` (the first frames stand in for the missing earlier ones). Through ``norm``, a BN
    initialised to zero, added to the input."""

    def __init__(self, dim: int, num_frames: int):
        super().__init__()
        self.dim, self.num_frames = dim, num_frames
        self.conv_phi_1 = nn.Conv2d(dim, dim, 1)
        self.conv_phi_2 = nn.Conv2d(dim, dim, 1)
        self.conv_phi0 = nn.Conv2d(dim, dim, 1)
        self.norm = nn.BatchNorm2d(dim)
        for conv in (self.conv_phi_1, self.conv_phi_2, self.conv_phi0):  # the official c2_msra_fill
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        _silent(self.norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        clips = VideoModel.batch_to_clips(x, self.num_frames)
        back1 = torch.cat((clips[:, :1], clips[:, :-1]), 1)  # frame max(t-1, 0)
        back2 = torch.cat((back1[:, :1], back1[:, :-1]), 1)  # frame max(t-2, 0)
        key = self.conv_phi_1(back1.reshape(nt, c, h, w)).flatten(2)
        query = self.conv_phi_2(back2.reshape(nt, c, h, w)).flatten(2)
        value = self.conv_phi0(x).flatten(2)
        weights = torch.softmax(key.transpose(1, 2) @ query * self.dim ** -0.5, dim=2)  # [NT, HW, HW]
        out = (value @ weights.transpose(1, 2)).reshape(nt, c, h, w)
        return x + self.norm(out)

    def extra_repr(self) -> str:
        return f"T={self.num_frames}"


class TCA(nn.Module):
    """Temporal channel attention (official ``TCA``): gates ``sigmoid(g2(relu(g1(d))))`` from the
    spatially pooled differences ``d`` of each frame to the frame before it and (halved) to the frame two
    before it, taken cyclically over the clip, one shared MLP (``dim -> 4 dim -> dim``); the attended
    features are scaled by the mean of the two gates."""

    def __init__(self, dim: int, num_frames: int):
        super().__init__()
        self.num_frames = num_frames
        self.g1 = nn.Conv2d(dim, dim * 4, 1)
        self.g2 = nn.Conv2d(dim * 4, dim, 1)

    def _gate(self, d: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.g2(F.relu(self.g1(d))))

    def forward(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3), keepdim=True)
        clips = VideoModel.batch_to_clips(pooled, self.num_frames)
        diff1 = (clips - clips.roll(1, dims=1)).reshape(pooled.shape)
        diff2 = ((clips - clips.roll(2, dims=1)) * 0.5).reshape(pooled.shape)
        return attended * (self._gate(diff1) + self._gate(diff2)) * 0.5

    def extra_repr(self) -> str:
        return f"T={self.num_frames}"


class TCPAttention(nn.Module):
    """The temporal attention of TCP (official ``TCP_att_module``): `TSA`, then `TCA` on its output, then
    a temporal conv over the clip's frames (``conv_1d``: Conv3d, kernel ``(k, 1, 1)`` with
    ``k = T // 2 + 1``, circular padding, its weight initialised to zero) added to the module's input,
    then ReLU.

    The padding: the official code pads ``k - 1`` frames under torch < 1.5 and ``(k - 1) // 2`` on each
    side from 1.5, chosen by comparing the minor version as a string (so torch 1.10 and later take the
    first branch, whose output has T + 4 frames at T = 8, and the model fails). torch 1.0-1.4 split a
    circular padding ``p`` into ``(p + 1) // 2`` frames before and ``p // 2`` after, so both branches pad
    the same ``(k - 1) / 2`` frames on each side for the released T = 8 and 16 (k = 5 and 9): the frames
    the released weights were trained with. Here: ``k // 2`` frames before, ``(k - 1) // 2`` after (the
    same for odd k; T frames out for any T)."""

    def __init__(self, dim: int, num_frames: int):
        super().__init__()
        self.num_frames = num_frames
        self.kernel = num_frames // 2 + 1
        self.TSA = TSA(dim, num_frames)
        self.TCA = TCA(dim, num_frames)
        self.conv_1d = nn.Conv3d(dim, dim, (self.kernel, 1, 1))
        for m in self.TCA.modules():  # the official init_weights: normal(0, 0.01), zero bias
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        _silent(self.conv_1d)

    def circular_pad(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, T, H, W]`` padded along T: the last ``k // 2`` frames before, the first ``(k - 1) // 2`` after."""
        before, after = self.kernel // 2, (self.kernel - 1) // 2
        return torch.cat((x[:, :, x.shape[2] - before:], x, x[:, :, :after]), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended = self.TCA(x, self.TSA(x))
        clips = VideoModel.batch_to_clips(attended, self.num_frames).transpose(1, 2)  # [N, C, T, H, W]
        out = VideoModel.frames_to_batch(self.conv_1d(self.circular_pad(clips)))
        return F.relu(out + x)

    def extra_repr(self) -> str:
        return f"T={self.num_frames}, temporal kernel {self.kernel}, circular"


def covariance(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, M]`` -> the covariance of the C channels over the M positions, ``[B, C, C]`` (divided by M)."""
    centred = x - x.mean(2, keepdim=True)
    return centred @ centred.transpose(1, 2) / x.shape[2]


def sqrtm_newton_schulz(a: torch.Tensor, iterations: int = 3, eps: float = 1e-5) -> torch.Tensor:
    """The matrix square root of SPD ``a`` ``[B, C, C]`` by coupled Newton-Schulz iterations (iSQRT-COV):
    ``a`` divided by (its trace + ``eps``), ``iterations`` steps of ``Y <- Y (3I - ZY) / 2``,
    ``Z <- (3I - ZY) Z / 2`` from ``Y = a, Z = I`` (the last step computes Y only), times sqrt(trace)."""
    if iterations < 1:
        raise UsageError(f"Newton-Schulz needs at least 1 iteration, got {iterations}")
    trace = a.diagonal(dim1=1, dim2=2).sum(1)[:, None, None]
    y = a / (trace + eps)
    eye3 = 3 * torch.eye(a.shape[1], dtype=a.dtype, device=a.device).expand_as(a)
    z = torch.eye(a.shape[1], dtype=a.dtype, device=a.device).expand_as(a)
    for _ in range(iterations - 1):
        t = 0.5 * (eye3 - z @ y)
        y, z = y @ t, t @ z
    return 0.5 * y @ (eye3 - z @ y) * trace.sqrt()


def upper_triangle(a: torch.Tensor) -> torch.Tensor:
    """``[B, C, C]`` -> its upper triangle, diagonal included, row by row: ``[B, C (C + 1) / 2]``."""
    rows, cols = torch.triu_indices(a.shape[1], a.shape[2], device=a.device)
    return a[:, rows, cols]


class TCPHead(nn.Module):
    """Temporal-attentive covariance pooling (official ``TCP``): ``[N*T, D, h, w]`` feature maps ->
    ``[N, dim (dim + 1) / 2]`` (see the module docstring)."""

    def __init__(self, num_frames: int, in_dim: int = 2048, dim: int = 128, inner_dim: int = 256,
                 iterations: int = 3, attention: bool = True):
        super().__init__()
        self.num_frames, self.dim, self.iterations = num_frames, dim, iterations
        self.layer_reduce1 = nn.Conv2d(in_dim, inner_dim, 1, bias=False)
        self.layer_reduce_bn1 = nn.BatchNorm2d(inner_dim)
        self.layer_reduce2 = nn.Conv2d(inner_dim, dim, 1, bias=False)
        self.layer_reduce_bn2 = nn.BatchNorm2d(dim)
        for conv in (self.layer_reduce1, self.layer_reduce2):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        self.TCP_att = TCPAttention(dim, num_frames) if attention else nn.Identity()
        self.num_features = dim * (dim + 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.layer_reduce_bn1(self.layer_reduce1(x)))
        x = F.relu(self.layer_reduce_bn2(self.layer_reduce2(x)))
        x = self.TCP_att(x)
        clips = VideoModel.batch_to_clips(x, self.num_frames)  # [N, T, C, h, w]: every position of every frame
        positions = clips.transpose(1, 2).flatten(2)  # [N, C, T*h*w]
        return upper_triangle(sqrtm_newton_schulz(covariance(positions), self.iterations))

    def extra_repr(self) -> str:
        return f"T={self.num_frames}, {self.dim} channels, {self.iterations} Newton-Schulz iterations"


class PreactBottleneck(nn.Module):
    """A pre-activation bottleneck (official ``Bottleneck_preact``): ``bn1``-ReLU, then the shortcut (a 1x1
    conv of the activated input, no BN, where the shape changes) and ``conv1``, ``bn2``-ReLU-``conv2`` (3x3,
    the stride), ``bn3``-ReLU-``conv3``, added; BN eps 2e-5 (the MXNet model it was converted from)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=2e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=2e-5)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=2e-5)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.downsample = (nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False))
                           if stride != 1 or inplanes != planes * 4 else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + shortcut


class PreactResNet(nn.Module):
    """TCPNet's pre-activation ResNet (official ``ops/torchvision/preact_resnet.py``, the ImageNet-11K/1K
    ResNet-152 converted from MXNet): a BN on the input (``bn_data``: the model takes 0-255 pixels), the
    7x7 stem with BN-ReLU and max pool, pre-activation stages (``layer4`` at ``last_stride``), a final
    BN-ReLU (``bn2``). ``forward``: frames ``[N, 3, H, W]`` -> the last feature map."""

    def __init__(self, layers=(3, 8, 36, 3), last_stride: int = 1):
        super().__init__()
        self.bn_data = nn.BatchNorm2d(3, eps=2e-5)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=2e-5)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers), 1):
            stride = 1 if i == 1 else (last_stride if i == 4 else 2)
            blocks = [PreactBottleneck(inplanes, planes, stride)]
            blocks += [PreactBottleneck(planes * 4, planes) for _ in range(depth - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
            inplanes = planes * 4
        self.bn2 = nn.BatchNorm2d(inplanes, eps=2e-5)
        self.num_features = inplanes
        for m in self.modules():  # the official initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(self.bn_data(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.relu(self.bn2(x))


PREACT = {"preact_resnet152": (3, 8, 36, 3), "preact_resnet26": (2, 2, 2, 2)}  # 26: the bench's small one


class TCPNet(VideoModel):
    """TCPNet on a TSN backbone (see the module docstring).

    Args:
        num_classes: classifier outputs.
        num_segments: frames (segments) per clip, T (the attention and the temporal conv run over them).
        backbone: timm ResNet name (resnet50 as released; resnet18/34 end in 512 channels), or a timm
            Res2Net (res2net50_26w_4s), which becomes TEA's backbone (`zoo.models.tea`: motion
            excitation and multiple temporal aggregation in every block), as TCPNet's TEA releases, or
            ``preact_resnet152``, the pre-activation ResNet-152 of its R152 releases (`PreactResNet`).
        dim: channels of the covariance (the official ``TCP_dim``).
        attention: the temporal attention module (False: plain covariance pooling, the paper's ablation).
        dropout: dropout before the classifier.
        in_chans: input channels.
    """

    fc_std = 0.001  # the official TSN's new_fc

    def __init__(self, num_classes: int = 400, num_segments: int = 8, backbone: str = "resnet50", dim: int = 128,
                 attention: bool = True, dropout: float = 0.5, in_chans: int = 3):
        super().__init__()
        if num_segments < 3:
            raise UsageError(f"TCP attends over the frames one and two steps back: num_segments must be at "
                             f"least 3, got {num_segments}")
        self.num_classes, self.num_segments = num_classes, num_segments
        if backbone in PREACT:
            if in_chans != 3:
                raise UsageError("the pre-activation ResNet takes 3 input channels")
            self.backbone = PreactResNet(PREACT[backbone], last_stride=1)
        else:
            self.backbone = Trunk2D(backbone, in_chans, last_stride=1)
        if backbone.startswith("res2net"):
            plug_tea(self.backbone, num_segments)
        self.head = TCPHead(num_segments, self.backbone.num_features, dim, attention=attention)
        self.num_features = self.head.num_features
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_classifier(num_classes)

    @property
    def num_frames(self) -> int:
        return self.num_segments

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> the trunk's feature maps of every frame ``[B*T, D, h, w]``."""
        return self.backbone(self.clip_frames(x))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature maps ``[B*T, D, h, w]`` -> the TCP representation ``[B, 8256]`` -> logits ``[B, K]``."""
        x = self.head(features)
        return x if pre_logits else self.fc(self.dropout(x))


# -- official checkpoints ------------------------------------------------------------------
# the official TSN (module.base_model.* with the head at base_model.TCP, new_fc), and the older layout its
# test script remaps (base_model.layer4.iSQRT.* with att_module names)
_RENAMES = (
    (re.compile(r"^module\."), ""),
    (re.compile(r"^base_model\.(layer4\.)?(iSQRT|TCP)\."), "head."),
    (re.compile(r"^head\.att_module\.conv_1\."), "head.TCP_att.TCA.g1."),
    (re.compile(r"^head\.att_module\.conv_2\."), "head.TCP_att.TCA.g2."),
    (re.compile(r"^head\.att_module\.sp_att\.conv_theta\."), "head.TCP_att.TSA.conv_phi_1."),
    (re.compile(r"^head\.att_module\.sp_att\.conv_phi\."), "head.TCP_att.TSA.conv_phi_2."),
    (re.compile(r"^head\.att_module\.sp_att\.conv_g\."), "head.TCP_att.TSA.conv_phi0."),
    (re.compile(r"^head\.att_module\.sp_att\."), "head.TCP_att.TSA."),
    (re.compile(r"^head\.att_module\."), "head.TCP_att."),
    # the TEA releases' older head: each reduction a Sequential (conv, BN)
    (re.compile(r"^head\.layer_reduce(\d)\.0\."), r"head.layer_reduce\1."),
    (re.compile(r"^head\.layer_reduce(\d)\.1\."), r"head.layer_reduce_bn\1."),
    (re.compile(r"^base_model\."), "backbone."),
    (re.compile(r"^new_fc\."), "fc."),
    *TEA_RENAMES,
)


def _imagenet_gcp(state_dict: Dict[str, torch.Tensor], own) -> Dict[str, torch.Tensor]:
    """An ImageNet covariance-pooling ResNet or Res2Net (``module.conv1.weight``, ``module.layer_reduce1.weight``
    or ``module.iSQRT.layer_reduce1.0.weight``, ``module.fc.*``): each key goes where the official ``keys_mapping_resnet`` puts it, under the
    backbone if it names a backbone tensor, else under the head (the classifier stays the classifier:
    fine-tuning re-initialises it); what the file lacks (the temporal attention) keeps ``own``'s values."""
    out = {}
    for k, v in state_dict.items():
        k = re.sub(r"^layer_reduce(\d)\.1\.", r"layer_reduce_bn\1.", k.removeprefix("module.").removeprefix("iSQRT."))
        k = re.sub(r"^layer_reduce(\d)\.0\.", r"layer_reduce\1.", k)  # the Res2Net GCP's Sequential (conv, BN)
        for prefix in ("backbone.", "head.", ""):
            if prefix + k in own:
                out[prefix + k] = v
                break
    if "backbone.conv1.weight" not in out or "head.layer_reduce1.weight" not in out:
        raise BadCheckpoint("not a TCPNet checkpoint nor an ImageNet covariance-pooling ResNet (no base_model.* "
                            "keys, no conv1.weight and layer_reduce1.weight): pass the release's file")
    return {**own, **out}


def checkpoint_filter_fn(checkpoint, model: TCPNet) -> Dict[str, torch.Tensor]:
    """Map an official TCPNet checkpoint (``{'state_dict': ...}``, ``module.base_model.*``, the head at
    ``base_model.TCP`` or, in the older layout, ``base_model.layer4.iSQRT`` with ``att_module`` names,
    ``new_fc``), an ImageNet GCP backbone (``module.*``, no ``base_model``) or a zoo one to our keys."""
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family="a TCPNet")
    own = model.state_dict()
    if set(state_dict) <= set(own):
        return state_dict  # already zoo layout
    if not any(".base_model." in k or k.startswith("base_model.") for k in state_dict):
        return _imagenet_gcp(state_dict, own)
    return rename_keys(state_dict, _RENAMES)


# -- registered variants -------------------------------------------------------------------
_PAPER = "Gao et al., Temporal-attentive Covariance Pooling Networks for Video Recognition, NeurIPS 2021"
_REPO = "ZilinGao/Temporal-attentive-Covariance-Pooling-Networks-for-Video-Recognition"
_README = f"{_REPO} README"
_K400 = "kinetics400"
_DRIVE = "https://drive.google.com/file/d/{}/view"
_TEST = "test scale 256, 3 crops of 256 (full resolution), softmax, the maximum over the 30 views"
_LABELS = ("the release's class indices follow its own annotation lists (TSM's Kinetics-400 tools: "
           "the classes sorted by name, the standard order)")


def _release(model: str, tag: str, frames: int, top1: float, top5: float, one_crop, page: str, notes: str,
             model_args=None, input_args=None) -> Weights:
    file = f"{model}_{tag}.pth.tar"  # the page names no file: zoo caches it under this name
    return Weights(tag, 400, _K400, (file,),
                   (Result(_K400, top1, top5, f"{frames} segments x 10 shifted clips x 3 crops, {_TEST}", _README),
                    Result(_K400, one_crop[0], one_crop[1], f"{frames} segments x 1 clip, 1 centre crop", _README)),
                   _REPO, f"{notes}; {_LABELS}; the page names no file: cached as {file}", page=page,
                   model_args=model_args or {}, input_args=input_args or {})


def _gcp_imagenet(file: str, notes: str, page_id: str) -> Weights:
    """The ImageNet covariance-pooling backbone a TCPNet recipe starts from (``--load_GCP_from``)."""
    return Weights("imagenet", 1000, "imagenet", (file,), (), _REPO,
                   f"{notes}; ImageNet class names in torchvision's order", page=_DRIVE.format(page_id))


def _info(name: str, **kw) -> ModelInfo:
    defaults = dict(name=name, family="tcp", paper=_PAPER, num_frames=8, num_segments=8, sampling="segment",
                    crop_size=256, resize_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, test_views=(10, 3),
                    segment_clips="shifted", view_aggregation="max", num_classes=400, dataset=_K400,
                    frames_arg="num_segments")
    return ModelInfo(**{**defaults, **kw})


_NOTES = ("The official test: 10 clips whose segments are shifted by tenths of a segment (ten_clips_sample), "
          "3 crops of 256 at scale 256, and the maximum of the 30 views' softmax (test_models.py); training "
          "crops are 224. The last stage keeps stride 16.")
_16F = dict(model_args={"num_segments": 16}, input_args={"num_segments": 16, "num_frames": 16})


@register_model(_info(
    "tcp_tsn_r50",
    # the official code's model (TSN with TCP=True, 400 classes) counted by fvcore at [1, 24, 256, 256]: 66.67
    # GFLOPs (51.02 at 224, 102.24 at 16 x 224); fvcore sees no FLOPs in its custom covariance and square-root
    # functions (0.05 GFLOPs here, counted as matmuls)
    ref_gflops=66.67, ref_params_m=27.63,
    notes=_NOTES),
    weights=(
        _release("tcp_tsn_r50", "kinetics400", 8, 75.3, 91.8, (72.4, 90.4), _DRIVE.format("1p05CaIv50Y2hzELFD4tXYYCZXizjkKAr") +
                 " (or https://pan.baidu.com/s/1mXx3c0PWMB0rRerDK9wkBg)",
                 "script/K400/train_K400_TCP_TSN_8f_R50.sh, from the ImageNet GCP ResNet-50"),
        _release("tcp_tsn_r50", "kinetics400_16f", 16, 75.8, 92.1, (73.9, 91.2), _DRIVE.format("1tCg-1JiM8l0_lC_YCyBqeVY_BohiQ3PS") +
                 " (or https://pan.baidu.com/s/1ocj0-3V0HWbKwZm0nCHonQ)",
                 "script/K400/train_K400_TCP_TSN_16f_R50.sh, from the ImageNet GCP ResNet-50", **_16F),
        _gcp_imagenet("ImgeNet1K_GCP_R50.pth.tar",
                      "ImageNet initialisation: the covariance-pooling ResNet-50 (last stride 1, the two reductions, "
                      "iSQRT-COV) the TCPNet recipes train from (--load_GCP_from); its classifier is not loaded; the "
                      "attention starts at its own initialisation", "119Mu7xDm8mpBZhKje6hIV_ER6YXED5hv")),
    bench=BenchPreset(frames=8, model_args={"backbone": "resnet18", "dim": 32}), filter_fn=checkpoint_filter_fn)
def tcp_tsn_r50(**kwargs) -> TCPNet:
    """TCPNet on TSN ResNet-50: temporal-attentive covariance pooling instead of the average pool."""
    return create_model(TCPNet, {}, kwargs)


@register_model(_info(
    "tcp_tea_r50",
    # the official code's model (TSN with base_model tea50, TCP=True) counted by fvcore at [1, 24, 256, 256]
    ref_gflops=68.80, ref_params_m=28.22,
    notes=_NOTES + " The backbone is TEA's (Res2Net-50 26w x 4s with motion excitation and multiple temporal "
                   "aggregation), its last split in layer4's first block unpooled, as the official code has it."),
    weights=(
        _release("tcp_tea_r50", "kinetics400", 8, 76.8, 92.9, (73.9, 91.6),
                 _DRIVE.format("1YnYE9Jcrv7MXE-Uom0XqML-drSJ3kn1y") + " (or https://pan.baidu.com/s/1grKR6UWLVpQBrNHoaFNlJQ)",
                 "script/K400/train_K400_TCP_TEA_8f_R50.sh, from the ImageNet GCP Res2Net-50"),
        _release("tcp_tea_r50", "kinetics400_16f", 16, 77.2, 93.1, (75.3, 92.2),
                 _DRIVE.format("1_NNRE1DEeghX9MvRi0-w3abmEE2dmxny") + " (or https://pan.baidu.com/s/1YfjpwcWWzxFYLS22f2OZ5Q)",
                 "script/K400/train_K400_TCP_TEA_16f_R50.sh, from the ImageNet GCP Res2Net-50", **_16F),
        _gcp_imagenet("ImageNet1K_Res2Net50_GCP_R50.pth.tar",
                      "ImageNet initialisation: the covariance-pooling Res2Net-50 the TCPNet TEA recipes train from "
                      "(--load_GCP_from); TEA's modules and the attention start at their own initialisation",
                      "1SLNz3dmWVBVsdp9CIaWFZXcAgtG5DvTH")),
    bench=BenchPreset(frames=8, model_args={"dim": 32}), filter_fn=checkpoint_filter_fn)
def tcp_tea_r50(**kwargs) -> TCPNet:
    """TCPNet on TEA's Res2Net-50: temporal-attentive covariance pooling on the TEA backbone."""
    return create_model(TCPNet, {"backbone": "res2net50_26w_4s"}, kwargs)


@register_model(_info(
    "tcp_tsn_r152", mean=(0.0, 0.0, 0.0), std=(1 / 255, 1 / 255, 1 / 255),
    # the official code's model (TSN with base_model resnet152, TCP=True) counted by fvcore at [1, 24, 256, 256]
    ref_gflops=144.46, ref_params_m=62.26,
    notes=_NOTES + " The backbone is the pre-activation ResNet-152 (ImageNet-11K then 1K, converted from MXNet), "
                   "fed 0-255 pixels without mean or std (its first layer is a BN), as the official test does."),
    weights=(
        _release("tcp_tsn_r152", "kinetics400", 8, 78.3, 93.7, (75.7, 92.2),
                 _DRIVE.format("108pRkpSOZ8uyaej_PYlkn2lfuOMWSl39") + " (or https://pan.baidu.com/s/10Or9C6R1GM6maRe6YL618w)",
                 "script/K400/train_K400_TCP_TSN_8f_R152.sh, from the ImageNet-11K/1K GCP pre-activation ResNet-152"),
        _release("tcp_tsn_r152", "kinetics400_16f", 16, 79.3, 94.0, (77.2, 93.1),
                 _DRIVE.format("15A1OhUXE_5YRH_TS5H914_BHfsZgrMNd") + " (or https://pan.baidu.com/s/1sNdlxl9WBQN0jdpOHsOjWA)",
                 "script/K400/train_K400_TCP_TSN_16f_R152.sh, from the ImageNet-11K/1K GCP pre-activation "
                 "ResNet-152; the README's test log for it is marked TODO", **_16F),
        _gcp_imagenet("ImgeNet11K_1K_preact_R152_GCP.pth.tar",
                      "ImageNet initialisation: the covariance-pooling pre-activation ResNet-152 (ImageNet-11K then "
                      "1K) the TCPNet R152 recipes train from (--load_GCP_from); the attention starts at its own "
                      "initialisation", "1FCx48L7KA9N4sh5ouH6Xp3GAQgEXE4so")),
    bench=BenchPreset(frames=8, model_args={"backbone": "preact_resnet26", "dim": 32}), filter_fn=checkpoint_filter_fn)
def tcp_tsn_r152(**kwargs) -> TCPNet:
    """TCPNet on the pre-activation ResNet-152 (0-255 input)."""
    return create_model(TCPNet, {"backbone": "preact_resnet152"}, kwargs)
