"""Motion maps per second: PAN's Persistence of Appearance versus OpenCV optical flow, on CPU.

The PAN paper (Zhang et al., ACM MM 2020) claims PA is >1000x faster than optical flow
(8196 vs 8 fps), without stating hardware or protocol. This script measures, in one run, on the
same frames and with the same thread count:

* ``pa_module``: ``zoo.models.pan.PA`` exactly as the network runs it (fp32, segments of m=4
  consecutive frames, conv over all 4 frames, 3 maps per segment), batched over all segments
  of one clip (``--clips`` x 8 segments per call): batching is how PA runs inside PAN.
* ``pa_diff_fp32``: the same maths with the conv applied to frame differences (the conv's bias
  cancels in ``conv(x_i) - conv(x_i+1)``, so ``conv(x_i - x_i+1)`` without bias is exact up to
  rounding): 3 convs per 3 maps instead of 4.
* ``pa_diff_bf16``: that form with the conv in bfloat16, channels-last (oneDNN uses AMX/AVX512-bf16
  where the CPU has them); differences and norm in fp32. Its deviation from ``pa_module`` is reported.
* ``tvl1``: OpenCV Dual TV-L1 (``cv2.optflow.DualTVL1OpticalFlow``, default settings), one pair
  per call on grayscale uint8 frames.
* ``farneback``: ``cv2.calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)``.

One *map* is the motion between one pair of consecutive frames at full resolution: a HxW PA map,
or a HxWx2 flow field. Preprocessing (normalisation, grey conversion) is done beforehand and not
timed. Methods are timed in interleaved rounds (so load from other processes hits all of them
alike) and the median per-call time is reported.

    python benchmarks/pa_vs_flow.py [--threads 1] [--size 224] [--clips 1] [--rounds 5]

Needs ``opencv-contrib-python-headless`` (the ``bench`` extra). Frames are synthetic unless
``--video`` is given (decoded with PyAV): a textured background panning 1 px/frame plus two
textured discs on their own paths.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from zoo.benchmark.machine import machine_description  # noqa: E402
from zoo.models import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from zoo.models.pan import PA, PA_EPS  # noqa: E402

try:
    import cv2
except ImportError:  # pragma: no cover - benchmark-only dependency
    sys.exit("this benchmark needs OpenCV with the contrib modules: pip install opencv-contrib-python-headless "
             "(or pip install zoo[bench])")

PAPER_CLAIM = {"pa_fps": 8196, "flow_fps": 8, "ratio": 1024.5,
               "source": "Zhang et al., ACM MM 2020 / zhang-can/PAN-PyTorch README ('over 1000x faster')"}


def synthetic_clip(num_frames: int, size: int, seed: int = 0) -> np.ndarray:
    """``[T, H, W, 3]`` uint8: a smooth random texture panning right by 1 px per frame, with two
    textured discs moving on their own straight paths."""
    rng = np.random.default_rng(seed)
    big = size + num_frames + 16
    bg = cv2.GaussianBlur(rng.random((big, big, 3)).astype(np.float32), (0, 0), 2.0)
    disc_tex = [cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 1.0) for _ in range(2)]
    yy, xx = np.mgrid[:size, :size]
    frames = []
    for t in range(num_frames):
        img = bg[8:8 + size, 8 + t:8 + t + size].copy()
        for k, (cy, cx, vy, vx, r) in enumerate([(0.3, 0.2, 0.0, 2.0, 0.15), (0.7, 0.8, -1.5, -1.0, 0.12)]):
            mask = (yy - (cy * size + vy * t)) ** 2 + (xx - (cx * size + vx * t)) ** 2 < (r * size) ** 2
            img[mask] = disc_tex[k][mask]
        frames.append(img)
    clip = np.stack(frames)
    clip = (clip - clip.min()) / (clip.max() - clip.min())
    return (clip * 255).round().astype(np.uint8)


def video_clip(path: str, num_frames: int, size: int) -> np.ndarray:
    import av

    frames = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[:2]
            s = min(h, w)
            img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
            frames.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))
            if len(frames) == num_frames:
                break
    if len(frames) < num_frames:
        raise ValueError(f"{path} has {len(frames)} frames, the benchmark needs {num_frames}")
    return np.stack(frames)


class DiffPA(torch.nn.Module):
    """PA as ``|| conv_w(x_i - x_{i+1}) + eps ||`` (no bias: it cancels), optionally in bf16."""

    def __init__(self, pa: PA, dtype: torch.dtype):
        super().__init__()
        self.weight = pa.conv.weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        self.padding = pa.conv.padding
        self.dtype = dtype

    def forward(self, seg: torch.Tensor) -> torch.Tensor:
        n, m, c, h, w = seg.shape
        diff = (seg[:, :-1] - seg[:, 1:]).reshape(n * (m - 1), c, h, w)
        diff = diff.to(self.dtype).contiguous(memory_format=torch.channels_last)
        feats = F.conv2d(diff, self.weight, None, padding=self.padding).float()
        return torch.linalg.vector_norm(feats + PA_EPS, dim=1).view(n, m - 1, h, w)


def machine(loadavg_at_start) -> dict:
    return {**machine_description(), "loadavg_at_start": loadavg_at_start}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    p.add_argument("--size", type=int, default=224, help="square frame size (default 224)")
    p.add_argument("--clips", type=int, default=1, help="clips per PA call, 8 segments x 4 frames each")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (median reported)")
    p.add_argument("--video", help="use the first frames of this video instead of the synthetic clip")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                 "pa_vs_flow.json"))
    args = p.parse_args(argv)

    loadavg_at_start = os.getloadavg()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    torch.manual_seed(0)
    segments, m = 8 * args.clips, 4
    num_frames = segments * m
    if args.video:
        clip, source = video_clip(args.video, num_frames, args.size), f"video {os.path.basename(args.video)}"
    else:
        clip, source = synthetic_clip(num_frames, args.size), "synthetic (numpy): panning texture + 2 moving discs"

    # PA input: ImageNet-normalised float frames, grouped into segments of m consecutive frames
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    frames = (torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255 - mean) / std
    seg = frames.reshape(segments, m, 3, args.size, args.size).contiguous()
    pa = PA(m).eval()
    torch.nn.init.normal_(pa.conv.weight, 0, 0.1)  # speed does not depend on the weights
    pa_methods = {"pa_module": pa, "pa_diff_fp32": DiffPA(pa, torch.float32),
                  "pa_diff_bf16": DiffPA(pa, torch.bfloat16)}
    maps_per_call = segments * (m - 1)

    # flow input: grey uint8 consecutive pairs inside each segment (the same pairs PA uses)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip]
    pairs = [(grey[s * m + i], grey[s * m + i + 1]) for s in range(segments) for i in range(m - 1)]
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    flow_methods = {
        "tvl1": lambda a, b: tvl1.calc(a, b, None),
        "farneback": lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0),
    }

    with torch.inference_mode():
        ref = pa(seg)
        deviation = {}
        for name, fn in pa_methods.items():
            out = fn(seg)  # also the warm-up call
            deviation[name] = {"max_abs": float((out - ref).abs().max()),
                               "max_rel_to_max": float((out - ref).abs().max() / ref.abs().max())}
        for fn in flow_methods.values():
            fn(*pairs[0])
        times = {name: [] for name in (*pa_methods, *flow_methods)}
        for r in range(args.rounds):
            for name, fn in pa_methods.items():
                t0 = time.perf_counter()
                fn(seg)
                times[name].append(time.perf_counter() - t0)
            for name, fn in flow_methods.items():
                a, b = pairs[(r + 1) % len(pairs)]
                t0 = time.perf_counter()
                fn(a, b)
                times[name].append(time.perf_counter() - t0)

    results = {}
    for name, ts in times.items():
        per_call = statistics.median(ts)
        n_maps = maps_per_call if name in pa_methods else 1
        results[name] = {"maps_per_s": n_maps / per_call, "seconds_per_call": per_call, "maps_per_call": n_maps,
                         "all_seconds": ts}
    for name in pa_methods:
        results[name]["input_frames_per_s"] = results[name]["maps_per_s"] * m / (m - 1)
        results[name]["deviation_from_pa_module"] = deviation[name]
    ratios = {f"{a}/{b}": results[a]["maps_per_s"] / results[b]["maps_per_s"]
              for a in pa_methods for b in flow_methods}

    report = {
        "benchmark": "PA motion maps/s versus OpenCV optical flow (CPU)",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "protocol": {
            "threads": args.threads, "resolution": [args.size, args.size], "frames": source,
            "pa_batch": f"{args.clips} clip(s) x {segments} segments x {m} frames -> {maps_per_call} maps per call",
            "flow_batch": "1 pair per call (grey uint8)",
            "one_map": "motion between one pair of consecutive frames at full resolution "
                       "(PA: HxW map; flow: HxWx2 field)",
            "timing": f"median of {args.rounds} interleaved rounds after one warm-up call; "
                      "preprocessing not timed",
            "tvl1": "cv2.optflow.DualTVL1OpticalFlow_create() defaults",
            "farneback": "pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2",
        },
        "results": results,
        "ratios": ratios,
        "paper_claim": PAPER_CLAIM,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "opencv": cv2.__version__,
                     "numpy": np.__version__},
        "machine": {**machine(loadavg_at_start), "loadavg_at_end": os.getloadavg()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)

    print(f"PA vs optical flow, {args.size}x{args.size}, {args.threads} thread(s), frames: {source}")
    print(f"PA batch: {report['protocol']['pa_batch']}; flow: 1 pair per call; one map = one consecutive pair")
    for name, r in results.items():
        extra = ""
        if "deviation_from_pa_module" in r:
            extra = f"  (max |diff| vs pa_module: {r['deviation_from_pa_module']['max_rel_to_max']:.1e} of max)"
        print(f"  {name:14s} {r['maps_per_s']:10.2f} maps/s  {r['seconds_per_call'] * 1e3:9.1f} ms/call{extra}")
    for k, v in ratios.items():
        print(f"  ratio {k:26s} {v:9.1f}x")
    print(f"paper: {PAPER_CLAIM['pa_fps']} vs {PAPER_CLAIM['flow_fps']} fps (~{PAPER_CLAIM['ratio']:.0f}x); "
          f"load average {report['machine']['loadavg_at_start']} -> {report['machine']['loadavg_at_end']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
