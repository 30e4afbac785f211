"""Build a model and its input protocol from a name plus run-time overrides (frames, size, views)."""
from __future__ import annotations

import math
import os
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch.nn as nn

from .._errors import BadCheckpoint, UsageError
from ..models import ModelInfo, build, model_info

__all__ = ["adjust_info", "build_model", "available_memory", "check_clips_fit"]


def adjust_info(name: str, *, frames: Optional[int] = None, size: Optional[int] = None,
                views: Optional[Tuple[int, int]] = None, model_args: Optional[Dict[str, Any]] = None,
                protocol: Optional[Dict[str, Any]] = None) -> Tuple[ModelInfo, Dict[str, Any]]:
    """The model's `ModelInfo` with ``frames``/``size``/``views`` changed, and the model overrides
    that go with it: the constructor argument the clip length fixes (``info.frames_arg``:
    ``num_segments`` of segment models, ``num_frames`` of SlowFast's and I3D-R50's head pooling).

    ``frames`` is the clip length T; for segment sampling it must be a multiple of the model's
    frames per segment. ``size`` is the crop; resize and jitter sizes scale with it. An explicit
    ``model_args`` value of ``info.frames_arg`` that disagrees with ``frames`` is an error.
    ``protocol``: `ModelInfo` fields of released weights (or a zoo checkpoint) applied first.
    """
    info = model_info(name)
    if protocol:
        info = info.replace(**protocol)
    args = dict(model_args or {})
    if "centre_frame" in args and info.sampling == "segment":  # a constructor option that is also protocol
        centre = bool(args["centre_frame"])
        info = info.replace(centre_frame=centre, num_frames=info.num_segments * (info.frames_per_segment + centre))
    changes: Dict[str, Any] = {}
    if frames is not None:
        frames = int(frames)
        if frames < 1:
            raise UsageError(f"frames must be >= 1, got {frames}")
        if info.sampling == "segment":
            if frames % info.segment_length:
                raise UsageError(f"{name} samples {info.segment_length} frames per segment: "
                                 f"frames must be a multiple of it, got {frames}")
            changes.update(num_frames=frames, num_segments=frames // info.segment_length)
        else:
            changes.update(num_frames=frames)
        if info.frames_arg:
            value = frames // info.segment_length if info.frames_arg == "num_segments" else frames
            if args.get(info.frames_arg, value) != value:
                raise UsageError(f"{name}: model argument {info.frames_arg}={args[info.frames_arg]} disagrees with "
                                 f"{frames} frames ({info.frames_arg}={value}); drop one of them")
            args[info.frames_arg] = value
    if size is not None:
        size = int(size)
        if size < info.min_size:
            raise UsageError(f"{name} needs a crop of at least {info.min_size} px, got {size}")
        scale = size / info.crop_size
        changes.update(crop_size=size, resize_size=max(size, round(info.resize_size * scale)),
                       train_jitter=tuple(max(size, round(j * scale)) for j in info.train_jitter))
    if views is not None:
        changes.update(test_views=(int(views[0]), int(views[1])))
    return (info.replace(**changes) if changes else info), args


def build_model(name: str, info: ModelInfo, *, num_classes: Optional[int] = None,
                weights: Union[None, str, Sequence[str]] = None, model_args: Optional[Dict[str, Any]] = None,
                strict_classifier: bool = False, pretrained: Union[bool, str] = False) -> nn.Module:
    """`zoo.build` with architecture overrides; attaches the adjusted ``info``.

    ``num_classes`` None: the checkpoint's classifier size with ``weights``, else the info's.
    ``strict_classifier``: for evaluation, a checkpoint whose classifier size differs from
    ``num_classes`` is an error instead of a re-initialised head.
    """
    with warnings.catch_warnings():
        if strict_classifier:  # a re-initialised classifier is an error below, not a warning
            warnings.simplefilter("ignore")
        model = build(name, num_classes=num_classes, weights=weights, pretrained=pretrained or False,
                      **(model_args or {}))
    report = getattr(model, "load_report", None)
    if strict_classifier and report is not None and report.reinitialised:
        raise BadCheckpoint(f"the checkpoint's classifier does not have {num_classes} outputs (the data's "
                         f"number of classes): {', '.join(report.reinitialised)} would be random")
    model.info = info.replace(num_classes=model.num_classes)
    return model


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (``MemAvailable`` of ``/proc/meminfo``; the
    free pages elsewhere), or None when the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_clips_fit(info: ModelInfo, clips: int, *, what: str, available: Optional[int] = None) -> None:
    """`ValueError` (one line) when ``clips`` float32 clips of ``info``'s input shape, held at once
    (one forward pass: a video's views, or a batch of them), would take more than half the memory
    available: the model's activations need the rest. Called before any decoding."""
    available = available_memory() if available is None else available
    need = int(clips) * 4 * math.prod(info.input_shape)
    if available is None or need <= available // 2:
        return
    raise UsageError(f"{what}: {clips} clips of {list(info.input_shape)} float32 take {need / 2**30:.1f} GiB in one "
                     f"forward pass, more than half of the {available / 2**30:.1f} GiB available (the model's "
                     f"activations need the rest): use fewer views or a smaller batch")
