"""``zoo compare``: every registered model's cost, CPU speed and SynthMotion accuracy (issue #8).

Per model, at its canonical input (``info.input_shape``, one view): parameters, fvcore GFLOPs,
batch-1 latency of the eager model and of `zoo.optimize` (fp32 and bf16, ``layout="auto"``, not
compiled and compiled; the quick budget takes channels-last without timing both layouts and does not
compile) and the peak memory of a fresh process doing that (`measure`, run as ``python -m
zoo.engine.compare --measure NAME``).

Accuracy: each model's small ``info.bench`` network (e.g. a ResNet-18 backbone) is trained from
scratch on SynthMotion (easy, 32 frames, 32 px) with one shared budget through `zoo.engine.train`
and its own sampler, then evaluated with the harness on one view (centre clip, centre crop) in
normal, reversed and shuffled frame order. The fast path's numerics are checked on the trained
network: fp32 logits against eager on the val split, bf16 top-1 against fp32 on the val split plus
a larger held-out SynthMotion set drawn with another seed (``heldout_per_class`` clips per class,
never trained on; full budget: 608 videos, one flip = 0.16 %). Models whose bench networks are
identical (`fingerprint`) share one run: the first registered name of the group is ``run``, the
others ``shared_with``.

The results JSON (``benchmarks/results/compare.json``, ``compare_quick.json`` for ``--quick``) is
rewritten atomically after every model; a re-run with the same settings reuses the finished entries
(and keeps those of models not selected this time); one that changes only the latency settings
re-measures latency and keeps the training results.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

__all__ = ["BUDGETS", "bench_model", "fingerprint", "group_runs", "measure", "train_bench", "fast_path_numerics",
           "heldout_sets", "recheck_numerics", "run_compare", "format_rows", "fast_path_ms"]

DATA = dict(name="SynthMotion", difficulty="easy", frames=32, size=32)
# full: 8 classes = the first 4 twin pairs; quick: 2 pairs, tiny set, fewer timing reps
# (quick times the fast path in channels-last instead of timing both layouts first, see zoo.optimize)
BUDGETS = {"full": dict(classes=8, per_class=48, heldout_per_class=64, epochs=12, warmup=2, reps=5, layout="auto",
                        compile=True),
           "quick": dict(classes=4, per_class=16, heldout_per_class=8, epochs=2, warmup=1, reps=1,
                         layout="channels_last", compile=False)}
HELDOUT_SEED_OFFSET = 1  # the held-out set is SynthMotion drawn with seed + this: clips no bench network sees
NEAR_TIE = 0.01  # fp32 top-1 minus top-2 probability below which a video counts as near-tied
TRAIN = dict(batch_size=8, optimizer="adamw", lr=1e-3, weight_decay=1e-4, warmup_epochs=1, schedule="cosine",
             amp="none")
MEMORY = ("peak RSS of a fresh child process (python -m zoo.engine.compare --measure NAME) that builds the model "
          "(random weights) and runs the eager, fast fp32 and fast bf16 latency measurements, compiled ones "
          "included (zoo.optimize keeps model copies); peak_rss_eager_mib is the reading after one eager call alone. "
          "Read from Linux VmHWM (/proc/self/status), not ru_maxrss, which a child inherits from its parent across "
          "fork + exec")
# info fields the samplers, transforms and harness read: equal fingerprints need equal protocols
_PROTOCOL = ("num_frames", "num_segments", "frames_per_segment", "sampling", "sampling_rate", "crop_size",
             "resize_size", "train_scales", "train_jitter", "mean", "std", "test_views")


def bench_model(name: str, num_classes: int):
    """The bench network of ``name`` (``info.bench`` at ``DATA['size']`` px), with its adjusted info attached."""
    from . import adjust_info, build_model
    from ..models import model_info

    bench = model_info(name).bench
    info, args = adjust_info(name, frames=bench["frames"], size=DATA["size"], model_args=dict(bench["model_args"]))
    return build_model(name, info, num_classes=num_classes, model_args=args)


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


def measure(name: str, *, threads: int, warmup: int, reps: int, latency: bool = True,
            layout: str = "auto", compile: bool = False) -> Dict[str, Any]:
    """Params, GFLOPs and (``latency``) batch-1 latency and peak RSS at the canonical input.

    The fast path is timed as `zoo.optimize` builds it and, with ``compile``, also its compiled
    twin (``compiled_*_ms``, compile time in ``compile_*_s``); ``clips_per_s_*`` and ``speedup_*``
    are those of the faster of the two, named in ``path_*`` (what ``compile="auto"`` picks).
    All are timed in interleaved rounds (`time_interleaved`), so their ratios share the machine's
    slow spells.

    Meant for a fresh process (``python -m zoo.engine.compare --measure NAME``), so that the
    peak RSS is this model's; random weights with non-trivial BN statistics.
    """
    import zoo
    from ..flops import count_flops, count_params
    from .bench import peak_rss_since_exec_mib, randomize_bn_stats, time_interleaved

    torch.set_num_threads(threads)
    info = zoo.model_info(name)
    model = randomize_bn_stats(zoo.build(name)).eval()
    shape = (1, *info.input_shape)
    out = {"family": info.family, "params": count_params(model), "input_shape": list(info.input_shape),
           "views": list(info.test_views)}
    if latency:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            model(x)
        rss_eager = peak_rss_since_exec_mib()
        fns, compile_s = {"eager_fp32": model}, {}
        for tag, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            fns[f"fast_{tag}"] = zoo.optimize(model, dtype, layout=layout)
            if compile:
                fns[f"compiled_{tag}"] = fns[f"fast_{tag}"].compiled_twin()
                start = time.perf_counter()
                fns[f"compiled_{tag}"](x)
                compile_s[f"compile_{tag}_s"] = round(time.perf_counter() - start, 1)
        ms = {f"{k}_ms": 1e3 * sec for k, sec in time_interleaved(fns, x, warmup, reps).items()}
        del fns
        lat = {k: round(v, 2) for k, v in ms.items()}
        lat.update(compile_s)
        for tag in ("fp32", "bf16"):
            best = min(ms.get(f"compiled_{tag}_ms", float("inf")), ms[f"fast_{tag}_ms"])
            lat[f"path_{tag}"] = "compiled" if best < ms[f"fast_{tag}_ms"] else "not compiled"
            lat[f"clips_per_s_{tag}"] = round(1e3 / best, 3)
            lat[f"speedup_{tag}"] = round(ms["eager_fp32_ms"] / best, 3)
        lat.update(peak_rss_mib=round(peak_rss_since_exec_mib(), 1), peak_rss_eager_mib=round(rss_eager, 1))
        out["latency"] = lat
    out["gflops"] = round(count_flops(model, shape).gflops, 3)  # after the memory reading (fvcore traces)
    return out


def _measure_child(name: str, *, threads: int, warmup: int, reps: int, layout: str, compile: bool
                   ) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "zoo.engine.compare", "--measure", name, "--threads", str(threads),
           "--warmup", str(warmup), "--reps", str(reps), "--layout", layout] + (["--compile"] if compile else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"measuring {name} failed ({shlex.join(cmd)}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def train_bench(run: str, data: str, out: str, *, epochs: int, seed: int, twins, heldout: Optional[str] = None,
                progress: bool = True) -> Dict[str, Any]:
    """Train ``run``'s bench network on ``data`` (`TRAIN` budget), evaluate the val split in three
    frame orders, and check the fast path's numerics on the trained model (bf16 agreement also over
    the ``heldout`` SynthMotion directory).

    ``train_seconds`` is `zoo.engine.train`'s wall time (its final, normal-order evaluation included).
    Runs are written to ``out/<run>`` (``model.pt``, ``eval*/``); the resumable ``last.pt`` is deleted.
    """
    from .metrics import twin_metrics
    from ..data import build_dataset
    from ..flops import count_flops, count_params
    from ..models import model_info
    from . import TrainConfig, evaluate, save_eval, train
    from .train import LAST

    bench = model_info(run).bench
    # one view (centre clip, centre crop) for every model: one protocol for all; the models' own
    # multi-view protocols are for long videos, and at 32 px their spatial crops coincide
    cfg = TrainConfig(model=run, data=data, out=os.path.join(out, run), frames=bench["frames"], size=DATA["size"],
                      model_args=dict(bench["model_args"]), epochs=epochs, seed=seed, eval_every=0, eval_views="1x1",
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
        "run": run, "model_args": dict(bench["model_args"]), "frames": info.num_frames, "size": info.crop_size,
        "views": list(info.test_views), "params": count_params(model),
        "gflops": round(count_flops(model, (1, *info.input_shape)).gflops, 4),
        "top1": {o: _r2(e.metrics["video_top1"]) for o, e in evals.items()},
        "top5": {o: _r2(e.metrics["video_top5"]) for o, e in evals.items()},
        "twin_acc": _r2(twin), "pair_acc": _r2(pair),
        **fast_path_numerics(model, val, evals["normal"].view_logits, heldout_sets(heldout, info)),
        "train_seconds": round(seconds, 1), "out": cfg.out,
    }


def fast_path_numerics(model, val, eager_logits: torch.Tensor, heldout: Sequence = ()) -> Dict[str, Any]:
    """`zoo.optimize` on a trained model: the fp32 fast path's max |Δlogit| over ``val`` relative to
    the eager logits' scale, and the bf16 fast path's per-video top-1 agreement with the fp32 one over
    ``val`` and the ``heldout`` datasets, with the fp32 top-1/top-2 probability gap of each video
    that flips (``bf16_flip_gaps``) and the share of videos within `NEAR_TIE` of a tie."""
    from . import evaluate
    from ..optimize import optimize

    # each fast path built once (as `evaluate(optimize=True)` builds it) and run over every dataset
    was_training = model.training
    fast_paths = optimize(model.eval(), torch.float32), optimize(model, torch.bfloat16)
    model.train(was_training)
    fast32, fast16 = ([evaluate(fast, dataset, progress=False).view_logits for dataset in (val, *heldout)]
                      for fast in fast_paths)
    rel = (fast32[0] - eager_logits).abs().max() / eager_logits.abs().max().clamp_min(1e-12)
    prob32 = _video_probs(torch.cat(fast32))
    top2 = prob32.topk(2, dim=-1).values
    gaps = top2[:, 0] - top2[:, 1]
    flips = _video_probs(torch.cat(fast16)).argmax(-1) != prob32.argmax(-1)
    return {"bf16_top1_agreement": round(1 - float(flips.float().mean()), 4),
            "bf16_agreement_videos": len(flips),
            "bf16_flip_gaps": sorted(round(float(g), 5) for g in gaps[flips]),
            "near_tie_fraction": round(float((gaps < NEAR_TIE).float().mean()), 4),
            "fp32_max_rel_dlogit": float(rel)}


def heldout_sets(heldout: Optional[str], info) -> List:
    """Every clip of the held-out SynthMotion directory ``heldout`` (both of its splits), or none."""
    from ..data import build_dataset

    return [build_dataset(heldout, info, split) for split in ("val", "train")] if heldout else []


def recheck_numerics(bench: Dict[str, Any], data: str, heldout: Optional[str] = None) -> Dict[str, Any]:
    """A reused bench entry with `fast_path_numerics` measured again by this code on the run's
    saved weights (``out/model.pt``), so a changed fast path never keeps stale figures; unchanged
    if the weights are gone."""
    from ..data import build_dataset
    from . import evaluate
    from .train import FINAL_WEIGHTS

    weights = os.path.join(bench["out"], FINAL_WEIGHTS)
    if not os.path.isfile(weights):
        return bench
    with open(os.path.join(data, "classes.json")) as f:
        num_classes = len(json.load(f)["classes"])
    model = bench_model(bench["run"], num_classes)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    val = build_dataset(data, model.info, "val")
    eager = evaluate(model, val, progress=False).view_logits
    return {**bench, **fast_path_numerics(model, val, eager, heldout_sets(heldout, model.info)),
            "numerics_rechecked": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def _r2(v):
    return None if v is None else round(float(v), 2)


def _video_probs(view_logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities per video, views aggregated as the harness does by default (prob-mean)."""
    return view_logits.softmax(-1).mean(1)


