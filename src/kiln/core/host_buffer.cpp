#include "kiln/core/host_buffer.h"

#include <cstdlib>
#include <cstring>

namespace kiln {
namespace {

constexpr size_t kAlignment = 64;

std::shared_ptr<std::byte> aligned(size_t bytes, bool zeroed) {
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* memory = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (memory == nullptr) fail("out of memory allocating {} bytes", bytes);
  if (zeroed) std::memset(memory, 0, rounded);
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(memory), [](std::byte* p) { std::free(p); });
}

// Copies a strided region into contiguous `out`, one axis at a time.
void gather(const std::byte* src, const Shape& shape, std::span<const int64_t> strides, int axis, std::byte*& out) {
  const size_t element = size_of(shape.dtype());
  if (axis == shape.rank()) {
    std::memcpy(out, src, element);
    out += element;
    return;
  }
  const bool inner_contiguous = axis == shape.rank() - 1 && strides[axis] == static_cast<int64_t>(element);
  if (inner_contiguous) {
    const size_t n = static_cast<size_t>(shape.dim(axis)) * element;
    std::memcpy(out, src, n);
    out += n;
    return;
  }
  for (int64_t i = 0; i < shape.dim(axis); ++i) gather(src + i * strides[axis], shape, strides, axis + 1, out);
}

}  // namespace

HostBuffer HostBuffer::view(const Shape& shape, std::byte* data, std::shared_ptr<const void> keep_alive) {
  HostBuffer b;
  b.shape_ = shape;
  b.byte_strides_ = shape.byte_strides();
  b.data_ = data;
  b.owner_ = std::move(keep_alive);
  return b;
}

HostBuffer HostBuffer::allocate(const Shape& shape) {
  auto memory = aligned(shape.byte_size(), /*zeroed=*/true);
  return view(shape, memory.get(), memory);
}

HostBuffer HostBuffer::uninitialized(const Shape& shape) {
  auto memory = aligned(shape.byte_size(), /*zeroed=*/false);
  return view(shape, memory.get(), memory);
}

HostBuffer HostBuffer::copy_of(const Shape& shape, std::span<const std::byte> bytes) {
  if (bytes.size() != shape.byte_size())
    fail("HostBuffer::copy_of: shape {} needs {} bytes but {} were given", shape.to_string(), shape.byte_size(),
         bytes.size());
  HostBuffer b = allocate(shape);
  if (!bytes.empty()) std::memcpy(b.data_, bytes.data(), bytes.size());
  return b;
}

HostBuffer HostBuffer::borrow(const Shape& shape, std::span<const std::byte> bytes,
                              std::shared_ptr<const void> keep_alive) {
  if (bytes.size() != shape.byte_size())
    fail("HostBuffer::borrow: shape {} needs {} bytes but {} were given", shape.to_string(), shape.byte_size(),
         bytes.size());
  HostBuffer b;
  b.shape_ = shape;
  b.byte_strides_ = shape.byte_strides();
  // Borrowed memory is never written through (mutable_data refuses), so
  // dropping const here is only to share one pointer member.
  b.data_ = const_cast<std::byte*>(bytes.data());
  b.owner_ = std::move(keep_alive);
  b.borrowed_ = true;
  return b;
}

bool HostBuffer::is_contiguous() const {
  const auto expected = shape_.byte_strides();
  for (int i = 0; i < shape_.rank(); ++i)
    if (shape_.dim(i) > 1 && byte_strides_[i] != expected[i]) return false;
  return true;
}

std::byte* HostBuffer::mutable_data() {
  if (borrowed_) fail("HostBuffer {} borrows read-only memory; copy() it before writing", shape_.to_string());
  return data_;
}

void HostBuffer::check_flat_access(bool type_matches) const {
  if (!type_matches)
    fail("HostBuffer {}: the requested element type does not match dtype {}", shape_.to_string(), name(dtype()));
  if (!is_contiguous()) fail("HostBuffer {} is a strided view; copy() it for flat access", shape_.to_string());
}

void HostBuffer::check_value_count(size_t count) const {
  if (count != static_cast<size_t>(shape_.count()))
    fail("HostBuffer::from_values: {} values for shape {}, which holds {}", count, shape_.to_string(), shape_.count());
}

std::span<const std::byte> HostBuffer::bytes() const {
  if (!is_contiguous()) fail("HostBuffer {} is a strided view; copy() it for flat access", shape_.to_string());
  return {data_, shape_.byte_size()};
}

