"""``zoo audit DATA --out DIR``: does this data need motion, does frame order matter?"""
from __future__ import annotations

from .._files import prepare_output_dir
from . import UsageError

__all__ = ["register"]


def cmd_audit(args) -> int:
    from ..benchmark.audit import run_audit
    from ..engine.config import TrainConfig
    from ..models import model_info
    from ._options import data_error_types
    from .cards import DEFAULT_RESULTS

    prepare_output_dir(args.out)
    for name in (args.baseline, args.temporal):
        model_info(name)  # unknown names: close matches, before any training
    overrides = {k: v for k, v in (("frames", args.frames), ("size", args.size), ("batch_size", args.batch_size),
                                   ("lr", args.lr)) if v is not None}
    TrainConfig(model=args.temporal, data=args.data, split=args.split, **overrides).validate()
    try:
        doc = run_audit(args.data, args.out, init=args.init, baseline=args.baseline, temporal=args.temporal,
                        val_data=args.val_data, split=args.split, data_root=args.data_root, epochs=args.epochs,
                        seed=args.seed, on_error=args.on_error, progress=not args.no_progress,
                        results=args.results or DEFAULT_RESULTS, overrides=overrides)
    except data_error_types() as e:
        raise UsageError(str(e).replace("on_error='skip'", "--on-error skip")) from None
    print(f"\n{doc['text']}\n")
    rec = doc["recommendation"][:5]
    if rec:
        print("cheapest " + ("temporal " if doc["motion_matters"] else "") + "models (GFLOPs per view, bf16 fast-path "
              "ms, SynthMotion shuffle drop):")
        for r in rec:
            ms = f"{r['latency_bf16_ms']:.0f} ms" if r["latency_bf16_ms"] else "- ms"
            drop = f"{r['synthmotion_shuffle_drop']:+.1f}" if r["synthmotion_shuffle_drop"] is not None else "-"
            print(f"  {r['model']:<20} {r['gflops'] or 0:7.1f} GFLOPs  {ms:>8}  shuffle drop {drop}")
    print(f"{args.out}/audit.json ({doc['seconds']:.0f} s)")
    return 0


def register(sub):
    p = sub.add_parser(
        "audit", help="does this data need motion? train an order-free and a temporal model, test frame orders",
        description="Train a frame-order-free baseline (TSN) and a temporal model (TSM) on DATA (small networks "
                    "from scratch, or linear probes on released weights with --init pretrained), evaluate both on "
                    "the validation videos in normal, reversed, shuffled and single-frame order, and say in plain "
                    "words whether motion and frame order matter, with 95 %% confidence intervals; then recommend "
                    "models by measured cost. Writes OUT/audit.json (motion_matters, the figures behind it) and "
                    "the two runs under OUT/baseline and OUT/temporal.")
    p.add_argument("data", help="dataset spec (SynthMotion directory, class folders, list/CSV with --val-data, "
                                "UCF101/HMDB51 root with --split)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--init", choices=("scratch", "pretrained"), default="scratch",
                   help="scratch: the small-from-scratch recipe (minutes on 2 cores for a few hundred clips; "
                        "default); pretrained: linear probes on the models' released weights (downloads them once)")
    p.add_argument("--val-data", help="validation data spec (default: DATA's val split)")
    p.add_argument("--split", type=int, choices=(1, 2, 3), help="UCF101 / HMDB51 official split")
    p.add_argument("--data-root", help="directory that relative video paths are relative to")
    p.add_argument("--baseline", default="tsn_r50", help="the order-free model (default tsn_r50)")
    p.add_argument("--temporal", default="tsm_r50", help="the temporal model (default tsm_r50)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the recipe's)")
    p.add_argument("--frames", type=int)
    p.add_argument("--size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--on-error", choices=("error", "skip"), default="error")
    p.add_argument("--results", help="compare.json with measured latencies (default benchmarks/results/compare.json)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_audit)
