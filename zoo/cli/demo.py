"""``zoo demo``: the whole pipeline on bundled synthetic data, in a few minutes on a CPU.

Generates a small SynthMotion set (easy difficulty, two pairs of time-reversed twin classes),
trains a small TSN, TSM and (when registered) PAN Lite on it from scratch, evaluates them with
the shared harness, frames in order and reversed, and prints their accuracy and cost side by side.

TSM and PAN Lite separate the twins (reversal turns a clip into its twin, hence about 0 % reversed);
TSN, frame-order invariant, is at chance between twins and can only tell the two motion axes
apart (at most about 50 %). The README gives the measured figures.
"""
from __future__ import annotations

import json
import os
import time

from .._files import atomic_write_text, prepare_output_dir
from . import UsageError

__all__ = ["register", "run_demo"]

DEFAULT_MODELS = ("tsn_r50", "tsm_r50", "pan_lite_r50")
THREADS_DEFAULT = 1


def _data(out: str, classes: str, per_class: int, frames: int, size: int, seed: int, difficulty: str) -> str:
    """Generate the SynthMotion set once; reuse it when its settings match."""
    from ..data.synth import generate_or_reuse

    path = os.path.join(out, "data")
    t0 = time.perf_counter()
    if generate_or_reuse(path, classes, per_class=per_class, frames=frames, size=size, seed=seed,
                         difficulty=difficulty):
        print(f"data: SynthMotion ({difficulty}) {classes} ({per_class} clips per class, {frames} frames, {size} px) "
              f"-> {path} ({time.perf_counter() - t0:.0f}s)")
    else:
        print(f"data: reusing {path}")
    return path


def run_demo(args) -> dict:
    import platform

    import torch

    from .. import is_model
    from ..engine import TrainConfig, evaluate, format_table, train
    from ..engine.harness import save_eval
    from ..engine.metrics import twin_metrics
    from ..flops import count_flops, count_params

    t_start = time.perf_counter()
    models = [m for m in args.models.split(",") if m]
    missing = [m for m in models if not is_model(m)]
    if missing and args.models != ",".join(DEFAULT_MODELS):
        raise UsageError(f"unknown model(s) {', '.join(missing)}; see `zoo list`")
    models = [m for m in models if is_model(m)]  # PAN Lite joins only when it is registered
    print(f"zoo demo: seed {args.seed}, SynthMotion difficulty {args.difficulty}, {args.per_class} clips per class "
          f"({args.data_frames} frames, {args.data_size} px), models {', '.join(models)} with {args.backbone} "
          f"backbones from scratch, {args.segments} segments at {args.size} px, {args.epochs} epochs, batch "
          f"{args.batch_size}, {args.optimizer} lr {args.lr:g} wd {args.weight_decay:g} warmup {args.warmup:g}; "
          f"torch {torch.__version__} on {platform.machine()} CPU with {torch.get_num_threads()} thread(s) "
          f"({os.cpu_count()} cores)")
    data = _data(args.out, args.classes, args.per_class, args.data_frames, args.data_size, args.seed,
                 args.difficulty)
    with open(os.path.join(data, "classes.json")) as f:
        meta = json.load(f)
    classes, twins = meta["classes"], meta.get("twins", [])
    results, extra = {}, {}
    for name in models:
        t0 = time.perf_counter()
        cfg = TrainConfig(model=name, data=data, out=os.path.join(args.out, name),  # segments fix the clip
                          size=args.size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          optimizer=args.optimizer, weight_decay=args.weight_decay, warmup_epochs=args.warmup,
                          model_args={"backbone": args.backbone, "num_segments": args.segments}, seed=args.seed, progress=not args.no_progress,
                          eval_every=0)
        print(f"\n== {name}: {args.backbone} backbone, {args.segments} segments at {args.size} px, {args.epochs} epochs")
        run = train(cfg)
        model, info = run["model"], run["info"]
        results[name] = run["eval"]
        # the temporal-order diagnostic: an order-invariant model (TSN) does not notice reversal,
        # while for a model that uses the order a reversed clip looks like its twin class
        from ..data import build_dataset
        val = build_dataset(data, info, "val")
        rev = evaluate(model, val, temporal_order="reversed", progress=False)
        rev.meta["model"] = name
        save_eval(rev, os.path.join(cfg.out, "eval_reversed"))
        flops = count_flops(model, (1, *info.input_shape)).gflops
        pair, twin = twin_metrics(run["eval"].metrics["confusion_matrix"], classes, twins)
        extra[name] = {"reversed top1": f"{rev.metrics['video_top1']:.2f}",
                       **({"twin acc": f"{twin:.1f}", "pair acc": f"{pair:.1f}"} if pair is not None else {}),
                       "GFLOPs/view": f"{flops:.3f}", "params (M)": f"{count_params(model) / 1e6:.2f}",
                       "time (s)": f"{time.perf_counter() - t0:.0f}"}
    print(f"\nSynthMotion ({args.difficulty}) val ({results[models[0]].metrics['num_videos']} videos, "
          f"{len(classes)} classes: {', '.join(classes)}; chance {100 / len(classes):.1f}%), {args.backbone} "
          f"backbones, {args.segments} segments x {args.size} px, trained from scratch for {args.epochs} epochs, "
          f"seed {args.seed}, {torch.get_num_threads()} thread(s)")
    print(format_table(results, extra))
    print("GFLOPs per view (fvcore: 1 multiply-add = 1 FLOP); top5 is capped at the number of classes. The classes "
          "come in time-reversed twins (the second of a pair is the first played backwards): a frame-order-"
          "invariant model (TSN) is at chance between twins by construction -- it can still tell twin pairs apart "
          "(here: the axis of motion), so its top1 tops out near 2x chance. 'twin acc': right twin among the "
          "videos predicted inside their own pair (chance 50); 'pair acc': share predicted inside their own pair. "
          "'reversed top1': frames fed backwards -- a model that uses temporal order then predicts the twin "
          "(near 0), an order-invariant one does not notice. One seed, a small val set: differences of a few "
          "points are noise.")
    settings = {k: v for k, v in sorted(vars(args).items()) if k != "func"}
    settings.update(threads_used=torch.get_num_threads(), seconds=round(time.perf_counter() - t_start, 1))
    summary = {"settings": settings,
               "models": {n: {**{k: r.metrics.get(k) for k in ("video_top1", "video_top5", "mean_class_accuracy",
                                                               "mAP")}, **extra[n]} for n, r in results.items()}}
    atomic_write_text(os.path.join(args.out, "summary.json"), json.dumps(summary, indent=1))
    print(f"runs, logits, confusion matrices: {args.out}/<model>/; summary: {args.out}/summary.json; "
          f"total {time.perf_counter() - t_start:.0f}s")
    return summary


