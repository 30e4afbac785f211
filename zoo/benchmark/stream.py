"""The streaming benchmark (``python -m zoo.benchmark.stream``): how fast each registered model
follows a video, decoding included.

The video: 60 s at 30 fps, 320x240, H.264 (easy SynthMotion clips of 1 s, letterboxed; made once
under the output directory). Per model, in a fresh process, random weights with non-trivial BN
statistics, the fp32 fast path (`zoo.optimize`), its canonical crop:

- ``sliding``: `zoo.inference.timeline.sliding_windows` over the whole file (what ``zoo predict
  --timeline`` runs): windows of the model's default length, 1 s stride, batches of 4.
- ``online`` (every model with an online form: the TSMs built with ``online=True``, MoViNet's stream
  models as registered): every frame through
  `zoo.inference.live.LiveRunner` with nothing dropped (``pace=False, drop=False``), fp32 and bf16.

``frames_per_s``: source frames handled per wall-clock second; ``realtime_factor``: video seconds
per wall-clock second (>= 1: keeps up with a live source). Online rows also give the model's
multiply-adds per frame (fvcore: its canonical clip's count over the clip's frames), the GMAC/s that
rate makes (decoding included in the time) and its fractions of this machine's matmul and conv peaks
of the row's dtype, measured at the start of the run (`zoo.benchmark.peaks`, kept in ``peaks``).
Targets (not tests): online TSM-R50 >= 30 frames/s on 2 cores, every sliding model >= 1x real time.

``memory`` rows: peak RSS of a ``zoo predict --timeline`` process on a short and a 5x longer
1080p video (memory is bounded by one window, not by the video).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from .latency import json_from_child, randomize_bn_stats
from .machine import machine_description, versions
from .peaks import describe, fractions, measure_peaks
from .results import fixed_width, load_results, provenance, write_results

__all__ = ["make_video", "measure_stream", "run_stream", "online_bench", "online_agreement", "TARGETS", "main"]

TARGETS = {"online_frames_per_s": 30.0, "sliding_realtime_factor": 1.0}
VIDEO = {"seconds": 60, "fps": 30, "width": 320, "height": 240}
ONLINE_DTYPES = ("fp32", "bf16")
MEMORY_VIDEOS = {"short": 30, "long": 150}  # seconds of 1080p
MEMORY_MODEL = "tsn_r50"


def make_video(path: str, seconds: int, fps: int, width: int, height: int, seed: int = 0) -> str:
    """One easy SynthMotion clip per second (classes in turn), ``height`` px, letterboxed to ``width``."""
    from ..data import synth

    if os.path.isfile(path):
        return path
    size = min(width, height) - min(width, height) % 2
    render = min(size, 240)  # larger frames are upscaled (drawing 1080p clips would take long)

    def frames():  # one second at a time: a long 1080p video never sits in memory
        for k in range(seconds):
            cls = synth.CLASSES[k % len(synth.CLASSES)]
            clip = synth.render_clip(cls, np.random.default_rng([seed, k]), render, fps, "easy")
            if render != size:
                t = torch.from_numpy(clip).permute(0, 3, 1, 2).float()
                clip = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear").clamp(0, 255)
                clip = clip.to(torch.uint8).permute(0, 2, 3, 1).numpy()
            frame = np.zeros((fps, height, width, 3), np.uint8)
            y, x = (height - size) // 2, (width - size) // 2
            frame[:, y:y + size, x:x + size] = clip
            yield from frame
    tmp = path + ".tmp.mp4"
    synth.write_video(tmp, frames(), fps=fps)
    os.replace(tmp, path)
    return path


def measure_stream(name: str, video: str, *, mode: str, dtype: str, threads: int) -> Dict[str, Any]:
    """One row: ``name`` over ``video`` in ``mode`` (``sliding`` or ``online``) on the ``dtype`` fast path."""
    from ..data.stream import FrameStream
    from ..flops import count_flops
    from ..inference import optimize
    from ..inference.live import LiveRunner
    from ..inference.timeline import plan_windows, sliding_windows
    from ..models import build

    torch.set_num_threads(threads)
    model = randomize_bn_stats(build(name, **(_online_args(name) if mode == "online" else {}))).eval()
    info = model.info
    fast = optimize(model, torch.bfloat16 if dtype == "bf16" else torch.float32)
    with FrameStream(video) as stream:
        fps, n_frames = stream.fps, stream.num_frames
        plan = plan_windows(info, fps, stride_sec=1.0) if mode == "sliding" else None
        start = time.perf_counter()
        if mode == "sliding":
            predictions = sum(1 for _ in sliding_windows(fast, stream, plan, info, batch=4))
        else:
            predictions = sum(1 for _ in LiveRunner(fast, info).run(stream, pace=False, drop=False))
        wall = time.perf_counter() - start
    row = {"model": name, "mode": mode, "dtype": dtype, "frames_per_s": round(n_frames / wall, 2),
           "realtime_factor": round(n_frames / fps / wall, 3), "predictions": predictions,
           "ms_per_prediction": round(1e3 * wall / predictions, 1), "seconds": round(wall, 1),
           "input": f"{info.crop_size} px crop, {info.num_frames} frames per clip" if mode == "sliding"
           else f"{info.crop_size} px crop, one frame per prediction"}
    if plan is not None:
        row.update(window_sec=round(plan.window_sec, 3), stride_sec=round(plan.stride_sec, 3), window_rule=plan.reason)
    row["meets_target"] = row["frames_per_s"] >= TARGETS["online_frames_per_s"] if mode == "online" else \
        row["realtime_factor"] >= TARGETS["sliding_realtime_factor"]
    if mode == "online":
        gmacs = count_flops(model, (1, *info.input_shape)).gflops / info.num_frames  # fvcore: 1 FLOP = 1 multiply-add
        row.update(gmacs_per_frame=round(gmacs, 3), gmacs_per_s=round(gmacs * row["frames_per_s"], 1))
    return row


def online_bench(name: str, bench_dir: str, *, epochs: int, seed: int = 0):
    """The online form of ``name``'s bench network (`zoo.benchmark.bench_training`: its preset at 32 px)
    trained on the SynthMotion bench data under ``bench_dir`` with the bench budget, or the weights
    an earlier call saved in ``bench_dir/online/<name>``; eval mode."""
    from ..engine import TrainConfig, train
    from ..engine.training import FINAL_WEIGHTS, LAST
    from ..models import bench_preset, build, resolve, unwrap_state_dict
    from .bench_training import DATA, TRAIN

    bench, data = bench_preset(name), os.path.join(bench_dir, "data")
    args = {**bench.model_args, **_online_args(name)}
    out = os.path.join(bench_dir, "online", name)
    weights = os.path.join(out, FINAL_WEIGHTS)
    if not os.path.isfile(weights):
        print(f"training the online bench network of {name} ({args}) under {out}", flush=True)
        train(TrainConfig(model=name, data=data, out=out, frames=bench.frames, size=DATA["size"], model_args=args,
                          epochs=epochs, seed=seed, eval_every=0, eval_views="1x1", progress=False,
                          **{k: v for k, v in TRAIN.items() if k != "amp"}))
        os.remove(os.path.join(out, LAST))
    with open(os.path.join(data, "classes.json")) as f:
        classes = len(json.load(f)["classes"])
    model = build(resolve(name, frames=bench.frames, size=DATA["size"], num_classes=classes, **args))
    model.load_state_dict(unwrap_state_dict(torch.load(weights, map_location="cpu", weights_only=True)))
    return model.eval()


def online_agreement(model, videos: Sequence[str]) -> Dict[str, Any]:
    """How often the online form ``model`` (eval mode, fp32), run frame by frame on each of ``videos``
    as `LiveRunner` runs it on the fp32 and bf16 fast paths, names the same top-1 class as the fp32
    offline model (``model`` itself, on a clip) on the clip of the model's last ``num_frames``
    frames, at every frame from the ``num_frames``-th on; and how often the bf16 stream names the
    fp32 stream's class there (``bf16_vs_fp32_stream_top1_agreement``: the precision alone). The
    offline clip starts from nothing where the stream carries what came before (TSM's shifts, at
    every layer; MoViNet's causal states): the first figures also measure what the window forgets."""
    from ..data import ClipTransform
    from ..data.stream import FrameStream
    from ..inference import optimize
    from ..inference.live import LiveRunner

    info = model.info
    transform, span = ClipTransform(info, crops=1), info.num_frames
    out: Dict[str, Any] = {"videos": len(videos), "frames_compared": 0}
    agree = dict.fromkeys(ONLINE_DTYPES, 0)
    same = 0  # frames where the bf16 stream names the fp32 stream's class: the numerics alone
    for path in videos:
        offline: List[int] = []
        online: Dict[str, List[int]] = {}
        for dtype in ONLINE_DTYPES:
            online[dtype] = []
            runner = LiveRunner(optimize(model, torch.bfloat16 if dtype == "bf16" else torch.float32), info)
            frames: List[torch.Tensor] = []
            with FrameStream(path) as stream:
                for pred in runner.run(stream, pace=False, drop=False):
                    frames.append(runner.last_frame)
                    if len(frames) < span:
                        continue
                    j = pred.frame_index - span + 1
                    if j == len(offline):  # the fp32 offline model on the clip of the last `span` frames
                        clip = transform(torch.stack(frames[-span:]), 0)[0][0]
                        with torch.inference_mode():
                            offline.append(model(clip[None]).argmax(-1).item())
                    online[dtype].append(pred.probs.argmax().item())
                    agree[dtype] += int(online[dtype][-1] == offline[j])
        out["frames_compared"] += len(offline)
        same += sum(a == b for a, b in zip(online["bf16"], online["fp32"], strict=True))
    out.update({f"{d}_top1_agreement": round(agree[d] / out["frames_compared"], 4) for d in ONLINE_DTYPES})
    out["bf16_vs_fp32_stream_top1_agreement"] = round(same / out["frames_compared"], 4)
    return out


def _online_args(name: str) -> Optional[Dict[str, Any]]:
    """The build options of ``name``'s online form: none where the model is online as registered
    (MoViNet's stream form), ``online=True`` where that makes it so (TSM); None: no online form."""
    from ..inference.live import is_online
    from ..models import build

    if is_online(build(name)):
        return {}
    try:
        return {"online": True} if is_online(build(name, online=True)) else None
    except (TypeError, ValueError):  # the family has no online option
        return None


def _memory_row(video: str, seconds: int, threads: int) -> Dict[str, Any]:
    """Peak RSS of a ``zoo predict --timeline`` child process on ``video``."""
    code = ("import sys, json, torch; torch.set_num_threads(%d); from zoo.cli import main; "
            "from zoo.benchmark.machine import peak_rss_since_exec_mib as rss; "
            "rc = main(sys.argv[1:]); print(json.dumps({'rc': rc, 'rss': rss()}))") % threads
    out_dir = video + ".timeline"
    res = json_from_child([sys.executable, "-c", code, "predict", MEMORY_MODEL, video, "--timeline", "--out", out_dir,
                           "--no-progress"])
    if res["rc"]:
        raise RuntimeError(f"zoo predict --timeline failed on {video}")
    return {"model": MEMORY_MODEL, "video": f"1920x1080, 30 fps, {seconds} s", "peak_rss_mib": round(res["rss"], 1)}


def run_stream(results: str, *, out_dir: str, models: Optional[Sequence[str]] = None, threads: Optional[int] = None,
               memory: bool = True, remeasure: bool = False, command: Optional[str] = None,
               agreement_dir: Optional[str] = None) -> Dict[str, Any]:
    """Measure every (model, mode, dtype) row of ``models``, writing ``results`` after each. Rows of an
    earlier file with the same settings are kept: those of other models always, those of ``models``
    unless ``remeasure``. With ``agreement_dir`` (the bench runs' directory, ``zoo compare``'s),
    also the online forms' agreement with the fp32 offline model (`_agreement_entry`)."""
    from ..models import list_models, model_info

    names = list(models) if models else list_models()
    for name in names:
        model_info(name)
    threads = threads or os.cpu_count() or 1
    os.makedirs(out_dir, exist_ok=True)
    video = make_video(os.path.join(out_dir, "stream_60s_320x240.mp4"), **VIDEO)
    settings = {"video": {**VIDEO, "content": "easy SynthMotion clips, 1 s each, letterboxed, H.264 crf 18"},
                "threads": threads, "path": "zoo.optimize fast path, not compiled", "batch_windows": 4,
                "stride_sec": 1.0, "weights": "random, non-trivial BN statistics", "decode": "included (PyAV, one pass)",
                "targets": TARGETS}
    previous = load_results(results) or {}
    same = previous.get("settings") == settings
    done = {(r["model"], r["mode"], r["dtype"]): r for r in previous.get("rows", [])} if same else {}
    doc = {"command": command or shlex.join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "versions": versions(), "machine": {**machine_description(), "threads": threads}, "settings": settings,
           # the memory rows (TSN-R50 on 1080p) belong to no one model: measured again only with every row
           "memory": previous.get("memory", []) if same and not (remeasure and not models) else []}
    todo = [(n, "sliding", "fp32") for n in names] + [(n, "online", d) for n in names if _online_args(n) is not None
                                                      for d in ONLINE_DTYPES]
    # rows of models not asked for this time stay (a run of a few models adds to the file)
    keep = [k for k in done if k not in todo]
    if remeasure:
        done = {k: done[k] for k in keep}
    if any(k not in done and k[1] == "online" for k in todo):  # the peaks the online rows are set against
        doc["peaks"] = measure_peaks(threads=threads)
        print(describe(doc["peaks"]), flush=True)
    print(f"stream benchmark: {sum(k not in done for k in todo)} of {len(todo)} row(s) to measure on {video} "
          f"({VIDEO['seconds']} s, {VIDEO['fps']} fps, {VIDEO['width']}x{VIDEO['height']}); {threads} thread(s); "
          f"results -> {results}", flush=True)
    for key in todo:
        if key not in done:
            name, mode, dtype = key
            row = json_from_child([sys.executable, "-m", "zoo.benchmark.stream", "--measure", name, "--mode", mode,
                                   "--dtype", dtype, "--threads", str(threads), "--video", video])
            if "gmacs_per_s" in row:
                row["peaks_gmacs"] = {kind: doc["peaks"][kind][dtype] for kind in ("matmul", "conv")}
                row["fraction"] = fractions(row["gmacs_per_s"], doc["peaks"], dtype)
            row["measured_by"] = {**provenance(doc), "machine": doc["machine"]}
            done[key] = row
            print(format_rows([row], header=len(done) == 1), flush=True)
        doc["rows"] = [done[k] for k in keep + todo if k in done]
        write_results(results, doc)
    doc["agreement"] = previous.get("agreement", {}) if same else {}
    for name in [n for n in names if _online_args(n) is not None] if agreement_dir else []:
        if remeasure or doc["agreement"].get(name, {}).get("how") != AGREEMENT:  # none yet, or another method's
            doc["agreement"][name] = _agreement_entry(name, agreement_dir)
            a = doc["agreement"][name]
            print(f"online {name}: top-1 agreement with the fp32 offline model, fp32 {a['fp32_top1_agreement']:.2%}, "
                  f"bf16 {a['bf16_top1_agreement']:.2%}; bf16 stream with the fp32 stream "
                  f"{a['bf16_vs_fp32_stream_top1_agreement']:.2%}", flush=True)
            write_results(results, doc)
    if memory and not doc["memory"]:
        for label, seconds in MEMORY_VIDEOS.items():
            path = make_video(os.path.join(out_dir, f"stream_{seconds}s_1080p.mp4"), seconds, 30, 1920, 1080)
            doc["memory"].append(_memory_row(path, seconds, threads))
            print(f"memory: {doc['memory'][-1]}", flush=True)
        write_results(results, doc)
    return doc


AGREEMENT = ("the online form of the model's bench network (its preset at 32 px, zoo.benchmark.bench_training), "
             "trained on the SynthMotion bench data (zoo compare's full budget), run frame by frame on each "
             "validation video by LiveRunner on the fp32 and bf16 fast paths, against the fp32 offline model on the "
             "clip of its last num_frames frames (which starts from nothing where the stream carries the past), at "
             "every frame from the num_frames-th on; bf16_vs_fp32_stream: the bf16 stream against the fp32 stream")


def _agreement_entry(name: str, bench_dir: str) -> Dict[str, Any]:
    """`online_agreement` of ``name``'s online bench network (`online_bench`) on the bench data's
    validation videos, generated as ``zoo compare`` generates them when missing."""
    from ..data import build_dataset
    from ..data.synth import CLASSES, generate_or_reuse
    from .bench_training import DATA
    from .compare import BUDGETS

    budget, data = BUDGETS["full"], os.path.join(bench_dir, "data")
    generate_or_reuse(data, list(CLASSES[:budget["classes"]]), per_class=budget["per_class"], seed=0,
                      frames=DATA["frames"], size=DATA["size"], difficulty=DATA["difficulty"])
    model = online_bench(name, bench_dir, epochs=budget["epochs"])
    videos = [rec.path for rec in build_dataset(data, model.info, "val").records]
    return {"how": AGREEMENT, "frames": model.info.num_frames, "size": model.info.crop_size,
            **online_agreement(model, videos)}


def format_rows(rows: List[Dict[str, Any]], header: bool = True) -> str:
    cols = [("model", 19), ("mode", 7), ("dtype", 5), ("frames/s", 8), ("x realtime", 10), ("ms/pred", 8),
            ("window s", 8), ("GMAC/s", 7), ("% conv peak", 11), ("target", 6)]
    return fixed_width(cols, [[r["model"], r["mode"], r["dtype"], f"{r['frames_per_s']:.1f}", f"{r['realtime_factor']:.2f}",
                               f"{r['ms_per_prediction']:.0f}", f"{r['window_sec']:.2f}" if "window_sec" in r else "-",
                               f"{r['gmacs_per_s']:.0f}" if "gmacs_per_s" in r else "-",
                               f"{100 * r['fraction']['of_conv_peak']:.1f}" if "fraction" in r else "-",
                               "yes" if r["meets_target"] else "no"] for r in rows], header)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.benchmark.stream", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", help="comma-separated model names (default: every registered model)")
    p.add_argument("--results", default="benchmarks/results/stream.json")
    p.add_argument("--out-dir", default="runs/stream", help="where the test videos are made (default runs/stream)")
    p.add_argument("--threads", type=int)
    p.add_argument("--no-memory", action="store_true", help="skip the 1080p peak-RSS rows")
    p.add_argument("--remeasure", action="store_true", help="measure again the rows an earlier file has")
    p.add_argument("--agreement", metavar="BENCH_DIR", nargs="?", const="runs/compare",
                   help="also measure the online forms' top-1 agreement with the fp32 offline model on their bench "
                        "networks (trained under BENCH_DIR/online when missing; default runs/compare)")
    p.add_argument("--measure", metavar="NAME", help=argparse.SUPPRESS)  # one row (a child process)
    p.add_argument("--mode", default="sliding", choices=("sliding", "online"), help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help=argparse.SUPPRESS)
    p.add_argument("--video", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.measure:
        print(json.dumps(measure_stream(a.measure, a.video, mode=a.mode, dtype=a.dtype,
                                        threads=a.threads or os.cpu_count() or 1)))
        return 0
    doc = run_stream(a.results, out_dir=a.out_dir, models=a.models.split(",") if a.models else None,
                     threads=a.threads, memory=not a.no_memory, remeasure=a.remeasure, agreement_dir=a.agreement,
                     command=shlex.join(["python", "-m", "zoo.benchmark.stream", *(argv or sys.argv[1:])]))
    print(f"\n{format_rows(doc['rows'])}\nresults: {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
