"""``zoo audit DATA``: does this dataset need motion, and does frame order matter?

Two short trainings on the user's data: a frame-order-free baseline (TSN: per-frame features
averaged, Wang et al., ECCV 2016) and a temporal model (TSM, Lin et al., ICCV 2019), both
either from scratch as small networks (``init="scratch"``: the ``small-from-scratch`` recipe)
or as linear probes on released weights (``init="pretrained"``: the ``linear-probe`` recipe).
Both are evaluated on the validation videos in normal, reversed, shuffled and single-frame
order (`zoo.engine.harness.reorder_frames`); differences of accuracy come with 95 % confidence
intervals from a paired bootstrap over the videos (each video scored under both conditions).

Verdict (``audit.json``): ``learned`` when a model's accuracy interval lies above chance;
``order_matters`` when shuffling the frames costs the temporal model accuracy (interval above
0); ``motion_matters`` when the data was learned and either order matters or the temporal model
beats the order-free one (interval above 0). When neither model learned the data the verdict is
inconclusive (``conclusive: false``) and says what to try. The recommendation lists the
registered families with their cost (GFLOPs at the canonical input, the fast path's measured
latency and SynthMotion order sensitivity from ``benchmarks/results/compare.json`` when present).
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .._errors import UsageError
from ..engine.checkpoint import atomic_write_text
from .results import fast_path_ms, load_results

__all__ = ["ORDERS", "INITS", "run_audit", "paired_difference", "wilson_interval", "verdict", "recommend"]

ORDERS = ("normal", "reversed", "shuffled", "single")
INITS = {"scratch": "small-from-scratch", "pretrained": "linear-probe"}
BOOTSTRAP = 2000
# a model is temporal in the recommendation when shuffling costs its SynthMotion bench network this many points
TEMPORAL_DROP = 10.0


def wilson_interval(correct: int, n: int, z: float = 1.96) -> List[float]:
    """95 % Wilson score interval of an accuracy, in percent."""
    if n == 0:
        return [0.0, 100.0]
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(100 * max(0.0, centre - half), 2), round(100 * min(1.0, centre + half), 2)]


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> Dict[str, Any]:
    """Accuracy of ``a`` minus accuracy of ``b`` (per-video 0/1 correctness of the same videos), in
    points, with a 95 % paired-bootstrap interval."""
    d = a.astype(float) - b.astype(float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(BOOTSTRAP, len(d)))].mean(1) if len(d) else np.zeros(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"points": round(100 * float(d.mean()) if len(d) else 0.0, 2),
            "ci95": [round(100 * float(low), 2), round(100 * float(high), 2)]}


def _correct(result) -> Dict[tuple, bool]:
    """Per-video top-1 correctness, keyed by the video's (dataset index, path)."""
    probs = result.view_logits.float().softmax(-1).mean(1)
    return dict(zip(zip(result.indices, result.paths), (probs.argmax(-1) == result.labels).tolist()))


def _paired(a: Dict[tuple, bool], b: Dict[tuple, bool]):
    """The correctness of the videos both evaluations scored, in the same order (a video skipped in
    one of them, under ``on_error="skip"``, is left out of the pair rather than misaligning it)."""
    both = [k for k in a if k in b]
    return np.array([a[k] for k in both], dtype=bool), np.array([b[k] for k in both], dtype=bool)


def verdict(models: Dict[str, Dict[str, Any]], chance: float) -> Dict[str, Any]:
    """The plain-words verdict from both models' per-order results (see the module docstring)."""
    base, temp = models["baseline"], models["temporal"]
    learned = any(m["orders"]["normal"]["ci95"][0] > chance for m in (base, temp))
    order = temp["differences"]["normal_minus_shuffled"]
    arrow = temp["differences"]["normal_minus_reversed"]
    gain = models["temporal_minus_baseline"]
    order_matters = learned and order["ci95"][0] > 0
    motion = learned and (order_matters or gain["ci95"][0] > 0)

    def pts(d):
        return f"{d['points']:+.1f} points [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]"
    t, b = temp["orders"], base["orders"]
    facts = (f"{temp['model']} (temporal) scores {t['normal']['top1']:.1f} % in frame order, {t['shuffled']['top1']:.1f} % "
             f"shuffled, {t['reversed']['top1']:.1f} % reversed, {t['single']['top1']:.1f} % on one frame; "
             f"{base['model']} (order-free) {b['normal']['top1']:.1f} % (chance {chance:.1f} %). Order: normal - shuffled "
             f"{pts(order)}; arrow of time: normal - reversed {pts(arrow)}; temporal - order-free {pts(gain)} "
             f"(95 % intervals, paired bootstrap over {temp['videos']} videos).")
    if not learned:
        text = ("Inconclusive: neither model learned this data (accuracy within chance), so nothing can be said about "
                "motion. Try `--init pretrained` (a linear probe on released weights), more videos or more epochs. "
                + facts)
    elif motion:
        why = "shuffling the frames costs the temporal model accuracy" if order_matters else \
            "the temporal model beats the order-free baseline"
        text = f"Motion matters: {why}. Use a temporal model. " + facts
    else:
        text = ("Motion does not measurably matter: shuffled frames do as well as ordered ones and the order-free "
                "baseline is as good as the temporal model; a per-frame model is enough. " + facts)
    return {"conclusive": learned, "learned": learned, "order_matters": bool(order_matters),
            "arrow_of_time_matters": bool(learned and arrow["ci95"][0] > 0), "motion_matters": bool(motion),
            "text": text}


