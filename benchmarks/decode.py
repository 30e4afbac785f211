"""Decoding benchmark: sampled-clip decoding (seek + decode only the needed range) versus
decoding every frame of a long video, and DataLoader throughput on SynthMotion.

    python benchmarks/decode.py [--frames 600] [--size 320x240] [--gop 60] [--repeats 7]
                                [--workers 0,2] [--out benchmarks/results/decode.json]

Writes the numbers, the command, library versions and the machine to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import av  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

import zoo  # noqa: E402
from zoo.benchmark.machine import machine_description  # noqa: E402
from zoo.data import PyAVDecoder, build_dataset, collate, synth  # noqa: E402
from zoo.data.samplers import DenseSampler, SegmentSampler  # noqa: E402


def write_long_video(path: str, frames: int, width: int, height: int, gop: int, fps: int = 30) -> None:
    """A long H.264 video made of SynthMotion shots (a new shot every 60 frames)."""
    size = max(width, height)
    with av.open(path, "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"crf": "23", "preset": "veryfast", "g": str(gop)})
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        done, shot = 0, 0
        while done < frames:
            n = min(60, frames - done)
            clip = synth.render_clip(synth.CLASSES[shot % len(synth.CLASSES)], np.random.default_rng(shot), size, n)
            for f in clip[:, :height, :width]:
                for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    c.mux(p)
            done, shot = done + n, shot + 1
        for p in s.encode():
            c.mux(p)


def time_clips(path: str, sampler, repeats: int, rng, threads: int) -> dict:
    """Median seconds per clip for selective decoding and for decode-everything-then-index."""
    sel, full = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with PyAVDecoder(path, threads=threads) as d:
            clips = sampler(d.meta.num_frames, rng)
            idx = np.unique(np.concatenate(clips))
            a = d.get_frames(idx.tolist())
        sel.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with PyAVDecoder(path, threads=threads) as d:
            b = d.read_all()[idx]
        full.append(time.perf_counter() - t0)
        if a.shape != b.shape:
            raise RuntimeError("selective and full decoding disagree on the clip shape")
    ms, mf = statistics.median(sel), statistics.median(full)
    return {"frames_per_clip": int(sum(len(c) for c in clips)), "selective_s": round(ms, 4), "full_s": round(mf, 4),
            "speedup": round(mf / ms, 2)}


def loader_throughput(root: str, info, workers: int, batches: int) -> dict:
    ds = build_dataset(root, info, "train", train=True)
    dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=workers, collate_fn=collate,
                                     persistent_workers=False)
    n, t0, first = 0, time.perf_counter(), None
    for i, b in enumerate(dl):
        if i == 0:
            first = time.perf_counter() - t0
            t0, n = time.perf_counter(), 0  # exclude worker start-up
            continue
        n += len(b["label"])
        if i >= batches:
            break
    dt = time.perf_counter() - t0
    return {"workers": workers, "clips": n, "seconds": round(dt, 3), "clips_per_s": round(n / dt, 1),
            "first_batch_s": round(first, 3), "input": list(ds[0]["video"].shape)}


def machine() -> dict:
    return {**machine_description(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=600, help="length of the long video (default 600 = 20 s)")
    p.add_argument("--size", default="320x240", help="WxH of the long video")
    p.add_argument("--gop", type=int, default=60, help="keyframe interval of the long video")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="decoder threads (0 = FFmpeg's choice)")
    p.add_argument("--workers", default="0,2", help="DataLoader worker counts to measure")
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--models", default="tsm_r50,i3d_inception_v1", help="model infos for the DataLoader runs")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "decode.json"))
    args = p.parse_args(argv)
    command = "python " + " ".join([os.path.relpath(__file__)] + (sys.argv[1:] if argv is None else list(argv)))
    print(f"$ {command}")
    w, h = (int(x) for x in args.size.lower().split("x"))
    rng = np.random.default_rng(0)
    results = {"command": command, "versions": {"python": platform.python_version(), "torch": torch.__version__,
                                                "torchvision": torchvision.__version__, "av": av.__version__,
                                                "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
                                                "numpy": np.__version__, "zoo": zoo.__version__},
               "machine": machine(), "long_video": {}, "clips": {}, "dataloader": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "long.mp4")
        t0 = time.perf_counter()
        write_long_video(path, args.frames, w, h, args.gop)
        with PyAVDecoder(path) as d:
            meta = d.meta
        results["long_video"] = {"frames": meta.num_frames, "fps": meta.fps, "size": f"{w}x{h}", "gop": args.gop,
                                 "codec": meta.codec, "bytes": os.path.getsize(path),
                                 "write_s": round(time.perf_counter() - t0, 2)}
        print(f"long video: {results['long_video']}")
        cases = {
            "dense 8x8 (1 clip, 64-frame window)": DenseSampler(8, 8, train=True),
            "dense 32x2 (1 clip, 64-frame window)": DenseSampler(32, 2, train=True),
            "dense 16x4 (1 clip)": DenseSampler(16, 4, train=True),
            "tsn 8 segments (whole video)": SegmentSampler(8, train=True),
        }
        for name, sampler in cases.items():
            r = time_clips(path, sampler, args.repeats, rng, args.threads)
            results["clips"][name] = r
            print(f"{name:40s} {r['frames_per_clip']:3d} frames: selective {1e3 * r['selective_s']:7.1f} ms, "
                  f"full {1e3 * r['full_s']:7.1f} ms, speedup {r['speedup']:.1f}x")

        sm = os.path.join(tmp, "synth")
        t0 = time.perf_counter()
        g = synth.generate(sm, per_class=12, frames=16, size=64, seed=0)
        results["synth_generation"] = {"clips": len(g.videos), "frames": 16, "size": 64,
                                       "seconds": round(time.perf_counter() - t0, 2)}
        print(f"SynthMotion generation: {results['synth_generation']}")
        for name in [m for m in args.models.split(",") if m]:
            if not zoo.is_model(name):
                print(f"(skipping {name}: not registered)")
                continue
            info = zoo.model_info(name).replace(crop_size=56, resize_size=64, train_jitter=(64, 80))
            for workers in (int(x) for x in args.workers.split(",")):
                r = loader_throughput(sm, info, workers, args.batches)
                r["model_info"] = f"{name} (crop 56, resize 64)"
                results["dataloader"].append(r)
                print(f"DataLoader {name:18s} workers={workers}: {r['clips_per_s']:6.1f} clips/s, input {r['input']}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
