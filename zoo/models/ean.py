"""EAN: Tian et al., "EAN: Event Adaptive Network for Enhanced Action Recognition", IJCV 2022.

A ResNet-50 over segments, each segment given as 5 consecutive frames (the middle one is the RGB frame
the trunk sees), as the official tianyuan168326/EAN-Pytorch code builds it (``EAN_8f.py``, ``EAN_16f.py``,
``EAB_rfs555.py``, ``SOI_Tr.py`` and the ``TSN.py`` wrapper; the repository has no licence file, so nothing
is taken from it but the structure):

- the Latent Motion Code (`LatentMotionCode`, official ``stm_*`` / ``proj_back``): each segment's 5 frames
  at half resolution (every other pixel), the 4 differences of consecutive frames cut into 16 x 16 patches,
  embedded (1x1x1 conv), mixed over patches and differences by two residual 3x3x3 grouped convs, projected
  back to 8 x 8 patches of 16 channels per difference: a 64-channel map at the stem's resolution, added
  to the stem's output. The 16-frame release (``lmc="patch_stack"``) deepens the embedding and the
  projection (conv, BN, ReLU, conv), adds a second code from the stacked differences through 2D convs
  (``stack_diff_motion``), and fuses ``0.6 * stem + 0.2 * code + 0.2 * stacked``;
- in every bottleneck, after ``conv1``: TEA's motion excitation (`zoo.models.tea.MotionExcitation`), then
  a channel-wise temporal conv initialised as TSM's shift, 1/8 of the channels each way
  (`zoo.models.tea.TemporalAggregation`);
- before ``layer1`` and between the stages, the dynamic-scale spatio-temporal block (`DynamicScaleBlock`,
  official ``STCeptionLayer_max``): channels squeezed 4x, split in three (kept, temporal conv, dilated
  temporal conv), a per-video 1x1 channel mix predicted from the features (the dynamic kernel), split in
  three again (kept, spatial conv, dilated spatial conv), plus a max-pooled branch, expanded and added;
- the sparse transformer head (`SparseTransformerHead`, official ``SparseTransformer``): 4 soft slots per
  frame selected by a predicted spatial softmax over the position-embedded features, a 2-layer
  transformer over those 4 x T tokens, its mean expanded and batch-normalised (from zero) and added to
  the average-pooled feature; then dropout and the classifier (the official ``new_fc``).

The official files hard-wire 8 or 16 segments and 224 px (their position embedding is 8 x 7 x 7 or
16 x 7 x 7, the motion code's reshapes 56 x 56); there zoo computes what they compute. At other sizes zoo
resizes the position embedding over space (trilinear), sizes it to the segment count it is built for
(a checkpoint's is resized over time when it is loaded into another count), and needs H and W to be
multiples of 32 (the code's 16-pixel patches at half resolution).

The trunk is the shared one (`zoo.models._trunk2d.Trunk2D`): the excitation and the temporal conv at
each block's ``post_conv1`` point, the dynamic-scale blocks at ``after_layer1`` .. ``after_layer3``
(the first one, before ``layer1``, is the model's ``relation1``); official keys map by renaming
(`checkpoint_filter_fn`), the official modules that the forward pass never uses (the ResNet's ``bn2``,
each dynamic-scale block's ``bn2``, the 8-frame file's ``stm_proj2``) dropped.

    [B, 3, T*5, H, W] -> middle frames [B*T, 3, H, W] -> stem (+ motion code) -> block, layer1, block, ...
                      -> layer4 -> [B, D, T, h, w] -> sparse transformer head -> dropout -> fc
"""
from __future__ import annotations

import re
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._errors import UsageError
from ._contract import VideoModel
from ._imagenet import imagenet_weights, is_torchvision, resnet_2d
from ._info import IMAGENET_MEAN, IMAGENET_STD, BenchPreset, ModelInfo, Result, Weights
from ._loading import rename_keys, unwrap_state_dict
from ._registry import create_model, register_model
from ._trunk2d import Trunk2D
from .tea import MotionExcitation, TemporalAggregation

