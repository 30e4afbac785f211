"""``zoo score``: a model over every video of a manifest, the results as Parquet (`zoo.engine.score`)."""
from __future__ import annotations

import json
import os

from . import UsageError
from ._options import add_model_options, compile_mode, load_model, warn_if_untrained

__all__ = ["register", "run_identity"]


def run_identity(spec, args, names, items) -> dict:
    """What makes two runs the same (`zoo.engine.score.open_run` compares it): the resolved model,
    its weights (a local file by its sha256 too), the input protocol, the task and its options, the
    manifest and the shard size; JSON-normalised."""
    from .._files import sha256_file
    from ..data.manifest import manifest_digest

    files = {f: sha256_file(f) for f in spec.files if os.path.isfile(f)}
    identity = {"model": spec.name, "model_args": dict(spec.model_args), "weights": spec.weights_label(),
                "weights_sha256": files, "protocol": spec.protocol(),
                "class_names": list(names), "task": args.task, "topk": args.topk, "agg": args.agg,
                "optimize": "off" if args.no_optimize else f"fast path, {args.dtype}, compile {args.compile}",
                "manifest": {"videos": len(items), "sha256": manifest_digest(items)}, "shard_size": args.shard_size}
    return json.loads(json.dumps(identity))


def cmd_score(args) -> int:
    import torch

    from .._files import check_output_dir
    from ..data import load_label_map
    from ..data.manifest import read_manifest
    from ..engine.score import ERRORS_FILE, RESULTS_DIR, STAGING_DIR, ClipReader, ModelRecipe, Scorer, ShardPlan, \
        check_sources, run_local

    if args.topk < 1 or args.batch < 1 or args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError(f"--topk, --batch, --workers and --threads must be >= 1, got {args.topk}, {args.batch}, "
                         f"{args.workers} and {args.threads}")
    if args.engine == "local" and (args.workers != 1 or args.address):
        raise UsageError("--workers and --address are for --engine ray (the local engine is one process)")
    if args.engine == "ray":
        from ..engine.score_ray import require_ray
        require_ray()  # a missing Ray fails here, before any work
    check_output_dir(args.out)  # a file in its place, or no write permission: before any work
    items = read_manifest(args.manifest)
    check_sources(items)
    plan = ShardPlan(tuple(items), args.shard_size)  # a bad shard size fails before the model is built
    labels = load_label_map(args.labels) if args.labels else None
    if args.engine == "local" and args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # random weights (no --weights / --pretrained): the same in a resumed run, as ModelRecipe's
    model, spec, names, device = load_model(args, labels)  # the weights checked here, before any work
    warn_if_untrained(spec)
    args.agg = args.agg or spec.info.view_aggregation
    reader = ClipReader(spec.info, tuple(names), staging=os.path.join(args.out, STAGING_DIR))
    settings = dict(task=args.task, topk=args.topk, agg=args.agg, batch=args.batch, timeout=args.timeout)
    identity = run_identity(spec, args, names, items)
    print(f"zoo score: {len(items)} video(s) of {args.manifest}, {len(plan)} shard(s) of {args.shard_size}; "
          f"{args.task} with {spec.weights_label()} on the {args.engine} engine -> {args.out}", flush=True)

    def on_shard(k, rows, errors):
        if not args.no_progress:
            print(f"  shard {k + 1}/{len(plan)}: {rows} row(s){f', {errors} unreadable' if errors else ''}", flush=True)

    if args.engine == "ray":
        from ..engine.score_ray import run_ray

        del model  # each Ray worker builds its own
        recipe = ModelRecipe(spec, fast=not args.no_optimize, compile=compile_mode(args), dtype=args.dtype)
        record = run_ray(recipe, reader, settings, plan, args.out, identity, workers=args.workers,
                         threads=args.threads or 1, address=args.address, on_shard=on_shard)
    else:
        record = run_local(Scorer(model=model, reader=reader, device=device, **settings), plan, args.out, identity,
                           on_shard=on_shard)
    c = record["counts"]
    resumed = f"; {record['resumed_shards']} shard(s) were already done" if record["resumed_shards"] else ""
    print(f"{c['scored']} of {c['videos']} video(s) scored, {c['rows']} row(s) in "
          f"{os.path.join(args.out, RESULTS_DIR)}; {c['errors']} unreadable ({ERRORS_FILE}){resumed}")
    return 0


def register(sub):
    from ..engine.config import AGGREGATIONS, SCORE_TASKS as TASKS

    p = sub.add_parser("score", help="run a model over every video of a manifest; Parquet results, resumable",
                       description="Score every video listed in MANIFEST (CSV with a header, JSON lines or Parquet; "
                                   "a 'path' column and an optional 'id') with one model: --task predict (top-k "
                                   "labels, logits), features (pooled embeddings) or timeline (sliding windows). "
                                   "Rows go to DIR/results/part-NNNNN.parquet, one file per shard of videos "
                                   "written atomically (read the folder as one table); unreadable videos to "
                                   "DIR/errors.parquet; the run's record to "
                                   "DIR/_run.json. Run the same command again after a crash or a kill: only "
                                   "the shards not yet written are computed.")
    p.add_argument("manifest", help="the video list: .csv, .jsonl or .parquet")
    p.add_argument("--model", help="registered model name (or --run-dir DIR / --weights FILE of a zoo checkpoint)")
    p.add_argument("--task", choices=TASKS, default="predict", help="what to compute per video (default predict)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (new, empty, or this run's to resume)")
    p.add_argument("--labels", help="label map: one class name per line (or JSON); default: the weights' classes")
    p.add_argument("--topk", type=int, default=5, help="labels per row (default 5)")
    p.add_argument("--agg", choices=AGGREGATIONS, help="view aggregation (predict; default: the model's)")
    p.add_argument("--shard-size", type=int, default=64, metavar="N",
                   help="videos per output file (default 64): the unit written at once and resumed")
    p.add_argument("--batch", type=int, default=4, help="timeline: windows per forward pass (default 4)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="timeline: seconds to wait for a URL source (default 10; downloads: $ZOO_NET_TIMEOUT)")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                   help="the fast path's precision (default fp32); bf16: CPU autocast, faster where the CPU has "
                        "bf16 units; its top-1 agreement with fp32 is on each model card")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process, one video after another (default); ray: Ray Data, videos read in "
                        "CPU tasks and models in --workers actors (pip install 'zoo[ray]')")
    p.add_argument("--workers", type=int, default=1, help="ray: model actors (default 1)")
    p.add_argument("--threads", type=int,
                   help="torch threads of the model: per actor with ray (default 1), of this process locally "
                        "(default: torch's)")
    p.add_argument("--address", help="ray: an existing cluster (ray://HOST:10001 or auto); default: a local Ray "
                                     "instance for this run")
    p.add_argument("--no-progress", action="store_true", help="no line per shard")
    add_model_options(p)
    p.set_defaults(func=cmd_score)
