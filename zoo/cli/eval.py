"""``zoo eval``: the evaluation harness on a dataset, or re-aggregation of saved logits."""
from __future__ import annotations

import json

from .._files import prepare_output_dir
from . import UsageError
from ._options import add_model_options, compile_mode, data_error_types, model_spec

__all__ = ["register"]


def cmd_eval(args) -> int:
    from ..engine import distributed as dist_utils
    from ..engine.harness import format_table, reaggregate, save_eval

    if args.from_dir:
        if args.data or args.model:
            raise UsageError("--from re-aggregates saved logits: it takes no MODEL or --data")
        out = args.out or args.from_dir
        prepare_output_dir(out)
        agg = args.agg or "prob-mean"
        result = reaggregate(args.from_dir, agg)
        files = save_eval(result, out, metrics_name=f"metrics_{agg}.json")
        print(format_table({result.meta.get("model", "saved"): result}))
        print(f"metrics: {files['metrics']}")
        return 0

    from ..data import build_dataset
    from ..data.splits import split_and_fold
    from ..engine.harness import evaluate
    from ..engine.prepare import build_checked, check_clips_fit

    if args.out:
        prepare_output_dir(args.out)  # before the evaluation, whose results would be lost
    if args.published and not args.pretrained:
        raise UsageError("--published reproduces a release's number: it goes with --pretrained [TAG]")
    spec, extra = model_spec(args)
    if args.published:  # the release's own test head (e.g. PySlowFast's per-window softmax)
        spec, extra = model_spec(args, model_args=dict(spec.record.eval_args), quiet=True)
    data = args.data or extra["data"]
    if not data:
        raise UsageError("--data SPEC is required (a CSV/JSON/list file, a class-folder tree or a SynthMotion "
                         "directory)")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    compile = compile_mode(args)
    info = spec.info
    views_per_video = info.test_views[0] * info.test_views[1]
    check_clips_fit(info, args.batch_size * views_per_video,
                    what=f"--views {info.test_views[0]}x{info.test_views[1]} with --batch-size {args.batch_size}")
    dist_utils.init_distributed()
    device = dist_utils.default_device(args.device)
    split, fold = split_and_fold(args.split, extra["fold"])
    dataset = build_dataset(data, info, split, train=False, views=info.test_views, on_error=args.on_error,
                            root=args.root or extra["data_root"], fold=fold)
    names, classes = list(dataset.class_names), extra["classes"]
    if classes and names == [str(i) for i in range(len(names))] and len(names) <= len(classes):
        dataset.class_names = list(classes)  # integer labels: the weights' classes name them
    elif classes and list(classes) != names:
        where = f"{args.run_dir}/classes.txt" if args.run_dir else "the weights' class names"
        raise UsageError(f"the data's label map ({len(names)} classes) differs from the one the weights were "
                         f"trained with ({len(classes)} classes, {where})")
    num_classes = args.num_classes or len(dataset.class_names)
    if not spec.has_weights and dist_utils.is_main_process():
        print("warning: no --weights or --pretrained: evaluating a randomly initialised model")
    model = build_checked(spec.with_classes(num_classes), strict_classifier=True).to(device)
    try:
        result = evaluate(model, dataset, batch_size=args.batch_size, num_workers=args.workers,
                          agg=args.agg or info.view_aggregation,
                          temporal_order=args.temporal_order, seed=args.seed, device=device,
                          amp=args.amp, progress=not args.no_progress, optimize=not args.no_optimize,
                          compile=compile)
    except data_error_types() as e:
        raise UsageError(str(e).replace("on_error='skip'", "--on-error skip")) from None
    weights = spec.weights_label() if spec.has_weights else None
    result.meta.update(model=spec.name, weights=weights, data=data, split=args.split,
                       views=list(info.test_views), frames=info.num_frames, crop_size=info.crop_size)
    result.metrics.update({k: result.meta[k] for k in ("model", "weights", "data", "split", "views", "frames",
                                                          "crop_size")})
    if dist_utils.is_main_process():
        m = result.metrics
        print(format_table({spec.name: result}))
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
    from ..engine.config import AGGREGATIONS, TEMPORAL_ORDERS

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
    p.add_argument("--split", default="val", help="split of a SynthMotion directory (default val), or the official "
                   "split 1-3 of a UCF101 / HMDB51 root (its test list; a run's own split by default)")
    p.add_argument("--root", help="directory that relative video paths in --data are relative to")
    add_model_options(p)
    p.add_argument("--num-classes", type=int, help="classifier size (default: the number of classes in --data)")
    p.add_argument("--published", action="store_true",
                   help="with --pretrained: the release's own test head where it differs from zoo's logits "
                        "(SlowFast / I3D-R50: PySlowFast's softmax per pooling window at 256 px crops), to "
                        "reproduce its published number")
    p.add_argument("--agg", choices=AGGREGATIONS,
                   help="view aggregation (default: the model's official test's, most often prob-mean; with --from, prob-mean)")
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
