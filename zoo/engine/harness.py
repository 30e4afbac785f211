"""The evaluation harness: one protocol for every model, so results are comparable.

Each video is cut into ``clips x crops`` views (from the model's `ModelInfo`, overridable); the
model scores every view, and the per-view logits are kept and saved, so the video-level result
can be re-aggregated later (`reaggregate`) without running the model again. Unreadable videos
are listed with their reason, never dropped silently or swapped for another video. Under
``torchrun`` the videos are sharded across ranks without padding and gathered back in dataset
order, so the metrics equal a single-process run.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Subset

from .._errors import BadData, InputNotFound, UsageError
from . import distributed as dist_utils
from .._files import clean_directory, write_files
from .config import AGGREGATIONS, TEMPORAL_ORDERS
from .metrics import compute_metrics

__all__ = ["EvalResult", "evaluate", "reorder_frames", "save_eval", "load_eval", "reaggregate",
           "TEMPORAL_ORDERS", "format_table"]

LOGITS_FILE = "logits.pt"
METRICS_FILE = "metrics.json"


@dataclass
class EvalResult:
    """Per-view logits ``[N, V, K]`` in dataset order, their labels, and the metrics."""

    metrics: Dict
    view_logits: torch.Tensor
    labels: torch.Tensor
    indices: List[int]
    paths: List[str]
    skipped: List[Dict] = field(default_factory=list)  # {"index", "path", "error"}
    class_names: List[str] = field(default_factory=list)
    meta: Dict = field(default_factory=dict)  # model, views, temporal order, throughput...


def reorder_frames(video: torch.Tensor, order: str, indices: Sequence[int], seed: int = 0) -> torch.Tensor:
    """Apply a temporal-order diagnostic to ``[B, V, C, T, H, W]`` frames.

    ``shuffled`` draws one permutation per video from ``seed`` and the video's dataset index,
    so it does not depend on batching or sharding; ``single`` repeats the middle frame (what one
    frame's appearance alone tells).
    """
    if order == "normal":
        return video
    if order == "reversed":
        return video.flip(3)
    if order == "single":  # appearance only: the middle frame in every position
        t = video.shape[3]
        return video[:, :, :, t // 2:t // 2 + 1].expand_as(video).contiguous()
    if order == "shuffled":
        t = video.shape[3]
        out = torch.empty_like(video)
        for b, idx in enumerate(indices):
            g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(idx))
            out[b] = video[b][:, :, torch.randperm(t, generator=g)]
        return out
    raise UsageError(f"unknown temporal order {order!r}; choose one of {', '.join(TEMPORAL_ORDERS)}")


def _collate_fn():
    from ..data import collate
    return collate


def _as_list(x) -> List:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    return list(x)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) \
        else model


@torch.inference_mode()
def evaluate(model: nn.Module, dataset, *, batch_size: int = 4, num_workers: int = 0, agg: str = "prob-mean",
             temporal_order: str = "normal", seed: int = 0, device: Optional[torch.device] = None,
             amp: Optional[str] = None, progress: bool = True, desc: str = "eval", collate_fn=None,
             optimize: bool = False, compile: Union[bool, str] = False) -> EvalResult:
    """Score every video of ``dataset`` with ``model``; gather across ranks when distributed.

    The dataset follows the `zoo.data` contract: items ``{"video": [V, 3, T, H, W], "label",
    "index", "path"}``, failed ones with ``"video": None`` and ``"error"``. All ranks return the
    same gathered `EvalResult`. ``collate_fn`` defaults to `zoo.data.collate`.

    ``optimize=True`` runs the CPU fast path (`zoo.optimize`: BN folded, channels-last, bf16 when
    ``amp="bf16"``) on a copy of the model; the command line does this by default. ``compile``
    (``True`` / ``"auto"``) is passed on to `zoo.optimize` (``torch.compile`` of the fast path).
    """
    if agg not in AGGREGATIONS:
        raise UsageError(f"unknown aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}")
    if temporal_order not in TEMPORAL_ORDERS:
        raise UsageError(f"unknown temporal order {temporal_order!r}; choose one of {', '.join(TEMPORAL_ORDERS)}")
    model = _unwrap(model)
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    shard = Subset(dataset, dist_utils.shard_indices(len(dataset)))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_fn or _collate_fn(), pin_memory=device.type == "cuda")
    logits, labels, indices, paths, skipped = [], [], [], [], []
    bar = None
    if progress and dist_utils.is_main_process():
        from tqdm.auto import tqdm
        bar = tqdm(total=len(dataset), unit="video", desc=desc, dynamic_ncols=True, leave=False,
                   disable=None)  # no bar when the output is not a terminal (logs, CI)
    n_views_done, t0 = 0, time.perf_counter()
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp or "")
    run = model
    if optimize and device.type == "cpu" and hasattr(model, "info") and autocast in (None, torch.bfloat16):
        from ..inference import optimize as fast_path
        run = fast_path(model, autocast or torch.float32, compile=compile)
        autocast = None  # the fast path autocasts itself
    try:
        for batch in loader:
            for err in batch.get("errors", []):
                skipped.append({"index": int(err["index"]), "path": str(err["path"]),
                                "error": str(err.get("error", "unreadable"))})
            video = batch.get("video")
            n_good = 0 if video is None else video.shape[0]
            if n_good:
                idx = _as_list(batch["index"])
                video = reorder_frames(video, temporal_order, idx, seed)
                b, v = video.shape[:2]
                x = video.reshape(b * v, *video.shape[2:]).to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                    out = run(x)
                logits.append(out.float().reshape(b, v, -1).cpu())
                labels.append(torch.as_tensor(batch["label"]))
                indices += [int(i) for i in idx]
                paths += [str(p) for p in batch["path"]]
                n_views_done += b * v
            if bar is not None:
                bar.update((n_good + len(batch.get("errors", []))) * dist_utils.get_world_size())
                bar.set_postfix(clips_per_s=f"{n_views_done / max(time.perf_counter() - t0, 1e-9):.1f}")
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    elapsed = time.perf_counter() - t0
    local = {"logits": torch.cat(logits) if logits else None, "labels": torch.cat(labels) if labels else None,
             "indices": indices, "paths": paths, "skipped": skipped, "views": n_views_done, "time": elapsed}
    parts = dist_utils.all_gather_object(local)
    view_logits = [p["logits"] for p in parts if p["logits"] is not None]
    all_labels = [p["labels"] for p in parts if p["labels"] is not None]
    all_indices = sum((p["indices"] for p in parts), [])
    all_paths = sum((p["paths"] for p in parts), [])
    order = sorted(range(len(all_indices)), key=all_indices.__getitem__)
    num_classes = getattr(model, "num_classes", None) or 0
    if view_logits:
        view_logits = torch.cat(view_logits)[order]
        all_labels = torch.cat(all_labels)[order]
    else:
        view_logits = torch.zeros(0, 1, num_classes)
        all_labels = torch.zeros(0, dtype=torch.long)
    class_names = list(getattr(dataset, "class_names", None) or [str(i) for i in range(view_logits.shape[-1])])
    meta = {"temporal_order": temporal_order, "seed": seed, "num_dataset_videos": len(dataset),
            "world_size": dist_utils.get_world_size(), "seconds": max(p["time"] for p in parts),
            "label_map_hash": getattr(dataset, "label_map_hash", None)}
    meta["clips_per_second"] = sum(p["views"] for p in parts) / max(meta["seconds"], 1e-9)
    return _result(view_logits, all_labels, [all_indices[i] for i in order], [all_paths[i] for i in order],
                   sorted(sum((p["skipped"] for p in parts), []), key=lambda s: s["index"]),
                   class_names, agg, meta)


def _result(view_logits, labels, indices, paths, skipped, class_names, agg, meta) -> EvalResult:
    metrics = compute_metrics(view_logits, labels, agg=agg, class_names=class_names)
    metrics["num_skipped"] = len(skipped)
    metrics["skipped"] = skipped
    metrics.update({k: v for k, v in meta.items() if k not in metrics})
    return EvalResult(metrics, view_logits, labels, indices, paths, skipped, class_names, meta)


def save_eval(result: EvalResult, out_dir: str, *, metrics_name: str = METRICS_FILE) -> Dict[str, str]:
    """Write logits (``logits.pt``), metrics JSON, confusion matrix CSV + PNG as one set: a reader, or
    a run interrupted while saving, sees the previous set or this one, never a mix (`zoo._files.write_files`).
    A new ``logits.pt`` also removes the re-aggregations (``metrics_AGG.json``) of the old one. Returns the paths."""
    stem = os.path.splitext(metrics_name)[0]
    files = {}
    if metrics_name == METRICS_FILE:  # the logits are the run's; re-aggregations only add metrics
        saved = {"view_logits": result.view_logits, "labels": result.labels, "indices": result.indices,
                 "paths": result.paths, "skipped": result.skipped, "class_names": result.class_names,
                 "meta": _jsonable(result.meta)}
        files[LOGITS_FILE] = ("wb", lambda f: torch.save(saved, f))
    text = json.dumps(_jsonable(result.metrics), indent=1) + "\n"
    files[metrics_name] = ("w", lambda f: f.write(text))
    names = {"logits": LOGITS_FILE, "metrics": metrics_name}
    cm = result.metrics.get("confusion_matrix")
    if cm is not None:
        csv_name = stem.replace("metrics", "confusion_matrix") + ".csv"
        png_name = csv_name[:-4] + ".png"
        title = f"{result.meta.get('model', '')} ({result.metrics['aggregation']})"
        files[csv_name] = ("w", lambda f: _write_confusion_csv(f, cm, result.class_names))
        files[png_name] = ("wb", lambda f: _plot_confusion(cm, result.class_names, f, title=title))
        names.update(confusion_csv=csv_name, confusion_png=png_name)
    stale = []
    if metrics_name == METRICS_FILE and os.path.isdir(out_dir):
        stale = [n for n in os.listdir(out_dir) if _REAGGREGATED.match(n)]
    paths = write_files(out_dir, files, remove=stale)
    return {key: paths[name] for key, name in names.items() if name in paths}


_REAGGREGATED = re.compile(rf"^(metrics|confusion_matrix)_({'|'.join(map(re.escape, AGGREGATIONS))})\.(json|csv|png)$")


def _write_confusion_csv(f, cm, class_names) -> None:
    w = csv.writer(f)
    w.writerow(["true \\ predicted", *class_names])
    for name, row in zip(class_names, cm):
        w.writerow([name, *row])


def _plot_confusion(cm, class_names, f, title=""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(class_names)
    fig, ax = plt.subplots(figsize=(min(2 + 0.4 * k, 30), min(2 + 0.4 * k, 30)))
    ax.imshow(cm, cmap="Blues")
    if k <= 40:
        ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), class_names, fontsize=7)
    if k <= 20:
        top = max(max(row) for row in cm) or 1
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i][j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i][j] > top / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


def load_eval(out_dir: str) -> EvalResult:
    """Read back what `save_eval` wrote (``torch.load(weights_only=True)``)."""
    path = os.path.join(out_dir, LOGITS_FILE) if os.path.isdir(out_dir) else out_dir
    if not os.path.isfile(path):
        raise InputNotFound(f"no saved logits at {path!r}: pass a directory written by `zoo eval --out`")
    try:
        clean_directory(os.path.dirname(os.path.abspath(path)))  # completes a save a killed run left half done
    except OSError:
        pass  # a read-only copy: read what is there
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        return EvalResult({}, d["view_logits"], d["labels"], list(d["indices"]), list(d["paths"]),
                          list(d["skipped"]), list(d["class_names"]), dict(d.get("meta", {})))
    except Exception as e:
        reason = f"no {e.args[0]!r} in it" if isinstance(e, KeyError) else str(e).strip().splitlines()[0]
        raise BadData(f"cannot read saved logits {path}: {reason} (write them again with `zoo eval ... --out "
                         f"DIR`)") from None


def reaggregate(out_dir: str, agg: str) -> EvalResult:
    """Recompute the metrics of a saved evaluation with another view aggregation."""
    if agg not in AGGREGATIONS:
        raise UsageError(f"unknown aggregation {agg!r}; choose one of {', '.join(AGGREGATIONS)}")
    r = load_eval(out_dir)
    return _result(r.view_logits, r.labels, r.indices, r.paths, r.skipped, r.class_names, agg, r.meta)


def _f(x, spec=".2f"):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_table(results: Dict[str, EvalResult], extra: Optional[Dict[str, Dict[str, str]]] = None) -> str:
    """A short fixed-width table, one row per named result (plus optional extra columns). A result
    whose frames were fed reversed, shuffled or single adds an ``order`` column, so that its numbers
    are not read as the model's accuracy."""
    extra = extra or {}
    extra_cols = list(next(iter(extra.values())).keys()) if extra else []
    orders = {name: r.meta.get("temporal_order", "normal") for name, r in results.items()}
    order_col = ["order"] if any(o != "normal" for o in orders.values()) else []
    head = ["model", "videos", "skipped", "views", "agg", *order_col, "clip@1", "top1", "top5", "mean-class", "mAP",
            *extra_cols]
    rows = [head]
    for name, r in results.items():
        m = r.metrics
        rows.append([name, str(m["num_videos"]), str(m.get("num_skipped", 0)), str(m["num_views"]),
                     m["aggregation"], *([orders[name]] if order_col else []), _f(m.get("clip_top1")),
                     _f(m.get("video_top1")), _f(m.get("video_top5")), _f(m.get("mean_class_accuracy")),
                     _f(m.get("mAP")), *[extra.get(name, {}).get(c, "-") for c in extra_cols]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
