"""Winograd F(4x4, 3x3) against the direct convolution, one 3x3 stride-1 conv at a time.

For each shape (a ResNet stage's 3x3 conv over 8 frames at 224², and R(2+1)D-18's spatial convs
over 16 frames at 112²), in one process with the same thread count: the direct conv as the fp32
fast path ran it before (oneDNN, channels-last, bias fused) and `zoo.inference.winograd.WinogradConv`, both
inside a `zoo.inference.memory.MemoryCache` scope as in `zoo.optimize`, timed in interleaved rounds
(median; below `MIN_TILES` output tiles the module runs the direct conv, and the row says so); and
the largest |error| of each relative to the largest |output|, against a float64
conv of the same float32 inputs.

    python benchmarks/winograd.py            # writes benchmarks/results/winograd.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.benchmark.machine import machine_description, versions
from zoo.inference.memory import MemoryCache
from zoo.inference.winograd import MIN_TILES, TILE, WinogradConv

RESULTS = Path(__file__).parent / "results"
SHAPES = [  # (where, frames as batch, channels, side)
    ("ResNet res2 (TSM/TSN/PAN, 8x224²)", 8, 64, 56),
    ("ResNet res3", 8, 128, 28),
    ("ResNet res4", 8, 256, 14),
    ("ResNet res5", 8, 512, 7),
    ("R(2+1)D-18 res2 spatial (16x112², 64->144)", 16, (64, 144), 56),
    ("R(2+1)D-18 res5 spatial (2x7², 512->1152)", 2, (512, 1152), 7),
]


def interleaved_ms(fns: dict, x: torch.Tensor, reps: int) -> dict:
    times = {k: [] for k in fns}
    for f in fns.values():
        f(x)
    for _ in range(reps):
        for k, f in fns.items():
            f(x)  # untimed, so each timed call runs warm
            t = time.perf_counter()
            f(x)
            times[k].append(time.perf_counter() - t)
    return {k: 1e3 * sorted(v)[len(v) // 2] for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--out", default=str(RESULTS / "winograd.json"))
    args = p.parse_args()
    gen = torch.Generator().manual_seed(0)
    rows = []
    with torch.inference_mode():
        for where, batch, channels, side in SHAPES:
            c_in, c_out = channels if isinstance(channels, tuple) else (channels, channels)
            conv = nn.Conv2d(c_in, c_out, 3, padding=1).eval().to(memory_format=torch.channels_last)
            winograd = WinogradConv(conv)
            x = torch.randn(batch, c_in, side, side, generator=gen).contiguous(memory_format=torch.channels_last)
            cache = MemoryCache()

            def scoped(module):
                def run(inp):
                    with cache.scope():
                        return module(inp)
                return run

            ms = interleaved_ms({"direct": scoped(conv), "winograd": scoped(winograd)}, x, args.reps)
            ref = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
            err = {k: ((m(x).double() - ref).abs().max() / ref.abs().max()).item()
                   for k, m in (("direct", conv), ("winograd", winograd))}
            macs = batch * side * side * c_in * c_out * 9
            tiles = batch * (-(-side // TILE)) ** 2
            rows.append({"where": where, "input": [batch, c_in, side, side], "out_channels": c_out, "tiles": tiles,
                         "winograd_path": "winograd" if tiles >= MIN_TILES else f"direct (under {MIN_TILES} tiles)",
                         "direct_ms": ms["direct"], "winograd_ms": ms["winograd"],
                         "speedup": ms["direct"] / ms["winograd"],
                         "direct_gmacs_per_s": macs / ms["direct"] / 1e6,
                         "direct_max_rel_err": err["direct"], "winograd_max_rel_err": err["winograd"]})
            r = rows[-1]
            print(f"{where:44s} direct {r['direct_ms']:7.2f} ms  WinogradConv {r['winograd_ms']:7.2f} ms  "
                  f"x{r['speedup']:.2f}  rel err {r['direct_max_rel_err']:.1e} -> {r['winograd_max_rel_err']:.1e}"
                  f"  ({tiles} tiles: {r['winograd_path']})")
    out = {"how": f"python benchmarks/winograd.py --reps {args.reps}: batch = frames, fp32, channels-last, "
                  "interleaved rounds, median ms per call, both inside a MemoryCache scope",
           "machine": {**machine_description(), "threads": torch.get_num_threads(), "versions": versions()},
           "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
