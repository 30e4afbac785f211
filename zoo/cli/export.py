"""``zoo export``: a model to ONNX or ``torch.export`` (.pt2), verified in its runtime, with a sidecar
that records the file's sha256 and the verification; the pair is put in place as one unit."""
from __future__ import annotations

import os

from .._files import prepare_output_file, temp_path
from . import UsageError
from ._options import check_positive, parse_kv

__all__ = ["register", "export"]


def export(name: str, out: str, *, fmt: str, weights=None, frames=None, size=None, batch="1", model_args=None,
           verify: bool = True, int8_data=None, calib_videos: int = 16, split: str = "val", on_error: str = "error",
           stream: bool = False):
    """Build ``name`` (with ``weights``: a tag, a path or URL) and export it to ``out`` with its
    sidecar as one unit; with ``verify``, the file is run in its runtime on a fixed clip before it is
    put in place, and the sidecar's ``verification`` says so. Returns the sidecar.

    ``int8_data`` (ONNX only): a dataset spec; its first ``calib_videos`` readable videos calibrate
    an onnxruntime static int8 quantization, the next ones (up to as many) measure its top-1
    agreement with eager fp32, recorded in the sidecar (``int8``, ``verification``). ``on_error``:
    an unreadable video stops the export (``"error"``) or is skipped and reported (``"skip"``).

    ``stream``: the per-frame step of an online model, its state as explicit inputs and outputs
    (`zoo.inference.export.export_stream`), verified frame by frame."""
    import torch

    from ..inference.export import export_model, export_stream
    from ..models import build, resolve

    spec = resolve(name, weights=weights, frames=frames, size=size, **dict(model_args or {}))
    for note in spec.notes:
        print(note)
    model = build(spec)
    dynamic = batch == "dynamic"
    if stream:
        size = spec.info.crop_size
        return export_stream(model, out, fmt=fmt, height=size, width=size, batch=int(batch),
                             weights=spec.weights_label() if spec.has_weights else None, verify=verify)
    example = torch.randn(2 if dynamic else int(batch), *spec.info.input_shape,
                          generator=torch.Generator().manual_seed(0))
    weights_name = spec.weights_label() if spec.has_weights else None
    if int8_data is None:
        return export_model(model, out, fmt=fmt, example=example, dynamic_batch=dynamic, weights=weights_name,
                            verify=verify)
    return _export_int8(model, out, example, dynamic, weights_name, int8_data, calib_videos, split, on_error)


INT8_AGREEMENT_TARGET = 0.99  # top-1 agreement with eager fp32 (the deployment benchmark's target)


def _calibration_clips(model, data, split, wanted: int, on_error: str):
    """Up to ``wanted`` one-view clips of ``data``'s readable videos, in order, and the skipped ones."""
    from ..data import build_dataset

    dataset = build_dataset(data, model.info, split, train=False, views=(1, 1), on_error=on_error)
    clips, skipped = [], []
    for i in range(len(dataset)):
        if len(clips) == wanted:
            break
        item = dataset[i]
        if item["video"] is None:
            skipped.append((item["path"], item["error"]))
        else:
            clips.append(item["video"][:1])
    return clips, skipped, len(dataset)


