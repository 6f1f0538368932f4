#include "kiln/core/shape.h"

#include <gtest/gtest.h>

#include "support/expect_error.h"

namespace kiln {
namespace {

TEST(Shape, CountsBytesAndStrides) {
  Shape s({2, 3, 4}, DType::bf16);
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.count(), 24);
  EXPECT_EQ(s.byte_size(), 48u);
  auto strides = s.strides();
  EXPECT_EQ(strides[0], 12);
  EXPECT_EQ(strides[1], 4);
  EXPECT_EQ(strides[2], 1);
  EXPECT_EQ(s.byte_strides()[0], 24);
  EXPECT_EQ(s.dim(-1), 4);
  EXPECT_EQ(s.to_string(), "{2,3,4} bf16");
}

TEST(Shape, ScalarAndEmpty) {
  Shape scalar(DType::i32);
  EXPECT_EQ(scalar.rank(), 0);
  EXPECT_EQ(scalar.count(), 1);
  EXPECT_EQ(scalar.byte_size(), 4u);
  EXPECT_EQ(scalar.to_string(), "{} i32");
  Shape empty({0, 5});
  EXPECT_EQ(empty.count(), 0);
  EXPECT_EQ(empty.byte_size(), 0u);
}

TEST(Shape, TagsLookup) {
  Shape s({{"b", 4}, {"d", 512}}, DType::f32);
  EXPECT_EQ(s.to_string(), "{b=4,d=512} f32");
  EXPECT_EQ(s.axis("d"), 1);
  EXPECT_EQ(s.dim("b"), 4);
  EXPECT_TRUE(s.has_tag("b"));
  EXPECT_FALSE(s.has_tag("s"));
  EXPECT_EQ(s.find("s"), -1);
  EXPECT_ERROR(s.axis("s"), "no axis tagged 's' in shape {b=4,d=512} f32");
  Shape partly = Shape({3, 4}).with_tag(1, "k");
  EXPECT_EQ(partly.to_string(), "{3,k=4} f32");
  EXPECT_EQ(Shape({3, 4}).with_tags({"x", "y"}).axis("y"), 1);
}

TEST(Shape, Errors) {
  EXPECT_ERROR((Shape({{"b", 4}, {"b", 5}})), "duplicate axis tag 'b'");
  EXPECT_ERROR(Shape({3, 4}).with_tags({"x", "x"}), "duplicate axis tag 'x'");
  EXPECT_ERROR(Shape({3, 4}).with_tags({"x"}), "1 tags given for shape {3,4} f32 of rank 2");
  EXPECT_ERROR(Shape({1, 2, 3, 4, 5, 6, 7, 8, 9}), "more than 8 dims");
  EXPECT_ERROR(Shape({2, -1}), "negative");
  EXPECT_ERROR(Shape({2, 3}).dim(2), "axis 2 is out of range");
  EXPECT_ERROR(Tag("a_tag_that_is_far_too_long"), "longer than 15");
  EXPECT_ERROR((Shape({int64_t{1} << 40, int64_t{1} << 40}).count()), "64 bits");
  EXPECT_ERROR((Shape({int64_t{1} << 31, int64_t{1} << 31}, DType::f64).byte_size()), "64 bits");
}

TEST(Shape, Equality) {
  EXPECT_EQ(Shape({2, 3}), Shape({2, 3}));
  EXPECT_NE(Shape({2, 3}), Shape({2, 3}, DType::f16));
  EXPECT_NE(Shape({2, 3}), Shape({2, 3}).with_tags({"a", "b"}));
  EXPECT_EQ(Shape({2, 3}).with_dtype(DType::i8).dtype(), DType::i8);
}

}  // namespace
}  // namespace kiln
