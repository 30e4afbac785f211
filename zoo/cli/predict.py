"""``zoo predict`` (top-k labels of one video) and ``zoo features`` (pooled clip embeddings)."""
from __future__ import annotations

import os
from typing import List, Optional

from .._errors import InputNotFound
from .._files import display_name
from . import UsageError
from ._options import add_model_options, load_model, warn_if_untrained

__all__ = ["register", "load_videos_model", "check_videos"]


def check_videos(videos: List[str], on_error: str = "error") -> List[tuple]:
    """Open each video (its metadata only) before any model is built: a missing, unreadable or too
    short one is a `UsageError` naming it, or with ``on_error="skip"`` one of the ``(path, reason)``
    pairs returned."""
    from ..data import DecodeError, open_decoder, too_short

    bad = []
    for v in videos:
        if not os.path.exists(v):
            raise InputNotFound(f"video {display_name(v)!r} does not exist")
        try:
            with open_decoder(v) as dec:
                reason = too_short(dec.meta.num_frames)
        except DecodeError as e:
            reason = e.reason
        if reason and on_error == "skip":
            bad.append((v, reason))
        elif reason:
            hint = " (or --on-error skip)" if len(videos) > 1 else ""
            raise UsageError(f"{display_name(v)}: {reason}{hint}")
    return bad


def load_videos_model(args, videos: List[str], labels: Optional[List[str]] = None, on_error: str = "error"):
    """Model (eval mode, on its device) and a dataset over ``videos`` with the model's test views;
    the videos are opened first (`check_videos`)."""
    from ..data import Record, VideoDataset

    check_videos(videos, on_error)
    model, spec, names, device = load_model(args, labels)
    dataset = VideoDataset([Record(path=v, label=None) for v in videos], names, spec.info, train=False,
                           on_error=on_error)
    return model, dataset, spec, device


def _load(dataset, i):
    from ..data import DataError

    try:
        return dataset[i]["video"]
    except DataError as e:
        raise UsageError(display_name(str(e).split(". Fix or remove")[0])) from None


def cmd_predict(args) -> int:
    import torch

    from ..data import load_label_map
    from ..engine.metrics import aggregate_views

    if args.labels and not os.path.isfile(args.labels):
        raise InputNotFound(f"label file {args.labels!r} does not exist")
    labels = load_label_map(args.labels) if args.labels else None
    if args.timeline:
        from .timeline import cmd_timeline
        return cmd_timeline(args, labels)
    model, dataset, spec, device = load_videos_model(args, [args.video], labels)
    warn_if_untrained(spec)
    video = _load(dataset, 0)
    with torch.inference_mode():
        logits = model(video.to(device)).float().cpu()
    agg = args.agg or model.info.view_aggregation
    probs = aggregate_views(logits[None], agg)[0]
    if agg == "logit-mean":
        probs = probs.softmax(-1)
    k = min(args.topk, probs.numel())
    top = probs.topk(k)
    weights = spec.weights_label()
    print(f"{args.video}  ({weights}, {logits.shape[0]} views, {agg})")
    for rank, (p, c) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
        print(f"  {rank}. {dataset.class_names[c]:<40s} {p:.4f}")
    return 0


def cmd_features(args) -> int:
    import numpy as np
    import torch

    from .._files import atomic_save, atomic_write, prepare_output_file

    if not args.out.endswith((".pt", ".npz")):
        raise UsageError(f"--out must end with .pt or .npz, got {args.out!r}")
    prepare_output_file(args.out)
    model, dataset, spec, device = load_videos_model(args, args.videos, on_error=args.on_error)
    warn_if_untrained(spec)
    feats, paths, skipped = [], [], []
    with torch.inference_mode():
        for i in range(len(dataset)):
            item = dataset[i] if args.on_error == "skip" else {"video": _load(dataset, i), "path": args.videos[i]}
            if item["video"] is None:
                skipped.append({"path": item["path"], "error": item["error"]})
                print(f"skipped {display_name(item['path'])}: {item['error']}")
                continue
            video = item["video"].to(device)
            feats.append(model.forward_head(model.forward_features(video), pre_logits=True).float().cpu())
            paths.append(item["path"])
    if not feats:
        raise UsageError(f"no video could be read ({len(skipped)} skipped): nothing to write")
    view_features = torch.stack(feats)  # [N, V, D]
    features = view_features.mean(1)
    weights = spec.weights_label()
    meta = {"model": spec.name, "weights": weights, "views": list(dataset.views), "skipped": skipped,
            "categories": list(dataset.class_names),  # the classifier's classes (names with released weights)
            "frames": dataset.info.num_frames, "crop_size": dataset.info.crop_size}
    if args.out.endswith(".npz"):
        arrays = {"features": features.numpy(), "view_features": view_features.numpy(), "paths": np.array(paths),
                  **{k: np.array(v) for k, v in meta.items() if k != "skipped"},
                  "skipped_paths": np.array([s["path"] for s in skipped], dtype=str),
                  "skipped_errors": np.array([s["error"] for s in skipped], dtype=str)}
        atomic_write(args.out, "wb", lambda f: np.savez(f, **arrays))
    else:
        atomic_save({"features": features, "view_features": view_features, "paths": paths, **meta}, args.out)
    print(f"{len(paths)} video(s) -> {args.out}{f' ({len(skipped)} skipped)' if skipped else ''}: features {list(features.shape)} (mean over "
          f"{view_features.shape[1]} views), view_features {list(view_features.shape)}")
    return 0


def register(sub):
    from ..engine.config import AGGREGATIONS

    p = sub.add_parser("predict", help="top-5 labels with scores for one video file (--timeline: over time)",
                       description="Run MODEL on VIDEO with the model's test views and print the top-k labels "
                                   "with their aggregated probabilities. With --timeline, classify sliding "
                                   "windows of a video of any length instead (one decoding pass, memory bounded "
                                   "by one window) and write DIR/timeline.csv, .json (windows and merged "
                                   "segments) and .png (and with --render an MP4 with the labels drawn).")
    p.add_argument("model", nargs="?", help="registered model name (or --run-dir DIR)")
    p.add_argument("video", help="a video file (or frame folder)")
    p.add_argument("--labels", help="label map: one class name per line (or JSON); default: class indices, "
                                    "or the run's classes.txt with --run-dir")
    add_model_options(p)
    p.add_argument("--topk", type=int, default=5, help="how many labels to print (default 5)")
    p.add_argument("--agg", choices=AGGREGATIONS, help="view aggregation (default: the model's official test's, most often prob-mean)")
    from .timeline import add_timeline_options
    add_timeline_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("features", help="pooled clip embeddings (classifier removed) of videos, saved to a file",
                       description="Extract forward_head(pre_logits=True) embeddings of every test view of each "
                                   "VIDEO; saves features [N, D] (mean over views), view_features [N, V, D] and "
                                   "the paths to --out (.pt for torch.load(weights_only=True), or .npz).")
    p.add_argument("model", help="registered model name")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (or frame folders)")
    p.add_argument("--out", required=True, help="output file, .pt or .npz")
    p.add_argument("--on-error", default="error", choices=("error", "skip"),
                   help="unreadable or too short video: stop (default) or skip it, listed in the output's 'skipped'")
    add_model_options(p)
    p.set_defaults(func=cmd_features)
