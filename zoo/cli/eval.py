"""``zoo eval``: the evaluation harness on a dataset, or re-aggregation of saved logits."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import yaml

from . import UsageError

__all__ = ["register", "add_model_options", "resolve_model_options", "parse_kv", "data_error_types", "compile_mode"]

COMPILE_MODES = {"off": False, "on": True, "auto": "auto"}  # --compile -> zoo.optimize(compile=...)


def parse_kv(items: Optional[List[str]], what: str = "--model-arg") -> Dict[str, Any]:
    """``["backbone=resnet18", "dropout=0.2"]`` -> dict, values parsed as YAML scalars."""
    out: Dict[str, Any] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"{what} {item!r} must look like KEY=VALUE (e.g. backbone=resnet18)")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def add_model_options(p, *, views: bool = True) -> None:
    """Options shared by eval/predict/features: which model, which weights, which input protocol."""
    g = p.add_argument_group("model")
    g.add_argument("--weights", action="append", metavar="W",
                   help="checkpoint path or URL: a zoo checkpoint or an official one (mapped by the family's "
                        "filter); repeat the option for multi-file releases (e.g. PAN Full: RGB then PA)")
    g.add_argument("--run-dir", metavar="DIR",
                   help="a `zoo train` output directory: takes the model, its options and DIR/model.pt from it")
    g.add_argument("--model-arg", action="append", metavar="KEY=VALUE",
                   help="architecture override passed to zoo.build (repeatable), e.g. backbone=resnet18")
    g.add_argument("--frames", type=int, help="frames per clip (segments for TSN/TSM/PAN); default: the model's")
    g.add_argument("--size", type=int, help="crop size in pixels (the resize scales with it); default: the model's")
    if views:
        g.add_argument("--views", metavar="CLIPSxCROPS",
                       help="test views per video, e.g. 2x3 (default: the model's info.test_views)")
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: GPU if available)")
    g.add_argument("--no-optimize", action="store_true",
                   help="run the model as built (eager fp32, default layout) instead of the CPU fast path "
                        "(zoo.optimize: BN folded into convs, channels-last, bf16 with --amp bf16)")
    g.add_argument("--compile", choices=tuple(COMPILE_MODES), default="off",
                   help="torch.compile the fast path (inductor with weight freezing; needs a C compiler and "
                        "takes 5-60 s at the first batch): on, or auto = only where it runs one canonical clip "
                        "faster (default off)")


def compile_mode(args):
    """``zoo.optimize``'s ``compile`` argument from ``--compile`` (refused with ``--no-optimize``)."""
    if args.compile != "off" and args.no_optimize:
        raise UsageError(f"--compile {args.compile} compiles the fast path: drop --no-optimize, or drop --compile")
    return COMPILE_MODES[args.compile]


def resolve_model_options(args) -> Dict[str, Any]:
    """Merge ``--run-dir DIR`` with explicit flags into model name, weights, model_args, frames, size."""
    from ..models import is_model

    opts: Dict[str, Any] = {"model": getattr(args, "model", None), "weights": args.weights,
                            "model_args": parse_kv(args.model_arg), "frames": args.frames, "size": args.size,
                            "classes": None, "data": None, "data_root": None}
    if args.run_dir:
        cfg_path = os.path.join(args.run_dir, "config.yaml")
        if not os.path.isfile(cfg_path):
            raise FileNotFoundError(f"--run-dir {args.run_dir!r}: no config.yaml there "
                                    f"(is it a `zoo train` output directory?)")
        with open(cfg_path) as f:
            cfg = yaml.safe_load(f) or {}
        opts["model"] = opts["model"] or cfg.get("model")
        opts["model_args"] = {**(cfg.get("model_args") or {}), **opts["model_args"]}
        opts["frames"] = opts["frames"] or cfg.get("frames")
        opts["size"] = opts["size"] or cfg.get("size")
        opts["data"] = cfg.get("val_data") or cfg.get("data")
        opts["data_root"] = cfg.get("data_root")
        if not opts["weights"]:
            w = os.path.join(args.run_dir, "model.pt")
            if not os.path.isfile(w):
                raise FileNotFoundError(f"--run-dir {args.run_dir!r}: no model.pt (the run has not finished; pass "
                                        f"--weights {os.path.join(args.run_dir, 'last.pt')} for its last epoch)")
            opts["weights"] = [w]
        classes = os.path.join(args.run_dir, "classes.txt")
        if os.path.isfile(classes):
            with open(classes) as f:
                opts["classes"] = [line.strip() for line in f if line.strip()]
    if not opts["model"]:
        raise UsageError("name a model (e.g. tsm_r50) or pass --run-dir DIR of a training run")
    if not is_model(opts["model"]):
        from ..models._registry import get_entry
        get_entry(opts["model"])  # raises KeyError with close matches
    for w in opts["weights"] or []:
        if "://" not in w and not os.path.exists(w):
            raise FileNotFoundError(f"weights file {w!r} does not exist")
    if opts["weights"] and len(opts["weights"]) == 1:
        opts["weights"] = opts["weights"][0]
    return opts


def data_error_types():
    """Errors of the data pipeline that a user fixes (an unreadable or mislabelled video)."""
    from ..data import DataError, DecodeError
    return (DataError, DecodeError)