__all__ = ["LatentMotionCode", "DynamicScaleBlock", "SparseTransformerHead", "EAN", "LMC_DESIGNS",
           "checkpoint_filter_fn"]

FRAMES_PER_SEGMENT = 5  # each segment's frames at the input; the middle one is the RGB frame
LMC_DESIGNS = ("patch", "patch_stack")  # the 8-frame release's motion code; the 16-frame release's
# the stem's, the motion code's and the stacked code's weights in their sum, per design
_FUSION = {"patch": (1.0, 1.0), "patch_stack": (0.6, 0.2, 0.2)}
PATCH = 16  # the motion code's patch side at half resolution (the official 112 // 7)
SIZE_MULTIPLE = 2 * PATCH


def _kaiming(module: nn.Module) -> None:
    """The official initialisation of EAN's own modules: convs Kaiming-normal (fan out), BNs 1 and 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _clips(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``[N*T, C, H, W]`` -> ``[N, C, T, H, W]`` (`VideoModel.frames_to_batch` undoes it)."""
    return VideoModel.batch_to_clips(x, frames).transpose(1, 2)


def _resized(pos: torch.Tensor, size: Tuple[int, int, int]) -> torch.Tensor:
    """A position embedding ``[dim, t, h, w]`` at ``size``: as it is where it fits, else trilinear."""
    if tuple(pos.shape[1:]) == tuple(size):
        return pos
    return F.interpolate(pos[None], size=size, mode="trilinear", align_corners=False)[0]