def _write(path: str, doc: Dict[str, Any]) -> None:
    from .checkpoint import atomic_write_text
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def run_compare(*, models: Optional[Sequence[str]] = None, quick: bool = False, out_dir: Optional[str] = None,
                results: Optional[str] = None, epochs: Optional[int] = None, per_class: Optional[int] = None,
                classes: Optional[int] = None, heldout_per_class: Optional[int] = None, seed: int = 0,
                threads: Optional[int] = None, warmup: Optional[int] = None, reps: Optional[int] = None,
                skip_latency: bool = False, skip_train: bool = False, remeasure: bool = False,
                command: Optional[str] = None, progress: bool = True) -> Dict[str, Any]:
    """Measure (and train the bench networks of) ``models`` (default: all registered); returns the
    results document, also written to ``results``. Unset budget arguments take `BUDGETS` values.

    Entries of an earlier results file with the same settings are reused (a resumed run); with
    ``remeasure`` the cost and latency of ``models`` are measured again (the code changed), their
    training runs still reused, with the fast path's numerics re-checked."""
    from ..data.synth import CLASSES, generate_or_reuse
    from ..models import list_models, model_info
    from .bench import machine_description, versions

    t_start = time.perf_counter()
    budget = dict(BUDGETS["quick" if quick else "full"])
    budget.update({k: v for k, v in dict(epochs=epochs, per_class=per_class, classes=classes, warmup=warmup,
                                         reps=reps, heldout_per_class=heldout_per_class).items() if v is not None})
    threads = threads or os.cpu_count() or 1
    out_dir = out_dir or os.path.join("runs", "compare_quick" if quick else "compare")
    results = results or os.path.join("benchmarks", "results", "compare_quick.json" if quick else "compare.json")
    names = list(models) if models else list_models()
    for name in names:
        model_info(name)  # unknown names fail here, with close matches
    torch.set_num_threads(threads)

    data, heldout = os.path.join(out_dir, "data"), os.path.join(out_dir, "heldout")
    synth = dict(frames=DATA["frames"], size=DATA["size"], difficulty=DATA["difficulty"])
    generate_or_reuse(data, list(CLASSES[:budget["classes"]]), per_class=budget["per_class"], seed=seed, **synth)
    if not skip_train:
        generate_or_reuse(heldout, list(CLASSES[:budget["classes"]]), per_class=budget["heldout_per_class"],
                          seed=seed + HELDOUT_SEED_OFFSET, **synth)
    with open(os.path.join(data, "classes.json")) as f:
        meta = json.load(f)
    settings = _settings(budget, threads, seed, meta)
    previous = _previous(results, settings, quick)
    if remeasure:  # of the models measured now, keep only the training
        previous = {n: ({k: v for k, v in e.items() if k == "bench"} if n in names else e) for n, e in previous.items()}
    doc = {"command": command or shlex.join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "versions": versions(), "machine": {**machine_description(), "threads": threads}, "quick": quick,
           "settings": settings, "models": {}}
    print(f"zoo compare{' --quick' if quick else ''}: {len(names)} models; latency at each canonical input, batch 1, "
          f"{threads} thread(s), warmup {budget['warmup']}, median of {budget['reps']}; accuracy: bench networks "
          f"trained from scratch on SynthMotion ({DATA['difficulty']}, {len(meta['classes'])} classes x "
          f"{budget['per_class']} clips, {DATA['frames']} frames, {DATA['size']} px) for {budget['epochs']} epochs "
          f"(batch {TRAIN['batch_size']}, {TRAIN['optimizer']} lr {TRAIN['lr']:g}), seed {seed}; results -> {results}",
          flush=True)
    # identical bench networks are looked for within the families of `names` (registry order decides `run`)
    families = {model_info(n).family for n in names}
    candidates = [n for n in list_models() if model_info(n).family in families]
    groups = {} if skip_train else {m: run for run, g in group_runs(candidates).items() for m in g}
    members = {}
    for m, run in groups.items():
        members.setdefault(run, []).append(m)
    done: Dict[str, Dict[str, Any]] = {}  # this call's entries; other models' previous entries are kept
    runs_done = {e["bench"]["run"]: e["bench"] for e in previous.values() if "bench" in e}
    fresh = set()  # runs trained or re-checked by this call
    for name in names:
        entry = dict(previous.get(name, {}))
        if "gflops" not in entry or ("latency" not in entry and not skip_latency):
            t0 = time.perf_counter()
            if skip_latency:
                cost = measure(name, threads=threads, warmup=0, reps=0, latency=False)
            else:
                cost = _measure_child(name, threads=threads, warmup=budget["warmup"], reps=budget["reps"],
                                      layout=budget["layout"], compile=budget["compile"])
            entry.update(cost)
            if "latency" in entry:
                entry["latency"]["measured_by"] = _provenance(doc)
            print(f"{name}: measured in {time.perf_counter() - t0:.0f}s", flush=True)
        if skip_latency:
            entry.pop("latency", None)
        if skip_train:
            entry.pop("bench", None)
        else:
            run = groups[name]
            if run not in runs_done:
                runs_done[run] = train_bench(run, data, out_dir, epochs=budget["epochs"], seed=seed,
                                             twins=meta["twins"], heldout=heldout, progress=progress)
            elif run not in fresh:  # trained by an earlier call: the fast path may have changed since
                runs_done[run] = recheck_numerics(runs_done[run], data, heldout)
            fresh.add(run)
            entry["bench"] = {**runs_done[run], "shared_with": members[run][1:]}
        done[name] = entry
        doc["models"] = {n: done.get(n, previous.get(n)) for n in list_models() if n in done or n in previous}
        doc["seconds"] = round(time.perf_counter() - t_start, 1)
        _write(results, doc)
        print(format_rows({name: entry}, header=name == names[0]), flush=True)
    print(f"\n{describe(doc)}\n{format_rows(done)}\nresults: {results}; runs: {out_dir}; "
          f"total {time.perf_counter() - t_start:.0f}s", flush=True)
    return doc


