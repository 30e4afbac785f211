"""CPU inference speed: zoo eager fp32 vs zoo.optimize fp32 / bf16 vs the peer implementations.

Each model runs in a fresh child process (``--in-process`` runs them all in this one), so no model
is timed in the heap, caches and compiled-graph state another model left; within it every row
runs on the same input, with the same thread count. Timings vary between processes (R(2+1)D-18's
compiled fp32 model has taken 301 and 364 ms per clip in two of them, on the same code):
``--processes N`` times each model in N fresh processes and reports the median one, with every
process's ratios in ``per_process``. Each row also counts the minor page faults of one call: in
processes where glibc's malloc hands freed activation memory back to the OS, a call faults it in
again, and that differs from process to process.

* ``peer``      — the installable peer implementation (torchvision ``r2plus1d_18``, PyTorchVideo
                  ``slowfast_r50`` and ``i3d_r50``) with the same weights, eager fp32, default layout, no_grad —
                  or, for families with no installable peer (TSM, PAN, I3D-Inception, P3D), the
                  zoo model run the way peers run (eager fp32, default layout).
* ``zoo-fp32``  — ``zoo.optimize(model)``: BN folded, channels-last, inference mode, 3x3 stride-1
                  convs as Winograd F(4x4, 3x3) (``fp32_winograd_convs`` counts them).
* ``zoo-bf16``  — ``zoo.optimize(model, torch.bfloat16)``: the same under CPU bf16 autocast.

Which peer a row ran against is its ``peer_impl``. Reported: median seconds per clip over
``--reps`` interleaved rounds (each round times one call of every row, right after an untimed
one, so a slow spell of the machine hits all rows alike and each is timed warm) after
``--warmup`` calls each, clips/s, the speed-up over the peer, the achieved GMAC/s (fvcore MACs /
time; with Winograd convs this is an effective rate, which may pass the peak) as fractions of
this machine's matmul and conv peaks of its dtype, measured at the start of the run
(`zoo.benchmark.peaks`: fp32, bf16 and int8, kept in ``peaks``), and numerics: max |Δlogit| relative to the
logit scale for fp32 (target ≤1e-4), and top-1 agreement of bf16 with fp32 over
``--agree-clips`` random clips (random weights give near-tied logits, so this is a lower bound:
`zoo compare` measures the agreement of trained models on the SynthMotion validation set).
The bf16 fast path at its best (compiled or not: ``bf16_best``) is set against half the bf16
matmul peak; below it, ``below_half_peak_because`` gives the reason measured on that very path
(`zoo.benchmark.bound`: the share of its time outside convs and matmuls, in grouped convs, and
the rate of the convs themselves). ``fp32_at_least_2x_peer``: the faster fp32 fast path's ratio to the peer.
``--compile`` adds rows for the compiled twins of the two fast models
(``OptimizedModel.compiled_twin``: inductor with weight freezing), their compile times and the
compiled bf16 model's top-1 agreement with fp32 over the same clips.

    python benchmarks/speed.py                     # every registered model
    python benchmarks/speed.py --models tsm_r50 r2plus1d_18 --reps 5 --compile
    python benchmarks/speed.py --models tsm_r101 r2plus1d_18 --compile --processes 5
    python benchmarks/speed.py --models tsm_r50 --compile --merge      # this row again, the others kept
    python benchmarks/speed.py --models tsm_r50 --resplit              # only its bf16 profile again
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

import zoo
from zoo.benchmark.bound import reason, time_split
from zoo.benchmark.latency import fast_paths, json_from_child, randomize_bn_stats
from zoo.benchmark.peaks import describe, fractions, measure_peaks
from zoo.benchmark.machine import machine_description, versions
from zoo.engine.checkpoint import atomic_write_text
from zoo.inference.timing import time_interleaved
from zoo.flops import count_flops

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = ("batch", "threads", "warmup", "reps", "layout", "compile", "processes")  # rows comparable only under the same
HALF_PEAK = 0.5  # the bf16 target: at least half the bf16 matmul peak, or the measured reason why not


# -- peers: installable reference implementations, given the zoo model's weights ----------------
def _torchvision_r2plus1d_18(model):
    from torchvision.models.video import r2plus1d_18
    peer = r2plus1d_18(weights=None, num_classes=model.num_classes)
    peer.load_state_dict(model.state_dict())
    return peer, "torchvision.models.video.r2plus1d_18"


class _PackPathways(nn.Module):
    """PyTorchVideo takes [slow, fast] tensors: pick the slow frames the PySlowFast way."""

    def __init__(self, net, alpha):
        super().__init__()
        self.net, self.alpha = net, alpha

    def forward(self, x):
        t = x.shape[2]
        idx = torch.linspace(0, t - 1, t // self.alpha).long()
        return self.net([x.index_select(2, idx), x])


def _ptv_slowfast_r50(model):
    from pytorchvideo.models.hub import slowfast_r50
    from zoo.models.slowfast import to_pytorchvideo_layout
    net = slowfast_r50(pretrained=False)
    net.load_state_dict(to_pytorchvideo_layout(model.state_dict()))
    return _PackPathways(net, 4), "pytorchvideo.models.hub.slowfast_r50"


def _ptv_i3d_r50(model):
    from pytorchvideo.models.hub import i3d_r50
    from zoo.models.i3d_resnet import PTV_LAYOUT
    from zoo.models.slowfast import to_pytorchvideo_layout
    net = i3d_r50(pretrained=False)
    net.load_state_dict(to_pytorchvideo_layout(model.state_dict(), PTV_LAYOUT))
    return net, "pytorchvideo.models.hub.i3d_r50"


# keyed by registered (canonical) name: ``zoo.list_models()`` lists slowfast_r50 as slowfast_8x8_r50
PEERS = {"r2plus1d_18": _torchvision_r2plus1d_18, "slowfast_8x8_r50": _ptv_slowfast_r50, "i3d_r50": _ptv_i3d_r50}


def _minor_faults(fn, x) -> int:
    """Minor page faults of one more call: memory the allocator handed back to the OS and takes
    again (zeroed by the kernel page by page), the main source of the spread between processes."""
    with torch.no_grad():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fn(x)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def machine() -> dict:
    return {**machine_description(), "threads": torch.get_num_threads(), "versions": versions()}


def bench_model(name: str, args, peaks: dict) -> dict:
    info = zoo.model_info(name)
    model = randomize_bn_stats(zoo.build(name)).eval()
    shape = (args.batch, *info.input_shape)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    macs = count_flops(model, (1, *info.input_shape)).total * args.batch
    if name in PEERS:
        peer, peer_name = PEERS[name](model)
        peer.eval()
    else:
        peer, peer_name = model, "zoo eager fp32 (peer-style: default layout)"
    paths, compile_s = fast_paths(model, x, layout=args.layout, compile=args.compile)
    fast, bf16 = paths["fast_fp32"], paths["fast_bf16"]
    row = {"model": name, "input": list(shape), "gmacs_per_call": macs / 1e9, "peer_impl": peer_name,
           "fp32_folded_bn": fast.folded_batchnorms, "fp32_channels_last": fast.channels_last,
           "fp32_winograd_convs": fast.winograd_convs,
           "bf16_channels_last": bf16.channels_last, "fp32_layout_ms": getattr(fast, "layout_ms", None),
           "bf16_layout_ms": getattr(bf16, "layout_ms", None)}
    with torch.no_grad():
        ref = peer(x)
    runs = [("peer", peer, torch.float32), ("zoo-fp32", fast, torch.float32), ("zoo-bf16", bf16, torch.bfloat16)]
    if args.compile:  # torch.compile (inductor, weight freezing) of the very models above
        for tag, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            row[f"zoo-{tag}-compiled-compile-seconds"] = compile_s[f"compile_{tag}_s"]
            runs.append((f"zoo-{tag}-compiled", paths[f"compiled_{tag}"], dtype))
    fns = {label: fn for label, fn, _ in runs}
    secs = time_interleaved(fns, x, args.warmup, args.reps)
    for label, fn, dtype in runs:
        sec = secs[label]
        frac = fractions(macs / sec / 1e9, peaks, "bf16" if dtype == torch.bfloat16 else "fp32")
        row[label] = {"sec_per_call": sec, "clips_per_s": args.batch / sec,
                      "gmacs_per_s": macs / sec / 1e9,
                      "fraction_of_matmul_peak": frac["of_matmul_peak"], "fraction_of_conv_peak": frac["of_conv_peak"],
                      "minor_page_faults_per_call": _minor_faults(fn, x)}
    row["speedup_fp32"] = row["peer"]["sec_per_call"] / row["zoo-fp32"]["sec_per_call"]
    row["speedup_bf16"] = row["peer"]["sec_per_call"] / row["zoo-bf16"]["sec_per_call"]
    for label in ("zoo-fp32-compiled", "zoo-bf16-compiled"):
        if label in row:
            row["speedup_" + label] = row["peer"]["sec_per_call"] / row[label]["sec_per_call"]
    best = min((lbl for lbl in ("zoo-bf16", "zoo-bf16-compiled") if lbl in row), key=lambda k: row[k]["sec_per_call"])
    row["bf16_best"] = _bf16_best(row, best, fns[best], x, macs, peaks)
    row["fp32_at_least_2x_peer"] = _fp32_speedup(row) >= 2.0
    if "zoo-fp32-compiled" in fns:
        out = fns["zoo-fp32-compiled"](x)
        row["compiled_fp32_max_rel_dlogit"] = ((out - ref).abs().max() / ref.abs().max()).item()
    out32 = fast(x)
    row["fp32_max_rel_dlogit"] = ((out32 - ref).abs().max() / ref.abs().max()).item()
    # bf16 top-1 agreement with fp32 over several clips
    bf16_runs = {"bf16_top1_agreement": bf16}
    if "zoo-bf16-compiled" in fns:
        bf16_runs["compiled_bf16_top1_agreement"] = fns["zoo-bf16-compiled"]
    agree, total = dict.fromkeys(bf16_runs, 0), 0
    g = torch.Generator().manual_seed(1)
    for _ in range(args.agree_clips):
        xi = torch.randn(1, *info.input_shape, generator=g) if args.agree_size is None else \
            torch.randn(1, 3, info.num_frames, args.agree_size, args.agree_size, generator=g)
        top1 = fast(xi).argmax(1).item()
        for key, fn in bf16_runs.items():
            agree[key] += int(fn(xi).argmax(1).item() == top1)
        total += 1
    row.update({key: n / total for key, n in agree.items()})
    row["bf16_agreement_clips"] = total
    return row


def _bf16_best(row: dict, best: str, fn, x, macs: float, peaks: dict) -> dict:
    """The bf16 fast path at its best (``best``: compiled or not) against half the bf16 matmul
    peak; below it, the reason measured: where its time goes (zoo.benchmark.bound)."""
    split = time_split(fn, x, macs)
    out = {"path": best, "fraction_of_matmul_peak": row[best]["fraction_of_matmul_peak"],
           "fraction_of_conv_peak": row[best]["fraction_of_conv_peak"], "time_split": split}
    if row[best]["fraction_of_matmul_peak"] < HALF_PEAK:
        out["below_half_peak_because"] = reason(split, peaks["conv"]["bf16"], "bf16")
    return out


def resplit(row: dict, peaks: dict) -> dict:
    """``row`` (of an earlier run) with ``bf16_best`` profiled again on the same path, built again
    (timings untouched): for rows measured before a change to the profile split."""
    info = zoo.model_info(row["model"])
    model = randomize_bn_stats(zoo.build(row["model"])).eval()
    x = torch.randn(*row["input"], generator=torch.Generator().manual_seed(0))
    best = row["bf16_best"]["path"]
    fast = zoo.optimize(model, torch.bfloat16, layout="channels_last" if row["bf16_channels_last"] else "contiguous")
    fn = fast.compiled_twin() if best.endswith("-compiled") else fast
    with torch.inference_mode():
        fn(x)  # compiles
    macs = row["gmacs_per_call"] * 1e9
    assert tuple(row["input"][1:]) == tuple(info.input_shape)
    return {**row, "bf16_best": {**_bf16_best(row, best, fn, x, macs, peaks),
                                 "profiled_again": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}}


def _bench_in_child(name: str, args, peaks: dict) -> dict:
    """`bench_model` of ``name`` in a fresh Python process, with this run's options and peaks."""
    opts = ["--batch", args.batch, "--threads", args.threads, "--warmup", args.warmup, "--reps", args.reps,
            "--agree-clips", args.agree_clips, "--layout", args.layout]
    opts += ["--agree-size", args.agree_size] if args.agree_size is not None else []
    opts += ["--compile"] if args.compile else []
    return json_from_child([sys.executable, __file__, "--models", name, *map(str, opts),
                            "--child-row", json.dumps(peaks)])