def cmd_eval(args) -> int:
    from ..engine import distributed as dist_utils
    from ..engine.evaluate import format_table, reaggregate, save_eval

    if args.from_dir:
        if args.data or args.model:
            raise UsageError("--from re-aggregates saved logits: it takes no MODEL or --data")
        result = reaggregate(args.from_dir, args.agg)
        out = args.out or args.from_dir
        files = save_eval(result, out, metrics_name=f"metrics_{args.agg}.json")
        print(format_table({result.meta.get("model", "saved"): result}))
        print(f"metrics: {files['metrics']}")
        return 0

    from ..data import build_dataset
    from ..engine.config import parse_views
    from ..engine.evaluate import evaluate
    from ..engine.prepare import adjust_info, build_model

    opts = resolve_model_options(args)
    data = args.data or opts["data"]
    if not data:
        raise UsageError("--data SPEC is required (a CSV/JSON/list file, a class-folder tree or a SynthMotion "
                         "directory)")
    views = parse_views(args.views) if args.views else None
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    compile = compile_mode(args)
    info, model_args = adjust_info(opts["model"], frames=opts["frames"], size=opts["size"], views=views,
                                   model_args=opts["model_args"])
    dist_utils.init_distributed()
    device = dist_utils.default_device(args.device)
    dataset = build_dataset(data, info, args.split, train=False, views=info.test_views, on_error=args.on_error,
                            root=args.root or opts["data_root"])
    if opts["classes"] and list(opts["classes"]) != list(dataset.class_names):
        raise UsageError(f"the data's label map ({len(dataset.class_names)} classes) differs from the one the run "
                         f"was trained with ({len(opts['classes'])} classes, {args.run_dir}/classes.txt)")
    num_classes = args.num_classes or len(dataset.class_names)
    if not opts["weights"] and dist_utils.is_main_process():
        print("warning: no --weights: evaluating a randomly initialised model")
    model = build_model(opts["model"], info, num_classes=num_classes, weights=opts["weights"],
                        model_args=model_args, strict_classifier=True).to(device)
    try:
        result = evaluate(model, dataset, batch_size=args.batch_size, num_workers=args.workers, agg=args.agg,
                          temporal_order=args.temporal_order, seed=args.seed, device=device,
                          amp=args.amp, progress=not args.no_progress, optimize=not args.no_optimize,
                          compile=compile)
    except data_error_types() as e:
        raise UsageError(str(e).replace("on_error='skip'", "--on-error skip")) from None
    result.meta.update(model=opts["model"], weights=opts["weights"], data=data, split=args.split,
                       views=list(info.test_views), frames=info.num_frames, crop_size=info.crop_size)
    result.metrics.update({k: result.meta[k] for k in ("model", "weights", "data", "split", "views", "frames",
                                                          "crop_size")})
    if dist_utils.is_main_process():
        m = result.metrics
        print(format_table({opts["model"]: result}))
        print(f"{m['num_videos']} of {len(dataset)} videos evaluated, {m['num_views']} views each "
              f"({info.test_views[0]} clips x {info.test_views[1]} crops), {m['num_skipped']} skipped; "
              f"{result.meta['clips_per_second']:.1f} clips/s on {result.meta['world_size']} process(es)")
        for s in result.skipped:
            print(f"  skipped {s['path']}: {s['error']}")
        if args.out:
            files = save_eval(result, args.out)
            print(f"saved: {', '.join(files.values())}")
        if args.json:
            print(json.dumps({k: v for k, v in m.items() if k not in ("confusion_matrix",)}, indent=1))
    dist_utils.barrier()
    dist_utils.cleanup()
    return 0


def register(sub):
    from ..engine.evaluate import TEMPORAL_ORDERS
    from ..engine.metrics import AGGREGATIONS

    p = sub.add_parser(
        "eval", help="evaluate a model on a dataset with multi-view testing (the shared harness)",
        description="Evaluate MODEL on --data with the views of its info (or --views), aggregate the views, and "
                    "report clip/video top-1/top-5, mean class accuracy, per-class accuracy, confusion matrix "
                    "and mAP. --out saves the per-view logits so `zoo eval --from DIR --agg max` can "
                    "re-aggregate without running the model. Unreadable videos stop the run under "
                    "--on-error error, and are listed with their reason under skip. Run under "
                    "`torchrun --nproc_per_node=N -m zoo eval ...` to shard the videos over N processes.")
    p.add_argument("model", nargs="?", help="registered model name (see `zoo list`)")
    p.add_argument("--data", help="dataset spec: Kinetics CSV, SSv2 JSON, TSN list, class folders, SynthMotion dir")
    p.add_argument("--split", default="val", help="split of a SynthMotion directory (default val)")
    p.add_argument("--root", help="directory that relative video paths in --data are relative to")
    add_model_options(p)
    p.add_argument("--num-classes", type=int, help="classifier size (default: the number of classes in --data)")
    p.add_argument("--agg", default="prob-mean", choices=AGGREGATIONS, help="view aggregation (default prob-mean)")
    p.add_argument("--temporal-order", default="normal", choices=TEMPORAL_ORDERS,
                   help="diagnostic: feed the frames of every view reversed or shuffled (seeded)")
    p.add_argument("--seed", type=int, default=0, help="seed of --temporal-order shuffled (default 0)")
    p.add_argument("--on-error", default="error", choices=("error", "skip"),
                   help="unreadable video: stop (default) or skip it and list it in the report")
    p.add_argument("--batch-size", type=int, default=4, help="videos per batch (default 4)")
    p.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0)")
    p.add_argument("--amp", choices=("bf16", "fp16"), help="autocast the forward pass")
    p.add_argument("--out", help="directory for metrics.json, logits.pt and the confusion matrix (CSV + PNG)")
    p.add_argument("--from", dest="from_dir", metavar="DIR",
                   help="re-aggregate the logits saved in DIR (with --agg) instead of running a model")
    p.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)