def cmd_demo(args) -> int:
    if args.epochs < 1 or args.per_class < 4:
        raise UsageError("--epochs must be >= 1 and --per-class >= 4")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    prepare_output_dir(args.out)
    os.makedirs(args.out, exist_ok=True)
    run_demo(args)
    return 0


def register(sub):
    from ..data.synth import DIFFICULTIES

    p = sub.add_parser(
        "demo", help="generate SynthMotion, train small TSN/TSM/PAN Lite, evaluate and compare (a few minutes)",
        description="The main job: generate a small SynthMotion set (easy difficulty by default), train small "
                    "versions of TSN, TSM and PAN Lite (ResNet-18 backbones at low resolution, from scratch) for "
                    "a few epochs, evaluate them "
                    "with the shared harness (frames in order and reversed) and print accuracy and GFLOPs side "
                    "by side. Everything is written under --out.")
    p.add_argument("--out", default=os.path.join("runs", "demo"), help="output directory (default runs/demo)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model names")
    p.add_argument("--classes", default="moving_right,moving_left,moving_down,moving_up",
                   help="SynthMotion classes (comma-separated; default: two pairs of time-reversed twins)")
    p.add_argument("--difficulty", default="easy", choices=DIFFICULTIES,
                   help="SynthMotion difficulty (default easy: learnable from scratch in CPU minutes)")
    p.add_argument("--per-class", type=int, default=64, help="clips per class, a quarter for validation (default 64)")
    p.add_argument("--data-frames", type=int, default=16,
                   help="frames per generated clip (default 16: PAN Lite samples 4 segments x 4 frames)")
    p.add_argument("--data-size", type=int, default=32, help="generated frame size in px (default 32)")
    p.add_argument("--segments", type=int, default=4,
                   help="segments per clip (default 4); a segment is 1 frame for TSN/TSM, 4 for PAN Lite")
    p.add_argument("--size", type=int, default=32, help="crop size the models see (default 32)")
    p.add_argument("--backbone", default="resnet18", help="ResNet backbone of every model (default resnet18)")
    p.add_argument("--epochs", type=int, default=6, help="training epochs per model (default 6)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--optimizer", default="adamw", choices=("sgd", "adamw"))
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=1.0, help="warmup epochs (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of every training run (default 0)")
    p.add_argument("--threads", type=int, default=THREADS_DEFAULT,
                   help=f"CPU threads for torch (default {THREADS_DEFAULT}; 0 = torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)
