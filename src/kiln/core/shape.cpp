#include "kiln/core/shape.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "kiln/core/error.h"

namespace kiln {

Tag::Tag(std::string_view text) {
  if (text.size() > kMaxLength) fail("axis tag '{}' is longer than {} characters", text, kMaxLength);
  std::memcpy(chars_.data(), text.data(), text.size());
  length_ = static_cast<uint8_t>(text.size());
}

Shape::Shape(std::initializer_list<int64_t> dims, DType dtype)
    : Shape(std::span<const int64_t>(dims.begin(), dims.size()), dtype) {}

Shape::Shape(std::span<const int64_t> dims, DType dtype) : dtype_(dtype) {
  for (int64_t d : dims) push(d, Tag());
}

Shape::Shape(std::initializer_list<TaggedDim> dims, DType dtype)
    : Shape(std::span<const TaggedDim>(dims.begin(), dims.size()), dtype) {}

Shape::Shape(std::span<const TaggedDim> dims, DType dtype) : dtype_(dtype) {
  for (const auto& d : dims) push(d.size, d.tag);
  check_unique_tags();
}

void Shape::push(int64_t size, Tag tag) {
  if (rank_ == kMaxRank) fail("shape has more than {} dims", kMaxRank);
  if (size < 0) fail("shape dim {} is negative ({})", static_cast<int>(rank_), size);
  dims_[rank_] = size;
  tags_[rank_] = tag;
  ++rank_;
}

void Shape::check_unique_tags() const {
  for (int i = 0; i < rank_; ++i)
    for (int j = i + 1; j < rank_; ++j)
      if (!tags_[i].empty() && tags_[i] == tags_[j])
        fail("duplicate axis tag '{}' in shape {}", tags_[i].view(), to_string());
}

bool Shape::has_tags() const {
  for (int i = 0; i < rank_; ++i)
    if (!tags_[i].empty()) return true;
  return false;
}

int Shape::find(std::string_view tag) const {
  for (int i = 0; i < rank_; ++i)
    if (tags_[i].view() == tag) return i;
  return -1;
}

int Shape::axis(std::string_view tag) const {
  int i = find(tag);
  if (i < 0 || tag.empty()) fail("no axis tagged '{}' in shape {}", tag, to_string());
  return i;
}

int Shape::checked_axis(int axis) const {
  int resolved = axis < 0 ? axis + rank_ : axis;
  if (resolved < 0 || resolved >= rank_)
    fail("axis {} is out of range for shape {} of rank {}", axis, to_string(), rank_);
  return resolved;
}

int64_t Shape::count() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) {
    if (dims_[i] != 0 && n > std::numeric_limits<int64_t>::max() / dims_[i])
      fail("shape {} has more elements than fit in 64 bits", to_string());
    n *= dims_[i];
  }
  return n;
}

size_t Shape::byte_size() const {
  auto n = static_cast<uint64_t>(count());
  const uint64_t size = size_of(dtype_);
  if (is_quantized(dtype_)) {  // whole blocks along the innermost axis
    const int64_t block = block_size(dtype_);
    if (rank_ == 0 || dims_[rank_ - 1] % block != 0)
      fail("shape {}: a {} tensor needs an innermost axis that is a multiple of its {}-element block", to_string(),
           name(dtype_), block);
    n /= static_cast<uint64_t>(block);
  }
  if (n > std::numeric_limits<uint64_t>::max() / size) fail("shape {} has more bytes than fit in 64 bits", to_string());
  return n * size;
}

std::array<int64_t, kMaxRank> Shape::strides() const {
  (void)count();  // rejects shapes whose strides would overflow
  std::array<int64_t, kMaxRank> s{};
  int64_t stride = 1;
  for (int i = rank_ - 1; i >= 0; --i) {
    s[i] = stride;
    stride *= dims_[i];
  }
  return s;
}

std::array<int64_t, kMaxRank> Shape::byte_strides() const {
  if (is_quantized(dtype_)) {
    // Rows of whole blocks: the outer axes step over rows, and the innermost
    // axis, inside the blocks, has no stride of its own (0).
    (void)byte_size();  // rejects rows that are not whole blocks
    std::array<int64_t, kMaxRank> s{};
    int64_t stride = dims_[rank_ - 1] / block_size(dtype_) * static_cast<int64_t>(size_of(dtype_));
    for (int i = rank_ - 2; i >= 0; --i) {
      s[i] = stride;
      stride *= dims_[i];
    }
    return s;
  }
  auto s = strides();
  for (int i = 0; i < rank_; ++i) s[i] *= static_cast<int64_t>(size_of(dtype_));
  return s;
}

Shape Shape::with_dtype(DType dtype) const {
  Shape s = *this;
  s.dtype_ = dtype;
  return s;
}

Shape Shape::with_tags(std::initializer_list<std::string_view> tags) const {
  std::vector<Tag> converted(tags.begin(), tags.end());
  return with_tags(converted);
}

Shape Shape::with_tags(std::span<const Tag> tags) const {
  if (static_cast<int>(tags.size()) != rank_)
    fail("with_tags: {} tags given for shape {} of rank {}", tags.size(), to_string(), rank_);
  Shape s = *this;
  for (int i = 0; i < rank_; ++i) s.tags_[i] = tags[i];
  s.check_unique_tags();
  return s;
}

Shape Shape::with_tag(int axis, Tag tag) const {
  Shape s = *this;
  s.tags_[checked_axis(axis)] = tag;
  s.check_unique_tags();
  return s;
}

std::string Shape::to_string() const {
  std::string out = "{";
  for (int i = 0; i < rank_; ++i) {
    if (i) out += ',';
    if (!tags_[i].empty()) fmt::format_to(std::back_inserter(out), "{}=", tags_[i].view());
    fmt::format_to(std::back_inserter(out), "{}", dims_[i]);
  }
  fmt::format_to(std::back_inserter(out), "}} {}", name(dtype_));
  return out;
}

std::string Shape::dims_string() const { return fmt::format("[{}]", fmt::join(dims(), ",")); }

bool operator==(const Shape& a, const Shape& b) {
  if (a.dtype_ != b.dtype_ || a.rank_ != b.rank_) return false;
  for (int i = 0; i < a.rank_; ++i)
    if (a.dims_[i] != b.dims_[i] || !(a.tags_[i] == b.tags_[i])) return false;
  return true;
}

}  // namespace kiln
