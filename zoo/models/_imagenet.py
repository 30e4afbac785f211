"""ImageNet initialisation, as the official recipes start their trainings: torchvision's 2D
ResNets under TSN, TSM and PAN (Wang et al., ECCV 2016; Lin et al., ICCV 2019; Zhang et al.,
ACM MM 2020), GoogLeNet inflated to I3D (Carreira & Zisserman, CVPR 2017, §2.2) and ResNet-50
inflated to the I3D ResNet (MMAction2's ``i3d_imagenet-pretrained-r50`` configs).

`imagenet_weights` is the `Weights` record of one torchvision file (tag ``imagenet``: fetched,
mirrored and hash-checked like every release); a family's ``checkpoint_filter_fn`` recognises
the layout (`is_torchvision`) and maps it with `resnet_2d`, `googlenet_3d` or `resnet_3d`. The
ImageNet classifier becomes the model's (1000 classes); fine-tuning re-initialises it. Layers
ImageNet has no counterpart of (PAN's PA and VAP) keep their fresh initialisation, as in the
official code.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, Mapping, Optional

import torch

from .._errors import BadCheckpoint
from ._inflate import inflate_2d
from ._info import Weights

__all__ = ["imagenet_weights", "is_torchvision", "resnet_2d", "resnet_3d", "googlenet_3d"]

_URL = "https://download.pytorch.org/models/"
# torchvision IMAGENET1K_V1 files (the name carries the sha256 prefix) and their published top-1/top-5
_FILES = {"resnet50": ("resnet50-0676ba61.pth", 76.13, 92.862),
          "resnet101": ("resnet101-63fe2227.pth", 77.374, 93.546),
          "googlenet": ("googlenet-1378be20.pth", 69.778, 89.53)}
_SOURCE = "pytorch/vision weights meta"

Tensors = Mapping[str, torch.Tensor]


def imagenet_weights(arch: str, notes: str, **kwargs) -> Weights:
    """The ``imagenet`` record of torchvision's ``arch`` (``resnet50``, ``resnet101``, ``googlenet``):
    an initialisation to fine-tune from, not a video classifier (so no video result)."""
    name, top1, top5 = _FILES[arch]
    notes = f"{notes}; torchvision {arch} IMAGENET1K_V1 ({top1} / {top5} top-1 / top-5 on ImageNet, {_SOURCE})"
    return Weights("imagenet", 1000, "imagenet", (_URL + name,), (), "pytorch/vision", notes, **kwargs)


def is_torchvision(state_dict: Tensors) -> bool:
    """A torchvision ResNet or GoogLeNet state dict (2D, ImageNet classifier ``fc``)."""
    stem = state_dict.get("conv1.weight", state_dict.get("conv1.conv.weight"))
    return isinstance(stem, torch.Tensor) and stem.dim() == 4 and "fc.weight" in state_dict


def resnet_2d(state_dict: Tensors, own: Tensors, prefix: str, classifier: str) -> Dict[str, torch.Tensor]:
    """A torchvision ResNet onto a per-frame backbone whose keys are torchvision's under ``prefix``;
    ``fc`` becomes ``classifier``. A stem with other than 3 input channels (PAN Lite's RGB + PA)
    takes the RGB kernel's mean over channels, replicated (PAN's ``_construct_pa_model``); model
    keys ImageNet lacks keep ``own``'s values."""
    out = {(classifier + k[3:] if k.startswith("fc.") else prefix + k): v for k, v in state_dict.items()}
    stem = prefix + "conv1.weight"
    if stem in own and own[stem].shape[1] != state_dict["conv1.weight"].shape[1]:
        out[stem] = state_dict["conv1.weight"].mean(1, keepdim=True).expand_as(own[stem]).clone()
    return {**own, **out}


def _inflated(state_dict: Tensors, own: Tensors, rename: Callable[[str], Optional[str]]) -> Dict[str, torch.Tensor]:
    out = inflate_2d(dict(state_dict), dict(own), rename)
    missing = [k for k in own if k not in out and not k.endswith("num_batches_tracked")]
    if missing:
        raise BadCheckpoint(f"the ImageNet state dict lacks {len(missing)} tensor(s) the model needs (first: "
                         f"{', '.join(missing[:4])}): pass torchvision's file for this architecture")
    return out


def googlenet_3d(state_dict: Tensors, own: Tensors, rename: Callable[[str], Optional[str]],
                 logits: str) -> Dict[str, torch.Tensor]:
    """torchvision's GoogLeNet inflated onto I3D (``rename``: GoogLeNet key -> I3D key, None for
    ``fc`` and the auxiliary heads); ``fc`` becomes the 1x1x1 ``logits`` conv."""
    out = _inflated(state_dict, {k: v for k, v in own.items() if not k.startswith(logits + ".")}, rename)
    out[f"{logits}.weight"] = state_dict["fc.weight"][:, :, None, None, None].clone()
    out[f"{logits}.bias"] = state_dict["fc.bias"].clone()
    return out


_RESNET_3D = [(r"^conv1\.", "backbone.stem.conv."), (r"^bn1\.", "backbone.stem.bn."),
              (r"^layer(\d)\.(\d+)\.conv1\.", lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.conv_a."),
              (r"^layer(\d)\.(\d+)\.bn1\.", lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.bn_a."),
              (r"^layer(\d)\.(\d+)\.conv2\.", lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.conv_b."),
              (r"^layer(\d)\.(\d+)\.bn2\.", lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.bn_b."),
              (r"^layer(\d)\.(\d+)\.conv3\.", lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.conv_c."),
              (r"^layer(\d)\.(\d+)\.bn3\.", lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.bn_c."),
              (r"^layer(\d)\.(\d+)\.downsample\.0\.", lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.shortcut.conv."),
              (r"^layer(\d)\.(\d+)\.downsample\.1\.", lambda m: f"backbone.res{int(m[1]) + 1}.{m[2]}.shortcut.bn.")]


def _resnet_3d_key(key: str) -> Optional[str]:
    for pattern, repl in _RESNET_3D:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise BadCheckpoint(f"unexpected ResNet key {key!r}: expected torchvision.models.resnet50's layout")


def resnet_3d(state_dict: Tensors, own: Tensors) -> Dict[str, torch.Tensor]:
    """torchvision's ResNet inflated onto the 3D ResNet trunk (``backbone.stem``, ``res2..res5``,
    ``fc``): each kernel repeated over its temporal size and divided by it (mean inflation, as
    MMAction2 inflates its ImageNet-pretrained I3D)."""
    body = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    out = _inflated(body, {k: v for k, v in own.items() if not k.startswith("fc.")}, _resnet_3d_key)
    return {**out, "fc.weight": state_dict["fc.weight"], "fc.bias": state_dict["fc.bias"]}
