"""``zoo export``: a model to ONNX or ``torch.export`` (.pt2), verified in its runtime, with a sidecar."""
from __future__ import annotations

import os

from . import UsageError
from ._options import parse_kv, take_release

__all__ = ["register", "export"]


def export(name: str, out: str, *, fmt: str, weights=None, frames=None, size=None, batch="1", model_args=None,
           verify: bool = True):
    """Build ``name`` (with ``weights``: a tag, a path or URL), export it to ``out`` and, with
    ``verify``, run the file in its runtime on a fixed clip. Returns (sidecar, max relative |dlogit|)."""
    import torch

    from ..engine.prepare import adjust_info, build_model
    from ..inference.export import export_model, verify_export
    from ..models import get_entry

    entry = get_entry(name)
    opts = {"model_args": dict(model_args or {}), "frames": frames, "classes": None, "protocol": {},
            "pretrained": None}
    if isinstance(weights, str) and weights in {w.tag for w in entry.weights}:
        opts["pretrained"] = weights
        take_release(opts, entry.info)  # the release's options, protocol, clip length, class names
    info, args = adjust_info(name, frames=opts["frames"], size=size, model_args=opts["model_args"],
                             protocol=opts["protocol"])
    model = build_model(name, info, weights=weights, model_args=args)
    tag = f"{entry.info.name}.{opts['pretrained']}" if opts["pretrained"] else None
    if opts["classes"]:
        model.categories = tuple(opts["classes"])
    dynamic = batch == "dynamic"
    example = torch.randn(2 if dynamic else int(batch), *info.input_shape, generator=torch.Generator().manual_seed(0))
    meta = export_model(model, out, fmt=fmt, example=example, dynamic_batch=dynamic,
                        weights=tag or (None if weights is None else str(weights)))
    error = verify_export(out, fmt, model, example[:1] if dynamic else example) if verify else None
    return meta, error


def cmd_export(args) -> int:
    if args.batch != "dynamic" and not (args.batch.isdigit() and int(args.batch) >= 1):
        raise UsageError(f"--batch must be a positive number or 'dynamic', got {args.batch!r}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"output directory {out_dir!r} does not exist")
    if not os.access(out_dir, os.W_OK):
        raise UsageError(f"output directory {out_dir!r} is not writable")
    weights = args.weights[0] if args.weights and len(args.weights) == 1 else args.weights
    meta, error = export(args.model, args.out, fmt=args.format, weights=weights, frames=args.frames,
                         size=args.size, batch=args.batch, model_args=parse_kv(args.model_arg),
                         verify=not args.no_verify)
    size = os.path.getsize(args.out) / 2**20
    print(f"{args.model} -> {args.out} ({args.format}, {size:.1f} MB); input {meta['input_shape']} "
          f"{meta['layout']}; sidecar {args.out}.json")
    if error is not None:
        runtime = "onnxruntime (CPU)" if args.format == "onnx" else "torch.export.load"
        verdict = "ok" if error <= 1e-4 else "ABOVE the 1e-4 target"
        print(f"verified in {runtime}: max |dlogit| / max |logit| = {error:.2e} against eager ({verdict})")
        if error > 1e-4:
            return 1
    return 0


def register(sub):
    p = sub.add_parser(
        "export", help="export a model to ONNX or torch.export (.pt2), verified in its runtime",
        description="Export MODEL (eager modules, fp32; zoo's native kernels are never in the graph) to ONNX or "
                    "a torch.export program, write FILE.json beside it (input shape and layout, mean/std, "
                    "sampling protocol, views, class names), then load FILE in its runtime (onnxruntime CPU, "
                    "torch.export.load), run a fixed clip and print the max |dlogit| against eager.")
    p.add_argument("model", help="registered model name")
    p.add_argument("--weights", action="append", metavar="TAG|PATH",
                   help="a weights tag (see `zoo weights`), a checkpoint path or URL (repeat for file sets)")
    p.add_argument("--format", required=True, choices=("onnx", "pt2"), help="onnx (onnxruntime) or pt2")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--frames", type=int, help="clip length T (default: the model's or the weights')")
    p.add_argument("--size", type=int, help="crop size (default: the model's)")
    p.add_argument("--batch", default="1", help="batch size of the exported input, or 'dynamic' (default 1)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="architecture override (repeatable)")
    p.add_argument("--no-verify", action="store_true", help="do not run the exported file")
    p.set_defaults(func=cmd_export)