def _export_int8(model, out, example, dynamic, weights_name, data, calib_videos, split, on_error):
    from ..data import DataError
    from ..inference.export import commit_export, save_model_file, sidecar, top1_agreement
    from ..inference.quantize import METHODS, quantize_onnx

    try:
        clips, skipped, total = _calibration_clips(model, data, split, 2 * calib_videos, on_error)
    except DataError as e:
        raise UsageError(str(e).replace("on_error='skip'", "--on-error skip")) from None
    for path, why in skipped:
        print(f"skipped {path}: {why}")
    n = min(calib_videos, len(clips) // 2)
    if n < 1:
        raise UsageError(f"--calibrate {data!r} ({split}) has {len(clips)} readable video(s) of {total}: int8 needs at "
                         f"least 2 (calibration, then held-out agreement)")
    fp32, int8 = temp_path(out, "fp32", ".onnx"), temp_path(out, "int8", ".onnx")
    try:
        save_model_file(model, fp32, fmt="onnx", example=example, dynamic_batch=dynamic)
        quantize_onnx(fp32, int8, clips[:n])
        heldout = clips[n:2 * n]
        agreement = top1_agreement(int8, "onnx", model, heldout)
        meta = sidecar(model, example.shape, fmt="onnx", dynamic_batch=dynamic, weights=weights_name)
        meta["int8"] = {"method": METHODS["onnxruntime"],
                        "calibration": {"data": str(data), "split": split, "videos": n,
                                        "skipped": [p for p, _ in skipped]},
                        "top1_agreement_with_fp32": agreement, "heldout_videos": len(heldout)}
        meta["verification"] = {"ran": True, "runtime": "onnxruntime (CPU)", "heldout_videos": len(heldout),
                                "top1_agreement_with_fp32": agreement, "target": INT8_AGREEMENT_TARGET,
                                "passed": agreement >= INT8_AGREEMENT_TARGET}
        commit_export(out, int8, meta)
    finally:
        for path in (fp32, int8):
            if os.path.exists(path):
                os.unlink(path)
    return meta


def cmd_export(args) -> int:
    check_positive(args, ("frames", "size", "calib_videos"))
    if args.batch != "dynamic" and not (args.batch.isdigit() and int(args.batch) >= 1):
        raise UsageError(f"--batch must be a positive number or 'dynamic', got {args.batch!r}")
    prepare_output_file(args.out)
    existing = [p for p in (args.out, args.out + ".json") if os.path.exists(p)]
    if existing and not args.force:
        raise UsageError(f"--out {args.out}: {' and '.join(existing)} exist(s): pass --force to replace the export, "
                         f"or choose another --out")
    weights = args.weights[0] if args.weights and len(args.weights) == 1 else args.weights
    if args.int8 and (args.format != "onnx" or not args.calibrate):
        raise UsageError("--int8 quantizes an ONNX export: pass --format onnx and --calibrate DATA (videos to "
                         "calibrate on)")
    if args.calibrate and not args.int8:
        raise UsageError("--calibrate goes with --int8")
    if args.stream and (args.int8 or args.batch == "dynamic"):
        raise UsageError("--stream exports one frame's step at a fixed batch: drop --int8 / --batch dynamic")
    meta = export(args.model, args.out, fmt=args.format, weights=weights, frames=args.frames,
                  size=args.size, batch=args.batch, model_args=parse_kv(args.model_arg),
                  verify=not args.no_verify, int8_data=args.calibrate if args.int8 else None,
                  calib_videos=args.calib_videos, split=args.split, on_error=args.on_error, stream=args.stream)
    size = os.path.getsize(args.out) / 2**20
    print(f"{args.model} -> {args.out} ({args.format}, {size:.1f} MB, sha256 {meta['file']['sha256'][:16]}...); "
          f"input {meta['input_shape']} {meta['layout']}; sidecar {args.out}.json")
    check = meta["verification"]
    if "int8" in meta:
        q = meta["int8"]
        verdict = "meets" if check["passed"] else "BELOW"
        print(f"int8 ({q['method']}): calibrated on {q['calibration']['videos']} video(s); top-1 agreement with "
              f"eager fp32 on {q['heldout_videos']} held-out video(s): {100 * q['top1_agreement_with_fp32']:.1f} % "
              f"({verdict} the {100 * check['target']:g} % target)")
    elif check["ran"]:
        error = check["max_rel_dlogit"]
        verdict = "ok" if check["passed"] else f"ABOVE the {check['target']:g} target"
        how = f"frame by frame over {check['frames']} frames, state fed back, " if "stream" in meta else ""
        print(f"verified in {check['runtime']}: {how}max |dlogit| / max |logit| = {error:.2e} against eager ({verdict})")
        if "stream" in meta:
            print(f"stream step: inputs {', '.join(meta['stream']['inputs'][:3])}, ... "
                  f"({len(meta['stream']['state'])} state tensors, zeros to start; see the sidecar)")
        if not check["passed"]:
            return 1
    return 0


def register(sub):
    p = sub.add_parser(
        "export", help="export a model to ONNX or torch.export (.pt2), verified in its runtime",
        description="Export MODEL (eager modules, fp32; zoo's native kernels are never in the graph) to ONNX or "
                    "a torch.export program, load it in its runtime (onnxruntime CPU, torch.export.load), run a "
                    "fixed clip and print the max |dlogit| against eager; then put FILE and FILE.json (input shape "
                    "and layout, mean/std, sampling protocol, views, class names, FILE's sha256 and the "
                    "verification) in place as one unit. An existing FILE is replaced only with --force.")
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
    p.add_argument("--on-error", default="error", choices=("error", "skip"),
                   help="with --calibrate: an unreadable video stops the export (default) or is skipped and listed")
    p.add_argument("--stream", action="store_true",
                   help="an online model's per-frame step, its state as explicit inputs and outputs (MoViNet "
                        "stream models), verified frame by frame")
    p.add_argument("--force", action="store_true", help="replace an existing --out (and its sidecar)")
    p.set_defaults(func=cmd_export)
