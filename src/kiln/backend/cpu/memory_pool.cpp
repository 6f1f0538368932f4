#include "kiln/backend/cpu/memory_pool.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "kiln/core/error.h"

namespace kiln::cpu {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMaxPooledBytes = size_t{1} << 30;  // what the pool may keep for reuse

struct Pool {
  std::mutex mutex;
  std::multimap<size_t, void*> free;  // size -> block
  size_t bytes = 0;

  void* take(size_t size) {
    {
      std::lock_guard lock(mutex);
      if (auto it = free.find(size); it != free.end()) {
        void* block = it->second;
        free.erase(it);
        bytes -= size;
        return block;
      }
    }
    void* block = std::aligned_alloc(kAlignment, size);
    if (block == nullptr) fail("out of memory allocating {} bytes", size);
    return block;
  }

  void give_back(void* block, size_t size) {
    {
      std::lock_guard lock(mutex);
      if (bytes + size <= kMaxPooledBytes) {
        free.emplace(size, block);
        bytes += size;
        return;
      }
    }
    std::free(block);
  }
};

Pool& pool() {
  static Pool* instance = new Pool();  // never destroyed: buffers may be freed during static destruction
  return *instance;
}

}  // namespace

std::shared_ptr<std::byte> pooled_memory(size_t bytes) {
  const size_t size = (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
  void* block = pool().take(size);
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(block),
                                    [size](std::byte* p) { pool().give_back(p, size); });
}

size_t pooled_bytes() {
  std::lock_guard lock(pool().mutex);
  return pool().bytes;
}

}  // namespace kiln::cpu