void HostBuffer::check_not_inside_blocks(int axis, std::string_view what) const {
  if (is_quantized(dtype()) && axis == shape_.rank() - 1)
    fail(
        "{} of {}: the innermost axis of a block-quantized tensor cannot be split (its elements are stored in "
        "blocks)",
        what, shape_.to_string());
}

HostBuffer HostBuffer::slice(int axis, int64_t begin, int64_t end, int64_t step) const {
  const int a = shape_.checked_axis(axis);
  check_not_inside_blocks(a, "slice");
  const int64_t size = shape_.dim(a);
  if (step <= 0) fail("slice of {}: step {} must be positive", shape_.to_string(), step);
  if (begin < 0 || end > size || begin > end)
    fail("slice of {}: range [{}, {}) is outside axis {} of size {}", shape_.to_string(), begin, end, a, size);
  std::vector<int64_t> dims(shape_.dims().begin(), shape_.dims().end());
  dims[a] = (end - begin + step - 1) / step;
  HostBuffer view = *this;
  view.shape_ = Shape(dims, dtype()).with_tags(shape_.tags());
  if (dims[a] > 0) view.data_ += begin * byte_strides_[a];
  view.byte_strides_[a] *= step;
  return view;
}

HostBuffer HostBuffer::select(int axis, int64_t index) const {
  const int a = shape_.checked_axis(axis);
  check_not_inside_blocks(a, "select");
  if (index < 0 || index >= shape_.dim(a))
    fail("select of {}: index {} is outside axis {} of size {}", shape_.to_string(), index, a, shape_.dim(a));
  std::vector<int64_t> dims;
  std::vector<Tag> tags;
  HostBuffer view = *this;
  int out = 0;
  for (int i = 0; i < shape_.rank(); ++i) {
    if (i == a) continue;
    dims.push_back(shape_.dim(i));
    tags.push_back(shape_.tag(i));
    view.byte_strides_[out++] = byte_strides_[i];
  }
  view.shape_ = Shape(dims, dtype()).with_tags(tags);
  view.data_ += index * byte_strides_[a];
  return view;
}

HostBuffer HostBuffer::reshape(const Shape& shape) const {
  if (shape.byte_size() != shape_.byte_size())
    fail("reshape of {} to {}: byte sizes differ ({} vs {})", shape_.to_string(), shape.to_string(), shape_.byte_size(),
         shape.byte_size());
  if (!is_contiguous()) fail("reshape of {}: strided views cannot be reshaped; copy() first", shape_.to_string());
  HostBuffer view = *this;
  view.shape_ = shape;
  view.byte_strides_ = shape.byte_strides();
  return view;
}

HostBuffer HostBuffer::with_tags(std::initializer_list<std::string_view> tags) const {
  HostBuffer view = *this;
  view.shape_ = shape_.with_tags(tags);
  return view;
}

HostBuffer HostBuffer::copy() const {
  HostBuffer out = allocate(shape_);
  if (shape_.count() == 0) return out;
  if (is_quantized(dtype())) {  // rows of blocks, copied as rows of bytes
    std::vector<int64_t> dims(shape_.dims().begin(), shape_.dims().end());
    dims.back() = static_cast<int64_t>(Shape({dims.back()}, dtype()).byte_size());
    HostBuffer bytes = *this;
    bytes.shape_ = Shape(dims, DType::u8);
    bytes.byte_strides_[shape_.rank() - 1] = 1;
    std::byte* cursor = out.data_;
    gather(data_, bytes.shape_, bytes.byte_strides(), 0, cursor);
    return out;
  }
  std::byte* cursor = out.data_;
  gather(data_, shape_, byte_strides(), 0, cursor);
  return out;
}

int64_t HostBuffer::offset_of(std::span<const int64_t> index) const {
  if (static_cast<int>(index.size()) != shape_.rank())
    fail("HostBuffer {}: index has {} entries for rank {}", shape_.to_string(), index.size(), shape_.rank());
  int64_t offset = 0;
  for (int i = 0; i < shape_.rank(); ++i) {
    if (index[i] < 0 || index[i] >= shape_.dim(i))
      fail("HostBuffer {}: index {} is outside axis {} of size {}", shape_.to_string(), index[i], i, shape_.dim(i));
    offset += index[i] * byte_strides_[i];
  }
  return offset;
}

}  // namespace kiln
