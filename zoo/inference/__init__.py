"""The CPU inference fast path: `optimize` (BN folding, channels-last, Winograd convs, bf16, a
per-model memory cache, optional torch.compile) and the native kernels it builds on first use.

    fast = zoo.optimize(model.eval())            # == zoo.inference.optimize

Beside it: `zoo.inference.quantize` (int8), `zoo.inference.export` (ONNX / torch.export files),
`zoo.inference.timeline` (sliding-window timelines of long videos) and `zoo.inference.live`
(live streams that drop instead of lagging, online TSM frame by frame).
"""
from .optimize import Conv3dAs2d, OptimizedModel, fold_batchnorms
from .api import optimize

__all__ = ["optimize", "OptimizedModel", "fold_batchnorms", "Conv3dAs2d"]