def recommend(motion: bool, results: Optional[str]) -> List[Dict[str, Any]]:
    """Registered models ordered by measured cost: temporal ones when motion matters (those whose
    SynthMotion bench network loses >= `TEMPORAL_DROP` points shuffled), else all."""
    from ..models import list_models, model_info

    compare = (load_results(results) or {}).get("models", {}) if results and os.path.isfile(results) else {}
    rows = []
    for name in list_models():
        info, entry = model_info(name), compare.get(name, {})
        top1 = entry.get("bench", {}).get("top1", {})
        drop = round(top1["normal"] - top1["shuffled"], 1) if {"normal", "shuffled"} <= set(top1) else None
        ms = fast_path_ms(entry.get("latency", {}), "bf16")[0] if entry else None
        rows.append({"model": name, "family": info.family, "gflops": info.ref_gflops, "latency_bf16_ms": ms,
                     "synthmotion_shuffle_drop": drop})
    if motion:
        rows = [r for r in rows if r["synthmotion_shuffle_drop"] is None or r["synthmotion_shuffle_drop"] >= TEMPORAL_DROP]
    return sorted(rows, key=lambda r: (r["latency_bf16_ms"] is None, r["latency_bf16_ms"] or 0, r["gflops"] or 0))


def run_audit(data: str, out: str, *, init: str = "scratch", baseline: str = "tsn_r50", temporal: str = "tsm_r50",
              val_data: Optional[str] = None, split: Optional[int] = None, data_root: Optional[str] = None,
              epochs: Optional[int] = None, seed: int = 0, on_error: str = "error", progress: bool = False,
              results: Optional[str] = None, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Train and evaluate both models, write ``out/audit.json`` and return it (see the module docstring).
    ``overrides``: config values applied after the recipe (e.g. ``frames``, ``size``, ``batch_size``)."""
    from ..data import build_dataset
    from ..engine import TrainConfig
    from ..engine.harness import evaluate
    from ..engine.recipes import recipe_values
    from ..engine.training import train

    if init not in INITS:
        raise UsageError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    t0 = time.perf_counter()
    models: Dict[str, Any] = {}
    correct: Dict[str, Dict[str, np.ndarray]] = {}
    for role, name in (("baseline", baseline), ("temporal", temporal)):
        cfg = TrainConfig(model=name, data=data, val_data=val_data, split=split, data_root=data_root,
                          out=os.path.join(out, role), seed=seed, on_error=on_error, progress=progress, eval_every=0)
        for key, value in {**recipe_values(INITS[init], name), **(overrides or {})}.items():
            setattr(cfg, key, value)
        cfg.recipe = INITS[init]
        if epochs is not None:
            cfg.epochs = epochs
        print(f"== audit: {role} {name} ({INITS[init]}, {cfg.epochs} epochs)", flush=True)
        run = train(cfg)
        val = build_dataset(val_data or data, run["info"], "val", on_error=on_error, root=data_root,
                            fold=None if val_data else split)
        # the run's own final evaluation is the normal order; only the other orders are new passes
        evals = {"normal": run["eval"],
                 **{o: evaluate(run["model"], val, temporal_order=o, seed=seed, progress=False) for o in ORDERS[1:]}}
        correct[role] = {o: _correct(e) for o, e in evals.items()}
        n = len(correct[role]["normal"])
        models[role] = {
            "model": name, "run": cfg.out, "videos": n, "epochs": cfg.epochs, "recipe": cfg.recipe,
            "orders": {o: {"top1": round(100 * sum(c.values()) / len(c), 2) if c else 0.0,
                           "ci95": wilson_interval(sum(c.values()), len(c))} for o, c in correct[role].items()},
            "differences": {f"normal_minus_{o}": paired_difference(*_paired(correct[role]["normal"], correct[role][o]),
                                                                   seed) for o in ORDERS[1:]}}
        classes = len(run["class_names"])
    temporal_vs_baseline = _paired(correct["temporal"]["normal"], correct["baseline"]["normal"])
    models["temporal_minus_baseline"] = {**paired_difference(*temporal_vs_baseline, seed),
                                         "videos": len(temporal_vs_baseline[0])}
    chance = 100.0 / classes
    found = verdict(models, chance)
    doc = {"data": data, "split": split, "init": init, "classes": classes, "chance_top1": round(chance, 2),
           **found, "models": models,
           "recommendation": recommend(found["motion_matters"], results),
           "method": "per-video top-1 of the validation videos in each frame order; 95 % Wilson intervals for "
                     f"accuracies, paired bootstrap ({BOOTSTRAP} resamples) for differences",
           "torch_threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - t0, 1)}
    os.makedirs(out, exist_ok=True)
    atomic_write_text(os.path.join(out, "audit.json"), json.dumps(doc, indent=1) + "\n")
    return doc
