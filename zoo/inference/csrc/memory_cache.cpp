// Caches of CPU tensor memory blocks for the allocations made inside a scope (see zoo/memory.py).
//
// Installed once as the process's CPU allocator, wrapping the allocator it replaces: allocations on
// a thread with no open scope, and small ones, go to that allocator unchanged. Inside a scope, a
// block freed later (from any thread) returns to its cache's free list for the next allocation that
// fits it, instead of to malloc, which may hand it back to the OS and re-fault it page by page.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace {

constexpr size_t kMinBytes = 16 * 1024;  // malloc serves smaller blocks from its own free lists

// Blocks are allocated in size classes an eighth of a power of two apart (at most 12.5 % unused),
// and a request takes the smallest free block that fits it if that is less than four times its size,
// so the layers' many slightly different activation sizes share blocks.
size_t block_size(size_t n) {
  size_t step = 4096;
  while (step * 16 <= n) step *= 2;
  return (n + step - 1) / step * step;
}

struct Cache {
  std::mutex mutex;
  bool open = true;
  std::multimap<size_t, void*> free_blocks;  // by block size
  size_t free_bytes = 0, live_bytes = 0, peak_live_bytes = 0;
  int64_t hits = 0, misses = 0;
};

struct Block {
  std::shared_ptr<Cache> cache;
  size_t size;
};

// Never destroyed: tensors may still be freed while the process exits.
std::mutex* const g_blocks_mutex = new std::mutex;
auto* const g_blocks = new std::unordered_map<void*, Block>;  // cache-owned blocks, by data pointer
thread_local std::shared_ptr<Cache>* tl_scope = nullptr;
c10::Allocator* g_base = nullptr;
c10::DeleterFnPtr g_base_deleter = nullptr;

void release_block(void* ptr) {
  Block block;
  {
    std::lock_guard<std::mutex> lock(*g_blocks_mutex);
    auto it = g_blocks->find(ptr);
    if (it == g_blocks->end()) {
      g_base_deleter(ptr);  // allocated outside any scope
      return;
    }
    block = std::move(it->second);
    g_blocks->erase(it);
  }
  Cache& cache = *block.cache;
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.live_bytes -= block.size;
  // Free blocks are kept up to 3x the peak of live bytes, so changing shapes cannot grow a cache
  // without bound (static shapes settle lower: I3D-Inception eager, 488 MB for a 344 MB peak).
  if (cache.open && cache.free_bytes + block.size <= 3 * cache.peak_live_bytes) {
    cache.free_blocks.emplace(block.size, ptr);
    cache.free_bytes += block.size;
  } else {
    c10::free_cpu(ptr);
  }
}

struct ScopedCachingAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    std::shared_ptr<Cache>* scope = tl_scope;
    if (scope == nullptr || n < kMinBytes) return g_base->allocate(n);
    std::shared_ptr<Cache> cache = *scope;
    void* ptr = nullptr;
    size_t size = block_size(n);
    {
      std::lock_guard<std::mutex> lock(cache->mutex);
      auto it = cache->free_blocks.lower_bound(n);
      if (it != cache->free_blocks.end() && it->first < 4 * n) {  // best fit, wasting < 3/4
        size = it->first;
        ptr = it->second;
        cache->free_blocks.erase(it);
        cache->free_bytes -= size;
        cache->hits++;
      } else {
        cache->misses++;
      }
      cache->live_bytes += size;
      if (cache->live_bytes > cache->peak_live_bytes) cache->peak_live_bytes = cache->live_bytes;
    }
    if (ptr == nullptr) ptr = c10::alloc_cpu(size);
    {
      std::lock_guard<std::mutex> lock(*g_blocks_mutex);
      (*g_blocks)[ptr] = Block{std::move(cache), size};
    }
    return {ptr, ptr, &release_block, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release_block; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};

ScopedCachingAllocator g_allocator;

void free_cached(Cache& cache) {
  for (auto& sized : cache.free_blocks) c10::free_cpu(sized.second);
  cache.free_blocks.clear();
  cache.free_bytes = 0;
}

}  // namespace

extern "C" {

// 1 when installed (now or before), 0 when the current CPU allocator cannot be wrapped.
int zoo_cache_install() {
  if (g_base != nullptr) return 1;
  c10::Allocator* current = c10::GetCPUAllocator();
  if (current->raw_deleter() == nullptr) return 0;  // its blocks could not be freed through one deleter
  g_base = current;
  g_base_deleter = current->raw_deleter();
  c10::SetCPUAllocator(&g_allocator, /*priority=*/0);
  return c10::GetCPUAllocator() == &g_allocator ? 1 : 0;
}

void* zoo_cache_new() { return new std::shared_ptr<Cache>(std::make_shared<Cache>()); }

// Frees the cached blocks; blocks still in use are freed when their tensors are.
void zoo_cache_delete(void* handle) {
  auto* cache = static_cast<std::shared_ptr<Cache>*>(handle);
  {
    std::lock_guard<std::mutex> lock((*cache)->mutex);
    (*cache)->open = false;
    free_cached(**cache);
  }
  delete cache;
}

void zoo_cache_trim(void* handle) {
  Cache& cache = **static_cast<std::shared_ptr<Cache>*>(handle);
  std::lock_guard<std::mutex> lock(cache.mutex);
  free_cached(cache);
}

// Opens `handle`'s scope on this thread; returns the scope it replaces, for zoo_cache_exit.
void* zoo_cache_enter(void* handle) {
  void* previous = tl_scope;
  tl_scope = static_cast<std::shared_ptr<Cache>*>(handle);
  return previous;
}

void zoo_cache_exit(void* previous) { tl_scope = static_cast<std::shared_ptr<Cache>*>(previous); }

// hits, misses, free bytes, live bytes, peak live bytes
void zoo_cache_stats(void* handle, int64_t* out) {
  Cache& cache = **static_cast<std::shared_ptr<Cache>*>(handle);
  std::lock_guard<std::mutex> lock(cache.mutex);
  out[0] = cache.hits;
  out[1] = cache.misses;
  out[2] = static_cast<int64_t>(cache.free_bytes);
  out[3] = static_cast<int64_t>(cache.live_bytes);
  out[4] = static_cast<int64_t>(cache.peak_live_bytes);
}

}  // extern "C"
