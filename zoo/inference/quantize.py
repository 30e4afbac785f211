"""Post-training static int8 quantization for CPU inference: ``zoo.optimize(model, torch.int8,
calibration=clips)`` (`quantize`), and of an exported ONNX file (`quantize_onnx`, ``zoo export --int8``).

Three backends; none is faster on every model, so ``backend="auto"`` builds them all and keeps the
one faster on the model's canonical clip (``python -m zoo.benchmark.deploy`` has the figures per model):

- ``"onnxruntime"``: the model exported to ONNX (`zoo.inference.export`), quantized by onnxruntime's
  static quantizer and run by its CPU provider. Fast where its int8 kernels cover the convolutions.
- ``"pt2e"``: PT2E (torchao) with inductor's x86 quantizer, then ``torch.compile`` with weight
  freezing, so convolutions run as oneDNN int8 kernels with the (de)quantization fused. Needs
  torchao and a C++ compiler; compiling costs seconds to a minute, at construction (for the
  calibration clips' shape, so a graph inductor cannot lower fails there) and at the first call of
  each other shape. Zoo's int8 pass-through ops (TSM's temporal shift) run on the uint8
  activations, at their scale, and each call of a module called more than once is its own
  partition to the quantizer (`zoo.inference._pt2e`).
- ``"onednn"``: zoo's own (`zoo.inference.int8`): the bf16 fast path with each convolution, 2D or
  3D, in int8 (oneDNN) where it measures faster than in bf16 on the model's canonical clip, so it
  is never slower than the uncompiled bf16 fast path it is built on (the compiled one can be
  faster still). Needs a C++ compiler (its quantization kernel).

All calibrate activation ranges (min/max) on the clips given and keep the logits in float32.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn

from .._errors import UsageError
from .._files import temp_path
from .export import OnnxRuntimeModel, export_program, onnxruntime_module, save_model_file
from .compiling import compiled_calls
from .timing import canonical_clip, time_interleaved

__all__ = ["quantize", "quantize_onnx", "calibration_clips", "export_for_int8", "onnxruntime_int8", "describe_int8", "error_line", "BACKENDS", "METHODS", "Pt2eInt8Model"]

METHODS = {
    "onnxruntime": "onnxruntime static quantization: QDQ, per-channel int8 weights, uint8 activations",
    "pt2e": "PT2E (torchao) with inductor's x86 quantizer: per-channel int8 weights, uint8 activations; "
            "torch.compile (inductor, weight freezing)",
    "onednn": "zoo per layer: oneDNN int8 convolutions (2D and 3D; per-channel int8 weights, uint8 activations) "
              "where each measures faster than its bf16 form, inside the bf16 fast path",
}
WHOLE_MODEL = ("onnxruntime", "pt2e")  # backends that quantize every convolution they can, not by measurement
BACKENDS = (*METHODS, "auto")


def calibration_clips(calibration) -> List[torch.Tensor]:
    """``calibration`` (a ``[N, C, T, H, W]`` tensor or a sequence of ``[B, C, T, H, W]`` ones) as a
    list of float32 clips; a clear error for anything else."""
    clips = list(calibration.split(1)) if isinstance(calibration, torch.Tensor) else list(calibration)
    if not clips or any(not isinstance(c, torch.Tensor) or c.dim() != 5 for c in clips):
        raise UsageError("int8 calibration takes clips shaped [B, C, T, H, W] (a tensor or a list of them), "
                         f"got {type(calibration).__name__}")
    return [c.detach().float().cpu() for c in clips]


def quantize_onnx(fp32: str, out: str, calibration: Sequence[torch.Tensor]) -> None:
    """Post-training static int8 quantization of an exported ONNX file with onnxruntime
    (`METHODS` ``["onnxruntime"]``; QDQ measured faster than QOperator and than int8 activations
    here), calibrated on ``calibration`` clips. Atomic: ``out`` appears complete or not at all."""
    onnxruntime_module()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Clips(CalibrationDataReader):
        def __init__(self):
            self.clips = iter(calibration)

        def get_next(self):
            clip = next(self.clips, None)
            return None if clip is None else {"video": clip.numpy()}

    pre, tmp = temp_path(out, "pre", ".onnx"), temp_path(out, "int8", ".onnx")
    try:
        _pre_process(os.path.abspath(fp32), os.path.abspath(pre))
        quantize_static(pre, tmp, Clips(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        nodes_to_exclude=_infinite_pads(pre))
        os.replace(tmp, out)
    finally:
        for path in (pre, tmp):
            if os.path.exists(path):
                os.unlink(path)


_SHAPES_INCOMPLETE = "Incomplete symbolic shape inference"  # onnxruntime's message (a plain Exception)


def _pre_process(fp32: str, pre: str) -> None:
    """onnxruntime's quantization pre-processing, with its symbolic shape inference where that completes.
    It runs in a directory of its own: where the inference is incomplete, onnxruntime saves the partial
    model (``sym_shape_infer_temp.onnx`` and a weights file of the model's size) into the working
    directory before it raises; that directory goes with everything in it. The process's working
    directory is that one for the duration of the call (paths are made absolute first)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="zoo-int8-shapes-") as scratch, contextlib.chdir(scratch):
        try:
            quant_pre_process(fp32, pre)
        except TypeError:  # its Concat rule fails on PAN's dynamic-batch graph
            quant_pre_process(fp32, pre, skip_symbolic_shape=True)
        except Exception as e:  # the one plain Exception it raises by design: some shapes not inferred
            if str(e) != _SHAPES_INCOMPLETE:
                raise
            quant_pre_process(fp32, pre, skip_symbolic_shape=True)


