"""What fine-tuning changes in a training step: frozen parts (`freeze`), per-group learning rates
(`param_groups`) and mixup / cutmix (`VideoMixup`, timm's `Mixup` on clips).

- ``freeze="backbone"``: a linear probe; only the classifier learns, every norm layer keeps its
  running statistics (eval mode), so the backbone's tensors are bit-identical after any step.
- ``freeze="bn"``: partial BN (Wang et al., TSN, ECCV 2016, §3.2; TSM's ``partialBN``): every
  BatchNorm but the first of each network is in eval mode with its affine parameters frozen.
- ``head_lr_mult``: the classifier's learning-rate multiplier (TSM's ``fc_lr5``: 5).
- ``bias_lr_mult``: learning-rate multiplier of conv/linear biases (TSN/TSM: 2; no weight decay).
"""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn as nn

from .._errors import UsageError
from ..models import VideoModel
from .config import FREEZE_MODES

__all__ = ["FREEZE_MODES", "freeze", "set_train_mode", "classifier_parameters", "param_groups", "VideoMixup"]

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def classifier_parameters(model: nn.Module) -> List[nn.Parameter]:
    """The parameters of ``model.get_classifier()`` (a module, or one per network of an ensemble)."""
    if not isinstance(model, VideoModel):  # a plain module has no classifier of its own
        return []
    heads = model.get_classifier()
    heads = heads if isinstance(heads, (list, tuple)) else [heads]
    return [p for h in heads for p in h.parameters()]


def _networks(model: nn.Module) -> List[nn.Module]:
    """The separately trained networks of ``model`` (PAN Full / En), or the model itself."""
    nets = list(model.networks().values()) if isinstance(model, VideoModel) else []
    return nets or [model]


def freeze(model: nn.Module, mode: str) -> List[nn.Module]:
    """Freeze ``model`` for ``mode`` (`FREEZE_MODES`): parameters get ``requires_grad=False``;
    returns the modules `set_train_mode` keeps in eval mode."""
    if mode not in FREEZE_MODES:
        raise UsageError(f"freeze must be one of {', '.join(FREEZE_MODES)}, got {mode!r}")
    if mode == "none":
        return []
    if mode == "backbone":
        head = {id(p) for p in classifier_parameters(model)}
        for p in model.parameters():
            p.requires_grad_(id(p) in head)
        return [m for m in model.modules() if isinstance(m, _NORMS) and not any(id(p) in head for p in m.parameters())]
    frozen = []
    for net in _networks(model):
        norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in norms[1:]:
            for p in m.parameters():
                p.requires_grad_(False)
            frozen.append(m)
    return frozen


def set_train_mode(model: nn.Module, frozen: List[nn.Module]) -> None:
    """``model.train()`` with the ``frozen`` modules left in eval mode (their statistics unchanged)."""
    model.train()
    for m in frozen:
        m.eval()


def param_groups(model: nn.Module, lr: float, weight_decay: float, *, no_decay_bias_norm: bool = True,
                 head_lr_mult: float = 1.0, bias_lr_mult: float = 1.0) -> List[Dict]:
    """Optimizer groups of the trainable parameters: (classifier or not) x (weight, bias, norm).
    Biases and norm parameters get no weight decay when ``no_decay_bias_norm``; biases learn at
    ``bias_lr_mult`` x, the classifier at ``head_lr_mult`` x (its bias at both)."""
    head = {id(p) for p in classifier_parameters(model)}
    norm = {id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
    groups: Dict[tuple, Dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        kind = "norm" if id(p) in norm else ("bias" if name.endswith("bias") or p.ndim <= 1 else "weight")
        mult = (head_lr_mult if id(p) in head else 1.0) * (bias_lr_mult if kind == "bias" else 1.0)
        decay = 0.0 if no_decay_bias_norm and kind != "weight" else weight_decay
        key = (mult, decay)
        groups.setdefault(key, {"params": [], "lr": lr * mult, "lr_mult": mult, "weight_decay": decay})["params"].append(p)
    return list(groups.values())


class VideoMixup:
    """timm's `Mixup` (mixup, Zhang et al. ICLR 2018; cutmix, Yun et al. ICCV 2019) on clips
    ``[B, C, T, H, W]``: frames are folded into channels, so a cutmix box covers the same region
    of every frame. Returns the mixed clips and soft targets (with ``label_smoothing``). An odd
    batch (timm mixes pairs) keeps its clips and gets smoothed one-hot targets."""

    def __init__(self, mixup: float, cutmix: float, label_smoothing: float, num_classes: int):
        from timm.data import Mixup

        self.num_classes, self.smoothing = num_classes, label_smoothing
        self.mix = Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=label_smoothing,
                         num_classes=num_classes)

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        from timm.data.mixup import mixup_target

        if len(x) % 2:
            return x, mixup_target(y, self.num_classes, lam=1.0, smoothing=self.smoothing)
        b, c, t, h, w = x.shape
        folded, target = self.mix(x.reshape(b, c * t, h, w), y)
        return folded.reshape(b, c, t, h, w), target

