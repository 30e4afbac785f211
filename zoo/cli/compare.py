"""``zoo compare``: cost, CPU speed and SynthMotion accuracy of every registered model.

The logic lives in `zoo.benchmark.compare`.
"""
from __future__ import annotations

import os
import shlex
import sys

from . import UsageError

__all__ = ["register", "cmd_compare"]


def _command() -> str:
    """The command line as typed (``python -m zoo compare ...`` or ``zoo compare ...``)."""
    argv0 = os.path.basename(sys.argv[0])
    if argv0 == "__main__.py":
        return shlex.join(["python", "-m", "zoo", *sys.argv[1:]])
    if argv0.endswith(".py"):
        return shlex.join(["python", *sys.argv])
    return shlex.join([argv0, *sys.argv[1:]])


def cmd_compare(args) -> int:
    from ..benchmark.compare import run_compare

    for flag in ("epochs", "per_class", "heldout_per_class", "threads"):
        value, least = getattr(args, flag), 2 if flag.endswith("per_class") else 1
        if value is not None and value < least:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= {least}, got {value}")
    models = [m for m in (args.models or "").split(",") if m]
    name = "compare_quick" if args.quick else "compare"
    run_compare(args.out_dir or os.path.join("runs", name),
                args.results or os.path.join("benchmarks", "results", f"{name}.json"),
                models=models or None, quick=args.quick,
                epochs=args.epochs, per_class=args.per_class, heldout_per_class=args.heldout_per_class,
                seed=args.seed, threads=args.threads,
                skip_latency=args.skip_latency, skip_train=args.skip_train, remeasure=args.remeasure,
                command=_command(),
                progress=not args.no_progress)
    return 0


def register(sub):
    p = sub.add_parser(
        "compare", help="params, GFLOPs, CPU latency, memory and SynthMotion accuracy of every model",
        description="For every registered model (or --models): params and fvcore GFLOPs at its canonical input, "
                    "batch-1 CPU latency (eager fp32, zoo.optimize fp32 and bf16, not compiled and compiled) and "
                    "the peak memory of a fresh process doing it; and the accuracy of its small bench network "
                    "(zoo.models.bench_preset) trained from scratch on SynthMotion with one shared budget, "
                    "evaluated in "
                    "normal, reversed and shuffled frame order, with the fast path's numerics checked on it (bf16 "
                    "top-1 agreement over the val split and a held-out set). Models with identical bench networks "
                    "share one training run. The full run takes hours on 2 cores (the README gives the measured "
                    "figure), --quick minutes. Results are written after every model; re-running with the same "
                    "settings reuses them.")
    p.add_argument("--quick", action="store_true",
                   help="demo budget: 4 classes x 16 clips, 2 epochs (accuracies stay near chance), timing "
                        "warmup 1 / reps 1 in channels-last, not compiled (full: 8 classes x 48 clips, 12 epochs, "
                        "warmup 2 / reps 5, layout chosen per model, compiled path timed too)")
    p.add_argument("--models", help="comma-separated model names (default: every registered model)")
    p.add_argument("--out-dir", help="data and training runs (default runs/compare, --quick runs/compare_quick)")
    p.add_argument("--results", help="results JSON (default benchmarks/results/compare.json, --quick "
                                     "compare_quick.json)")
    p.add_argument("--epochs", type=int, help="training epochs per bench run (overrides the budget)")
    p.add_argument("--per-class", type=int, help="SynthMotion clips per class, a quarter for validation")
    p.add_argument("--heldout-per-class", type=int,
                   help="clips per class of the held-out SynthMotion set (seed + 1) over which, with the val "
                        "split, bf16 top-1 agreement with fp32 is measured (full 64, --quick 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of every training run (default 0)")
    p.add_argument("--threads", type=int, help="torch threads for timing and training (default: all cores)")
    p.add_argument("--skip-latency", action="store_true", help="no latency / memory measurement")
    p.add_argument("--skip-train", action="store_true", help="no bench training (cost and latency only)")
    p.add_argument("--remeasure", action="store_true",
                   help="measure cost and latency again even where the results file has them from the same "
                        "settings (after a code change); training runs are still reused, their numerics re-checked")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compare)
