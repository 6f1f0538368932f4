#include "kiln/core/host_buffer.h"

#include <gtest/gtest.h>

#include <numeric>

#include "support/expect_error.h"

namespace kiln {
namespace {

HostBuffer iota_i32(const Shape& shape) {
  HostBuffer b = HostBuffer::allocate(shape);
  auto values = b.mutable_span<int32_t>();
  std::iota(values.begin(), values.end(), 0);
  return b;
}

std::vector<int32_t> values(const HostBuffer& b) {
  HostBuffer c = b.copy();
  return {c.span<int32_t>().begin(), c.span<int32_t>().end()};
}

TEST(HostBuffer, AllocateIsZeroedAndAligned) {
  HostBuffer b = HostBuffer::allocate(Shape({3, 5}, DType::f32));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u);
  for (float v : b.span<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_TRUE(b.is_contiguous());
  EXPECT_FALSE(b.is_borrowed());
}

TEST(HostBuffer, SliceAndSelectAreViews) {
  HostBuffer b = iota_i32(Shape({3, 4}, DType::i32));
  HostBuffer cols = b.slice(1, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(cols.shape(), Shape({3, 2}, DType::i32));
  EXPECT_FALSE(cols.is_contiguous());
  EXPECT_EQ(values(cols), (std::vector<int32_t>{1, 3, 5, 7, 9, 11}));
  HostBuffer row = b.select(0, 2);
  EXPECT_EQ(values(row), (std::vector<int32_t>{8, 9, 10, 11}));
  EXPECT_TRUE(row.is_contiguous());
  // Views share memory with their parent.
  b.mutable_span<int32_t>()[9] = 99;
  EXPECT_EQ(values(row)[1], 99);
  EXPECT_EQ(values(cols.select(1, 0))[2], 99);
  EXPECT_EQ(values(b.slice(0, 1, 1)).size(), 0u);
}

TEST(HostBuffer, TaggedSlice) {
  HostBuffer b = iota_i32(Shape({{"s", 4}, {"d", 2}}, DType::i32));
  HostBuffer s = b.slice("s", 2, 4);
  EXPECT_EQ(s.shape().to_string(), "{s=2,d=2} i32");
  EXPECT_EQ(values(s), (std::vector<int32_t>{4, 5, 6, 7}));
}

TEST(HostBuffer, BorrowedIsReadOnly) {
  std::vector<std::byte> bytes(16);
  auto keep = std::make_shared<int>(0);
  HostBuffer b = HostBuffer::borrow(Shape({4}, DType::f32), bytes, keep);
  EXPECT_TRUE(b.is_borrowed());
  EXPECT_EQ(b.data(), bytes.data());
  EXPECT_ERROR(b.mutable_data(), "read-only");
  HostBuffer c = b.copy();
  EXPECT_FALSE(c.is_borrowed());
  EXPECT_NE(c.data(), b.data());
}

TEST(HostBuffer, FromValuesCopiesTypedElements) {
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  HostBuffer b = HostBuffer::from_values(Shape({{"r", 2}, {"c", 3}}), values);
  EXPECT_EQ(b.shape(), Shape({{"r", 2}, {"c", 3}}));
  EXPECT_EQ(std::vector<float>(b.span<float>().begin(), b.span<float>().end()), values);
  EXPECT_NE(b.span<float>().data(), values.data());
  const uint16_t bits[] = {0x3f80, 0xc000};  // bf16 1.0 and -2.0 as raw bits
  EXPECT_EQ(HostBuffer::from_values(Shape({2}, DType::bf16), std::span<const uint16_t>(bits)).to_vector<uint16_t>(),
            (std::vector<uint16_t>{0x3f80, 0xc000}));
  EXPECT_ERROR(HostBuffer::from_values(Shape({4}), values), "6 values for shape {4} f32, which holds 4");
  EXPECT_ERROR(HostBuffer::from_values(Shape({6}, DType::i32), values), "does not match dtype i32");
}

TEST(HostBuffer, Errors) {
  HostBuffer b = iota_i32(Shape({3, 4}, DType::i32));
  EXPECT_ERROR(b.slice(1, 2, 5), "range [2, 5) is outside axis 1 of size 4");
  EXPECT_ERROR(b.slice(0, 0, 2, 0), "step 0 must be positive");
  EXPECT_ERROR(b.select(0, 3), "index 3 is outside axis 0");
  EXPECT_ERROR(b.span<float>(), "does not match dtype i32");
  EXPECT_EQ(b.span<uint32_t>()[3], 3u);  // raw bits of the same size are allowed
  EXPECT_ERROR(b.span<int64_t>(), "does not match dtype i32");
  EXPECT_ERROR(b.slice(1, 0, 4, 2).to_vector<int32_t>(), "strided view");
  EXPECT_ERROR(b.reshape(Shape({5}, DType::i32)), "byte sizes differ");
  EXPECT_ERROR(HostBuffer::copy_of(Shape({2}, DType::f32), std::vector<std::byte>(7)), "needs 8 bytes but 7");
  EXPECT_EQ(b.reshape(Shape({12}, DType::i32)).to_vector<int32_t>()[11], 11);
  int64_t index[] = {2, 1};
  EXPECT_EQ(b.offset_of(index), (2 * 4 + 1) * 4);
}

}  // namespace
}  // namespace kiln