def _settings(budget: Dict[str, int], threads: int, seed: int, meta: Dict[str, Any]) -> Dict[str, Any]:
    """The ``settings`` block of the results (what a resumed run must share)."""
    n_val = meta["settings"]["val_per_class"] * len(meta["classes"])
    return {
        "seed": seed,
        "latency": {"batch": 1, "threads": threads, "warmup": budget["warmup"], "reps": budget["reps"],
                    "layout": budget["layout"], "compile": budget["compile"],
                    "input": "canonical (info.input_shape)",
                    "timing": "median seconds per call over reps interleaved rounds (per round, every path: an "
                              "untimed call, then a timed one; reported in ms)",
                    "memory": MEMORY},
        "data": {"name": DATA["name"], "difficulty": DATA["difficulty"], "classes": meta["classes"],
                 "twins": meta["twins"], "per_class": budget["per_class"], "frames": DATA["frames"],
                 "size": DATA["size"], "train_videos": budget["per_class"] * len(meta["classes"]) - n_val,
                 "val_videos": n_val},
        # re-checked on every reuse: a change here keeps the training runs (see `_previous`)
        "numerics": {"bf16_agreement_videos": n_val + budget["heldout_per_class"] * len(meta["classes"]),
                     "heldout": f"val split + SynthMotion seed {seed + HELDOUT_SEED_OFFSET}, "
                                f"{budget['heldout_per_class']} clips per class (both splits), never trained on",
                     "near_tie": NEAR_TIE},
        "train": {"epochs": budget["epochs"], **{k: v for k, v in TRAIN.items() if k != "amp"},
                  "threads": threads, "amp": TRAIN["amp"]},
    }


