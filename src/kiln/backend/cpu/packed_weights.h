#pragma once
// Packed copies of weights shared between executables. Each prepared
// program re-lays its matmul weights out for oneDNN; LLaMA generation
// prepares one program per prefill chunk size (and per attention window),
// and each packing its own copy cost a whole model's bytes per program (7.7
// GB resident for a 255-token prompt on a 1.9 GB model). Programs that pack
// the same read-only weight the same way now hold one copy between them.
#include <functional>
#include <memory>
#include <string>

#include "kiln/core/host_buffer.h"

namespace kiln::cpu {

// The packed form of `source` for a packing named `key` (its bytes and
// layout, see Matmul::packing_key()): the copy another program already
// holds, or a new one of `bytes` bytes filled by `pack(packed)`.
// Only borrowed buffers (memory-mapped files, read-only views) are shared:
// their bytes cannot change behind the copy; an owned buffer, which its
// owner may still write, gets a copy of its own. The copy keeps `source`
// alive, so its address cannot be reused by another buffer while shared.
// Thread-safe.
std::shared_ptr<const HostBuffer> packed_weight(const HostBuffer& source, const std::string& key, size_t bytes,
                                                const std::function<void(std::byte* packed)>& pack);

// Packed copies alive now (for tests).
size_t packed_weight_count();

}  // namespace kiln::cpu
