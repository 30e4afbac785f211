"""Cost and batch-1 CPU latency of one model at its canonical input, measured in a fresh process.

`measure` counts params and fvcore GFLOPs and times the eager model against `zoo.optimize`'s fast
path (fp32 and bf16, optionally compiled) in interleaved rounds, then reads the process's peak
memory; `measure_in_child` runs it as ``python -m zoo.benchmark.latency --measure NAME`` so that
reading is this model's alone. ``benchmarks/speed.py`` and ``zoo compare`` both time through here.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..inference.timing import time_interleaved
from .machine import peak_rss_since_exec_mib

__all__ = ["measure", "measure_in_child", "fast_paths", "json_from_child", "randomize_bn_stats",
           "MEMORY"]

MEMORY = ("peak RSS of a fresh child process (python -m zoo.benchmark.latency --measure NAME) that builds the model "
          "(random weights) and runs the eager, fast fp32 and fast bf16 latency measurements, compiled ones "
          "included (zoo.optimize keeps model copies); peak_rss_eager_mib is the reading after one eager call alone. "
          "Read from Linux VmHWM (/proc/self/status), not ru_maxrss, which a child inherits from its parent across "
          "fork + exec")


def randomize_bn_stats(model: nn.Module, seed: int = 0, affine: bool = False) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics (and, with ``affine``, scale and shift):
    a fresh model's are the identity, which hides a wrong BN fold, port or key mapping. In place;
    returns ``model``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                if affine and m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def fast_paths(model: nn.Module, x: torch.Tensor, *, layout: str = "auto", compile: bool = False
               ) -> Tuple[Dict[str, nn.Module], Dict[str, float]]:
    """`zoo.optimize`'s fp32 and bf16 fast paths of ``model`` (``fast_fp32``, ``fast_bf16``) and, with
    ``compile``, their compiled twins (``compiled_fp32``, ``compiled_bf16``, compiled on ``x``), and
    each compile's seconds (``compile_fp32_s``, ``compile_bf16_s``)."""
    from ..inference import optimize

    fns, compile_s = {}, {}
    for tag, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        fns[f"fast_{tag}"] = optimize(model, dtype, layout=layout)
        if compile:
            fns[f"compiled_{tag}"] = fns[f"fast_{tag}"].compiled_twin()
            start = time.perf_counter()
            fns[f"compiled_{tag}"](x)
            compile_s[f"compile_{tag}_s"] = round(time.perf_counter() - start, 1)
    return fns, compile_s


def measure(name: str, *, threads: int, warmup: int, reps: int, latency: bool = True,
            layout: str = "auto", compile: bool = False) -> Dict[str, Any]:
    """Params, GFLOPs and (``latency``) batch-1 latency and peak RSS at the canonical input.

    The fast path is timed as `zoo.optimize` builds it and, with ``compile``, also its compiled
    twin (``compiled_*_ms``, compile time in ``compile_*_s``); ``clips_per_s_*`` and ``speedup_*``
    are those of the faster of the two, named in ``path_*`` (what ``compile="auto"`` picks).
    All are timed in interleaved rounds (`time_interleaved`), so their ratios share the machine's
    slow spells.

    Meant for a fresh process (`measure_in_child`), so that the peak RSS is this model's; random
    weights with non-trivial BN statistics.
    """
    from ..flops import count_flops, count_params
    from ..models import build

    torch.set_num_threads(threads)
    model = randomize_bn_stats(build(name)).eval()
    info = model.info
    shape = (1, *info.input_shape)
    out = {"family": info.family, "params": count_params(model), "input_shape": list(info.input_shape),
           "views": list(info.test_views)}
    if latency:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            model(x)
        rss_eager = peak_rss_since_exec_mib()
        fns, compile_s = fast_paths(model, x, layout=layout, compile=compile)
        fns = {"eager_fp32": model, **fns}
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


def measure_in_child(name: str, *, threads: int, warmup: int, reps: int, layout: str, compile: bool
                     ) -> Dict[str, Any]:
    """`measure` in a fresh Python process (``python -m zoo.benchmark.latency``); its JSON result."""
    return json_from_child([sys.executable, "-m", "zoo.benchmark.latency", "--measure", name, "--threads",
                            str(threads), "--warmup", str(warmup), "--reps", str(reps), "--layout", layout]
                           + (["--compile"] if compile else []))


def json_from_child(cmd: Sequence[str]) -> Any:
    """Run ``cmd`` (a fresh Python process) and parse the last line it prints as JSON; a failure
    raises RuntimeError with the command, how it ended and the end of its stderr."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode:
        ended = f"exit status {proc.returncode}"
        if proc.returncode < 0:  # killed by a signal, which leaves no traceback
            ended = f"killed by {signal.Signals(-proc.returncode).name}"
            if proc.returncode == -signal.SIGKILL:
                ended += " (on Linux, usually the kernel's out-of-memory killer: see `dmesg`)"
        raise RuntimeError(f"{shlex.join(cmd)} failed, {ended}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m zoo.benchmark.latency --measure NAME``: one JSON line of `measure` (a fresh process)."""
    p = argparse.ArgumentParser(prog="python -m zoo.benchmark.latency")
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
