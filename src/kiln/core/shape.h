#pragma once
// Shape: the dtype, dims (rank 0..8) and optional axis tags of a tensor.
// Tags name axes ("b", "d", "hd") so code can say x.sum("s") instead of
// x.sum(2); an untagged axis has an empty tag. Tags are unique within a shape.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/core/dtype.h"

namespace kiln {

inline constexpr int kMaxRank = 8;

// A short axis name stored inline (no allocation), at most 15 characters.
class Tag {
 public:
  static constexpr size_t kMaxLength = 15;
  constexpr Tag() = default;
  Tag(std::string_view text);  // throws kiln::Error if too long
  Tag(const char* text) : Tag(std::string_view(text)) {}
  std::string_view view() const { return std::string_view(chars_.data(), length_); }
  bool empty() const { return length_ == 0; }
  friend bool operator==(const Tag& a, const Tag& b) { return a.view() == b.view(); }

 private:
  std::array<char, kMaxLength> chars_{};
  uint8_t length_ = 0;
};

// One axis given as {tag, size}.
struct TaggedDim {
  Tag tag;
  int64_t size;
};

class Shape {
 public:
  Shape() = default;  // rank-0 f32 scalar
  explicit Shape(DType dtype) : dtype_(dtype) {}
  Shape(std::initializer_list<int64_t> dims, DType dtype = DType::f32);
  Shape(std::span<const int64_t> dims, DType dtype = DType::f32);
  Shape(std::initializer_list<TaggedDim> dims, DType dtype = DType::f32);
  Shape(std::span<const TaggedDim> dims, DType dtype = DType::f32);

  DType dtype() const { return dtype_; }
  int rank() const { return rank_; }
  int64_t dim(int axis) const { return dims_[checked_axis(axis)]; }
  int64_t dim(std::string_view tag) const { return dims_[axis(tag)]; }
  std::span<const int64_t> dims() const { return {dims_.data(), static_cast<size_t>(rank_)}; }
  const Tag& tag(int axis) const { return tags_[checked_axis(axis)]; }
  std::span<const Tag> tags() const { return {tags_.data(), static_cast<size_t>(rank_)}; }
  bool has_tag(std::string_view tag) const { return find(tag) >= 0; }
  bool has_tags() const;  // true if any axis is tagged

  // Index of the axis tagged `tag`; throws naming the shape if there is none.
  int axis(std::string_view tag) const;
  // Index of the axis tagged `tag`, or -1.
  int find(std::string_view tag) const;
  // Python-style axis: negative counts from the back; throws if out of range.
  int checked_axis(int axis) const;

  int64_t count() const;     // number of elements (1 for rank 0)
  size_t byte_size() const;  // count() * size_of(dtype)
  // Row-major strides in elements and in bytes.
  std::array<int64_t, kMaxRank> strides() const;
  std::array<int64_t, kMaxRank> byte_strides() const;

  Shape with_dtype(DType dtype) const;
  // Replaces all tags (empty strings leave an axis untagged).
  Shape with_tags(std::initializer_list<std::string_view> tags) const;
  Shape with_tags(std::span<const Tag> tags) const;
  Shape with_tag(int axis, Tag tag) const;

  // "{b=4,d=512} f32", "{4,512} f32", "{} f32" for a scalar.
  std::string to_string() const;
  // Dims only: "[4,512]".
  std::string dims_string() const;

  friend bool operator==(const Shape& a, const Shape& b);

 private:
  void push(int64_t size, Tag tag);
  void check_unique_tags() const;

  DType dtype_ = DType::f32;
  uint8_t rank_ = 0;
  std::array<int64_t, kMaxRank> dims_{};
  std::array<Tag, kMaxRank> tags_{};
};

}  // namespace kiln