class LatentMotionCode(nn.Module):
    """The Latent Motion Code (see the module docstring): snippets ``[N, 3, 5, H, W]`` and the stem's
    output on their middle frames ``[N, 64, H/4, W/4]`` -> the two summed, with the code of each
    segment (`codes`: with ``design="patch_stack"`` also the stacked-difference code), weighted as the
    design's release weights them (``_FUSION``). Official names: ``stm_proj1``, ``stm_st_model1``,
    ``stm_st_model2``, ``proj_back``, ``stack_diff_motion``."""

    out_channels = 64  # 16 channels per frame difference, 4 differences
    patch_dim = 256

    def __init__(self, design: str = "patch"):
        super().__init__()
        if design not in LMC_DESIGNS:
            raise UsageError(f"lmc must be one of {LMC_DESIGNS}, got {design!r}")
        self.design = design
        d, rgb = self.patch_dim, PATCH * PATCH * 3
        deep = design == "patch_stack"
        self.stm_proj1 = nn.Sequential(nn.Conv3d(rgb, d, 1, bias=False), *(
            (nn.BatchNorm3d(d), nn.ReLU(inplace=True), nn.Conv3d(d, d, 1, bias=False)) if deep else ()))
        self.stm_st_model1 = nn.Sequential(
            nn.Conv3d(d, d, 3, padding=1, groups=16, bias=False), nn.BatchNorm3d(d), nn.ReLU(inplace=True),
            nn.Conv3d(d, d, 1, bias=False), nn.BatchNorm3d(d))
        self.stm_st_model2 = nn.Sequential(nn.Conv3d(d, d, 3, padding=1, groups=16, bias=False), nn.BatchNorm3d(d))
        back = 8 * 8 * (self.out_channels // (FRAMES_PER_SEGMENT - 1))  # 8 x 8 patches of 16 channels
        self.proj_back = nn.Sequential(*(
            (nn.Conv3d(d, d, 1, bias=False), nn.BatchNorm3d(d), nn.ReLU(inplace=True)) if deep else ()),
            nn.Conv3d(d, back, 1, bias=False))
        self.stack_diff_motion = nn.Sequential(
            nn.Conv2d(3 * (FRAMES_PER_SEGMENT - 1), 24, 3, stride=2, padding=1, bias=False), nn.ReLU(inplace=True),
            nn.BatchNorm2d(24), nn.Conv2d(24, 64, 3, padding=1, groups=4, bias=False), nn.ReLU(inplace=True),
            nn.BatchNorm2d(64), nn.Conv2d(64, 64, 1), nn.Conv2d(64, 64, 3, padding=1, groups=16, bias=False),
        ) if deep else None
        _kaiming(self)
        with torch.no_grad():  # the official start: proj_back at PyTorch's default init, its first conv x 0.01
            for m in self.proj_back.modules():
                if isinstance(m, (nn.Conv3d, nn.BatchNorm3d)):
                    m.reset_parameters()
            self.proj_back[0].weight.mul_(0.01)

    def forward(self, snippets: torch.Tensor, stem: torch.Tensor) -> torch.Tensor:
        weights = _FUSION[self.design]
        y = weights[0] * stem
        for weight, code in zip(weights[1:], self.codes(snippets)):
            y = y + weight * code
        return y

    def codes(self, snippets: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Snippets ``[N, 3, 5, H, W]`` -> the code ``[N, 64, H/4, W/4]`` (and the stacked code)."""
        n, c, length, h, w = snippets.shape
        half = snippets[..., ::2, ::2]  # every other pixel: the official nearest F.upsample at scale 0.5
        diff = half[:, :, 1:] - half[:, :, :-1]  # [N, 3, 4, H/2, W/2]
        t, gh, gw = length - 1, h // 2 // PATCH, w // 2 // PATCH
        patches = diff.reshape(n, c, t, gh, PATCH, gw, PATCH).permute(0, 4, 6, 1, 2, 3, 5)
        x = self.stm_proj1(patches.reshape(n, PATCH * PATCH * c, t, gh, gw))
        x = x + self.stm_st_model1(x)
        x = x + self.stm_st_model2(x)
        x = self.proj_back(x)  # [N, 8*8*16, 4, gh, gw]
        per = self.out_channels // t
        x = x.view(n, 8, 8, per, t, gh, gw).permute(0, 3, 4, 5, 1, 6, 2).reshape(n, per * t, gh * 8, gw * 8)
        if self.stack_diff_motion is None:
            return (x,)
        return x, self.stack_diff_motion(diff.reshape(n, c * t, h // 2, w // 2))


class DynamicScaleBlock(nn.Module):
    """The dynamic-scale spatio-temporal block (official ``STCeptionLayer_max``): ``[N*T, C, H, W]`` -> the
    same (see the module docstring). ``C`` is squeezed ``ratio`` x to ``c`` (grouped 1x1x1, 4 groups);
    the dynamic 1x1 kernel ``[c, c]`` comes from a small 3D CNN (``p_prod1``: 1x1x1, two 3x3x3, a strided
    3x3x3, twice more, global pool) and a linear layer (``p_prod2``). The expansion starts at PyTorch's
    default initialisation x 0.01, so the block starts near the identity. Official names kept."""

    def __init__(self, channels: int, num_segments: int, ratio: int = 4, dynamic_ratio: int = 16):
        super().__init__()
        c = channels // ratio
        if channels % (4 * ratio) or c < dynamic_ratio:
            raise UsageError(f"a dynamic-scale block needs channels divisible by {4 * ratio} and at least "
                             f"{ratio * dynamic_ratio}, got {channels}")
        self.num_segments, self.used = num_segments, c
        third, rest = c // 3, c - 2 * (c // 3)
        self.compress_c1 = nn.Conv3d(channels, c, 1, groups=4, bias=False)
        self.expand_c1 = nn.Conv3d(c, channels, 1, groups=4, bias=False)
        self.t_part2_conv = nn.Conv3d(third, third, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.t_part3_conv = nn.Conv3d(rest, rest, (3, 1, 1), dilation=(2, 1, 1), padding=(2, 0, 0), bias=False)
        self.s_part2_conv = nn.Conv3d(third, third, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.s_part3_conv = nn.Conv3d(rest, rest, (1, 3, 3), dilation=(1, 2, 2), padding=(0, 2, 2), bias=False)
        self.non_linear = nn.Sequential(nn.BatchNorm3d(c), nn.ReLU(inplace=True))
        self.max_project = nn.Conv3d(c, c, 1, bias=False)
        p = c // dynamic_ratio

        def conv_bn(cin, cout, bias=True, **kw):
            return [nn.Conv3d(cin, cout, bias=bias, **kw), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]

        self.p_prod1 = nn.Sequential(
            *conv_bn(c, p, bias=False, kernel_size=1),
            *conv_bn(p, p, kernel_size=3, padding=1), *conv_bn(p, p, kernel_size=3, padding=1),
            *conv_bn(p, 2 * p, kernel_size=3, stride=2, padding=2),
            *conv_bn(2 * p, 2 * p, kernel_size=3, padding=1), *conv_bn(2 * p, 2 * p, kernel_size=3, padding=1),
            *conv_bn(2 * p, 4 * p, kernel_size=3, stride=2, padding=2),
            nn.AdaptiveAvgPool3d(1))
        self.p_prod2 = nn.Sequential(nn.Linear(4 * p, c * c))
        _kaiming(self)
        with torch.no_grad():
            self.expand_c1.reset_parameters()
            self.expand_c1.weight.mul_(0.01)

    def _parts(self, x: torch.Tensor, second: nn.Module, third: nn.Module) -> torch.Tensor:
        k = self.used // 3
        return torch.cat((x[:, :k], second(x[:, k:2 * k]), third(x[:, 2 * k:])), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        clips = _clips(x, self.num_segments)  # [N, C, T, H, W]
        st = self.compress_c1(clips)
        n, c, t, h, w = st.shape
        kernel = self.p_prod2(self.p_prod1(st).flatten(1)).view(n, c, c)  # one 1x1 channel mix per video
        pooled = self.max_project(F.max_pool3d(st, 3, stride=1, padding=1))
        mixed = self.non_linear(self._parts(st, self.t_part2_conv, self.t_part3_conv))
        mixed = torch.bmm(kernel, mixed.flatten(2)).view(n, c, t, h, w)
        out = self.expand_c1(self._parts(mixed, self.s_part2_conv, self.s_part3_conv) + pooled)
        return VideoModel.frames_to_batch(out + clips)

    def extra_repr(self) -> str:
        return f"T={self.num_segments}"


class _TransformerLayer(nn.Module):
    """One layer of the head's transformer (official ``Residual(PreNorm(...))`` pairs): BN1d over the
    tokens' channels, multi-head attention (``to_qkv`` without bias, ``to_out``), added; BN1d, an MLP
    with BN1d after its first two linears, added."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.BatchNorm1d(dim)
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        self.norm2 = nn.BatchNorm1d(dim)
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
                                 nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.to_qkv(self.norm1(x.reshape(b * n, c))).view(b, n, 3, self.heads, c // self.heads).unbind(2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.to_out(attended.transpose(1, 2).reshape(b, n, c))
        return x + self.net(self.norm2(x.reshape(b * n, c))).view(b, n, c)


class SparseTransformerHead(nn.Module):
    """The sparse transformer head (official ``SparseTransformer``; see the module docstring): the last
    feature map ``[N, C, T, h, w]`` -> a pooled feature ``[N, C]``. ``slots`` soft selections per frame,
    the transformer ``depth`` layers of ``heads`` heads over ``C / reduction`` channels; the position
    embedding ``[C / reduction, T * grid * grid]`` (the official shape), resized at other map sizes."""

    def __init__(self, channels: int, num_segments: int, reduction: int = 4, slots: int = 4, depth: int = 2,
                 heads: int = 8, grid: int = 7):
        super().__init__()
        dim = channels // reduction
        hidden = dim // 4
        self.slots, self.grid, self.num_segments = slots, grid, num_segments
        self.squeeze_l = nn.Conv3d(channels, dim, 1, bias=False)
        self.expand_l = nn.Linear(dim, channels, bias=False)
        self.score_predictor = nn.Sequential(
            nn.Conv3d(dim, hidden, 1), nn.ReLU(inplace=True), nn.BatchNorm3d(hidden),
            nn.Conv3d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm3d(hidden),
            nn.Conv3d(hidden, hidden, (1, 3, 3), padding=(0, 1, 1)), nn.ReLU(inplace=True), nn.BatchNorm3d(hidden),
            nn.Conv3d(hidden, slots, (1, 3, 3), padding=(0, 1, 1)))
        self.pos_embedding = nn.Parameter(torch.randn(dim, num_segments * grid * grid))
        self.layers = nn.ModuleList(_TransformerLayer(dim, heads) for _ in range(depth))
        self.Tr_BN = nn.BatchNorm1d(channels)
        _kaiming(self)
        nn.init.zeros_(self.Tr_BN.weight)  # the transformer's branch starts silent

    def position(self, t: int, h: int, w: int) -> torch.Tensor:
        """The position embedding ``[dim, t, h, w]``: as stored at ``num_segments x grid x grid``, resized
        (trilinear) elsewhere."""
        return _resized(self.pos_embedding.view(-1, self.num_segments, self.grid, self.grid), (t, h, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3, 4))
        x = self.squeeze_l(x)
        n, c, t, h, w = x.shape
        scores = self.score_predictor(x).flatten(3).softmax(-1).view(n, self.slots, t, h, w)
        x = x + self.position(t, h, w)
        tokens = torch.einsum("ncthw,nmthw->nmtc", x, scores).reshape(n, self.slots * t, c)
        for layer in self.layers:
            tokens = layer(tokens)
        return self.Tr_BN(self.expand_l(tokens.mean(1))) + pooled


class EANMotion(nn.Module):
    """A bottleneck's EAN modules after ``conv1``: motion excitation (``me``), then the channel-wise
    temporal conv (``t_conv``, TSM's 1/8 shift at the start)."""

    def __init__(self, channels: int, num_segments: int):
        super().__init__()
        self.me = MotionExcitation(channels, num_segments)
        self.t_conv = TemporalAggregation(channels, num_segments, "shift", fold_div=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.t_conv(self.me(x))


class EAN(VideoModel):
    """EAN (see the module docstring): input ``[B, 3, T*5, H, W]``, each segment's 5 consecutive frames.

    Args:
        num_classes: classifier outputs.
        num_segments: segments per clip, T.
        lmc: the Latent Motion Code's design: ``"patch"`` (the 8-frame release) or ``"patch_stack"``
            (the 16-frame release: deeper projections, the stacked-difference code, the 0.6/0.2/0.2 sum).
        backbone: timm ResNet name (resnet50 as released).
        dropout: dropout before the classifier.
    """

    fc_std = 0.001  # the official TSN wrapper's new_fc

    def __init__(self, num_classes: int = 174, num_segments: int = 8, lmc: str = "patch",
                 backbone: str = "resnet50", dropout: float = 0.5):
        super().__init__()
        if num_segments < 2:
            raise UsageError(f"EAN compares segments: num_segments must be at least 2, got {num_segments}")
        self.num_classes, self.num_segments = num_classes, num_segments
        self.lmc = LatentMotionCode(lmc)
        self.backbone = Trunk2D(backbone)
        self.backbone.plug("post_conv1", lambda s, j, block: EANMotion(block.conv1.out_channels, num_segments))
        self.relation1 = DynamicScaleBlock(self.backbone.conv1.out_channels, num_segments)
        for stage in (1, 2, 3):
            width = self.backbone.stages[stage - 1][-1].out_channels
            self.backbone.plug_between(stage, DynamicScaleBlock(width, num_segments))
        self.num_features = self.backbone.num_features
        self.head = SparseTransformerHead(self.num_features, num_segments)
        self.dropout = nn.Dropout(dropout)
        self.fc = self.linear_classifier(num_classes)

    @property
    def num_frames(self) -> int:
        return self.num_segments * FRAMES_PER_SEGMENT

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T*5, H, W]`` -> the last feature map ``[B, D, T, h, w]``."""
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise UsageError(f"EAN's motion code cuts {PATCH}-pixel patches at half resolution: H and W must be "
                             f"multiples of {SIZE_MULTIPLE}, got {h}x{w} (crop or resize to e.g. 224)")
        frames = self.clip_frames(x)  # [B*T*5, 3, H, W]
        snippets = frames.view(-1, FRAMES_PER_SEGMENT, *frames.shape[1:]).transpose(1, 2)  # [B*T, 3, 5, H, W]
        y = self.lmc(snippets, self.backbone.stem(snippets[:, :, FRAMES_PER_SEGMENT // 2]))
        return _clips(self.backbone.body(self.relation1(y)), self.num_segments)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """``[B, D, T, h, w]`` -> logits ``[B, K]`` (the sparse transformer head, dropout, fc)."""
        pooled = self.head(features)
        return pooled if pre_logits else self.fc(self.dropout(pooled))


# -- official checkpoints ------------------------------------------------------------------
_RENAMES = (
    (re.compile(r"^module\."), ""),
    (re.compile(r"^new_fc\."), "fc."),
    (re.compile(r"^base_model\.(stm_proj1|stm_st_model1|stm_st_model2|proj_back|stack_diff_motion)\."), r"lmc.\1."),
    (re.compile(r"^base_model\.relation1\."), "relation1."),
    (re.compile(r"^base_model\.relation([234])\."), lambda m: f"backbone.after_layer{int(m[1]) - 1}."),
    (re.compile(r"^base_model\.sparse_transformer\.transformer\.layers\.(\d+)\.0\.fn\.norm\."), r"head.layers.\1.norm1."),
    (re.compile(r"^base_model\.sparse_transformer\.transformer\.layers\.(\d+)\.0\.fn\.fn\.to_qkv\."),
     r"head.layers.\1.to_qkv."),
    (re.compile(r"^base_model\.sparse_transformer\.transformer\.layers\.(\d+)\.0\.fn\.fn\.to_out\.0\."),
     r"head.layers.\1.to_out."),
    (re.compile(r"^base_model\.sparse_transformer\.transformer\.layers\.(\d+)\.1\.fn\.norm\."), r"head.layers.\1.norm2."),
    (re.compile(r"^base_model\.sparse_transformer\.transformer\.layers\.(\d+)\.1\.fn\.fn\.net\."), r"head.layers.\1.net."),
    (re.compile(r"^base_model\.sparse_transformer\."), "head."),
    (re.compile(r"\.(me|t_conv)\."), r".post_conv1.\1."),
    (re.compile(r"^base_model\."), "backbone."),
)
# official modules the forward pass never uses
_UNUSED = re.compile(r"^(module\.)?base_model\.(bn2|stm_proj2|relation\d\.bn2)\.")


def checkpoint_filter_fn(checkpoint, model: EAN) -> Dict[str, torch.Tensor]:
    """Map an official EAN checkpoint (``EAN_8f`` / ``EAN_16f`` in the TSN wrapper, DataParallel:
    ``module.base_model.*``, ``module.new_fc.*``), torchvision's ImageNet ResNet (the EAN modules keep
    their initialisation) or a zoo one to our keys; a position embedding of another segment count is
    resized over time."""
    state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family="an EAN")
    own = model.state_dict()
    if is_torchvision(state_dict):
        return resnet_2d(state_dict, own, "backbone.", "fc.")
    if not set(state_dict) <= set(own):
        state_dict = rename_keys({k: v for k, v in state_dict.items() if not _UNUSED.match(k)}, _RENAMES)
    key = "head.pos_embedding"
    if key in state_dict and key in own and state_dict[key].shape != own[key].shape:
        g = model.head.grid  # the checkpoint's segment count resized to the model's
        pos = _resized(state_dict[key].view(own[key].shape[0], -1, g, g), (model.num_segments, g, g))
        state_dict = {**state_dict, key: pos.reshape(own[key].shape)}
    return state_dict


# -- registered variants -------------------------------------------------------------------
_PAPER = "Tian et al., EAN: Event Adaptive Network for Enhanced Action Recognition, IJCV 2022"
_REPO = "tianyuan168326/EAN-Pytorch"
_SSV1 = "something-something-v1"
_PAGE = "https://www.jianguoyun.com/p/DQ75LqkQ_vLOBhjx4IEE (Jianguo Cloud, linked from the official README)"
_VIEWS = "{} segments x 2 clips x 1 centre crop 224 (scale 256), logits averaged"
_NOTES = ("Test protocol: the release's test script (script/test/sthv1): 5 consecutive frames per segment, 2 clips "
          "(the segment centres and starts), short side 256, centre crop 224, the clips' logits averaged. The "
          "official code runs at 224 px and its segment count only; other sizes: see the module docstring.")


def _release(frames: int, top1: float, top5: float, notes: str) -> Weights:
    file = f"Somethingv1.RGB_LMC_{frames}f.pth.tar"  # the name the release's test scripts load
    return Weights("sthv1", 174, _SSV1, (file,), (Result(_SSV1, top1, top5, _VIEWS.format(frames), _REPO + " README"),),
                   _REPO, f"{notes}; class names in the release's category.txt order (sorted)", page=_PAGE)


def _info(name: str, segments: int, gflops: float, params: float, notes: str) -> ModelInfo:
    return ModelInfo(
        name=name, family="ean", paper=_PAPER, num_frames=segments * FRAMES_PER_SEGMENT, num_segments=segments,
        frames_per_segment=FRAMES_PER_SEGMENT, sampling="segment", crop_size=224, resize_size=256,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, test_views=(2, 1), view_aggregation="logit-mean", num_classes=174,
        dataset=_SSV1, frames_arg="num_segments", min_size=SIZE_MULTIPLE, ref_gflops=gflops, ref_params_m=params,
        notes=f"{notes} {_NOTES}")


_IMAGENET = imagenet_weights("resnet50", "ImageNet initialisation of the trunk (the official resnet50(pretrained=True)); "
                                         "the motion code, the EAN modules and the head keep their initialisation; "
                                         "ImageNet class names in torchvision's order")
# 4 segments of 5 frames (20 of SynthMotion's 32) on a ResNet-18
_BENCH = dict(frames=4 * FRAMES_PER_SEGMENT)


# reference cost: the official TSN(EAN_8f / EAN_16f, 174 classes) counted by fvcore at its [T*5, 3, 224, 224]
# input in the parity environment (the README: 37G and 74G); parameters: those its forward pass uses (all:
# 37.12 M and 37.34 M, with the unused modules that checkpoint_filter_fn drops)
@register_model(_info("ean_r50_8f", 8, 37.34, 36.99, "The 8-frame release's design (EAN_8f.py)."),
                weights=(_release(8, 53.4, 81.1, "EAN 8F (RGB+LMC)"), _IMAGENET),
                bench=BenchPreset(model_args={"backbone": "resnet18"}, **_BENCH), filter_fn=checkpoint_filter_fn)
def ean_r50_8f(**kwargs) -> EAN:
    """EAN ResNet-50 with the 8-frame release's Latent Motion Code (8 segments of 5 frames)."""
    return create_model(EAN, {"num_segments": 8, "lmc": "patch"}, kwargs)


@register_model(_info("ean_r50_16f", 16, 75.70, 37.33,
                      "The 16-frame release's design (EAN_16f.py: the deeper motion code and the stacked-difference "
                      "code). The official README also reports 57.2 for the 16f and 8f models' scores combined "
                      "(16+8) and 57.5 for two such views."),
                weights=(_release(16, 54.7, 82.3, "EAN 16F (RGB+LMC)"), _IMAGENET),
                bench=BenchPreset(model_args={"backbone": "resnet18"}, **_BENCH), filter_fn=checkpoint_filter_fn)
def ean_r50_16f(**kwargs) -> EAN:
    """EAN ResNet-50 with the 16-frame release's Latent Motion Code (16 segments of 5 frames)."""
    return create_model(EAN, {"num_segments": 16, "lmc": "patch_stack"}, kwargs)
