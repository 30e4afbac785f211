"""``zoo export``: a model to ONNX or ``torch.export`` (.pt2), verified in its runtime, with a sidecar."""
from __future__ import annotations

import os

from .._files import prepare_output_file, temp_path
from . import UsageError
from ._options import parse_kv, take_release

__all__ = ["register", "export"]


def export(name: str, out: str, *, fmt: str, weights=None, frames=None, size=None, batch="1", model_args=None,
           verify: bool = True, int8_data=None, calib_videos: int = 16, split: str = "val"):
    """Build ``name`` (with ``weights``: a tag, a path or URL), export it to ``out`` and, with
    ``verify``, run the file in its runtime on a fixed clip. Returns (sidecar, max relative |dlogit|).

    ``int8_data`` (ONNX only): a dataset spec; its first ``calib_videos`` videos calibrate an
    onnxruntime static int8 quantization, the next ones (up to as many) measure its top-1
    agreement with eager fp32, recorded in the sidecar (``int8``)."""
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
    weights_name = tag or (None if weights is None else str(weights))
    if int8_data is None:
        meta = export_model(model, out, fmt=fmt, example=example, dynamic_batch=dynamic, weights=weights_name)
        error = verify_export(out, fmt, model, example[:1] if dynamic else example) if verify else None
        return meta, error
    return _export_int8(model, out, example, dynamic, weights_name, int8_data, calib_videos, split)


def _export_int8(model, out, example, dynamic, weights_name, data, calib_videos, split):
    from ..data import build_dataset
    from ..inference.export import export_model, top1_agreement, write_sidecar
    from ..inference.quantize import METHODS, quantize_onnx

    dataset = build_dataset(data, model.info, split, train=False, views=(1, 1))
    n = min(calib_videos, len(dataset) // 2)
    if n < 1:
        raise UsageError(f"--calibrate {data!r} ({split}) has {len(dataset)} video(s): int8 needs at least 2 "
                         f"(calibration, then held-out agreement)")
    clips = [dataset[i]["video"][:1] for i in range(min(len(dataset), 2 * n))]
    fp32 = temp_path(out, "fp32", ".onnx")
    try:
        meta = export_model(model, fp32, fmt="onnx", example=example, dynamic_batch=dynamic, weights=weights_name)
        quantize_onnx(fp32, out, clips[:n])
    finally:
        for path in (fp32, fp32 + ".json"):
            if os.path.exists(path):
                os.unlink(path)
    heldout = clips[n:]
    meta["int8"] = {"method": METHODS["onnxruntime"],
                    "calibration": {"data": str(data), "split": split, "videos": n},
                    "top1_agreement_with_fp32": top1_agreement(out, "onnx", model, heldout),
                    "heldout_videos": len(heldout)}
    write_sidecar(out, meta)
    return meta, None


def cmd_export(args) -> int:
    if args.batch != "dynamic" and not (args.batch.isdigit() and int(args.batch) >= 1):
        raise UsageError(f"--batch must be a positive number or 'dynamic', got {args.batch!r}")
    prepare_output_file(args.out)
    weights = args.weights[0] if args.weights and len(args.weights) == 1 else args.weights
    if args.int8 and (args.format != "onnx" or not args.calibrate):
        raise UsageError("--int8 quantizes an ONNX export: pass --format onnx and --calibrate DATA (videos to "
                         "calibrate on)")
    if args.calibrate and not args.int8:
        raise UsageError("--calibrate goes with --int8")
    meta, error = export(args.model, args.out, fmt=args.format, weights=weights, frames=args.frames,
                         size=args.size, batch=args.batch, model_args=parse_kv(args.model_arg),
                         verify=not args.no_verify, int8_data=args.calibrate if args.int8 else None,
                         calib_videos=args.calib_videos, split=args.split)
    size = os.path.getsize(args.out) / 2**20
    print(f"{args.model} -> {args.out} ({args.format}, {size:.1f} MB); input {meta['input_shape']} "
          f"{meta['layout']}; sidecar {args.out}.json")
    if "int8" in meta:
        q = meta["int8"]
        print(f"int8 ({q['method']}): calibrated on {q['calibration']['videos']} video(s); top-1 agreement with "
              f"eager fp32 on {q['heldout_videos']} held-out video(s): {100 * q['top1_agreement_with_fp32']:.1f} %")
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
    p.add_argument("--int8", action="store_true",
                   help="ONNX: post-training static int8 quantization (onnxruntime), calibrated on --calibrate")
    p.add_argument("--calibrate", metavar="DATA", help="with --int8: videos to calibrate on (any dataset spec)")
    p.add_argument("--calib-videos", type=int, default=16,
                   help="videos used to calibrate; as many more measure top-1 agreement (default 16)")
    p.add_argument("--split", default="val", help="split of a SynthMotion --calibrate directory (default val)")
    p.set_defaults(func=cmd_export)
