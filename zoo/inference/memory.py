"""Keeping a fast path's activation memory between calls: `MemoryCache`.

glibc hands freed memory at the top of its heap back to the OS and serves large blocks with
``mmap``, so a network whose activations take tens of MB can fault them in page by page on every
call, and two runs of one model differ by whether their heap happened to stay resident. Inside
``cache.scope()``, CPU tensor allocations of 16 KiB and more made on the calling thread come from a
free list of blocks (static shapes are served from it from the second call on), the way
PyTorch's CUDA caching allocator and ONNX Runtime's CPU arena work. Allocations on other threads,
or outside any scope, go to PyTorch's allocator unchanged.

The allocator is a few lines of C++ against c10 (``zoo/inference/csrc/memory_cache.cpp``), compiled with
the system C++ compiler on first use into ``$ZOO_CACHE_DIR`` (default
``~/.cache/zoo``), keyed by the source, the torch version and the compiler. Without a compiler,
`cache_unavailable_reason` says why and `OptimizedModel` runs without a cache.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import weakref
from pathlib import Path
from typing import Dict, Iterator, Optional

from . import native

__all__ = ["MemoryCache", "cache_unavailable_reason", "build_library"]

_SOURCE = Path(__file__).parent / "csrc" / "memory_cache.cpp"


def build_library(out_dir: Path, cxx: Optional[str] = None) -> Path:
    """Compile the allocator into ``out_dir`` (once per source, torch and compiler); its path.

    Raises RuntimeError naming the compiler and its message when it cannot be built."""
    return native.build_library(_SOURCE, out_dir, cxx=cxx, flags=[f"-I{native.TORCH_LIB.parent / 'include'}"],
                                link=[f"-L{native.TORCH_LIB}", "-lc10", f"-Wl,-rpath,{native.TORCH_LIB}"])


@functools.lru_cache(maxsize=None)
def _library():
    """(ctypes library, None) with the allocator installed, or (None, why not)."""
    lib, why = native.load_library("memory cache", lambda: build_library(native.library_dir()))
    if lib is None:
        return None, why
    lib.zoo_cache_new.restype = ctypes.c_void_p
    lib.zoo_cache_delete.argtypes = [ctypes.c_void_p]
    lib.zoo_cache_trim.argtypes = [ctypes.c_void_p]
    lib.zoo_cache_enter.restype = ctypes.c_void_p
    lib.zoo_cache_enter.argtypes = [ctypes.c_void_p]
    lib.zoo_cache_exit.argtypes = [ctypes.c_void_p]
    lib.zoo_cache_stats.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)]
    if not lib.zoo_cache_install():
        return None, native.fallback("memory cache", "the current CPU allocator has no raw deleter to wrap")
    return lib, None


def cache_unavailable_reason() -> Optional[str]:
    """None when `MemoryCache` works in this process, else why it does not."""
    return _library()[1]


class MemoryCache:
    """A free list of CPU tensor memory blocks, used inside `scope` (see the module docstring).

    Blocks come in size classes 1/8 of a power of two apart, and a request takes the smallest
    free block that fits (if under 4x its size), so activations of similar sizes share blocks.
    Free blocks are kept up to 3x the peak of live bytes, so changing shapes cannot grow it
    without bound; at a static shape it settles lower (the README gives measured figures).
    `trim` frees what it holds, and so does dropping the cache (tensors still in use stay valid
    and are freed normally)."""

    def __init__(self):
        lib, why = _library()
        if lib is None:
            raise RuntimeError(f"MemoryCache is unavailable: {why}")
        self._lib = lib
        self._handle = lib.zoo_cache_new()
        self._finalizer = weakref.finalize(self, lib.zoo_cache_delete, self._handle)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        previous = self._lib.zoo_cache_enter(self._handle)
        try:
            yield
        finally:
            self._lib.zoo_cache_exit(previous)

    def trim(self) -> None:
        """Free the cached (unused) blocks."""
        self._lib.zoo_cache_trim(self._handle)

    def stats(self) -> Dict[str, int]:
        out = (ctypes.c_int64 * 5)()
        self._lib.zoo_cache_stats(self._handle, out)
        return dict(zip(("hits", "misses", "free_bytes", "live_bytes", "peak_live_bytes"), out))

    def __deepcopy__(self, memo) -> "MemoryCache":
        return MemoryCache()  # a copy of a model gets its own, empty cache

    def __reduce__(self):
        return MemoryCache, ()
