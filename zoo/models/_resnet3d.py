"""The 3D ResNet trunk of PySlowFast's model builder, shared by SlowFast and the I3D ResNet.

Feichtenhofer et al., "SlowFast Networks for Video Recognition", ICCV 2019 (and PySlowFast's
single-pathway ``ResNet``): `Stem`, `Bottleneck` and `Pathway` (one pathway: stem, res2..res5),
the head's window pooling (`pool_windows`), PySlowFast's initialisation, and the key mapping
between this trunk's keys and the three official layouts: PySlowFast ``.pyth``, its Caffe2
``.pkl`` blobs and PyTorchVideo's ``blocks.*`` (`map_checkpoint`, `to_*_layout`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._loading import unwrap_state_dict
from ._caffe2 import blobs_to_tensors, caffe2_blobs

__all__ = ["STAGE_DEPTHS", "SLOW_TEMPORAL_KERNELS", "FAST_TEMPORAL_KERNELS", "STAGE_NAMES", "bn3d", "projection_shortcut",
           "block_temporal_kernels", "Stem", "Bottleneck", "Pathway", "pool_windows", "window_softmax", "init_classifier",
           "init_weights", "PTVLayout", "PTV_SLOWFAST", "PTV_RESNET_POOL1", "map_checkpoint", "to_pyslowfast_layout",
           "to_pytorchvideo_layout", "to_caffe2_layout", "map_mmaction2", "is_mmaction2"]

# 26: two bottlenecks per stage, the small network `zoo compare` trains (not a published model)
STAGE_DEPTHS = {26: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
# Temporal kernel of the stem and of conv "a" in res2..res5 (PySlowFast _TEMPORAL_KERNEL_BASIS); a
# stage's entry may also be a tuple, cycled over its blocks (`block_temporal_kernels`).
SLOW_TEMPORAL_KERNELS = (1, 1, 1, 3, 3)
FAST_TEMPORAL_KERNELS = (5, 3, 3, 3, 3)
STAGE_NAMES = ("res2", "res3", "res4", "res5")


def bn3d(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=1e-5, momentum=0.1)


def block_temporal_kernels(kernels: Union[int, Sequence[int]], depth: int) -> Tuple[int, ...]:
    """Temporal kernels of conv "a" in the ``depth`` blocks of a stage: one int for every block, or
    a pattern repeated over the blocks (PySlowFast ``ResStage``, PyTorchVideo ``create_res_stage``),
    e.g. ``(1, 3)`` over 3 blocks -> 1, 3, 1."""
    pattern = (kernels,) if isinstance(kernels, int) else tuple(kernels)
    return (pattern * depth)[:depth]


def projection_shortcut(in_channels: int, out_channels: int, stride: int, norm: bool = True) -> Optional[nn.Sequential]:
    """A residual block's shortcut where the shape changes: a 1x1x1 conv (spatial ``stride``) and, with
    ``norm``, BN (keys ``conv``, ``bn``); None where the block keeps its shape (identity)."""
    if in_channels == out_channels and stride == 1:
        return None
    shortcut = nn.Sequential()
    shortcut.add_module("conv", nn.Conv3d(in_channels, out_channels, 1, stride=(1, stride, stride), bias=False))
    if norm:
        shortcut.add_module("bn", bn3d(out_channels))
    return shortcut


class Stem(nn.Module):
    """Conv [kt, 7, 7] stride [st, 2, 2] -> BN -> ReLU -> max-pool [1, 3, 3] stride [pt, 2, 2].

    ``temporal_stride`` (st) and ``pool_temporal_stride`` (pt) are 1 in PySlowFast; MMAction2's
    I3D sets both to 2 (``conv1_stride_t``, ``pool1_stride_t``)."""

    def __init__(self, out_channels: int, temporal_kernel: int, in_channels: int = 3, temporal_stride: int = 1,
                 pool_temporal_stride: int = 1):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, (temporal_kernel, 7, 7), stride=(temporal_stride, 2, 2),
                              padding=(temporal_kernel // 2, 3, 3), bias=False)
        self.bn = bn3d(out_channels)
        self.pool_stride = (pool_temporal_stride, 2, 2)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)), inplace=True)
        return F.max_pool3d(x, (1, 3, 3), stride=self.pool_stride, padding=(0, 1, 1))


class Bottleneck(nn.Module):
    """conv_a [kt, 1, 1] -> conv_b [1, 3, 3] (spatial stride) -> conv_c 1x1x1, plus the shortcut
    (a strided 1x1x1 conv + BN where the shape changes)."""

    def __init__(self, in_channels: int, inner_channels: int, out_channels: int, temporal_kernel: int,
                 stride: int = 1):
        super().__init__()
        self.conv_a = nn.Conv3d(in_channels, inner_channels, (temporal_kernel, 1, 1),
                                padding=(temporal_kernel // 2, 0, 0), bias=False)
        self.bn_a = bn3d(inner_channels)
        self.conv_b = nn.Conv3d(inner_channels, inner_channels, (1, 3, 3), stride=(1, stride, stride),
                                padding=(0, 1, 1), bias=False)
        self.bn_b = bn3d(inner_channels)
        self.conv_c = nn.Conv3d(inner_channels, out_channels, 1, bias=False)
        self.bn_c = bn3d(out_channels)
        self.shortcut = projection_shortcut(in_channels, out_channels, stride)

    def forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        x = F.relu(self.bn_a(self.conv_a(x)), inplace=True)
        x = F.relu(self.bn_b(self.conv_b(x)), inplace=True)
        x = self.bn_c(self.conv_c(x))
        return F.relu(x + identity, inplace=True)


class Pathway(nn.Module):
    """One ResNet pathway: ``stem`` then stages ``res2``..``res5`` of `Bottleneck` blocks.

    ``temporal_kernels``: the stem's, then each stage's conv "a" kernel (an int, or a tuple
    cycled over the stage's blocks). ``extra_in`` are the lateral channels concatenated onto each
    stage's input (slow pathway). ``temporal_pool`` > 1 adds ``pool``, a max-pool
    ``[temporal_pool, 1, 1]`` (stride the same, no padding) after res2: PySlowFast's
    ``pathway0_pool`` (``_POOL1``) and PyTorchVideo's ``stage1_pool`` (I3D, C2D).
    """

    def __init__(self, width: int, depths: Tuple[int, ...], temporal_kernels: Sequence[Union[int, Sequence[int]]],
                 extra_in: Tuple[int, ...] = (0, 0, 0, 0), temporal_pool: int = 1, stem_strides: Tuple[int, int] = (1, 1)):
        super().__init__()
        self.stem = Stem(width, temporal_kernels[0], temporal_stride=stem_strides[0],
                         pool_temporal_stride=stem_strides[1])
        self.pool = None
        in_ch = width
        for i, (name, depth) in enumerate(zip(STAGE_NAMES, depths)):
            inner, out = width * 2 ** i, width * 4 * 2 ** i
            kernels = block_temporal_kernels(temporal_kernels[i + 1], depth)
            blocks = [Bottleneck(in_ch + extra_in[i] if j == 0 else out, inner, out, kernels[j],
                                 stride=2 if (i > 0 and j == 0) else 1) for j in range(depth)]
            self.add_module(name, nn.Sequential(*blocks))
            if i == 0 and temporal_pool > 1:
                self.pool = nn.MaxPool3d((temporal_pool, 1, 1), stride=(temporal_pool, 1, 1))
            in_ch = out
        self.num_features = in_ch

    def stages(self) -> List[nn.Sequential]:
        return [getattr(self, n) for n in STAGE_NAMES]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pathway on its own (no laterals): stem -> res2 -> [pool] -> res3 -> res4 -> res5."""
        x = self.res2(self.stem(x))
        if self.pool is not None:
            x = self.pool(x)
        return self.res5(self.res4(self.res3(x)))


def window_softmax(features: Sequence[torch.Tensor], sizes: Sequence[Tuple[int, int, int]],
                   fc: nn.Module) -> torch.Tensor:
    """PySlowFast's test head: every stride-1 pooling window of each pathway (``sizes``, clipped
    to the map) concatenated and classified, a softmax per window, the mean over windows.
    Returned as log-probabilities, so its softmax is PySlowFast's probability. At the training
    crop there is one window and this is ``log_softmax`` of the logits; at larger test crops
    (256 for 224-trained models) it differs from the mean of the logits."""
    pooled = [F.avg_pool3d(f, _window(size, f), stride=1) for f, size in zip(features, sizes)]
    x = torch.cat(pooled, 1).permute(0, 2, 3, 4, 1)  # [B, t, h, w, C]
    return fc(x).softmax(-1).mean((1, 2, 3)).log()


def _window(size: Optional[Tuple[int, int, int]], features: torch.Tensor) -> Tuple[int, int, int]:
    """The pooling window ``size`` clipped to the feature map; None: the whole map (global pool)."""
    dims = tuple(features.shape[2:])
    return dims if size is None else tuple(min(k, d) for k, d in zip(size, dims))


def pool_windows(features: torch.Tensor, size: Optional[Tuple[int, int, int]]) -> torch.Tensor:
    """``[B, C, T, H, W]`` -> ``[B, C]``: the mean of the stride-1 average-pooling windows of
    ``size`` (clipped to the map), PySlowFast's / PyTorchVideo's head pool without the classifier.

    Averaging the window means before a linear classifier equals the fully convolutional test
    head (project every window, then average) of both references, without PySlowFast's softmax.
    ``size`` None: a global average (MMAction2's ``AdaptiveAvgPool3d`` heads).
    """
    if size is None:
        return features.mean((2, 3, 4))
    return F.avg_pool3d(features, _window(size, features), stride=1).mean((2, 3, 4))


def init_classifier(fc: nn.Linear) -> None:
    """N(0, 0.01) weights, zero bias (PySlowFast ``MODEL.FC_INIT_STD``)."""
    nn.init.normal_(fc.weight, 0, 0.01)
    nn.init.zeros_(fc.bias)


def init_weights(model: nn.Module, fc: nn.Linear) -> None:
    """PySlowFast's init: ``c2_msra_fill`` convs, unit BN with the last BN of every `Bottleneck`
    zeroed (``ZERO_INIT_FINAL_BN``), and `init_classifier` for ``fc``."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # c2_msra_fill
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, Bottleneck):
            nn.init.zeros_(m.bn_c.weight)  # ZERO_INIT_FINAL_BN
    init_classifier(fc)


# -- official checkpoints ------------------------------------------------------------------
# Three official layouts, all mapped through PySlowFast's key names (the hub in the middle):
#   Caffe2 blobs  <->  PySlowFast  <->  zoo
#   PyTorchVideo  <->  PySlowFast
# The same names serve PySlowFast's single-pathway ``ResNet`` (I3D: ``pathway0`` only, and a
# parameter-free ``pathway0_pool`` after s2).
_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_C2_BN = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}
_C2_BN_INV = {v: k for k, v in _C2_BN.items()}
# our `Pathway` attribute -> PySlowFast pathway index: SlowFast's two, a single-pathway ResNet's one
_PATHWAY_INDEX = {"slow": 0, "fast": 1, "backbone": 0}
_PATH = "(" + "|".join(_PATHWAY_INDEX) + ")"


@dataclass(frozen=True)
class PTVLayout:
    """Where a PyTorchVideo ``Net`` keeps PySlowFast's s1 (stem), s2..s5 (res2..res5) and head:
    ``blocks`` are their indices in ``Net.blocks``; ``multipathway`` nests each block's pathways
    in ``multipathway_blocks.{p}`` (and the laterals in ``multipathway_fusion``)."""

    blocks: Tuple[int, int, int, int, int, int]
    multipathway: bool


# create_slowfast: blocks.5 pools and concatenates the pathways, blocks.6 is the head
PTV_SLOWFAST = PTVLayout((0, 1, 2, 3, 4, 6), multipathway=True)
# create_resnet(stage1_pool=...) (I3D, C2D): the pool after res2 is blocks.2
PTV_RESNET_POOL1 = PTVLayout((0, 1, 3, 4, 5, 6), multipathway=False)


def _zoo_to_pysf(key: str) -> str:
    m = re.fullmatch(rf"{_PATH}\.stem\.(conv|bn)\.(\w+)", key)
    if m:
        return f"s1.pathway{_PATHWAY_INDEX[m[1]]}_stem.{m[2]}.{m[3]}"
    m = re.fullmatch(rf"{_PATH}\.res(\d)\.(\d+)\.(\w+)\.(\w+)", key)
    if m:
        path, stage, block, layer, param = m.groups()
        prefix = f"s{stage}.pathway{_PATHWAY_INDEX[path]}_res{block}"
        if layer.startswith(("conv_", "bn_")):  # conv_a -> branch2.a, bn_a -> branch2.a_bn
            kind, branch = layer.split("_")
            return f"{prefix}.branch2.{branch}{'_bn' if kind == 'bn' else ''}.{param}"
    m = re.fullmatch(rf"{_PATH}\.res(\d)\.(\d+)\.shortcut\.(conv|bn)\.(\w+)", key)
    if m:
        path, stage, block, layer, param = m.groups()
        return f"s{stage}.pathway{_PATHWAY_INDEX[path]}_res{block}.branch1{'_bn' if layer == 'bn' else ''}.{param}"
    m = re.fullmatch(r"laterals\.(\d)\.(conv|bn)\.(\w+)", key)
    if m:
        return f"s{int(m[1]) + 1}_fuse.{'conv_f2s' if m[2] == 'conv' else 'bn'}.{m[3]}"
    m = re.fullmatch(r"fc\.(weight|bias)", key)
    if m:
        return f"head.projection.{m[1]}"
    raise KeyError(f"no PySlowFast name for zoo key {key!r}")


def _pysf_to_ptv(key: str, layout: PTVLayout = PTV_SLOWFAST) -> str:
    def block(stage: str, path: str) -> str:  # s1..s5 -> blocks.{i}[.multipathway_blocks.{p}]
        if layout.multipathway:
            return f"blocks.{layout.blocks[int(stage) - 1]}.multipathway_blocks.{path}"
        if path != "0":
            raise KeyError(f"no PyTorchVideo name for PySlowFast key {key!r} in a single-pathway network")
        return f"blocks.{layout.blocks[int(stage) - 1]}"

    m = re.fullmatch(r"s1\.pathway(\d)_stem\.(conv|bn)\.(\w+)", key)
    if m:
        return f"{block('1', m[1])}.{'norm' if m[2] == 'bn' else 'conv'}.{m[3]}"
    m = re.fullmatch(r"s(\d)_fuse\.(conv_f2s|bn)\.(\w+)", key)
    if m and layout.multipathway:
        layer = "conv_fast_to_slow" if m[2] == "conv_f2s" else "norm"
        return f"blocks.{layout.blocks[int(m[1]) - 1]}.multipathway_fusion.{layer}.{m[3]}"
    m = re.fullmatch(r"s(\d)\.pathway(\d)_res(\d+)\.(branch1|branch1_bn|branch2\.[abc]|branch2\.[abc]_bn)\.(\w+)", key)
    if m:
        stage, path, res, layer, param = m.groups()
        layer = {"branch1": "branch1_conv", "branch1_bn": "branch1_norm"}.get(layer) or re.sub(
            r"branch2\.([abc])(_bn)?", lambda b: f"branch2.{'norm' if b[2] else 'conv'}_{b[1]}", layer)
        return f"{block(stage, path)}.res_blocks.{res}.{layer}.{param}"
    m = re.fullmatch(r"head\.projection\.(weight|bias)", key)
    if m:
        return f"blocks.{layout.blocks[5]}.proj.{m[1]}"
    raise KeyError(f"no PyTorchVideo name for PySlowFast key {key!r}")


def _pysf_to_c2(key: str, depths: Tuple[int, ...]) -> str:
    """Caffe2 blob name of a PySlowFast key (the inverse of PySlowFast's c2 name converter)."""
    def bn(param):
        return _C2_BN_INV[param]

    m = re.fullmatch(r"s1\.pathway(\d)_stem\.(conv|bn)\.(\w+)", key)
    if m:
        t = "t_" if m[1] == "1" else ""
        return f"{t}conv1_w" if m[2] == "conv" else f"{t}res_conv1_bn_{bn(m[3])}"
    m = re.fullmatch(r"s(\d)_fuse\.(conv_f2s|bn)\.(\w+)", key)
    if m:
        stage = int(m[1])
        base = "t_pool1_subsample" if stage == 1 else f"t_res{stage}_{depths[stage - 2] - 1}_branch2c_bn_subsample"
        return f"{base}_w" if m[2] == "conv_f2s" else f"{base}_bn_{bn(m[3])}"
    m = re.fullmatch(r"s(\d)\.pathway(\d)_res(\d+)\.branch(1|2\.[abc])(_bn)?\.(\w+)", key)
    if m:
        stage, path, block, branch, is_bn, param = m.groups()
        base = f"{'t_' if path == '1' else ''}res{stage}_{block}_branch{branch.replace('.', '')}"
        return f"{base}_bn_{bn(param)}" if is_bn else f"{base}_w"
    m = re.fullmatch(r"head\.projection\.(weight|bias)", key)
    if m:
        return "pred_w" if m[1] == "weight" else "pred_b"
    raise KeyError(f"no Caffe2 blob name for PySlowFast key {key!r}")


def _c2_to_pysf(name: str):
    """PySlowFast key of a Caffe2 blob name, or None for blobs that are not model weights."""
    t = r"(t_)?"
    rules = (
        (rf"{t}conv1_w", lambda f: f"s1.pathway{f(0)}_stem.conv.weight"),
        (rf"{t}res_conv1_bn_(s|b|rm|riv)", lambda f: f"s1.pathway{f(0)}_stem.bn.{_C2_BN[f(1)]}"),
        (r"t_pool1_subsample_w", lambda f: "s1_fuse.conv_f2s.weight"),
        (r"t_pool1_subsample_bn_(s|b|rm|riv)", lambda f: f"s1_fuse.bn.{_C2_BN[f(0)]}"),
        (r"t_res(\d)_\d+_branch2c_bn_subsample_w", lambda f: f"s{f(0)}_fuse.conv_f2s.weight"),
        (r"t_res(\d)_\d+_branch2c_bn_subsample_bn_(s|b|rm|riv)", lambda f: f"s{f(0)}_fuse.bn.{_C2_BN[f(1)]}"),
        (rf"{t}res(\d)_(\d+)_branch(1|2[abc])_w",
         lambda f: f"s{f(1)}.pathway{f(0)}_res{f(2)}.branch{_c2_branch(f(3))}.weight"),
        (rf"{t}res(\d)_(\d+)_branch(1|2[abc])_bn_(s|b|rm|riv)",
         lambda f: f"s{f(1)}.pathway{f(0)}_res{f(2)}.branch{_c2_branch(f(3))}_bn.{_C2_BN[f(4)]}"),
        (r"pred_(w|b)", lambda f: f"head.projection.{'weight' if f(0) == 'w' else 'bias'}"),
    )
    for pattern, build in rules:
        m = re.fullmatch(pattern, name)
        if m:
            groups = m.groups()
            if pattern.startswith(t):  # pathway from the optional t_ prefix
                groups = ("1" if groups[0] else "0",) + groups[1:]
            return build(lambda i: groups[i])
    return None


def _c2_branch(branch: str) -> str:
    return branch if branch == "1" else f"2.{branch[1]}"


def _pysf_to_zoo_table(model: nn.Module) -> Dict[str, str]:
    return {_zoo_to_pysf(k): k for k in model.state_dict()}


def to_pyslowfast_layout(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our state dict (SlowFast, or a single-pathway ResNet such as I3D) under PySlowFast's key
    names (as in its ``.pyth`` ``model_state``)."""
    return {_zoo_to_pysf(k): v for k, v in state_dict.items()}


def to_pytorchvideo_layout(state_dict: Dict[str, torch.Tensor],
                           layout: PTVLayout = PTV_SLOWFAST) -> Dict[str, torch.Tensor]:
    """Our state dict under PyTorchVideo's key names (``blocks.*``): ``create_slowfast``'s by
    default, ``create_resnet(stage1_pool=...)``'s with ``layout=PTV_RESNET_POOL1`` (I3D)."""
    return {_pysf_to_ptv(_zoo_to_pysf(k), layout): v for k, v in state_dict.items()}


def to_caffe2_layout(state_dict: Dict[str, torch.Tensor], depth: int = 50) -> Dict[str, np.ndarray]:
    """Our state dict as PySlowFast Caffe2 ``blobs`` (numpy arrays; BN step counters dropped).
    ``depth`` names the laterals (SlowFast only)."""
    depths = STAGE_DEPTHS[depth]
    return {_pysf_to_c2(p, depths): v.numpy() for k, v in state_dict.items()
            if not (p := _zoo_to_pysf(k)).endswith("num_batches_tracked")}


def _strip_prefixes(state_dict: Dict[str, torch.Tensor], prefixes: Iterable[str]) -> Dict[str, torch.Tensor]:
    out = {}
    for k, v in state_dict.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


_MMA_BLOCK = {"conv1.conv": "conv_a", "conv1.bn": "bn_a", "conv2.conv": "conv_b", "conv2.bn": "bn_b",
              "conv3.conv": "conv_c", "conv3.bn": "bn_c", "downsample.conv": "shortcut.conv",
              "downsample.bn": "shortcut.bn"}
_MMA_KEY = re.compile(r"^layer(\d)\.(\d+)\.(conv\d\.conv|conv\d\.bn|downsample\.conv|downsample\.bn)\.(.+)$")


def map_mmaction2(state_dict: Dict[str, torch.Tensor], pathways: Dict[str, str]) -> Dict[str, torch.Tensor]:
    """MMAction2 ``ResNet3d`` / ``ResNet3dSlowFast`` keys (``backbone.conv1.conv``,
    ``backbone.layer1.0.conv1.bn``, ``backbone.slow_path.layer1_lateral.conv``,
    ``cls_head.fc_cls``) -> ours; ``pathways`` maps MMAction2 prefixes to our pathways, e.g.
    ``{"backbone.slow_path": "slow", "backbone.fast_path": "fast"}``."""
    out = {}
    for k, v in state_dict.items():
        new = "fc." + k[len("cls_head.fc_cls."):] if k.startswith("cls_head.fc_cls.") else k
        for prefix, ours in pathways.items():
            if not k.startswith(prefix + "."):
                continue
            rest = k[len(prefix) + 1:]
            if rest.startswith("conv1.conv.") or rest.startswith("conv1.bn."):
                new = f"{ours}.stem.{rest[len('conv1.'):]}"
            elif rest.startswith("conv1_lateral.conv."):
                new = f"laterals.0.conv.{rest[len('conv1_lateral.conv.'):]}"
            elif re.match(r"layer\d_lateral\.conv\.", rest):
                new = f"laterals.{rest[5]}.conv.{rest[len('layer1_lateral.conv.'):]}"
            elif _MMA_KEY.match(rest):
                stage, block, part, param = _MMA_KEY.match(rest).groups()
                new = f"{ours}.res{int(stage) + 1}.{block}.{_MMA_BLOCK[part]}.{param}"
            break
        out[new] = v
    return out


def is_mmaction2(state_dict: Dict[str, torch.Tensor]) -> bool:
    return "cls_head.fc_cls.weight" in state_dict and any(k.startswith("backbone.") for k in state_dict)


def map_checkpoint(checkpoint, model: nn.Module, *, ptv_layout: PTVLayout = PTV_SLOWFAST,
                   family: str = "a SlowFast") -> Dict[str, torch.Tensor]:
    """Map a PySlowFast (``.pyth`` or Caffe2 ``blobs``), PyTorchVideo, MMAction2 (`map_mmaction2`;
    the caller checks the architecture options) or zoo checkpoint of a network built from
    `Pathway` (``model``'s keys) to our keys; ``ptv_layout`` is where PyTorchVideo's builder puts
    the stages. Unknown keys pass through for the loader to report."""
    own = model.state_dict()
    table = _pysf_to_zoo_table(model)
    blobs = caffe2_blobs(checkpoint)
    if blobs is not None:
        pysf = blobs_to_tensors(blobs, _c2_to_pysf, {p: own[z] for p, z in table.items()})
    else:
        state_dict = unwrap_state_dict(checkpoint, strip_prefixes=(), family=family)
        if set(state_dict) <= set(own):
            return state_dict  # already zoo layout
        if is_mmaction2(state_dict):
            paths = {"backbone.slow_path": "slow", "backbone.fast_path": "fast"} if hasattr(model, "slow") \
                else {"backbone": "backbone"}
            return map_mmaction2(state_dict, paths)
        pysf = _strip_prefixes(state_dict, ("module.", "model."))
        if any(k.startswith("blocks.") for k in pysf):
            ptv_to_pysf = {_pysf_to_ptv(p, ptv_layout): p for p in table}
            pysf = {ptv_to_pysf.get(k, k): v for k, v in pysf.items()}
    return {table.get(k, k): v for k, v in pysf.items()}
