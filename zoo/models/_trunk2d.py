"""One 2D ResNet trunk for the frame-level families (TSN, TSM, PAN and the systems built on them):
timm's ResNet, run block by block here so that a temporal module is one class plugged in at a named
point, the way PyTorchVideo composes networks from stem, block and head builders.

    frames [N*T, C, H, W] -> stem -> layer1 -> [after_layer1] -> layer2 -> [after_layer2] -> layer3
                          -> [after_layer3] -> layer4 -> feature map [N*T', D, h, w] -> (the family's head)

Hook points (`BLOCK_POINTS`), in each residual block, in the order the input meets them:

- ``pre_block``: the whole block input, shortcut included (TSM's ``block`` placement);
- ``pre_residual``: the residual branch before ``conv1`` (TSM's shift, ``blockres``; BQN, STSM);
- ``post_conv1``: after ``conv1 -> bn1 -> act1`` (TEA's motion excitation, EAN);
- ``conv2``: the 3x3 conv itself, replaced (TAda2D, STM's channel-wise spatiotemporal module);
- ``beside_conv2``: a second branch from ``conv2``'s input, its output added to ``conv2``'s once that
  is normalised (and, in a bottleneck, activated): STM's channel-wise motion module. It returns
  ``conv2``'s output shape, stride included;
- ``bn2``: the BN after it, replaced (TAda2D adds its temporally pooled branch there);
- ``post_bn3``: after the branch's last BN (``bn3``; ``bn2`` in a basic block), before the
  shortcut is added (ECA).

Between stages (`STAGE_POINTS`): ``after_layer1`` .. ``after_layer3`` (TSM's temporal pool, EAN). The
head is the family's own (TSN's average consensus, PAN's VAP, TCP's covariance pooling).

The modules keep timm's names (``conv1``, ``bn1``, ``layer1.0.conv2``, ``layer1.0.downsample.0``, ...),
so state dicts, torchvision's ImageNet weights and the official checkpoints map as before; a hook's
own parameters live under its point's name (``layer1.0.post_conv1.*``). A plugged module maps
``[N*T, C, H, W]`` to the same shape (``conv2``, ``bn2``: as the module it replaces) and is told the
clip length it sees when it is made (`Trunk2D.plug`).

``attention="eca"`` puts ECA channel attention (Wang et al., "ECA-Net: Efficient Channel Attention for
Deep Convolutional Neural Networks", CVPR 2020; official BangguWu/ECANet) at every block's ``post_bn3``,
its 1D kernel size per stage (`ECA_KERNELS`: ECA-ResNet-50's "k3557"), as the official ``ECABottleneck``
and ``ECABasicBlock`` place it: after the branch's last BN, before the shortcut is added.

``stem_pool=False`` builds the stem of the 3D-style ResNets that TAda2D's code uses: no max pool after
``conv1``; the first block of ``layer1`` strides 2 instead (its strided 3x3 conv and its shortcut conv), so
every stage sees the map size it has in the standard ResNet. ``last_stride=1`` keeps ``layer4`` at
``layer3``'s resolution (stride 16: TCPNet's backbone).

A timm Res2Net (``res2net50_26w_4s``: TEA's backbone) runs as `HookedRes2Block` s: the same points except
``conv2`` and ``bn2`` (it has a 3x3 conv per split), and ``splits``, one module per split before its conv
(TEA's multiple temporal aggregation).
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .._errors import UsageError

__all__ = ["Trunk2D", "HookedBlock", "HookedRes2Block", "ECA", "ATTENTIONS", "ECA_KERNELS", "BLOCK_POINTS",
           "RES2_POINTS", "REPLACED_POINTS", "STAGE_POINTS"]

BLOCK_POINTS = ("pre_block", "pre_residual", "post_conv1", "conv2", "beside_conv2", "bn2", "post_bn3")
REPLACED_POINTS = ("conv2", "bn2")  # points that are modules of the block, replaced (the others start empty)
# a Res2Net block has no single 3x3 conv: its points are these (``splits``: a module per scale, see HookedRes2Block)
RES2_POINTS = ("pre_block", "pre_residual", "post_conv1", "splits", "post_bn3")
STAGE_POINTS = ("after_layer1", "after_layer2", "after_layer3")


ATTENTIONS = (None, "eca")
ECA_KERNELS = (3, 5, 5, 7)  # ECA-ResNet-50's per-stage kernel sizes (the released eca_resnet50_k3557)


class ECA(nn.Module):
    """Efficient channel attention: each channel scaled by the sigmoid of a 1D conv (``kernel`` taps,
    zero padded, no bias) across the channels' global average pools (official ``eca_layer``)."""

    def __init__(self, kernel: int = 3):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise UsageError(f"an ECA kernel size is odd and positive, got {kernel}")
        self.conv = nn.Conv1d(1, 1, kernel, padding=(kernel - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.mean((2, 3)).unsqueeze(1))  # [N, 1, C]
        return x * torch.sigmoid(y).view(x.shape[0], x.shape[1], 1, 1)


class _Hooked(nn.Module):
    """What both hooked blocks share: adopting a timm block's modules under their names (the state dict
    keeps timm's key order), the points that start empty, and the block's entry and exit (``pre_block``,
    ``pre_residual``; ``post_bn3``, attention, drop path, the shortcut, the final activation)."""

    def __init__(self, block: nn.Module, attributes: Sequence[str], empty_points: Sequence[str]):
        super().__init__()
        for name, module in block._modules.items():
            self.add_module(name, module)
        for name in attributes:  # None in timm's block: a plain attribute there
            if name not in self._modules:
                setattr(self, name, getattr(block, name, None))
        for point in empty_points:
            setattr(self, point, None)

    @property
    def out_channels(self) -> int:
        """The block's output channels (its last conv's)."""
        return (self.conv3 if self.bottleneck else self.conv2).out_channels

    def _enter(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The block input -> (the residual branch's input, the shortcut's)."""
        if self.pre_block is not None:
            x = self.pre_block(x)
        shortcut = x
        if self.pre_residual is not None:
            x = self.pre_residual(x)
        return x, shortcut

    def _exit(self, x: torch.Tensor, shortcut: torch.Tensor, act: nn.Module) -> torch.Tensor:
        """The residual branch after its last BN -> the block output."""
        if self.post_bn3 is not None:
            x = self.post_bn3(x)
        if self.se is not None:
            x = self.se(x)
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        x += shortcut
        return act(x)


class HookedBlock(_Hooked):
    """A timm ResNet block (basic or bottleneck: the same modules, under the same names) with the
    hook points of the module docstring; with none set it computes what timm's block computes."""

    def __init__(self, block: nn.Module):
        super().__init__(block, ("se", "drop_path", "downsample"),
                         [p for p in BLOCK_POINTS if p not in REPLACED_POINTS])
        self.bottleneck = "conv3" in self._modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, shortcut = self._enter(x)
        x = self.conv1(x)
        x = self.bn1(x)
        if self.bottleneck:
            x = self.act1(x)
            if self.post_conv1 is not None:
                x = self.post_conv1(x)
            beside = self.beside_conv2(x) if self.beside_conv2 is not None else None
            x = self.conv2(x)
            x = self.bn2(x)
            x = self.drop_block(x)
            x = self.act2(x)
            if beside is not None:
                x = x + beside
            x = self.aa(x)
            x = self.conv3(x)
            x = self.bn3(x)
        else:
            x = self.drop_block(x)
            x = self.act1(x)
            x = self.aa(x)
            if self.post_conv1 is not None:
                x = self.post_conv1(x)
            beside = self.beside_conv2(x) if self.beside_conv2 is not None else None
            x = self.conv2(x)
            x = self.bn2(x)
            if beside is not None:
                x = x + beside
        return self._exit(x, shortcut, self.act3 if self.bottleneck else self.act2)


class HookedRes2Block(_Hooked):
    """A timm Res2Net block (``Bottle2neck``: ``conv1`` to ``scale`` splits of ``width`` channels; split i
    > 0 of the first ``scale - 1`` added to the previous split's output (not in a stage's first block), then
    ``convs[i]``, ``bns[i]``, ReLU; the last split passed on, average-pooled in a stage's first block; concat,
    ``conv3``, ``bn3``) with the points `RES2_POINTS`: those of `HookedBlock` plus ``splits``, a
    ``ModuleList`` of ``scale`` modules, one on each split's input before its conv and the last on the split
    passed on (before its pool): TEA's multiple temporal aggregation. With none set it computes what timm's
    block computes."""

    def __init__(self, block: nn.Module):
        super().__init__(block, ("se", "drop_path", "downsample", "pool"), RES2_POINTS)
        self.width, self.scale, self.is_first = block.width, block.scale, block.is_first
        self.bottleneck = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, shortcut = self._enter(x)
        x = self.relu(self.bn1(self.conv1(x)))
        if self.post_conv1 is not None:
            x = self.post_conv1(x)
        splits = torch.split(x, self.width, 1)
        outs, sp = [], splits[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = splits[i] if i == 0 or self.is_first else sp + splits[i]
            if self.splits is not None:
                sp = self.splits[i](sp)
            sp = self.relu(bn(conv(sp)))
            outs.append(sp)
        if self.scale > 1:
            last = splits[-1] if self.splits is None else self.splits[-1](splits[-1])
            outs.append(last if self.pool is None else self.pool(last))
        x = self.bn3(self.conv3(torch.cat(outs, 1)))
        return self._exit(x, shortcut, self.relu)


class Trunk2D(nn.Module):
    """timm's ResNet ``arch`` (resnet18/34/50/101/152) without its classifier, its blocks made
    `HookedBlock` s, and a slot between stages (see the module docstring). ``forward`` maps frames
    ``[N*T, C, H, W]`` to the last feature map. ``stem_pool=False``: no max pool, ``layer1`` strides
    2 instead; ``attention="eca"``: `ECA` at every ``post_bn3``, ``attention_kernels`` one per stage
    (default `ECA_KERNELS`); ``last_stride=1``: ``layer4`` does not downsample (the module docstring)."""

    def __init__(self, arch: str = "resnet50", in_chans: int = 3, stem_pool: bool = True,
                 attention: Optional[str] = None, attention_kernels: Optional[Sequence[int]] = None,
                 last_stride: int = 2):
        super().__init__()
        if not arch.startswith(("resnet", "res2net")):
            raise UsageError(f"backbone must be a timm ResNet (resnet18/34/50/101/152) or Res2Net "
                             f"(res2net50_26w_4s, ...), got {arch!r}")
        if attention not in ATTENTIONS:
            raise UsageError(f"attention must be one of {', '.join(map(str, ATTENTIONS))}, got {attention!r}")
        kernels = tuple(attention_kernels or ECA_KERNELS)
        if len(kernels) != 4:
            raise UsageError(f"attention_kernels are 4 kernel sizes, one per stage, got {kernels}")
        import timm  # here, not at import: `zoo list` and `zoo info` need no timm

        # zero_init_last=False: torchvision's (and so the official TSM / PAN code's) initialisation
        resnet = timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans, zero_init_last=False)
        self.num_features = resnet.num_features
        for name in ("conv1", "bn1", "act1", "maxpool"):
            self.add_module(name, getattr(resnet, name))
        for i in range(1, 5):
            hooked = HookedRes2Block if arch.startswith("res2net") else HookedBlock
            self.add_module(f"layer{i}", nn.Sequential(*(hooked(b) for b in getattr(resnet, f"layer{i}"))))
            if i < 4:
                setattr(self, f"after_layer{i}", None)
        res2 = arch.startswith("res2net")
        if res2 and not stem_pool:
            raise UsageError("stem_pool=False is built for ResNets, not Res2Nets")
        if not stem_pool:
            self.maxpool = nn.Identity()
            first = self.layer1[0]
            (first.conv2 if first.bottleneck else first.conv1).stride = (2, 2)  # where the block's stride sits
            if first.downsample is None:  # a basic block keeps its width: it needs a strided shortcut now
                width = first.conv1.in_channels
                first.downsample = nn.Sequential(nn.Conv2d(width, width, 1, stride=2, bias=False),
                                                 nn.BatchNorm2d(width))
                nn.init.kaiming_normal_(first.downsample[0].weight, mode="fan_out", nonlinearity="relu")
            else:
                first.downsample[0].stride = (2, 2)
        if last_stride not in (1, 2):
            raise UsageError(f"last_stride must be 1 or 2, got {last_stride}")
        if last_stride == 1 and res2:
            first = self.layer4[0]
            for conv in first.convs:
                conv.stride = (1, 1)
            # the last split passes unpooled, as TCPNet's TEA backbone has it (its blocks skip the pool of
            # the 208-channel splits, layer4's): no 3x3 average at stride 1
            first.pool = None
            first.downsample[0].stride = (1, 1)
        elif last_stride == 1:
            first = self.layer4[0]
            (first.conv2 if first.bottleneck else first.conv1).stride = (1, 1)
            first.downsample[0].stride = (1, 1)
        if attention == "eca":
            self.plug("post_bn3", lambda stage, index, block: ECA(kernels[stage]))

    @property
    def stages(self) -> Tuple[nn.Sequential, ...]:
        return (self.layer1, self.layer2, self.layer3, self.layer4)

    def blocks(self) -> Iterator[Tuple[int, int, HookedBlock]]:
        """``(stage, index in the stage, block)`` of every residual block (stages counted from 0)."""
        for s, stage in enumerate(self.stages):
            for j, block in enumerate(stage):
                yield s, j, block

    def plug(self, point: str, make: Callable[[int, int, HookedBlock], Optional[nn.Module]]) -> None:
        """Put ``make(stage, index, block)`` at ``point`` (`BLOCK_POINTS`; a Res2Net's `RES2_POINTS`) of every block, where it
        returns a module (None leaves the block as it is). ``conv2`` and ``bn2`` receive the block to
        read the module they replace from (``block.conv2``, ``block.bn2``)."""
        points = RES2_POINTS if isinstance(self.layer1[0], HookedRes2Block) else BLOCK_POINTS
        if point not in points:
            raise UsageError(f"hook point must be one of {points}, got {point!r}")
        for s, j, block in self.blocks():
            module = make(s, j, block)
            if module is not None:
                setattr(block, point, module)

    def plug_between(self, stage: int, module: nn.Module) -> None:
        """Put ``module`` after stage ``stage`` (1-3: ``after_layer1`` .. ``after_layer3``)."""
        if stage not in (1, 2, 3):
            raise UsageError(f"a module between stages goes after stage 1, 2 or 3, got {stage}")
        setattr(self, f"after_layer{stage}", module)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Frames -> the input of ``layer1`` (a family that runs the blocks itself starts here)."""
        return self.maxpool(self.act1(self.bn1(self.conv1(x))))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The input of ``layer1`` -> the last feature map: the stages and the modules between them."""
        for i, stage in enumerate(self.stages, 1):
            x = stage(x)
            after = getattr(self, f"after_layer{i}", None)
            if after is not None:
                x = after(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x))
