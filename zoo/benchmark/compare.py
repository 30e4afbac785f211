"""The comparison run behind ``zoo compare``: every registered model's cost, CPU speed and
SynthMotion accuracy.

Per model, at its canonical input (``info.input_shape``, one view): parameters, fvcore GFLOPs,
batch-1 latency of the eager model and of `zoo.optimize` (fp32 and bf16, ``layout="auto"``, not
compiled and compiled; the quick budget takes channels-last without timing both layouts and does not
compile) and the peak memory of a fresh process doing that (`measure`, run as ``python -m
zoo.benchmark.latency --measure NAME``).

Accuracy: each model's small bench network (its `BenchPreset`, e.g. a ResNet-18 backbone) is trained from
scratch on SynthMotion (easy, 32 frames, 32 px) with one shared budget through `zoo.engine.train`
and its own sampler, then evaluated with the harness on one view (centre clip, centre crop) in
normal, reversed and shuffled frame order. The fast path's numerics are checked on the trained
network: fp32 logits against eager on the val split, bf16 top-1 against fp32 on the val split plus
a larger held-out SynthMotion set drawn with another seed (``heldout_per_class`` clips per class,
never trained on; full budget: 608 videos, one flip = 0.16 %). Models whose bench networks are
identical (`fingerprint`) share one run: the first registered name of the group is ``run``, the
others ``shared_with``.

The parts live beside this module: `latency` (cost and timing in a child process),
`bench_training` (bench networks and their runs), `numerics` (the fast path's checks on them) and
`results` (the file's settings, reuse and I/O). The results JSON (the caller names it; the CLI
writes ``benchmarks/results/compare.json``, ``compare_quick.json`` for ``--quick``) is rewritten
atomically after every model; a re-run with the same settings reuses the finished entries (and keeps those of models not selected this time); one that changes only the latency settings
re-measures latency and keeps the training results.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from typing import Any, Dict, Optional, Sequence

import torch

from .bench_training import DATA, TRAIN, group_runs, is_current, train_bench
from .latency import measure, measure_in_child
from .machine import machine_description, versions
from .bench_training import recheck_numerics
from .numerics import HELDOUT_SEED_OFFSET
from .results import fast_path_ms, previous_entries, provenance, settings_block, write_results

__all__ = ["BUDGETS", "run_compare", "format_rows", "describe"]

# full: 8 classes = the first 4 twin pairs; quick: 2 pairs, tiny set, fewer timing reps
# (quick times the fast path in channels-last instead of timing both layouts first, see zoo.optimize)
BUDGETS = {"full": dict(classes=8, per_class=48, heldout_per_class=64, epochs=12, warmup=2, reps=5, layout="auto",
                        compile=True),
           "quick": dict(classes=4, per_class=16, heldout_per_class=8, epochs=2, warmup=1, reps=1,
                         layout="channels_last", compile=False)}


def run_compare(out_dir: str, results: str, *, models: Optional[Sequence[str]] = None, quick: bool = False,
                epochs: Optional[int] = None, per_class: Optional[int] = None,
                classes: Optional[int] = None, heldout_per_class: Optional[int] = None, seed: int = 0,
                threads: Optional[int] = None, warmup: Optional[int] = None, reps: Optional[int] = None,
                skip_latency: bool = False, skip_train: bool = False, remeasure: bool = False,
                command: Optional[str] = None, progress: bool = True) -> Dict[str, Any]:
    """Measure (and train the bench networks of) ``models`` (default: all registered); returns the
    results document, also written to ``results``; data and training runs go under ``out_dir``.
    Unset budget arguments take `BUDGETS` values.

    Entries of an earlier results file with the same settings are reused (a resumed run); with
    ``remeasure`` the cost and latency of ``models`` are measured again (the code changed), their
    training runs still reused, with the fast path's numerics re-checked."""
    from ..data.synth import CLASSES, generate_or_reuse
    from ..models import list_models, model_info

    t_start = time.perf_counter()
    budget = dict(BUDGETS["quick" if quick else "full"])
    budget.update({k: v for k, v in dict(epochs=epochs, per_class=per_class, classes=classes, warmup=warmup,
                                         reps=reps, heldout_per_class=heldout_per_class).items() if v is not None})
    threads = threads or os.cpu_count() or 1
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
    settings = settings_block(budget, threads, seed, meta)
    previous = previous_entries(results, settings, quick)
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
    # runs of an earlier call, unless their model's bench preset has changed since (then trained again)
    runs_done = {e["bench"]["run"]: e["bench"] for e in previous.values() if "bench" in e and is_current(e["bench"])}
    fresh = set()  # runs trained or re-checked by this call
    for name in names:
        entry = dict(previous.get(name, {}))
        if "gflops" not in entry or ("latency" not in entry and not skip_latency):
            t0 = time.perf_counter()
            if skip_latency:
                cost = measure(name, threads=threads, warmup=0, reps=0, latency=False)
            else:
                cost = measure_in_child(name, threads=threads, warmup=budget["warmup"], reps=budget["reps"],
                                      layout=budget["layout"], compile=budget["compile"])
            entry.update(cost)
            if "latency" in entry:  # rows may come from several runs, on several machines
                entry["latency"]["measured_by"] = {**provenance(doc), "machine": doc["machine"]}
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
        write_results(results, doc)
        print(format_rows({name: entry}, header=name == names[0]), flush=True)
    print(f"\n{describe(doc)}\n{format_rows(done)}\nresults: {results}; runs: {out_dir}; "
          f"total {time.perf_counter() - t_start:.0f}s", flush=True)
    return doc


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
