"""`export_model`: a model to ONNX (run by onnxruntime) or to a ``torch.export`` program (``.pt2``),
verified in its own runtime, with a JSON sidecar holding what a deployer needs to preprocess
without zoo (input shape and layout, mean/std, sampling protocol, views, class names).

The exported graph is the model as built (eager modules, fp32): the fast path's native kernels
(Winograd, the memory cache) are never part of it. Custom ops of zoo (TSM's shift) are replaced
by their export forms (`zoo.models.export_forms`) before ONNX conversion.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn as nn

from .._files import atomic_write_text, temp_path

__all__ = ["FORMATS", "export_model", "verify_export", "sidecar", "run_exported", "top1_agreement", "write_sidecar",
           "OnnxRuntimeModel", "onnxruntime_module", "export_program"]

FORMATS = ("onnx", "pt2")


def sidecar(model: nn.Module, input_shape: Sequence[int], *, fmt: str, dynamic_batch: bool,
            weights: Optional[str] = None) -> Dict[str, Any]:
    """The JSON written beside an exported file."""
    info = model.info
    return {
        "model": info.name, "format": fmt, "weights": weights,
        "input_shape": [None if dynamic_batch else int(input_shape[0]), *map(int, input_shape[1:])],
        "layout": "[batch, channels (RGB), frames, height, width], float32",
        "output": f"[batch, {model.num_classes}] logits",
        "mean": list(info.mean), "std": list(info.std), "value_range": list(info.value_range),
        "preprocess": (f"frames in [0, 1]; resize the short side to {info.resize_size}, centre crop "
                       f"{info.crop_size}; subtract mean, divide by std"),
        "sampling": {"kind": info.sampling, "num_frames": info.num_frames, "num_segments": info.num_segments,
                     "frames_per_segment": info.frames_per_segment, "centre_frame": info.centre_frame,
                     "sampling_rate": info.sampling_rate},
        "views": {"clips": info.test_views[0], "crops": info.test_views[1],
                  "aggregation": "mean of the per-view softmax"},
        "categories": list(getattr(model, "categories", ()) or ()),
        "versions": {"torch": torch.__version__},
    }


def export_program(model: nn.Module, example: torch.Tensor, dynamic_batch: bool):
    """``torch.export`` of ``model`` on ``example``, with a dynamic batch dimension if asked."""
    shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    return torch.export.export(model, (example,), dynamic_shapes=shapes)


def export_model(model: nn.Module, out: str, *, fmt: str, example: torch.Tensor, dynamic_batch: bool = False,
                 weights: Optional[str] = None) -> Dict[str, Any]:
    """Write ``model`` (eval mode, fp32) to ``out`` as ``fmt`` and ``out + '.json'``; returns the sidecar."""
    from ..models import export_forms

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    model = model.eval()
    with torch.no_grad():
        program = export_program(model, example, dynamic_batch)
    tmp = temp_path(out, "export", f".{fmt}")
    try:
        if fmt == "pt2":
            torch.export.save(program, tmp)
        else:
            program = program.run_decompositions(export_forms())
            log = io.StringIO()
            with warnings.catch_warnings(), contextlib.redirect_stdout(log):
                warnings.simplefilter("ignore")
                onnx = torch.onnx.export(program, (example,), dynamo=True, input_names=["video"],
                                         output_names=["logits"], optimize=True)
            onnx.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    meta = sidecar(model, example.shape, fmt=fmt, dynamic_batch=dynamic_batch, weights=weights)
    write_sidecar(out, meta)
    return meta


def write_sidecar(out: str, meta: Dict[str, Any]) -> None:
    """Write ``meta`` to ``out + '.json'`` atomically (temporary file, then rename)."""
    atomic_write_text(out + ".json", json.dumps(meta, indent=1) + "\n")


def top1_agreement(path: str, fmt: str, model: nn.Module, clips: Sequence[torch.Tensor]) -> float:
    """Fraction of ``clips`` on which the exported file and eager ``model`` pick the same class."""
    with torch.no_grad():
        same = [int(run_exported(path, fmt, x).argmax(-1).eq(model.eval()(x).argmax(-1)).all()) for x in clips]
    return sum(same) / max(1, len(same))


def run_exported(path: str, fmt: str, x: torch.Tensor) -> torch.Tensor:
    """Run an exported file in its own runtime (onnxruntime CPU, or ``torch.export.load``)."""
    if fmt == "pt2":
        with torch.no_grad():
            return torch.export.load(path).module()(x)
    return OnnxRuntimeModel(path)(x)


def onnxruntime_module():
    """``import onnxruntime``, or an ImportError naming the extra to install."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("running ONNX files needs onnxruntime: pip install 'zoo[deploy]' "
                          "(zoo export: or pass --no-verify)") from None
    return onnxruntime


class OnnxRuntimeModel(nn.Module):
    """An ONNX file run by onnxruntime's CPU provider behind a module call: float32 logits as a
    tensor. The session reads the file once (it may be deleted afterwards); ``threads`` sets
    onnxruntime's intra-op threads (default: its own choice, one per core)."""

    def __init__(self, path: str, *, threads: Optional[int] = None):
        super().__init__()
        ort = onnxruntime_module()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.__dict__["session"] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        video = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: video})[0])


def verify_export(path: str, fmt: str, model: nn.Module, x: torch.Tensor) -> float:
    """max |dlogit| / max |logit| of the exported file against ``model`` in eager mode on ``x``."""
    with torch.no_grad():
        ref = model.eval()(x)
    out = run_exported(path, fmt, x)
    return float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
