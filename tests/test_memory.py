"""zoo.memory.MemoryCache: the per-model CPU memory cache the fast path allocates from."""
import copy
import gc
import shutil

import pytest
import torch

import zoo
from zoo.memory import MemoryCache, build_library, cache_unavailable_reason

pytestmark = pytest.mark.skipif(cache_unavailable_reason() is not None,
                                reason=f"MemoryCache unavailable: {cache_unavailable_reason()}")

BIG = 1 << 20  # elements: 4 MiB of float32, far above the 16 KiB the cache starts at


def test_scope_reuses_freed_blocks_of_the_same_size():
    cache = MemoryCache()
    with cache.scope():
        a = torch.full((BIG,), 3.0)
        del a
        b = torch.full((BIG,), 5.0)
        c = torch.empty(BIG + 1)  # another size: a new block
    s = cache.stats()
    assert (s["hits"], s["misses"]) == (1, 2)
    assert torch.all(b == 5.0)
    assert s["live_bytes"] == 4 * (2 * BIG + 1) and s["free_bytes"] == 0
    del b, c
    s = cache.stats()
    assert s["live_bytes"] == 0 and s["free_bytes"] == 4 * (2 * BIG + 1)
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


def test_cache_keeps_at_most_one_calls_worth_and_tensors_outlive_it():
    cache = MemoryCache()
    with cache.scope():
        for n in range(BIG, BIG + 4):  # four sizes, one at a time
            torch.empty(n)
    with cache.scope():  # a later call requests less: the cache keeps only the largest call's worth
        kept = torch.arange(BIG, dtype=torch.float32)
    with cache.scope():
        for n in range(BIG - 8, BIG - 4):  # four new sizes: only what fits under the limit is kept
            torch.empty(n)
    s = cache.stats()
    assert s["limit_bytes"] == 4 * sum(range(BIG, BIG + 4))
    assert s["limit_bytes"] - 4 * BIG < s["free_bytes"] <= s["limit_bytes"]
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
    misses = cached.memory_cache.stats()["misses"]
    for _ in range(2):
        torch.testing.assert_close(cached(x), out, rtol=0, atol=0)
    s = cached.memory_cache.stats()
    assert s["misses"] == misses and s["hits"] > 0  # repeated calls reuse, never allocate anew
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
