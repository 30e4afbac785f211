"""2D -> 3D weight inflation (Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017, §2.2).

A ``k x k`` 2D kernel becomes a ``t x k x k`` 3D kernel by repeating it ``t`` times along time
and dividing by ``t``: on a "boring" video (one frame repeated) the 3D network then computes
the 2D network's activations at every time step whose receptive field lies inside the clip.
Everything that is not a conv kernel (BN parameters and statistics, biases) is copied.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Union

import torch
import torch.nn as nn

from .._errors import BadCheckpoint, UsageError

__all__ = ["inflate_weight", "inflate_2d", "INFLATE_MODES"]

INFLATE_MODES = ("mean", "center")

StateDict = Mapping[str, torch.Tensor]


def inflate_weight(weight: torch.Tensor, time: int, mode: str = "mean") -> torch.Tensor:
    """Inflate a 2D conv kernel ``[O, I, h, w]`` to ``[O, I, time, h, w]``.

    ``mode="mean"`` (I3D): the kernel repeated ``time`` times and divided by ``time``.
    ``mode="center"``: the kernel at the central time tap (``time // 2``), zeros elsewhere; the
    3D network then reproduces the 2D one on any video, not only on static ones.
    """
    if weight.dim() != 4:
        raise UsageError(f"inflate_weight expects a 2D conv kernel [O, I, h, w], got shape {list(weight.shape)}")
    if time < 1:
        raise UsageError(f"time must be >= 1, got {time}")
    if mode == "mean":
        return weight.unsqueeze(2).repeat(1, 1, time, 1, 1) / time
    if mode == "center":
        out = weight.new_zeros(weight.shape[:2] + (time,) + weight.shape[2:])
        out[:, :, time // 2] = weight
        return out
    raise UsageError(f"mode must be one of {INFLATE_MODES}, got {mode!r}")


def inflate_2d(source: Union[nn.Module, StateDict], target: Union[nn.Module, StateDict],
               rename: Optional[Callable[[str], Optional[str]]] = None, *, mode: str = "mean",
               strict: bool = True) -> Dict[str, torch.Tensor]:
    """Map a 2D network's weights onto a 3D network's state-dict keys, inflating conv kernels.

    Args:
        source: the 2D network, or its state dict.
        target: the 3D network, or its state dict (only key names and shapes are read).
        rename: 2D key -> 3D key, or ``None`` to drop the key (e.g. a 2D classifier or
            auxiliary heads). Default: keys are the same in both networks.
        mode: ``"mean"`` (repeat over time, divide by the temporal size; I3D) or ``"center"``.
        strict: raise ``ValueError`` listing every kept 2D key that has no 3D counterpart or
            whose shape cannot be inflated to the 3D one. With ``strict=False`` they are skipped.

    Returns:
        A state dict with the target's key names: a ``[O, I, h, w]`` kernel whose target is
        ``[O, I, t, h, w]`` is inflated over ``t``; tensors whose shapes are equal (BN
        parameters and running statistics, biases) are copied. Target keys with no 2D source
        are absent: load it with ``model.load_state_dict(sd, strict=False)`` and check the
        returned missing keys, or merge it into the model's own state dict.
    """
    if mode not in INFLATE_MODES:
        raise UsageError(f"mode must be one of {INFLATE_MODES}, got {mode!r}")
    src = source.state_dict() if isinstance(source, nn.Module) else source
    tgt = target.state_dict() if isinstance(target, nn.Module) else target
    shapes = {k: tuple(v.shape) for k, v in tgt.items()}
    out: Dict[str, torch.Tensor] = {}
    problems = []
    for key, value in src.items():
        key3 = key if rename is None else rename(key)
        if key3 is None:
            continue
        if key3 not in shapes:
            problems.append(f"{key} -> {key3}: no such key in the 3D model")
            continue
        shape2, shape3 = tuple(value.shape), shapes[key3]
        if shape2 == shape3:
            out[key3] = value.detach().clone()
        elif len(shape2) == 4 and len(shape3) == 5 and shape3[:2] + shape3[3:] == shape2:
            out[key3] = inflate_weight(value.detach(), shape3[2], mode)
        else:
            problems.append(f"{key} {list(shape2)} -> {key3} {list(shape3)}: shapes do not match")
    if problems and strict:
        raise BadCheckpoint(f"cannot inflate {len(problems)} 2D tensor(s): " + "; ".join(problems)
                         + " (fix the key mapping passed as `rename`, or pass strict=False to skip them)")
    return out
