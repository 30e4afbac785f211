"""Building zoo's small C++ kernels (``zoo/inference/csrc``) on first use, with the system C++ compiler.

Each library is compiled once into ``$ZOO_CACHE_DIR/native`` (default ``~/.cache/zoo/native``),
under a name keyed by its source, the compile command, the torch version and, for builds tuned to
this CPU (``-march=native``), the CPU's feature flags; the build is atomic, so concurrent first
uses or a crash never leave half a library.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import torch

__all__ = ["build_library", "load_library", "load_openmp_kernels", "library_dir", "TORCH_LIB"]

_log = logging.getLogger("zoo.inference")

TORCH_LIB = Path(torch.__file__).parent / "lib"


def library_dir() -> Path:
    if os.environ.get("ZOO_CACHE_DIR"):
        return Path(os.environ["ZOO_CACHE_DIR"]) / "native"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zoo" / "native"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def load_library(what: str, build: Callable[[], Path]) -> Tuple[Optional[ctypes.CDLL], Optional[str]]:
    """``(library, None)`` for the library ``build()`` returns, or ``(None, why)`` after logging one
    line that the fast path runs without ``what`` (call it once per process: the callers cache it)."""
    try:
        return ctypes.CDLL(str(build())), None
    except (RuntimeError, OSError) as e:
        return None, fallback(what, str(e))


def load_openmp_kernels(what: str, source: Path) -> Tuple[Optional[ctypes.CDLL], Optional[str]]:
    """`load_library` of ``source`` built for this CPU (``-march=native``) with OpenMP, linked against
    torch's own libgomp: one OpenMP runtime, one thread pool, so ``torch.set_num_threads`` applies."""
    return load_library(what, lambda: build_library(source, library_dir(), flags=["-march=native", "-fopenmp"],
                                                    link=[f"-L{TORCH_LIB}", f"-Wl,-rpath,{TORCH_LIB}"]))


def fallback(what: str, why: str) -> str:
    """Log one line that the fast path runs without ``what`` because of ``why``; returns ``why``."""
    first = why.strip().splitlines()[0] if why.strip() else "unknown reason"
    _log.warning("zoo: the fast path runs without its %s: %s (`zoo env` shows the details)", what, first)
    return why


def build_library(source: Path, out_dir: Path, *, cxx: Optional[str] = None, flags: Sequence[str] = (),
                  link: Sequence[str] = ()) -> Path:
    """Compile ``source`` into a shared library in ``out_dir`` (once per key, see above); its path.

    Raises RuntimeError naming the compiler and its message when it cannot be built."""
    cxx = cxx or os.environ.get("CXX", "c++")
    abi = int(torch.compiled_with_cxx11_abi())
    cmd_flags = ["-O3", "-std=c++17", "-shared", "-fPIC", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *flags]
    key_text = f"{torch.__version__} {cxx} {cmd_flags} {link}"
    if "-march=native" in flags:
        key_text += _cpu_flags()
    source = Path(source)
    key = hashlib.sha256(source.read_bytes() + key_text.encode()).hexdigest()[:16]
    target = Path(out_dir) / f"{source.stem}-{key}.so"
    if target.exists():
        return target
    if shutil.which(cxx) is None:
        raise RuntimeError(f"no C++ compiler {cxx!r} on PATH (install g++ or set CXX)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [cxx, *cmd_flags, str(source), "-o", tmp, *link]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{cxx} could not build {source.name}: {done.stderr.strip()[-2000:]}")
        os.replace(tmp, target)  # atomic: a concurrent build or a crash never leaves half a library
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
