"""The SynthMotion bench runs of ``zoo compare``: each model's small bench network, which models
share one (identical networks train identically), training + evaluating one from scratch, and a
trained one loaded back with its fast-path numerics measured again.

Each model's bench preset (e.g. a ResNet-18 backbone) is built at `DATA`'s 32 px, trained with one
shared budget (`TRAIN`) through `zoo.engine.train` and its own sampler, and evaluated with the
harness on one view in normal, reversed and shuffled frame order.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence

from .numerics import fast_path_numerics, heldout_sets

__all__ = ["DATA", "TRAIN", "bench_model", "fingerprint", "group_runs", "train_bench", "trained_bench", "recheck_numerics",
           "is_current"]

DATA = dict(name="SynthMotion", difficulty="easy", frames=32, size=32)
TRAIN = dict(batch_size=8, optimizer="adamw", lr=1e-3, weight_decay=1e-4, warmup_epochs=1, schedule="cosine",
             amp="none")
# info fields the samplers, transforms and harness read: equal fingerprints need equal protocols
_PROTOCOL = ("num_frames", "num_segments", "frames_per_segment", "centre_frame", "sampling", "sampling_rate", "crop_size",
             "resize_size", "train_scales", "train_jitter", "mean", "std", "test_views", "segment_clips", "view_aggregation")


def bench_model(name: str, num_classes: int):
    """The bench network of ``name`` (its `BenchPreset` at ``DATA['size']`` px), with its adjusted info attached."""
    from ..models import bench_preset, build, resolve

    bench = bench_preset(name)
    return build(resolve(name, frames=bench.frames, size=DATA["size"], num_classes=num_classes, **bench.model_args))


def fingerprint(name: str) -> str:
    """Hash of the bench network: module tree (types, plain attributes), state-dict keys and shapes,
    and the input protocol. Equal hashes train identically (same seed, same data)."""
    model = bench_model(name, num_classes=2)
    parts = [type(model).__qualname__, repr(model)]
    parts += [f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items()]
    parts += [f"{n}.{a}={v!r}" for n, m in model.named_modules() for a, v in sorted(vars(m).items())
              if not a.startswith("_") and a != "training" and isinstance(v, (bool, int, float, str, tuple))]
    parts += [f"{f}={getattr(model.info, f)!r}" for f in _PROTOCOL]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def group_runs(names: Optional[Sequence[str]] = None) -> Dict[str, List[str]]:
    """``{run: [run, *shared_with]}``: models with identical bench networks, in registry order."""
    from ..models import list_models

    groups: Dict[str, List[str]] = {}
    for name in names if names is not None else list_models():
        groups.setdefault(fingerprint(name), []).append(name)
    return {g[0]: g for g in groups.values()}


def train_bench(run: str, data: str, out: str, *, epochs: int, seed: int, twins, heldout: Optional[str] = None,
                progress: bool = True) -> Dict[str, Any]:
    """Train ``run``'s bench network on ``data`` (`TRAIN` budget), evaluate the val split in three
    frame orders, and check the fast path's numerics on the trained model (bf16 agreement also over
    the ``heldout`` SynthMotion directory).

    ``train_seconds`` is `zoo.engine.train`'s wall time (its final, normal-order evaluation included).
    Runs are written to ``out/<run>`` (``model.pt``, ``eval*/``); the resumable ``last.pt`` is deleted.
    """
    from ..data import build_dataset
    from ..engine import TrainConfig, evaluate, save_eval, train
    from ..engine.metrics import twin_metrics
    from ..engine.training import LAST
    from ..flops import count_flops, count_params
    from ..models import bench_preset

    bench = bench_preset(run)
    # one view (centre clip, centre crop) for every model: one protocol for all; the models' own
    # multi-view protocols are for long videos, and at 32 px their spatial crops coincide
    cfg = TrainConfig(model=run, data=data, out=os.path.join(out, run), frames=bench.frames, size=DATA["size"],
                      model_args=dict(bench.model_args), epochs=epochs, seed=seed, eval_every=0, eval_views="1x1",
                      progress=progress, **{k: v for k, v in TRAIN.items() if k != "amp"})
    t0 = time.perf_counter()
    result = train(cfg)
    seconds = time.perf_counter() - t0
    os.remove(os.path.join(cfg.out, LAST))  # the resumable state (~3x the weights); model.pt stays
    model, info = result["model"], result["info"]
    val = build_dataset(data, info, "val")
    evals = {"normal": result["eval"]}
    for order in ("reversed", "shuffled"):
        evals[order] = evaluate(model, val, temporal_order=order, seed=seed, progress=False)
        evals[order].meta["model"] = run
        save_eval(evals[order], os.path.join(cfg.out, f"eval_{order}"))
    pair, twin = twin_metrics(evals["normal"].metrics["confusion_matrix"], result["class_names"], twins)
    return {
        "run": run, "model_args": dict(bench.model_args), "frames": info.num_frames, "size": info.crop_size,
        "views": list(info.test_views), "params": count_params(model),
        "gflops": round(count_flops(model, (1, *info.input_shape)).gflops, 4),
        "top1": {o: _r2(e.metrics["video_top1"]) for o, e in evals.items()},
        "top5": {o: _r2(e.metrics["video_top5"]) for o, e in evals.items()},
        "twin_acc": _r2(twin), "pair_acc": _r2(pair),
        **fast_path_numerics(model, val, evals["normal"].view_logits, heldout_sets(heldout, info)),
        "train_seconds": round(seconds, 1), "out": cfg.out, "fingerprint": fingerprint(run),
    }


def _r2(v):
    return None if v is None else round(float(v), 2)


def is_current(bench: Dict[str, Any]) -> bool:
    """Is this bench entry (from a results file) a run of its model's present bench network? Entries
    record the network's `fingerprint`; a preset changed since (other frames or architecture options)
    needs a new training run. Entries from before fingerprints were recorded count as current."""
    from ..models import is_model

    if not is_model(bench.get("run", "")):
        return False
    return "fingerprint" not in bench or bench["fingerprint"] == fingerprint(bench["run"])


def recheck_numerics(bench: Dict[str, Any], data: str, heldout: Optional[str] = None) -> Dict[str, Any]:
    """A reused bench entry with `fast_path_numerics` measured again by this code on the run's
    saved weights (``out/model.pt``), so a changed fast path never keeps stale figures; unchanged
    if the weights are gone."""
    from ..data import build_dataset
    from ..engine import evaluate

    model = trained_bench(bench["run"], bench["out"], data)
    if model is None:
        return bench
    val = build_dataset(data, model.info, "val")
    eager = evaluate(model, val, progress=False).view_logits
    return {**bench, **fast_path_numerics(model, val, eager, heldout_sets(heldout, model.info)),
            "numerics_rechecked": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def trained_bench(run: str, out: str, data: str):
    """The bench network of ``run`` (eval mode) with the weights its training saved in ``out``
    (``model.pt``), for the SynthMotion directory ``data``; None if they are not there."""
    from ..engine.training import FINAL_WEIGHTS
    from ..models import unwrap_state_dict

    weights = os.path.join(out, FINAL_WEIGHTS)
    if not os.path.isfile(weights):
        return None
    with open(os.path.join(data, "classes.json")) as f:
        num_classes = len(json.load(f)["classes"])
    import torch

    model = bench_model(run, num_classes)
    model.load_state_dict(unwrap_state_dict(torch.load(weights, map_location="cpu", weights_only=True)))
    return model.eval()
