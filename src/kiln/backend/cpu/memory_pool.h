#pragma once
// The CPU backend's allocator for call outputs: freed blocks are kept (up to
// a bound) and handed out again for the next request of the same size, so a
// program called in a loop writes into memory that is already mapped and
// warm instead of faulting in fresh pages on every call (a 16 MB matmul
// output costs about a millisecond of page faults otherwise).
#include <cstddef>
#include <memory>

namespace kiln::cpu {

// 64-byte aligned, uninitialized memory of `bytes` bytes; thread-safe. The
// pool lives for the whole process (never destroyed), so buffers may
// outlive everything else.
std::shared_ptr<std::byte> pooled_memory(size_t bytes);

// Bytes the pool holds for reuse now (for tests).
size_t pooled_bytes();

}  // namespace kiln::cpu