def _fp32_speedup(row: dict) -> float:
    """The faster fp32 fast path's ratio to the peer (compiled or not)."""
    return max(row["speedup_fp32"], row.get("speedup_zoo-fp32-compiled", 0.0))


def _bench_in_processes(name: str, args, peaks: dict) -> dict:
    """`_bench_in_child` in ``args.processes`` fresh processes: the median one by `_fp32_speedup`
    (its timings, so they stay consistent), with every process's ratios and page faults in ``per_process``."""
    rows = [_bench_in_child(name, args, peaks) for _ in range(args.processes)]
    if len(rows) == 1:
        return rows[0]
    median = sorted(rows, key=_fp32_speedup)[len(rows) // 2]
    return {**median, "per_process": [_process_summary(r) for r in rows]}


def _process_summary(row: dict) -> dict:
    """One process's ratios to the peer and, per timed row, its page faults per call."""
    faults = {label: timed["minor_page_faults_per_call"] for label, timed in row.items()
              if isinstance(timed, dict) and "minor_page_faults_per_call" in timed}
    return {**{k: v for k, v in row.items() if k.startswith("speedup_")}, "minor_page_faults_per_call": faults}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--agree-clips", type=int, default=20)
    p.add_argument("--agree-size", type=int, default=None, help="spatial size of the agreement clips")
    p.add_argument("--layout", default="auto", choices=("auto", "channels_last", "contiguous"),
                   help="zoo.optimize layout (default auto: the faster of the two, timed per model)")
    p.add_argument("--compile", action="store_true",
                   help="also time zoo.optimize(..., compile=True) (inductor with freezing; minutes per model)")
    p.add_argument("--out", default=str(RESULTS / "speed.json"))
    p.add_argument("--in-process", action="store_true",
                   help="time every model in this process instead of one fresh child process per model")
    p.add_argument("--processes", type=int, default=1,
                   help="fresh processes per model; the row is the median one by fp32 ratio to the peer (odd N)")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of other models in --out (a run of a few models adds to the file; "
                        "its settings must be the same)")
    p.add_argument("--resplit", action="store_true",
                   help="profile the bf16 path of --models' rows in --out again (bf16_best), nothing else")
    p.add_argument("--child-row", metavar="PEAKS_JSON", help=argparse.SUPPRESS)
    p.add_argument("--child-resplit", metavar="ROW_AND_PEAKS_JSON", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.processes < 1 or (args.processes > 1 and args.in_process):
        p.error("--processes takes N >= 1 and fresh processes (not with --in-process)")
    torch.set_num_threads(args.threads)
    names = [zoo.model_info(n).name for n in args.models] if args.models else zoo.list_models()
    if args.child_row:  # one model, in the fresh process the parent started: its row as one JSON line
        print(json.dumps(bench_model(names[0], args, json.loads(args.child_row))))
        return
    if args.child_resplit:
        given = json.loads(args.child_resplit)
        print(json.dumps(resplit(given["row"], given["peaks"])))
        return
    if args.resplit:
        doc = json.load(open(args.out))
        for i, row in enumerate(doc["rows"]):
            if row["model"] in names:
                doc["rows"][i] = json_from_child([sys.executable, __file__, "--models", row["model"], "--threads",
                                                  str(args.threads), "--child-resplit",
                                                  json.dumps({"row": row, "peaks": doc["peaks"]})])
                b = doc["rows"][i]["bf16_best"]
                print(f"{row['model']:22} profiled again: {100 * b['time_split']['compute_share']:.0f}% in convs/matmuls, "
                      f"{100 * b['time_split']['grouped_conv_share']:.0f}% grouped", flush=True)
                atomic_write_text(args.out, json.dumps(doc, indent=2))
        return
    peaks = measure_peaks(threads=args.threads)  # this machine's, in this run (zoo.benchmark.peaks)
    header = {"command": " ".join([sys.executable, *sys.argv]), "machine": machine(),
              "peaks": peaks, "batch": args.batch, "threads": args.threads,
              "warmup": args.warmup, "reps": args.reps, "layout": args.layout, "compile": args.compile,
              "processes": "all models in one process" if args.in_process else
              "one fresh process per model" if args.processes == 1 else
              f"{args.processes} fresh processes per model, the row of the median one by fp32 ratio to the peer "
              f"(compiled or not), every process's ratios in per_process",
              "timing": "median of reps interleaved rounds (per round, every row: an untimed call, then a timed one), "
                        "seconds per call",
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(f"# {header['machine']['cpu']}, {args.threads} threads, batch {args.batch}, "
          f"median of {args.reps} interleaved rounds after {args.warmup} warm-up\n# " +
          describe(peaks).replace("\n", "\n# "))
    print(f"{'model':22} {'peer clips/s':>12} {'fp32 clips/s':>12} {'x peer':>7} {'bf16 clips/s':>12} {'x peer':>7} "
          f"{'fp32 %peak':>10} {'max rel dlogit':>14} {'bf16 top1 agr':>13}")
    rows, kept = [], []
    if args.merge and Path(args.out).is_file():  # the other models' rows stay, measured under the same settings
        before = json.load(open(args.out))
        same = {k: before.get(k) for k in SETTINGS} == {k: header[k] for k in SETTINGS}
        if not same:
            p.error(f"--merge: {args.out} was measured with other settings "
                    f"({ {k: before.get(k) for k in SETTINGS} }); measure every model again instead")
        kept = [r for r in before["rows"] if r["model"] not in names]
        header["merged"] = before.get("merged", []) + [{"command": before["command"], "date": before["date"],
                                                        "models": [r["model"] for r in kept]}]
        header["peaks_of_merged_rows"] = before["peaks"]
    for name in names:
        row = bench_model(name, args, peaks) if args.in_process else _bench_in_processes(name, args, peaks)
        rows.append(row)
        print(f"{name:22} {row['peer']['clips_per_s']:12.3f} {row['zoo-fp32']['clips_per_s']:12.3f} "
              f"{row['speedup_fp32']:7.2f} {row['zoo-bf16']['clips_per_s']:12.3f} {row['speedup_bf16']:7.2f} "
              f"{100 * row['zoo-fp32']['fraction_of_matmul_peak']:9.1f}% {row['fp32_max_rel_dlogit']:14.2e} "
              f"{row['bf16_top1_agreement']:13.2f}", flush=True)
        if name in PEERS:
            print(f"{'':22} peer: {row['peer_impl']}", flush=True)
        if "per_process" in row:
            print(f"{'':22} fp32 x peer per process (best of compiled / not): "
                  f"{', '.join(f'{_fp32_speedup(r):.2f}' for r in row['per_process'])}", flush=True)
        if args.compile:
            print(f"{'':22} compiled: fp32 x{row['speedup_zoo-fp32-compiled']:.2f} peer "
                  f"(max rel dlogit {row['compiled_fp32_max_rel_dlogit']:.1e}) "
                  f"(compile {row['zoo-fp32-compiled-compile-seconds']:.0f}s), bf16 "
                  f"x{row['speedup_zoo-bf16-compiled']:.2f} (compile {row['zoo-bf16-compiled-compile-seconds']:.0f}s, "
                  f"top1 agr {row['compiled_bf16_top1_agreement']:.2f})",
                  flush=True)
        b = row["bf16_best"]
        print(f"{'':22} bf16 at its best ({b['path']}): {100 * b['fraction_of_matmul_peak']:.0f}% of the bf16 matmul "
              f"peak; {100 * b['time_split']['compute_share']:.0f}% of its time in convs/matmuls"
              + (f"; below half: {b['below_half_peak_because']}" if "below_half_peak_because" in b else ""), flush=True)
        # after every model, atomically: a crash loses nothing
        order = {n: i for i, n in enumerate(zoo.list_models())}
        atomic_write_text(args.out, json.dumps({**header, "rows": sorted(kept + rows, key=lambda r: order.get(r["model"], 0))},
                                               indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
