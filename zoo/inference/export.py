"""`export_model`: a model to ONNX (run by onnxruntime) or to a ``torch.export`` program (``.pt2``),
verified in its own runtime, with a JSON sidecar holding what a deployer needs to preprocess
without zoo (input shape and layout, mean/std, sampling protocol, views, class names).

The exported graph is the model as built (eager modules, fp32): the fast path's native kernels
(Winograd, the memory cache) are never part of it. Custom ops of zoo (TSM's shift) are replaced
by their export forms (`zoo.models.export_forms`) before ONNX conversion.

An export is one unit: the model file and its sidecar are staged, verified, then renamed into
place as a set (`commit_export`); the sidecar records the file's sha256 and whether verification
ran and passed, so `read_export` (or any reader that hashes the file) tells a whole export from a
torn one.
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

from .._errors import BadData, MissingDependency, UsageError
from .._files import clean_directory, commit_files, sha256_file, temp_path, write_temp

__all__ = ["FORMATS", "RUNTIMES", "VERIFY_TARGET", "export_model", "export_stream", "save_model_file", "save_program",
           "commit_export", "read_export",
           "TornExport", "verify_export", "sidecar", "run_exported", "top1_agreement", "OnnxRuntimeModel",
           "onnxruntime_module", "export_program"]

FORMATS = ("onnx", "pt2")
_AGGREGATION_TEXT = {"prob-mean": "mean of the per-view softmax", "logit-mean": "mean of the per-view logits",
                     "max": "per-class maximum of the per-view softmax"}  # ModelInfo.view_aggregation


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
                     "sampling_rate": info.sampling_rate, "segment_clips": info.segment_clips},
        "views": {"clips": info.test_views[0], "crops": info.test_views[1],
                  "aggregation": _AGGREGATION_TEXT[info.view_aggregation]},
        "categories": list(getattr(model, "categories", ()) or ()),
        "versions": {"torch": torch.__version__},
    }


def export_program(model: nn.Module, example: torch.Tensor, dynamic_batch: bool):
    """``torch.export`` of ``model`` on ``example``, with a dynamic batch dimension if asked."""
    shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic_batch else None
    return torch.export.export(model, (example,), dynamic_shapes=shapes)


def save_model_file(model: nn.Module, path: str, *, fmt: str, example: torch.Tensor,
                    dynamic_batch: bool = False) -> None:
    """Write ``model`` (eval mode, fp32) to ``path`` as ``fmt``: the file alone, no sidecar, written
    in place (callers stage it: `export_model`)."""
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {FORMATS}, got {fmt!r}")
    model = model.eval()
    with torch.no_grad():
        program = export_program(model, example, dynamic_batch)
    save_program(program, path, fmt=fmt, inputs=(example,), input_names=["video"], output_names=["logits"])


def save_program(program, path: str, *, fmt: str, inputs: Sequence[torch.Tensor], input_names: Sequence[str],
                 output_names: Sequence[str]) -> None:
    """Write an exported program to ``path``: as is (``pt2``), or with zoo's export forms decomposed
    and converted to ONNX under the given input and output names (the exporter's chatter silenced)."""
    from ..models import export_forms

    if fmt == "pt2":
        torch.export.save(program, path)
        return
    program = program.run_decompositions(export_forms())
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        onnx = torch.onnx.export(program, tuple(inputs), dynamo=True, input_names=list(input_names),
                                 output_names=list(output_names), optimize=True)
    onnx.save(path)


RUNTIMES = {"onnx": "onnxruntime (CPU)", "pt2": "torch.export.load"}
VERIFY_TARGET = 1e-4  # max |dlogit| / max |logit| of an exported file against eager


def export_model(model: nn.Module, out: str, *, fmt: str, example: torch.Tensor, dynamic_batch: bool = False,
                 weights: Optional[str] = None, verify: bool = False) -> Dict[str, Any]:
    """Write ``model`` (eval mode, fp32) to ``out`` as ``fmt`` with its sidecar ``out + '.json'``, as
    one unit (`commit_export`); returns the sidecar. With ``verify`` the file is first run in its
    runtime on ``example`` (its first clip with a dynamic batch) and the sidecar's ``verification``
    records the max relative |dlogit| against eager and whether it meets `VERIFY_TARGET`."""
    tmp = temp_path(out, "export", f".{fmt}")
    try:
        save_model_file(model, tmp, fmt=fmt, example=example, dynamic_batch=dynamic_batch)
        meta = sidecar(model, example.shape, fmt=fmt, dynamic_batch=dynamic_batch, weights=weights)
        meta["verification"] = {"ran": False}
        if verify:
            error = verify_export(tmp, fmt, model, example[:1] if dynamic_batch else example)
            meta["verification"] = {"ran": True, "runtime": RUNTIMES[fmt], "max_rel_dlogit": error,
                                    "target": VERIFY_TARGET, "passed": error <= VERIFY_TARGET}
        commit_export(out, tmp, meta)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return meta


STREAM_VERIFY_FRAMES = 8  # frames a stream export is verified on, one call each


def export_stream(model: nn.Module, out: str, *, fmt: str, height: int, width: int, batch: int = 1,
                  weights: Optional[str] = None, verify: bool = False) -> Dict[str, Any]:
    """Write the per-frame step of an online model (`zoo.models.VideoModel.stream_step`, e.g. MoViNet's
    stream form) to ``out`` as ``fmt``, its state as explicit inputs ``state.<name>`` and outputs
    ``next.<name>`` beside ``frame`` and ``logits``, with a sidecar saying how to loop (the state of a
    new stream is zeros of the recorded shapes). With ``verify`` the file runs frame by frame in its
    runtime over `STREAM_VERIFY_FRAMES` frames, its outputs fed back, against the model's own eager
    stream; the sidecar records the worst max relative |dlogit|. Put in place as one unit."""
    if fmt not in FORMATS:
        raise UsageError(f"format must be one of {FORMATS}, got {fmt!r}")
    step, state = model.eval().stream_step(batch, height, width)
    names = tuple(state)
    frame = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    example = (frame, *state.values())
    tmp = temp_path(out, "export", f".{fmt}")
    try:
        with torch.no_grad():
            program = torch.export.export(step, example)
        inputs, outputs = ["frame", *(f"state.{n}" for n in names)], ["logits", *(f"next.{n}" for n in names)]
        save_program(program, tmp, fmt=fmt, inputs=example, input_names=inputs, output_names=outputs)
        meta = sidecar(model, (batch, 3, 1, height, width), fmt=fmt, dynamic_batch=False, weights=weights)
        meta.update(
            input_shape=[batch, 3, height, width], layout="frame: [batch, channels (RGB), height, width], float32",
            output=f"[batch, {model.num_classes}] logits of every frame so far",
            stream={"inputs": inputs, "outputs": outputs,
                    "state": [{"name": n, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                               "initial": "zeros"} for n, v in state.items()],
                    "loop": "one call per frame: feed each next.<name> output back as state.<name>; "
                            "start a new stream with zeros"})
        meta["verification"] = {"ran": False}
        if verify:
            error = _verify_stream(tmp, fmt, model, state, batch, height, width)
            meta["verification"] = {"ran": True, "runtime": RUNTIMES[fmt], "max_rel_dlogit": error,
                                    "frames": STREAM_VERIFY_FRAMES, "target": VERIFY_TARGET,
                                    "passed": error <= VERIFY_TARGET}
        commit_export(out, tmp, meta)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return meta


def _step_runner(path: str, fmt: str):
    """The exported step as a function of tensors, returning tensors (its runtime's)."""
    if fmt == "pt2":
        module = torch.export.load(path).module()
        return lambda *xs: list(module(*xs))
    session = OnnxRuntimeModel(path).session
    names = [i.name for i in session.get_inputs()]
    return lambda *xs: [torch.from_numpy(a) for a in session.run(None, {n: x.contiguous().numpy()
                                                                         for n, x in zip(names, xs)})]


def _verify_stream(path: str, fmt: str, model: nn.Module, state: Dict[str, torch.Tensor], batch: int, height: int,
                   width: int) -> float:
    run = _step_runner(path, fmt)
    frames = torch.rand(STREAM_VERIFY_FRAMES, batch, 3, height, width, generator=torch.Generator().manual_seed(1))
    current, worst = list(state.values()), 0.0
    with torch.no_grad(), model.stream() as eager:
        for frame in frames:
            ref = eager(frame)
            logits, *current = run(frame, *current)
            worst = max(worst, float((logits - ref).abs().max() / ref.abs().max().clamp_min(1e-12)))
    return worst


def commit_export(out: str, staged: str, meta: Dict[str, Any]) -> None:
    """Put the staged model file and its sidecar in place as one set (`zoo._files.commit_files`:
    both temporaries written and fsynced, then renamed under a journal that the next zoo command in
    that directory completes if this one is killed). The sidecar records the model file's name,
    size and sha256 (``file``), so a reader without zoo can tell a whole export from a torn one
    (`read_export`)."""
    meta["file"] = {"name": os.path.basename(out), "bytes": os.path.getsize(staged), "sha256": sha256_file(staged)}
    directory = os.path.dirname(os.path.abspath(out))
    side = write_temp(out + ".json", "w", lambda f: f.write(json.dumps(meta, indent=1) + "\n"))
    commit_files(directory, {os.path.basename(out): staged, os.path.basename(out) + ".json": side})


class TornExport(BadData):
    """An exported file that is not the one its sidecar describes (a killed or interrupted export, a
    file replaced by hand), or has no sidecar."""


def read_export(path: str) -> Dict[str, Any]:
    """The sidecar of the export ``path``, after checking that the file is the one it describes (its
    sha256); `TornExport` names what is wrong otherwise. A set replacement a killed export left half
    done is completed first (`zoo._files.clean_directory`)."""
    clean_directory(os.path.dirname(os.path.abspath(path)))
    side = path + ".json"
    if not os.path.isfile(path):
        raise TornExport(f"{path} does not exist" + (f" (only its sidecar {side})" if os.path.isfile(side) else ""))
    if not os.path.isfile(side):
        raise TornExport(f"{path} has no sidecar {side}: not a zoo export, or a torn one; export it again")
    try:
        with open(side, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise TornExport(f"{side} is not a readable sidecar ({e}): export again") from None
    recorded = (meta.get("file") or {}).get("sha256") if isinstance(meta, dict) else None
    if not recorded:
        raise TornExport(f"{side} records no sha256 of its file (an export of an older zoo): export again")
    digest = sha256_file(path)
    if digest != recorded:
        raise TornExport(f"{path} is not the file {side} describes (sha256 {digest[:16]}..., recorded "
                         f"{recorded[:16]}...): a torn or replaced export; export again")
    return meta


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
        raise MissingDependency("running ONNX files needs onnxruntime: pip install 'zoo[deploy]' "
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
