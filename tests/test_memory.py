"""zoo.inference.memory.MemoryCache: the per-model CPU memory cache the fast path allocates from."""
import copy
import gc
import shutil

import pytest
import torch

import zoo
from zoo.inference.memory import MemoryCache, build_library, cache_unavailable_reason

pytestmark = pytest.mark.skipif(cache_unavailable_reason() is not None,
                                reason=f"MemoryCache unavailable: {cache_unavailable_reason()}")

BIG = 1 << 20  # elements: 4 MiB of float32, far above the 16 KiB the cache starts at


def test_scope_reuses_the_best_fitting_freed_block():
    cache = MemoryCache()
    MiB = 1 << 20
    with cache.scope():
        a = torch.full((BIG,), 3.0)  # a 4 MiB block
        del a
        b = torch.full((BIG,), 5.0)  # reuses it
        c = torch.empty(BIG + 1)  # a new block, rounded up to its size class: 4.5 MiB
        assert cache.stats()["live_bytes"] == 4 * MiB + 4 * MiB + MiB // 2
        del b, c
        d = torch.empty(BIG + 1000)  # the smallest free block that fits: c's
        e = torch.empty(BIG // 8)  # b's block fits but is over 4x too big: a new one
    s = cache.stats()
    assert (s["hits"], s["misses"]) == (2, 3)
    assert s["live_bytes"] == 4 * MiB + MiB // 2 + MiB // 2 and s["free_bytes"] == 4 * MiB
    del d, e
    assert cache.stats()["free_bytes"] == 9 * MiB
    cache.trim()
    assert cache.stats()["free_bytes"] == 0


def test_allocations_outside_scope_and_small_ones_bypass_the_cache():
    cache = MemoryCache()
    with cache.scope():
        small = torch.empty(100)
    outside = torch.empty(BIG)
    del small, outside
    s = cache.stats()
    assert s["hits"] == s["misses"] == s["free_bytes"] == s["peak_live_bytes"] == 0


def test_cache_keeps_at_most_3x_its_peak_and_tensors_outlive_it():
    cache = MemoryCache()
    with cache.scope():
        for k in range(1, 7):  # 4, 8, ..., 24 MiB, one at a time: none fits a freed one
            torch.empty(k * BIG)
        kept = torch.arange(BIG, dtype=torch.float32)  # takes the 4 MiB block
    s = cache.stats()
    # when the 24 MiB block came back, 60 MiB were free and the peak was 24 MiB: it was freed
    assert s["misses"] == 6 and s["peak_live_bytes"] == 24 * BIG
    assert s["free_bytes"] == 4 * (2 + 3 + 4 + 5) * BIG <= 3 * s["peak_live_bytes"]
    del cache
    gc.collect()
    assert kept[-1].item() == BIG - 1  # still valid after its cache is gone
    del kept  # and freed normally


def test_nested_scopes_restore_the_outer_one():
    outer, inner = MemoryCache(), MemoryCache()
    with outer.scope():
        with inner.scope():
            a = torch.empty(BIG)
        b = torch.empty(BIG)
    assert inner.stats()["misses"] == 1 and outer.stats()["misses"] == 1
    del a, b


def test_optimized_model_allocates_from_its_cache_and_matches_without_it():
    model = zoo.build("r2plus1d_18", num_classes=5).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    cached = zoo.optimize(model, example=x)
    plain = zoo.optimize(model, example=x, memory_cache=False)
    assert plain.memory_cache is None and cached.memory_cache is not None
    out = cached(x)
    cached(x)  # the first calls settle which block serves which tensor
    misses = cached.memory_cache.stats()["misses"]
    for _ in range(2):
        torch.testing.assert_close(cached(x), out, rtol=0, atol=0)
    s = cached.memory_cache.stats()
    assert s["misses"] == misses and s["hits"] > 0  # then calls reuse blocks, never allocate anew
    torch.testing.assert_close(plain(x), out, rtol=0, atol=0)
    twin = copy.deepcopy(cached)
    assert twin.memory_cache is not cached.memory_cache and twin.memory_cache.stats()["misses"] == 0


def test_build_failure_names_the_compiler(tmp_path):
    with pytest.raises(RuntimeError, match="no-such-compiler"):
        build_library(tmp_path, cxx="no-such-compiler")


@pytest.mark.skipif(shutil.which("c++") is None, reason="needs a C++ compiler")
def test_build_is_atomic_and_reused(tmp_path):
    path = build_library(tmp_path, cxx="c++")
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left
    mtime = path.stat().st_mtime_ns
    assert build_library(tmp_path, cxx="c++") == path and path.stat().st_mtime_ns == mtime
