"""Building a resolved model (`zoo.resolve`'s `Spec`) for the engine, and whether its clips fit in memory."""
from __future__ import annotations

import math
import os
import warnings
from typing import Optional

import torch.nn as nn

from .._errors import BadCheckpoint, UsageError
from ..models import ModelInfo, Spec, build

__all__ = ["build_checked", "prepare_for_inference", "available_memory", "check_clips_fit"]


def build_checked(spec: Spec, *, strict_classifier: bool = False, progress: bool = True) -> nn.Module:
    """`zoo.build` of ``spec``. ``strict_classifier`` (evaluation, prediction): a checkpoint whose
    classifier size differs from ``spec.num_classes`` is an error instead of a re-initialised head."""
    with warnings.catch_warnings():
        if strict_classifier:  # a re-initialised classifier is an error below, not a warning
            warnings.simplefilter("ignore")
        model = build(spec, progress=progress)
    report = model.load_report
    if strict_classifier and report is not None and report.reinitialised:
        raise BadCheckpoint(f"the checkpoint's classifier does not have {spec.num_classes} outputs (the data's "
                            f"number of classes): {', '.join(report.reinitialised)} would be random")
    return model


def prepare_for_inference(model: nn.Module, device, *, fast: bool = True, compile=False, dtype=None) -> nn.Module:
    """A built model (`build_checked`) made ready to predict with: eval mode, on ``device`` (a
    ``torch.device``); on the CPU, `zoo.optimize`'s fast path in ``dtype`` (default float32) unless
    not ``fast`` (``compile``: its argument). Every command that predicts, and every `zoo score`
    worker, prepares its model here."""
    import torch

    model = model.to(device).eval()
    if dtype not in (None, torch.float32) and not (fast and device.type == "cpu"):
        raise UsageError("bf16 runs the CPU fast path: drop --no-optimize (and run on the CPU), or run in fp32")
    if fast and device.type == "cpu":
        from ..inference import optimize
        model = optimize(model, dtype or torch.float32, compile=compile)
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
