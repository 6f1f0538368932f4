#pragma once
// WeightSource: read-only bytes of one weight file. Two implementations share
// this contract: a memory-mapped file (zero copy; the default) and owned
// in-memory bytes (for platforms without mmap, for data that arrived over
// some other channel, and for tests). Readers only see bytes() and name().
#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kiln::io {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual std::span<const std::byte> bytes() const = 0;
  // Where the bytes came from (a path, or a label for in-memory data); used
  // in error messages.
  virtual const std::string& name() const = 0;
};

using SourcePtr = std::shared_ptr<const WeightSource>;

// Maps `path` read-only (MAP_PRIVATE, madvise sequential). Throws kiln::Error
// naming the path if it cannot be opened.
SourcePtr map_file(const std::filesystem::path& path);
// Reads `path` fully into owned memory.
SourcePtr read_file(const std::filesystem::path& path);
// Wraps bytes already in memory; `name` labels them in errors.
SourcePtr from_bytes(std::vector<std::byte> bytes, std::string name);

// How files are brought into memory by the readers.
enum class SourceKind { mapped, in_memory };
SourcePtr open_source(const std::filesystem::path& path, SourceKind kind);

}  // namespace kiln::io
