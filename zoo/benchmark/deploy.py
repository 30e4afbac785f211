"""The deployment benchmark (``python -m zoo.benchmark.deploy``): how each registered model runs
on the CPU as zoo's fast path, as an ONNX file in onnxruntime, and in int8.

Latency, per model in a fresh process (``python -m zoo.benchmark.deploy --measure NAME``), at its
canonical input (``info.input_shape``), batch 1, random weights with non-trivial BN statistics,
all paths timed in the same interleaved rounds (`time_interleaved`): eager fp32; `zoo.optimize`
fp32 and bf16, not compiled and compiled; the ONNX export in onnxruntime (fp32); and the three int8
backends of `zoo.inference.quantize` (onnxruntime static QDQ; PT2E + inductor; zoo's per-layer int8
in the bf16 fast path, which times each conv itself), calibrated on a few random clips (latency
does not depend on the calibration).

Agreement: each model's SynthMotion bench network, as ``zoo compare`` trains it (trained here
when its run is missing), quantized by each backend with calibration on the first train-split
videos, then its per-video top-1 against the eager fp32 network's over the val split plus the
held-out set: the videos over which ``zoo compare`` measures bf16 agreement. The per-layer backend
is measured with every conv in int8 (``every_layer``): the most its choice of layers can change.

``int8_vs_bf16`` is the bf16 fast path's time (the faster of not compiled / compiled) over the
faster int8 backend's; targets (not tests): >= 1.5 at >= 99 % agreement. ``peak_use``: each
precision's fastest path in GMAC/s (fvcore's multiply-adds per call over its time) and as
fractions of the matmul and conv peaks of that precision, measured at the start of the run that
timed the row (`zoo.benchmark.peaks`, in the row's ``latency.peaks``).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

import torch

from ..inference.quantize import WHOLE_MODEL, error_line
from ..inference.timing import time_interleaved
from .latency import fast_paths, json_from_child, randomize_bn_stats
from .machine import machine_description, versions
from .peaks import describe, fractions, measure_peaks
from .results import fixed_width, load_results, provenance, write_results

__all__ = ["measure_paths", "int8_numerics", "run_deploy", "format_rows", "TARGETS", "main"]

TARGETS = {"int8_vs_bf16": 1.5, "int8_agreement": 0.99}
INT8_PATHS = {"ort_int8": "onnxruntime", "pt2e_int8": "pt2e", "onednn_int8": "onednn"}  # timed path -> backend
CALIB_RANDOM_CLIPS = 4  # latency runs: calibration does not change the int8 graph's cost
CALIB_VIDEOS = 32  # agreement runs: first train-split videos of the bench data


def measure_paths(name: str, *, threads: int, warmup: int, reps: int, compile: bool = True,
                  size: Optional[int] = None) -> Dict[str, Any]:
    """Batch-1 latency (ms) of every deployment path of ``name`` at its canonical input (``size``:
    another crop size, for smoke runs), timed in interleaved rounds, with the seconds each took to
    build (``setup_s``) and each exported / int8 path's max |dlogit| relative to eager. Meant for a
    fresh process (oneDNN and allocator state of this model alone)."""
    from ..flops import count_flops
    from ..inference.export import OnnxRuntimeModel
    from ..inference.int8 import per_layer_int8
    from ..inference.quantize import Pt2eInt8Model, describe_int8, export_for_int8, onnxruntime_int8
    from ..models import build, resolve

    torch.set_num_threads(threads)
    spec = resolve(name, size=size)
    info = spec.info
    model = randomize_bn_stats(build(spec)).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, *info.input_shape, generator=g)
    calibration = [torch.randn(1, *info.input_shape, generator=g) for _ in range(CALIB_RANDOM_CLIPS)]
    fns, setup = fast_paths(model, x, layout="auto", compile=compile)
    fns = {"eager_fp32": model, **fns}
    # the int8 paths are built as `zoo.inference.quantize.quantize` builds them, the onnxruntime one
    # from the very fp32 export that is timed
    errors, convs = {}, {}
    with tempfile.TemporaryDirectory(prefix="zoo-deploy-") as tmp:
        start = time.perf_counter()
        export_for_int8(model, os.path.join(tmp, "m.onnx"), calibration)
        fns["ort_fp32"] = OnnxRuntimeModel(os.path.join(tmp, "m.onnx"), threads=threads)
        setup["export_onnx_s"] = round(time.perf_counter() - start, 1)
        builders = {"ort_int8": lambda: onnxruntime_int8(os.path.join(tmp, "m.onnx"), calibration, threads),
                    "pt2e_int8": lambda: Pt2eInt8Model(model, calibration),
                    "onednn_int8": lambda: per_layer_int8(model, calibration)}
        for path, build_int8 in builders.items():
            start = time.perf_counter()
            try:
                fns[path] = describe_int8(build_int8(), model, INT8_PATHS[path])
                fns[path](x)  # a path that fails at its first call is recorded too
                convs[INT8_PATHS[path]] = list(fns[path].convs_int8)
            except Exception as e:  # recorded: a quantizer that cannot handle this graph
                errors[INT8_PATHS[path]] = error_line(e)
                fns.pop(path, None)
            setup[f"int8_{INT8_PATHS[path]}_s"] = round(time.perf_counter() - start, 1)
    with torch.inference_mode():
        ref = model(x)
        dlogit = {k: float((fns[k](x) - ref).abs().max() / ref.abs().max())
                  for k in ("ort_fp32", *INT8_PATHS) if k in fns}
    ms = time_interleaved(fns, x, warmup=warmup, reps=reps)
    return {"family": info.family, "input_shape": list(info.input_shape),
            "gmacs_per_call": round(count_flops(model, (1, *info.input_shape)).gflops, 3),  # fvcore: FLOP = MAC
            "ms": {k: round(1e3 * v, 2) for k, v in ms.items()}, "setup_s": setup,
            "max_rel_dlogit_vs_eager": {k: float(f"{v:.3g}") for k, v in dlogit.items()}, "int8_errors": errors,
            "convs_int8": convs}


def int8_numerics(model, calibration: Sequence[torch.Tensor], datasets: Sequence) -> Dict[str, Dict[str, Any]]:
    """Per int8 backend: the quantized ``model``'s per-video top-1 agreement with eager fp32 over
    ``datasets`` (`zoo.benchmark.numerics.top1_agreement`: flip gaps, near ties), and how many of
    its convolutions run in int8 (``convs_int8``: [int8, all])."""
    from ..engine import evaluate
    from ..inference.int8 import per_layer_int8
    from ..inference.quantize import METHODS, quantize
    from .numerics import top1_agreement

    cpu = torch.device("cpu")
    reference = torch.cat([evaluate(model, d, progress=False).view_logits for d in datasets])
    out = {}
    for backend in METHODS:
        try:
            # the per-layer backend with every conv int8: the most its choice of layers can change the answers
            int8 = per_layer_int8(model, calibration, every_layer=True) if backend == "onednn" else \
                quantize(model, calibration, backend=backend)
        except Exception as e:  # recorded, as `measure_paths` records it
            out[backend] = {"error": error_line(e)}
            continue
        logits = torch.cat([evaluate(int8, d, progress=False, device=cpu).view_logits for d in datasets])
        out[backend] = {**top1_agreement(reference, logits), "convs_int8": list(int8.convs_int8)}
    return out


def _bench_agreement(run: str, out_dir: str) -> Dict[str, Any]:
    from ..data import build_dataset
    from .bench_training import trained_bench
    from .numerics import heldout_sets

    data, heldout = os.path.join(out_dir, "data"), os.path.join(out_dir, "heldout")
    model = trained_bench(run, os.path.join(out_dir, run), data)
    train = build_dataset(data, model.info, "train")
    calibration = [train[i]["video"] for i in range(min(CALIB_VIDEOS, len(train)))]
    datasets = [build_dataset(data, model.info, "val"), *heldout_sets(heldout, model.info)]
    return {"run": run, "calibration_videos": len(calibration), **int8_numerics(model, calibration, datasets)}


def _bench_runs(names: Sequence[str], out_dir: str, train: bool) -> Dict[str, Optional[str]]:
    """Model -> its bench run if trained (weights under ``out_dir``), else None; with ``train``,
    missing runs are trained first, as ``zoo compare`` trains them."""
    from ..engine.training import FINAL_WEIGHTS
    from .bench_training import group_runs
    from .compare import run_compare

    run_of = {m: run for run, group in group_runs().items() for m in group}

    def trained(n):
        return os.path.isfile(os.path.join(out_dir, run_of[n], FINAL_WEIGHTS))
    missing = [n for n in names if not trained(n)]
    if missing and train:
        print(f"training the bench networks of {', '.join(missing)} (as zoo compare does) under {out_dir}", flush=True)
        run_compare(out_dir, os.path.join(out_dir, "deploy_training.json"), models=missing, skip_latency=True,
                    command="python -m zoo.benchmark.deploy (bench networks for int8 agreement)")
    return {n: run_of[n] if trained(n) else None for n in names}


def _row(name: str, lat: Dict[str, Any], agreement: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """One results row: the measurements, the fastest path per precision and the ratios. The int8
    path is the fastest of the backends that quantize the most convolutions and, among those, of
    the ones that meet the agreement target when any does."""
    ms = lat["ms"]

    def best(*paths):
        path = min((p for p in paths if p in ms), key=ms.get)
        return path, ms[path]

    (bf16_path, bf16), (fp32_path, fp32) = best("fast_bf16", "compiled_bf16"), best("fast_fp32", "compiled_fp32")
    int8_paths = [p for p in INT8_PATHS if p in ms]
    counted = {b: a["convs_int8"] for b, a in (agreement or {}).items() if isinstance(a, dict) and "convs_int8" in a}
    counted = counted or lat.get("convs_int8", {})
    if counted:
        # as `quantize(backend="auto")` chooses: a whole-model backend that leaves convolutions in float is
        # not int8; the per-layer one leaves them in bf16 by measurement
        convs = {p: counted.get(INT8_PATHS[p], [0])[0] for p in int8_paths if INT8_PATHS[p] in WHOLE_MODEL}
        int8_paths = [p for p in int8_paths if p not in convs or convs[p] == max(convs.values())]
    if agreement:
        # then the backends that keep the model's answers (the agreement target), if any does
        agreeing = [p for p in int8_paths
                    if agreement.get(INT8_PATHS[p], {}).get("top1_agreement", 0) >= TARGETS["int8_agreement"]]
        int8_paths = agreeing or int8_paths
    int8_path, int8 = best(*int8_paths) if int8_paths else (None, None)
    agree = agreement[INT8_PATHS[int8_path]]["top1_agreement"] if agreement and int8_path else None
    ratio = round(bf16 / int8, 3) if int8 else None
    peak_use = {}  # each precision's best path in GMAC/s and as fractions of the peaks of its run
    if "gmacs_per_call" in lat and "peaks" in lat:
        for dtype, path_ms in (("fp32", fp32), ("bf16", bf16), ("int8", int8)):
            if path_ms:
                rate = lat["gmacs_per_call"] / path_ms * 1e3
                peak_use[dtype] = {"gmacs_per_s": round(rate, 1), **fractions(rate, lat["peaks"], dtype)}
    return {"model": name, "latency": lat, "best": {"fp32": fp32_path, "bf16": bf16_path, "int8": int8_path},
            "int8_vs_bf16": ratio, "int8_agreement": agree, "peak_use": peak_use,
            "ort_fp32_vs_fast_fp32": round(fp32 / ms["ort_fp32"], 3), "agreement": agreement,
            "meets_targets": None if agree is None else
            bool(ratio >= TARGETS["int8_vs_bf16"] and agree >= TARGETS["int8_agreement"])}


def run_deploy(results: str, *, out_dir: str, models: Optional[Sequence[str]] = None, threads: Optional[int] = None,
               warmup: int = 2, reps: int = 5, compile: bool = True, train: bool = True, remeasure: bool = False,
               reagree: bool = False, size: Optional[int] = None, command: Optional[str] = None) -> Dict[str, Any]:
    """Measure ``models`` (default: all registered), writing ``results`` after each (atomically).
    An earlier file's rows with the same settings keep their latency unless ``remeasure``; a row
    without agreement gets it once its bench run is trained (``train``: trained here if missing),
    and ``reagree`` measures it again."""
    from ..models import list_models, model_info

    names = list(models) if models else list_models()
    for name in names:
        model_info(name)  # unknown names fail here, with close matches
    threads = threads or os.cpu_count() or 1
    settings = {"batch": 1, "threads": threads, "warmup": warmup, "reps": reps, "compile": compile,
                "input": "canonical (info.input_shape)" if size is None else f"canonical frames, {size} px crop",
                "weights": "random, non-trivial BN statistics",
                "timing": "median ms per call over reps interleaved rounds, all paths in one fresh process per model",
                "latency_calibration": f"{CALIB_RANDOM_CLIPS} random clips",
                "agreement": f"SynthMotion bench networks as zoo compare trains them; int8 calibrated on the first "
                             f"{CALIB_VIDEOS} train-split videos; per-video top-1 against eager fp32 over the val split "
                             f"and the held-out set", "targets": TARGETS}
    previous = load_results(results) or {}
    # rows kept from an earlier file are re-derived from their measurements (the choice of paths may have
    # changed), each keeping the record of the run that timed it: a row without one was timed by that file's run
    rows = {}
    if previous.get("settings") == settings:
        for r in previous.get("rows", []):
            lat = {"measured_by": {**provenance(previous), "machine": previous.get("machine")}, **r["latency"]}
            rows[r["model"]] = _row(r["model"], lat, r.get("agreement"))
    doc = {"command": command or shlex.join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "versions": versions(), "machine": {**machine_description(), "threads": threads}, "settings": settings}
    todo = [n for n in names if remeasure or reagree or rows.get(n, {}).get("agreement") is None]
    run_of = _bench_runs(todo, out_dir, train) if todo else {}
    agreements: Dict[str, Dict[str, Any]] = {}
    peaks = None
    if any(remeasure or name not in rows for name in todo):  # latencies to measure: against this run's peaks
        peaks = measure_peaks(threads=threads)
        print(describe(peaks), flush=True)
    print(f"deploy benchmark: {len(todo)} of {len(names)} model(s) to measure; batch 1, {threads} thread(s), "
          f"median of {reps} after {warmup} warmup, interleaved; results -> {results}", flush=True)
    for name in todo:
        lat = None if remeasure or name not in rows else rows[name]["latency"]
        if lat is None:
            cmd = [sys.executable, "-m", "zoo.benchmark.deploy", "--measure", name, "--threads", str(threads),
                   "--warmup", str(warmup), "--reps", str(reps)] + ([] if compile else ["--no-compile"]) + \
                ([] if size is None else ["--size", str(size)])
            lat = json_from_child(cmd)
            lat["measured_by"] = {**provenance(doc), "machine": doc["machine"]}  # rows may come from several runs
            lat["peaks"] = {kind: peaks[kind] for kind in ("matmul", "conv")}
        run = run_of[name]
        if run is not None and run not in agreements:
            agreements[run] = _bench_agreement(run, out_dir)
        rows[name] = _row(name, lat, agreements.get(run))
        doc["rows"] = [rows[n] for n in list_models() if n in rows]
        write_results(results, doc)
        print(format_rows([rows[name]], header=name == todo[0]), flush=True)
    doc["rows"] = [rows[n] for n in list_models() if n in rows]
    write_results(results, doc)
    return doc


def format_rows(rows: List[Dict[str, Any]], header: bool = True) -> str:
    """A fixed-width table: ms per path, the int8/bf16 ratio and the int8 agreement."""
    cols = [("model", 19), ("eager", 7), ("fp32", 7), ("bf16", 7), ("ort fp32", 8), ("ort int8", 8),
            ("pt2e int8", 9), ("int8/bf16", 9), ("int8 agree", 10)]
    table = []
    for r in rows:
        ms = r["latency"]["ms"]
        cells = [r["model"], ms["eager_fp32"], ms[r["best"]["fp32"]], ms[r["best"]["bf16"]], ms["ort_fp32"],
                 ms.get("ort_int8", "-"), ms.get("pt2e_int8", "-"),
                 "-" if r["int8_vs_bf16"] is None else f"{r['int8_vs_bf16']:.2f}x",
                 "-" if r["int8_agreement"] is None else f"{100 * r['int8_agreement']:.1f}%"]
        table.append([c if isinstance(c, str) else f"{c:.0f}" for c in cells])
    return fixed_width(cols, table, header)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.benchmark.deploy", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", help="comma-separated model names (default: every registered model)")
    p.add_argument("--results", default="benchmarks/results/deploy.json")
    p.add_argument("--out-dir", default="runs/compare", help="zoo compare's bench runs and data (default runs/compare)")
    p.add_argument("--threads", type=int)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="do not time the compiled fast path")
    p.add_argument("--size", type=int, help="crop size instead of the canonical one (smoke runs)")
    p.add_argument("--remeasure", action="store_true", help="measure again the rows an earlier file has")
    p.add_argument("--reagree", action="store_true", help="measure the int8 agreement again (latency kept)")
    p.add_argument("--no-train", action="store_true",
                   help="do not train missing bench networks: their rows wait for agreement (a later run fills it)")
    p.add_argument("--measure", metavar="NAME", help=argparse.SUPPRESS)  # one model's latency (a child process)
    a = p.parse_args(argv)
    if a.measure:
        import json
        print(json.dumps(measure_paths(a.measure, threads=a.threads or os.cpu_count() or 1, warmup=a.warmup,
                                       reps=a.reps, compile=not a.no_compile, size=a.size)))
        return 0
    doc = run_deploy(a.results, out_dir=a.out_dir, models=a.models.split(",") if a.models else None,
                     threads=a.threads, warmup=a.warmup, reps=a.reps, compile=not a.no_compile,
                     train=not a.no_train, remeasure=a.remeasure, reagree=a.reagree, size=a.size, command=shlex.join(["python", "-m", "zoo.benchmark.deploy", *(argv or sys.argv[1:])]))
    print(f"\n{format_rows(doc['rows'])}\nresults: {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
