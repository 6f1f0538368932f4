#pragma once
// Multi-index helpers shared by the movement and indexing kernels of the
// reference interpreter. Kernels iterate over every element of a shape as a
// row-major multi-index and turn multi-indices into byte offsets; clarity
// over speed, as everywhere in the reference backend.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "kiln/core/element.h"
#include "kiln/core/host_buffer.h"

namespace kiln::reference {

// A multi-index (one entry per axis) of a tensor of rank <= kMaxRank.
using Index = std::array<int64_t, kMaxRank>;

// Calls f(const Index&) for every index of `dims` in row-major order: never
// when some dim is 0, once (with an all-zero index) for rank 0.
template <typename F>
void for_each_index(std::span<const int64_t> dims, F&& f) {
  for (int64_t d : dims)
    if (d == 0) return;
  const int rank = static_cast<int>(dims.size());
  Index index{};
  while (true) {
    f(static_cast<const Index&>(index));
    int axis = rank - 1;
    while (axis >= 0 && ++index[static_cast<size_t>(axis)] == dims[static_cast<size_t>(axis)]) {
      index[static_cast<size_t>(axis)] = 0;
      --axis;
    }
    if (axis < 0) return;
  }
}

// Element offsets (in elements) of every index of `dims`, in row-major order,
// for a tensor with `strides`. Empty if any dim is 0; {0} for rank 0.
inline std::vector<int64_t> offsets_of(std::span<const int64_t> dims, std::span<const int64_t> strides) {
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(count));
  if (count == 0) return out;
  std::vector<int64_t> index(dims.size(), 0);
  for (int64_t n = 0; n < count; ++n) {
    int64_t offset = 0;
    for (size_t a = 0; a < dims.size(); ++a) offset += index[a] * strides[a];
    out.push_back(offset);
    for (size_t a = dims.size(); a-- > 0;) {
      if (++index[a] < dims[a]) break;
      index[a] = 0;
    }
  }
  return out;
}

// Byte offset of `index` (first shape.rank() entries) in a contiguous
// row-major buffer of `shape`.
inline int64_t byte_offset(const Shape& shape, const Index& index) {
  const auto strides = shape.byte_strides();
  int64_t offset = 0;
  for (int i = 0; i < shape.rank(); ++i) offset += index[static_cast<size_t>(i)] * strides[static_cast<size_t>(i)];
  return offset;
}

// Copies one element of `size` bytes.
inline void copy_element(std::byte* to, const std::byte* from, size_t size) { std::memcpy(to, from, size); }

// An integer index element as an int64. Unsigned values above INT64_MAX
// saturate instead of wrapping to negative numbers, so a huge u64 index
// clamps (or is skipped) as too large rather than as negative.
inline int64_t load_index(DType dtype, const std::byte* p) {
  if (dtype == DType::u64) {
    uint64_t value;
    std::memcpy(&value, p, sizeof value);
    return static_cast<int64_t>(std::min<uint64_t>(value, std::numeric_limits<int64_t>::max()));
  }
  return load_int(dtype, p);
}

}  // namespace kiln::reference
