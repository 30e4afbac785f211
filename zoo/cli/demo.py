"""``zoo demo``: the whole pipeline on bundled synthetic data, in a few minutes on a CPU.

Generates a small SynthMotion set (classes that only temporal order separates), trains a small
TSN, TSM and (when registered) PAN Lite on it, evaluates them with the shared harness, frames
in order and reversed, and prints their accuracy and cost side by side.
"""
from __future__ import annotations

import json
import os
import time

from . import UsageError

__all__ = ["register", "run_demo"]

DEFAULT_MODELS = ("tsn_r50", "tsm_r50", "pan_lite_r50")


def _data(out: str, classes: str, per_class: int, frames: int, size: int, seed: int) -> str:
    """Generate the SynthMotion set once; reuse it when its settings match."""
    from ..data import synth

    path = os.path.join(out, "data")
    meta_path = os.path.join(path, "classes.json")
    want = dict(per_class=per_class, frames=frames, size=size, seed=seed)
    if os.path.isfile(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("classes") == classes.split(",") and all(meta["settings"].get(k) == v for k, v in want.items()):
            print(f"data: reusing {path}")
            return path
    t0 = time.perf_counter()
    synth.generate(path, classes=classes, **want)
    print(f"data: SynthMotion {classes} ({per_class} clips per class, {frames} frames, {size} px) -> {path} "
          f"({time.perf_counter() - t0:.0f}s)")
    return path


def run_demo(args) -> dict:
    from .. import is_model, model_info
    from ..engine import TrainConfig, evaluate, format_table, train
    from ..engine.evaluate import save_eval
    from ..flops import count_flops, count_params

    models = [m for m in args.models.split(",") if m]
    missing = [m for m in models if not is_model(m)]
    if missing and args.models != ",".join(DEFAULT_MODELS):
        raise UsageError(f"unknown model(s) {', '.join(missing)}; see `zoo list`")
    models = [m for m in models if is_model(m)]  # PAN Lite joins only when it is registered
    data = _data(args.out, args.classes, args.per_class, args.data_frames, args.data_size, args.seed)
    results, extra = {}, {}
    for name in models:
        t0 = time.perf_counter()
        frames = args.segments * model_info(name).frames_per_segment  # PAN Lite: 4 frames per segment
        cfg = TrainConfig(model=name, data=data, out=os.path.join(args.out, name), frames=frames,
                          size=args.size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          optimizer=args.optimizer, weight_decay=args.weight_decay, warmup_epochs=args.warmup,
                          model_args={"backbone": args.backbone}, seed=args.seed, progress=not args.no_progress,
                          eval_every=0)
        print(f"\n== {name}: {args.backbone} backbone, {args.segments} segments ({frames} frames) at {args.size} px, "
              f"{args.epochs} epochs")
        run = train(cfg)
        model, info = run["model"], run["info"]
        results[name] = run["eval"]
        # the temporal-order diagnostic: an order-invariant model (TSN) does not notice reversal
        from ..data import build_dataset
        val = build_dataset(data, info, "val")
        rev = evaluate(model, val, temporal_order="reversed", progress=False)
        rev.meta["model"] = name
        save_eval(rev, os.path.join(cfg.out, "eval_reversed"))
        flops = count_flops(model, (1, *info.input_shape)).gflops
        extra[name] = {"reversed top1": f"{rev.metrics['video_top1']:.2f}", "GFLOPs/view": f"{flops:.3f}",
                       "params (M)": f"{count_params(model) / 1e6:.2f}",
                       "time (s)": f"{time.perf_counter() - t0:.0f}"}
    classes = args.classes.split(",")
    print(f"\nSynthMotion val ({results[models[0]].metrics['num_videos']} videos, {len(classes)} classes: "
          f"{', '.join(classes)}; chance {100 / len(classes):.1f}%), {args.backbone} backbones, "
          f"{args.segments} segments x {args.size} px, trained from scratch for {args.epochs} epochs")
    print(format_table(results, extra))
    print("GFLOPs per view (fvcore: 1 multiply-add = 1 FLOP); top5 is capped at the number of classes. The classes "
          "come in time-reversed twins: a frame-order-invariant model (TSN) cannot beat chance between twins by "
          "construction, temporal models (TSM, PAN) can once trained long enough -- a few CPU minutes from "
          "scratch is usually not enough, so read this as a check of the pipeline and of the cost columns "
          "(raise --epochs/--per-class for a real comparison). 'reversed top1': frames fed backwards.")
    summary = {n: {**{k: r.metrics.get(k) for k in ("video_top1", "video_top5", "mean_class_accuracy", "mAP")},
                   **extra[n]} for n, r in results.items()}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"runs, logits, confusion matrices: {args.out}/<model>/; summary: {args.out}/summary.json")
    return summary


def cmd_demo(args) -> int:
    if args.epochs < 1 or args.per_class < 4:
        raise UsageError("--epochs must be >= 1 and --per-class >= 4")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    run_demo(args)
    return 0


def register(sub):
    p = sub.add_parser(
        "demo", help="generate SynthMotion, train small TSN/TSM/PAN Lite, evaluate and compare (a few minutes)",
        description="The main job: generate a small SynthMotion set, train small versions of TSN, TSM and PAN "
                    "Lite (ResNet-18 backbones at low resolution, from scratch) for a few epochs, evaluate them "
                    "with the shared harness (frames in order and reversed) and print accuracy and GFLOPs side "
                    "by side. Everything is written under --out.")
    p.add_argument("--out", default=os.path.join("runs", "demo"), help="output directory (default runs/demo)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model names")
    p.add_argument("--classes", default="moving_right,moving_left,moving_down,moving_up",
                   help="SynthMotion classes (comma-separated; default: two pairs of time-reversed twins)")
    p.add_argument("--per-class", type=int, default=24, help="clips per class, a quarter for validation (default 24)")
    p.add_argument("--data-frames", type=int, default=8, help="frames per generated clip (default 8)")
    p.add_argument("--data-size", type=int, default=32, help="generated frame size in px (default 32)")
    p.add_argument("--segments", type=int, default=4,
                   help="segments per clip (default 4); a segment is 1 frame for TSN/TSM, 4 for PAN Lite")
    p.add_argument("--size", type=int, default=32, help="crop size the models see (default 32)")
    p.add_argument("--backbone", default="resnet18", help="ResNet backbone of every model (default resnet18)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs per model (default 5)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--optimizer", default="adamw", choices=("sgd", "adamw"))
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=1.0, help="warmup epochs (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1: these tiny models gain little from more, and a busy "
                        "machine makes multi-threaded CPU kernels much slower; 0 = torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