def _previous(results: str, settings: Dict[str, Any], quick: bool) -> Dict[str, Dict[str, Any]]:
    """The model entries of an earlier results file, less what its settings invalidate: its latency
    if the latency settings differ, its training if the data, training or seed differ (cost is kept;
    the ``numerics`` settings are re-checked on every reuse anyway); none from the other budget."""
    if not os.path.isfile(results):
        return {}
    with open(results) as f:
        old = json.load(f)
    new, was = json.loads(json.dumps(settings)), old.get("settings", {})
    if old.get("quick") != quick:
        return {}
    drop = {"latency"} if was.get("latency") != new["latency"] else set()
    if any(was.get(k) != v for k, v in new.items() if k not in ("latency", "numerics")):
        drop.add("bench")
    models = {n: {k: v for k, v in e.items() if k not in drop} for n, e in old.get("models", {}).items()}
    for e in models.values():  # kept latency names the run that measured it
        if "latency" in e and "measured_by" not in e["latency"]:
            e["latency"] = {**e["latency"], "measured_by": _provenance(old)}
    return models


def _provenance(doc: Dict[str, Any]) -> Dict[str, Any]:
    return {"command": doc.get("command"), "date": doc.get("date"),
            "zoo_commit": doc.get("versions", {}).get("zoo_commit")}


