#pragma once
// The GGUF format (versions 2 and 3, little-endian), as llama.cpp writes it:
//   magic "GGUF", u32 version, u64 tensor count, u64 metadata count,
//   metadata: (string key, u32 value type, value)...,
//   tensor infos: (string name, u32 n_dims, u64 dims[n_dims] innermost
//   first, u32 GGML type, u64 offset into the data section)...,
//   padding to `general.alignment` (default 32), the data section.
// Strings are a u64 byte length and the bytes; arrays a u32 element type,
// a u64 count and the elements (arrays of arrays allowed).
//
// The reader checks everything before it hands out a tensor, with
// overflow-safe arithmetic: counts bounded by the bytes left in the file,
// string and array lengths, value and element types, bools 0 or 1, keys and
// names unique and non-empty, n_dims 1..4, every dim > 0, the element count
// and byte size in 64 bits, a block-quantized tensor's innermost dim a
// multiple of its block, offsets aligned and inside the data section, no two
// tensors overlapping. It never reads out of bounds. Errors name the file
// and the key or tensor at fault.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/io/metadata.h"
#include "kiln/io/weight_source.h"

namespace kiln::io {

// GGUF metadata value types (the numbers are the format's).
enum class GgufType : uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  bool_ = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};
// "u32", "string", "array", ...; "type N" for a number that is none of them.
std::string gguf_type_name(uint32_t type);

// A GGML tensor type: its number in GGUF tensor infos, name, block (elements
// and bytes) and the kiln dtype it maps to (nullopt: kiln cannot hold it).
struct GgmlType {
  uint32_t id;
  std::string_view name;  // "Q4_K", as llama.cpp prints it
  int64_t block;
  int64_t block_bytes;
  std::optional<DType> dtype;
};
// The type numbered `id`, or nullptr for a number GGML does not define.
const GgmlType* ggml_type(uint32_t id);
// The GGML type holding kiln's `dtype`, or nullptr where GGUF has none.
const GgmlType* ggml_type_of(DType dtype);

struct GgufEntry {
  std::string key;
  GgufType type;
  GgufType element = GgufType::u8;  // arrays: the element type
  uint64_t count = 0;               // arrays: the number of elements
  // The value: integers as int64 (a u64 above INT64_MAX as its decimal
  // string), floats as double, bools, strings, arrays of one of those; an
  // array of arrays as its JSON text.
  MetaValue value;
};

struct GgufTensor {
  std::string name;
  uint32_t type;                     // GGML type id
  std::vector<int64_t> dims;         // kiln order: outermost first (GGUF's innermost-first dims reversed)
  uint64_t offset;                   // into the data section
  std::span<const std::byte> bytes;  // inside the source
  // Borrowed from the source (a copy where misaligned for its dtype);
  // nullopt for a GGML type kiln has no dtype for (IQ*, Q2_K, Q3_K, ...).
  std::optional<HostBuffer> buffer;
};

struct GgufFile {
  SourcePtr source;
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // where the data section starts in the file
  std::vector<GgufEntry> metadata;
  std::vector<GgufTensor> tensors;  // in file order
};

// True when the bytes start with the GGUF magic.
bool is_gguf(std::span<const std::byte> bytes);

// Parses and validates; throws kiln::Error naming source->name().
GgufFile parse_gguf(SourcePtr source);

// A metadata entry to write: `value` is converted to `type` (an integer out
// of the type's range is an error), or for arrays to `element`.
struct GgufWriteEntry {
  std::string key;
  GgufType type;
  MetaValue value;
  GgufType element = GgufType::u8;
};

// Writes a GGUF v3 file atomically (a temporary file beside it, then
// rename): the metadata in the order given (general.alignment is added
// when absent), the tensors in the order given, each at an offset aligned
// to 32 bytes. Tensors must have a dtype GGUF holds and rank 1..4.
void write_gguf(const std::filesystem::path& path, const std::vector<GgufWriteEntry>& metadata,
                const std::vector<std::pair<std::string, HostBuffer>>& tensors);
// The same bytes, in memory.
std::vector<std::byte> serialize_gguf(const std::vector<GgufWriteEntry>& metadata,
                                      const std::vector<std::pair<std::string, HostBuffer>>& tensors);

}  // namespace kiln::io
