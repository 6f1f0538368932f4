#pragma once
// The safetensors format: an 8-byte little-endian header length N, N bytes
// of JSON describing each tensor (dtype, shape, data_offsets into the data
// section) plus an optional "__metadata__" object, then the data section.
// The reader validates everything before any tensor is handed out: header
// size bounded, JSON well formed, dtypes known, shape x dtype size equal to
// the byte range, ranges inside the data section, and the ranges tiling the
// data section exactly (no overlaps, no holes). It never reads out of bounds.
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/io/metadata.h"
#include "kiln/io/weight_source.h"

namespace kiln::io {

// Headers above this size are rejected before parsing (as the reference
// implementation does), so a hostile length cannot make us allocate or scan
// gigabytes.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  HostBuffer buffer;  // borrows from the source, or a copy if misaligned
};

struct SafetensorsFile {
  SourcePtr source;
  std::vector<SafetensorsTensor> tensors;  // in header order
  Metadata metadata;                       // "__metadata__", all strings
  uint64_t data_offset = 0;                // where the data section starts
};

// Parses and validates; throws kiln::Error naming source->name() and, where
// one is at fault, the tensor.
SafetensorsFile parse_safetensors(SourcePtr source);

// Tensors to write, in any order (they are written sorted by name).
using NamedBuffers = std::vector<std::pair<std::string, HostBuffer>>;

// Writes atomically (a temporary file in the same directory, then rename),
// with the data section aligned to 8 bytes. Strided buffers are written
// contiguously.
void write_safetensors(const std::filesystem::path& path, const NamedBuffers& tensors,
                       const std::map<std::string, std::string>& metadata = {});
// The same bytes as write_safetensors, in memory.
std::vector<std::byte> serialize_safetensors(const NamedBuffers& tensors,
                                             const std::map<std::string, std::string>& metadata = {});

}  // namespace kiln::io