def describe(doc: Dict[str, Any]) -> str:
    """How the run was made, in two lines (for the table)."""
    s = doc["settings"]
    lat, data, tr = s["latency"], s["data"], s["train"]
    compiled = "; fast path also compiled (c: the compiled one is faster)" if lat.get("compile") else ""
    return (f"latency: canonical input, batch {lat['batch']}, {lat['threads']} thread(s), median of {lat['reps']} "
            f"after {lat['warmup']} warmup{compiled}; memory: peak RSS of a fresh process ({doc['machine']['cpu']})\n"
            f"accuracy: bench networks from scratch on {data['name']} ({data['difficulty']}, {len(data['classes'])} "
            f"classes, {data['train_videos']} train / {data['val_videos']} val, {data['frames']} frames, "
            f"{data['size']} px), {tr['epochs']} epochs, batch {tr['batch_size']}, {tr['optimizer']} lr {tr['lr']:g}, "
            f"seed {s['seed']}; top1 normal/reversed/shuffled %, chance {100 / len(data['classes']):.0f}%")


def fast_path_ms(lat: Dict[str, Any], tag: str) -> Tuple[Optional[float], bool]:
    """``(ms, compiled)`` of the faster of the measured fast paths for ``tag`` ("fp32" / "bf16")."""
    plain, compiled = lat.get(f"fast_{tag}_ms"), lat.get(f"compiled_{tag}_ms")
    if compiled is not None and (plain is None or compiled < plain):
        return compiled, True
    return plain, False


