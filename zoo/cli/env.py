"""``zoo env``: what a bug report needs: versions, CPU, threads, the compiler and the native kernels."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

__all__ = ["register", "environment_report"]

_LIBRARIES = ("torch", "torchvision", "timm", "fvcore", "iopath", "av", "numpy", "yaml", "matplotlib")
# the CPU features the fast path's kernels and oneDNN care about (a subset of /proc/cpuinfo's flags)
_FEATURES = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "asimd", "sve")


def _compiler(cxx: str) -> str:
    if shutil.which(cxx) is None:
        return f"{cxx}: not found on PATH (the native kernels cannot be built; install g++ or set CXX)"
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"{cxx}: {e}"
    return f"{cxx}: {out.splitlines()[0] if out else 'unknown version'}"


def environment_report() -> str:
    """The report `zoo env` prints: one ``key: value`` line per fact."""
    import torch

    from .. import __version__
    from ..benchmark.machine import cpu_flags, cpu_name
    from ..inference import native
    from ..inference.memory import cache_unavailable_reason
    from ..inference.winograd import winograd_unavailable_reason

    lines = [f"zoo: {__version__} ({os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})",
             f"python: {platform.python_version()} ({sys.executable})", f"platform: {platform.platform()}"]
    for name in _LIBRARIES:
        try:
            module = __import__(name)
            lines.append(f"{name}: {getattr(module, '__version__', 'unknown')}")
        except ImportError as e:
            lines.append(f"{name}: not importable ({e})")
    flags = cpu_flags()
    lines += [f"cpu: {cpu_name()}, {os.cpu_count()} logical CPUs",
              f"cpu features: {' '.join(f for f in _FEATURES if f in flags) or 'none of ' + ', '.join(_FEATURES)}",
              f"torch threads: {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}); "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
              f"torch cpu capability: {torch.backends.cpu.get_cpu_capability()}; "
              f"mkldnn: {torch.backends.mkldnn.is_available()}; cuda: {torch.cuda.is_available()}",
              f"compiler: {_compiler(os.environ.get('CXX', 'c++'))}",
              f"kernel cache: {native.library_dir()} (set ZOO_CACHE_DIR to move it)"]
    for what, reason in (("memory cache", cache_unavailable_reason), ("winograd", winograd_unavailable_reason)):
        why = reason()
        lines.append(f"native {what}: " + ("built" if why is None else f"NOT built, the fast path runs without it: "
                                                                        f"{' '.join(why.split())[:500]}"))
    return "\n".join(lines)


def cmd_env(args) -> int:
    print(environment_report())
    return 0


def register(sub):
    p = sub.add_parser("env", help="versions, CPU features, threads, compiler and native kernels (for bug reports)",
                       description="Print the versions of zoo, Python and its libraries, the CPU and its features, "
                                   "the thread settings, the C++ compiler, the native kernel cache directory and "
                                   "whether each native kernel of the fast path built (and why not). It builds the "
                                   "kernels if they are not cached yet (seconds). Paste the output into a bug report.")
    p.set_defaults(func=cmd_env)
