#pragma once
// HostBuffer: a shape, byte strides and a pointer to host memory that either
// owns its bytes or borrows them (e.g. a view into a memory-mapped weight
// file). Borrowing buffers keep their owner alive through a shared handle, so
// a view never outlives the mapping it points into. Copies are shallow.
#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/shape.h"

namespace kiln {

class HostBuffer {
 public:
  HostBuffer() = default;

  // Zero-filled, 64-byte aligned, contiguous.
  static HostBuffer allocate(const Shape& shape);
  // The same without the zero fill: for memory that is written before it is read.
  static HostBuffer uninitialized(const Shape& shape);
  // Contiguous copy of `bytes`, which must hold exactly shape.byte_size().
  static HostBuffer copy_of(const Shape& shape, std::span<const std::byte> bytes);
  // Contiguous view of `bytes`; `keep_alive` owns the memory.
  static HostBuffer borrow(const Shape& shape, std::span<const std::byte> bytes,
                           std::shared_ptr<const void> keep_alive);
  // Contiguous, writable view of `data` (shape.byte_size() bytes) that
  // `keep_alive` (may be null) owns: how backends hand out pieces of their
  // own memory.
  static HostBuffer view(const Shape& shape, std::byte* data, std::shared_ptr<const void> keep_alive);
  // A contiguous copy of `values`: shape.count() elements of the dtype's C++
  // type, as span<T>() takes them (float for f32, uint16_t bits for bf16, ...).
  template <typename T>
  static HostBuffer from_values(const Shape& shape, std::span<const T> values) {
    HostBuffer b = uninitialized(shape);
    b.check_flat_access(b.accepts<T>());
    b.check_value_count(values.size());
    std::copy(values.begin(), values.end(), reinterpret_cast<T*>(b.data_));
    return b;
  }
  template <typename T>
  static HostBuffer from_values(const Shape& shape, const std::vector<T>& values) {
    return from_values(shape, std::span<const T>(values));
  }

  const Shape& shape() const { return shape_; }
  DType dtype() const { return shape_.dtype(); }
  std::span<const int64_t> byte_strides() const { return {byte_strides_.data(), static_cast<size_t>(shape_.rank())}; }
  bool is_contiguous() const;
  // True when this buffer's memory is owned elsewhere (e.g. a mapped file).
  bool is_borrowed() const { return borrowed_; }

  // Start of element [0, 0, ...].
  const std::byte* data() const { return data_; }
  std::byte* mutable_data();  // throws on borrowed (read-only) buffers

  // The elements as a flat span; the buffer must be contiguous. T must be the
  // dtype's C++ type (float for f32, int32_t for i32, bool for bool), or an
  // unsigned integer of the element's size for raw bits (uint16_t for bf16).
  // A span points into this buffer, so taking one from a temporary (such as
  // buffer.to_host().span<float>()) does not compile: keep the HostBuffer in
  // a variable, or copy the elements out with to_vector<T>().
  template <typename T>
  std::span<const T> span() const& {
    check_flat_access(accepts<T>());
    return {reinterpret_cast<const T*>(data_), static_cast<size_t>(shape_.count())};
  }
  template <typename T>
  std::span<T> mutable_span() & {
    check_flat_access(accepts<T>());
    return {reinterpret_cast<T*>(mutable_data()), static_cast<size_t>(shape_.count())};
  }
  template <typename T>
  std::span<const T> span() const&& {
    static_assert(sizeof(T) == 0,
                  "span() of a temporary HostBuffer would dangle: keep the HostBuffer (auto host = buffer.to_host();) "
                  "or use to_vector<T>()");
    return {};
  }
  template <typename T>
  std::span<T> mutable_span() && {
    static_assert(sizeof(T) == 0, "mutable_span() of a temporary HostBuffer would dangle: keep the HostBuffer");
    return {};
  }
  // A copy of the elements (T as for span()).
  template <typename T>
  std::vector<T> to_vector() const {
    const std::span<const T> elements = span<T>();
    return {elements.begin(), elements.end()};
  }
  // The raw bytes of a contiguous buffer.
  std::span<const std::byte> bytes() const;

  // Views sharing memory with this buffer.
  // Elements [begin, end) with `step` along `axis`.
  HostBuffer slice(int axis, int64_t begin, int64_t end, int64_t step = 1) const;
  HostBuffer slice(std::string_view tag, int64_t begin, int64_t end, int64_t step = 1) const {
    return slice(shape_.axis(tag), begin, end, step);
  }
  // Drops `axis` by taking index `index` along it.
  HostBuffer select(int axis, int64_t index) const;
  // Same bytes seen through a new shape of equal byte size (contiguous only).
  HostBuffer reshape(const Shape& shape) const;
  HostBuffer with_tags(std::initializer_list<std::string_view> tags) const;

  // A contiguous, owning copy (always copies).
  HostBuffer copy() const;
  // Byte offset of element `index` (one entry per axis) from data().
  int64_t offset_of(std::span<const int64_t> index) const;

 private:
  template <typename T>
  bool accepts() const {
    const DType d = dtype();
    if constexpr (std::is_same_v<T, bool>)
      return d == DType::bool_;
    else if constexpr (std::is_same_v<T, float>)
      return d == DType::f32;
    else if constexpr (std::is_same_v<T, double>)
      return d == DType::f64;
    else if constexpr (std::is_signed_v<T>)
      return is_integer(d) && !is_unsigned(d) && size_of(d) == sizeof(T);
    else
      return !is_quantized(d) && size_of(d) == sizeof(T);  // blocks are read through bytes()
  }
  void check_flat_access(bool type_matches) const;
  void check_not_inside_blocks(int axis, std::string_view what) const;
  void check_value_count(size_t count) const;

  Shape shape_;
  std::array<int64_t, kMaxRank> byte_strides_{};
  std::byte* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  bool borrowed_ = false;
};

}  // namespace kiln