def _infinite_pads(path: str) -> List[str]:
    """Nodes to keep in float: Pads with an infinite value (I3D's TF-SAME max-pools pad with -inf)
    and the nodes reading them. A range holding -inf has no int8 scale: quantized, it breaks the
    whole network (I3D's top-1 agreed with fp32 on 16 % of videos)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                constants[node.output[0]] = numpy_helper.to_array(value)
    pads = [n for n in graph.node if n.op_type == "Pad" and len(n.input) > 2 and n.input[2] in constants
            and not np.isfinite(constants[n.input[2]]).all()]
    outputs = {o for n in pads for o in n.output}
    readers = [n for n in graph.node if outputs.intersection(n.input)]
    return [n.name for n in pads + readers]


def _batch_of_two(clips: Sequence[torch.Tensor]) -> torch.Tensor:
    # a dynamic batch dimension is exported from an example of batch 2 (batch 1 would be specialised)
    return torch.randn(2, *clips[0].shape[1:], generator=torch.Generator().manual_seed(0))


def export_for_int8(model: nn.Module, out: str, clips: Sequence[torch.Tensor]) -> None:
    """The fp32 ONNX export that the onnxruntime backend quantizes: any batch size."""
    save_model_file(model, out, fmt="onnx", example=_batch_of_two(clips), dynamic_batch=True)


def onnxruntime_int8(fp32: str, clips: Sequence[torch.Tensor], threads=None) -> OnnxRuntimeModel:
    """The fp32 ONNX file ``fp32`` (from `export_for_int8`) quantized on ``clips`` and loaded in
    onnxruntime; ``convs_int8`` counts its convolutions with int8 weights, and all of them."""
    with tempfile.TemporaryDirectory(prefix="zoo-int8-") as tmp:
        int8 = os.path.join(tmp, "int8.onnx")
        quantize_onnx(fp32, int8, clips)
        model = OnnxRuntimeModel(int8, threads=threads)
        model.convs_int8 = _onnx_convs_int8(int8)
        return model


def _onnx_convs_int8(path: str) -> Tuple[int, int]:
    import onnx

    graph = onnx.load(path).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    return sum(n.input[1] in dequantized for n in convs), len(convs)


def _graph_convs_int8(graph: torch.fx.GraphModule) -> Tuple[int, int]:
    convs = [n for n in graph.graph.nodes if n.op == "call_function" and "conv" in str(n.target)
             and "dequantize" not in str(n.target)]
    return (sum(isinstance(n.args[1], torch.fx.Node) and "dequantize" in str(n.args[1].target) for n in convs),
            len(convs))


def _onnxruntime_int8(model: nn.Module, clips: Sequence[torch.Tensor], threads=None) -> OnnxRuntimeModel:
    with tempfile.TemporaryDirectory(prefix="zoo-int8-") as tmp:
        fp32 = os.path.join(tmp, "fp32.onnx")
        export_for_int8(model, fp32, clips)
        return onnxruntime_int8(fp32, clips, threads)


@contextlib.contextmanager
def _quiet(logger: str):
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


class Pt2eInt8Model(nn.Module):
    """A PT2E-quantized graph (`METHODS` ``["pt2e"]``) under ``torch.compile``: float32 logits."""

    def __init__(self, model: nn.Module, clips: Sequence[torch.Tensor]):
        super().__init__()
        with _quiet("torch.utils._pytree"):  # torchao's import warns about a torch deprecation
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            from ._pt2e import name_each_call, passthrough_quantizer, run_passthroughs_on_int8
        with torch.no_grad():
            exported = name_each_call(export_program(model.eval(), _batch_of_two(clips), True).module())
            prepared = prepare_pt2e(exported, passthrough_quantizer())
            for clip in clips:
                prepared(clip)
            self.graph = convert_pt2e(prepared)
        self.passthroughs_int8 = run_passthroughs_on_int8(self.graph)
        # inductor's x86 quantizer annotates 2D convolutions and linear layers, not Conv3d
        self.convs_int8 = _graph_convs_int8(self.graph)
        # kept out of the module tree: it shares `graph`'s weights
        self.__dict__["_compiled"] = torch.compile(self.graph, dynamic=False)
        self(clips[0])  # compiled now: a graph inductor cannot lower fails here, not at some later call

    def train(self, mode: bool = True) -> "Pt2eInt8Model":
        # inference only; an exported graph refuses train()/eval(), which callers such as the harness make
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), compiled_calls():
            return self._compiled(x).float()


def quantize(model: nn.Module, calibration, *, backend: str = "auto", threads=None, heldout=None) -> nn.Module:
    """``model`` (eval mode, fp32) quantized to int8 by ``backend`` (see the module docstring),
    calibrated on ``calibration`` (see `calibration_clips`), for any batch size. The module returned
    carries the model's ``info``, ``num_classes`` and ``categories``, ``dtype`` (``torch.int8``),
    ``backend``, ``method``, ``convs_int8`` ((convolutions with int8 weights, all convolutions))
    and, for ``"auto"``, ``int8_ms``: the backends' timings on the canonical clip, and
    ``int8_errors``: why a backend could not quantize the model, if one could not. ``"auto"``
    keeps the fastest of ``"onednn"`` and the whole-model backend that quantizes the most
    convolutions (the faster of those on a tie: PT2E leaves Conv3d in float, so on 3D networks it
    is not an int8 model). ``threads``: onnxruntime's intra-op threads (default: one per core).
    ``heldout``: clips (as ``calibration``) on which ``"onednn"`` keeps the model's top-1 agreement
    with fp32 at 99 % or more, putting layers back in bf16 where needed; ``"auto"`` then measures
    each backend's agreement on them (``int8_agreement``) and keeps the fastest candidate that
    reaches 99 % (the fastest of all, if none does)."""
    if backend not in BACKENDS:
        raise UsageError(f"int8 backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if model.training:
        raise UsageError("int8 quantization takes an eval-mode model: call model.eval() first")
    clips = calibration_clips(calibration)
    if backend == "auto":
        built, errors = {}, {}
        for name in METHODS:
            try:
                built[name] = quantize(model, clips, backend=name, threads=threads, heldout=heldout)
            except Exception as e:  # a quantizer that cannot handle this graph leaves the other
                errors[name] = error_line(e)
        if not built:
            raise RuntimeError("no int8 backend could quantize this model: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
        whole = {name: q for name, q in built.items() if name in WHOLE_MODEL}
        most = max((q.convs_int8[0] for q in whole.values()), default=0)
        candidates = {name: q for name, q in built.items() if name not in whole or q.convs_int8[0] == most}
        agreement = None
        if heldout is not None:
            from .int8 import MIN_AGREEMENT, top1, top1_share

            held = calibration_clips(heldout)
            reference = top1(model, held)
            agreement = {name: round(top1_share(q, held, reference), 4) for name, q in built.items()}
            candidates = {n: q for n, q in candidates.items() if agreement[n] >= MIN_AGREEMENT} or candidates
        secs = time_interleaved(built, canonical_clip(model), warmup=1, reps=3, settle=0)
        best = candidates[min(candidates, key=secs.get)]
        best.int8_errors, best.int8_agreement = errors, agreement
        best.int8_ms = {k: round(1e3 * v, 1) for k, v in secs.items()}
        return best
    if backend == "onnxruntime":
        quantized = _onnxruntime_int8(model, clips, threads)
    elif backend == "pt2e":
        quantized = Pt2eInt8Model(model, clips)
    else:
        from .int8 import per_layer_int8

        quantized = per_layer_int8(model, clips, heldout=calibration_clips(heldout) if heldout is not None else ())
    return describe_int8(quantized, model, backend)


def error_line(e: Exception) -> str:
    """``Type: first line of the message``: why a backend could not quantize a model."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def describe_int8(quantized: nn.Module, model: nn.Module, backend: str) -> nn.Module:
    """``quantized`` with ``model``'s ``info``, ``num_classes``, ``categories`` and its own ``dtype``,
    ``backend`` and ``method``."""
    quantized.dtype, quantized.backend, quantized.method = torch.int8, backend, METHODS[backend]
    for attr in ("info", "num_classes", "categories"):
        if hasattr(model, attr):
            setattr(quantized, attr, getattr(model, attr))
    return quantized