def format_rows(models: Dict[str, Dict[str, Any]], header: bool = True) -> str:
    """A fixed-width table, one row per model ("-" for what was skipped)."""
    def f(v, spec=".0f"):
        return "-" if v is None else format(v, spec)

    def ms(lat, tag):  # the faster fast path, "c" when it is the compiled one
        best, compiled = fast_path_ms(lat, tag)
        return f(best) + ("c" if compiled else "")

    cols = [("model", 20), ("params", 7), ("GFLOPs", 7), ("input", 15), ("eager ms", 9), ("fp32 ms", 8),
            ("bf16 ms", 8), ("bf16 x", 6), ("RSS MiB", 8), ("bench run", 18), ("top1 n/r/s", 11), ("twin", 5),
            ("train s", 7)]
    lines = ["  ".join(c.ljust(w) for c, w in cols)] if header else []
    for name, e in models.items():
        lat, b = e.get("latency", {}), e.get("bench", {})
        top1 = "/".join(f(b["top1"][o]) for o in ("normal", "reversed", "shuffled")) if b else "-"
        cells = [name, f"{e['params'] / 1e6:.1f}M", f(e.get("gflops"), ".1f"), "x".join(map(str, e["input_shape"])),
                 f(lat.get("eager_fp32_ms")), ms(lat, "fp32"), ms(lat, "bf16"),
                 f(lat.get("speedup_bf16"), ".1f"), f(lat.get("peak_rss_mib")), b.get("run", "-"), top1,
                 f(b.get("twin_acc")), f(b.get("train_seconds"))]
        lines.append("  ".join(c.ljust(w) for c, (_, w) in zip(cells, cols)).rstrip())
    return "\n".join(lines)


def _main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m zoo.engine.compare --measure NAME``: one JSON line of `measure` (a fresh process)."""
    p = argparse.ArgumentParser(prog="python -m zoo.engine.compare")
    p.add_argument("--measure", required=True, metavar="NAME")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--layout", default="auto", choices=("auto", "channels_last", "contiguous"))
    p.add_argument("--compile", action="store_true", help="also time the compiled fast path")
    a = p.parse_args(argv)
    print(json.dumps(measure(a.measure, threads=a.threads, warmup=a.warmup, reps=a.reps, layout=a.layout,
                             compile=a.compile)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
