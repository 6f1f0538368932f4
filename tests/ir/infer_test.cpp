// Shape and dtype rules: every error names the op and prints the operands'
// tagged shapes.
#include "kiln/ir/infer.h"

#include <gtest/gtest.h>

#include "kiln/ir/graph.h"
#include "support/expect_error.h"

namespace kiln::ir {
namespace {

const Shape f32_4x8({{"b", 4}, {"d", 8}}, DType::f32);

std::vector<Shape> run(Op op, std::vector<Shape> operands, Attributes attrs = NoAttrs{}) {
  return infer(op, operands, attrs);
}

TEST(Infer, ElementwiseKeepsShapeAndTags) {
  EXPECT_EQ(run(Op::add, {f32_4x8, f32_4x8})[0], f32_4x8);
  EXPECT_EQ(run(Op::exp, {f32_4x8})[0], f32_4x8);
  EXPECT_EQ(run(Op::compare, {f32_4x8, f32_4x8}, CompareAttrs{Comparison::lt})[0].dtype(), DType::bool_);
  EXPECT_EQ(run(Op::is_finite, {f32_4x8})[0].dtype(), DType::bool_);
}

TEST(Infer, ElementwiseErrors) {
  EXPECT_ERROR(run(Op::add, {f32_4x8, Shape({4, 9})}),
               "[add] operands have different dims: lhs {b=4,d=8} f32, rhs {4,9} f32");
  EXPECT_ERROR(run(Op::mul, {f32_4x8, f32_4x8.with_dtype(DType::bf16)}),
               "[mul] operands have different dtypes (f32 and bf16); insert an explicit convert");
  EXPECT_ERROR(run(Op::exp, {Shape({3}, DType::i32)}),
               "[exp] i32 is not supported; expected a float type: operand {3} i32");
  EXPECT_ERROR(run(Op::popcnt, {Shape({3}, DType::f32)}), "[popcnt] f32 is not supported; expected an integer type");
  EXPECT_ERROR(run(Op::and_, {Shape({3}, DType::f32), Shape({3}, DType::f32)}), "[and] f32 is not supported");
  EXPECT_ERROR(run(Op::neg, {Shape({3}, DType::u8)}), "[neg] u8 is not supported; expected a signed type");
  EXPECT_ERROR(run(Op::add, {Shape({3}, DType::bool_), Shape({3}, DType::bool_)}), "[add] bool is not supported");
  EXPECT_ERROR(run(Op::add, {f32_4x8}), "[add] takes 2 operands, got 1");
  EXPECT_ERROR(run(Op::add, {f32_4x8, f32_4x8}, ConcatenateAttrs{0}), "[add] has attributes of the wrong kind");
}

TEST(Infer, SelectAndClamp) {
  const Shape pred = f32_4x8.with_dtype(DType::bool_);
  EXPECT_EQ(run(Op::select, {pred, f32_4x8, f32_4x8})[0], f32_4x8);
  EXPECT_EQ(run(Op::select, {Shape(DType::bool_), f32_4x8, f32_4x8})[0], f32_4x8);
  EXPECT_ERROR(run(Op::select, {f32_4x8, f32_4x8, f32_4x8}), "[select] pred must be bool, not f32: pred {b=4,d=8} f32");
  EXPECT_ERROR(run(Op::select, {pred, f32_4x8, Shape({4, 8}, DType::f16)}),
               "[select] on_true and on_false have different dtypes");
  EXPECT_EQ(run(Op::clamp, {Shape(), f32_4x8, Shape()})[0], f32_4x8);
  EXPECT_ERROR(run(Op::clamp, {Shape({3}), f32_4x8, Shape()}),
               "[clamp] min and max must be scalars or have the dims of the operand: min {3} f32");
}

TEST(Infer, ConvertAndBitcast) {
  EXPECT_EQ(run(Op::convert, {f32_4x8}, ConvertAttrs{DType::bf16})[0], f32_4x8.with_dtype(DType::bf16));
  EXPECT_EQ(run(Op::bitcast_convert, {Shape({3}, DType::f32)}, ConvertAttrs{DType::u8})[0], Shape({3, 4}, DType::u8));
  EXPECT_EQ(run(Op::bitcast_convert, {Shape({3, 2}, DType::u16)}, ConvertAttrs{DType::f32})[0], Shape({3}, DType::f32));
  EXPECT_ERROR(run(Op::bitcast_convert, {Shape({3, 3}, DType::u16)}, ConvertAttrs{DType::f32}),
               "[bitcast_convert] converting u16 to f32 needs a last axis of size 2: operand {3,3} u16");
}

TEST(Infer, MovementShapes) {
  EXPECT_EQ(run(Op::transpose, {f32_4x8}, TransposeAttrs{{1, 0}})[0], Shape({{"d", 8}, {"b", 4}}));
  EXPECT_ERROR(run(Op::transpose, {f32_4x8}, TransposeAttrs{{0, 0}}), "[transpose] permutation axis 0 appears twice");
  EXPECT_EQ(run(Op::reshape, {f32_4x8}, ReshapeAttrs{Shape({32})})[0], Shape({32}));
  EXPECT_ERROR(run(Op::reshape, {f32_4x8}, ReshapeAttrs{Shape({5, 7})}),
               "[reshape] cannot reshape 32 elements into [5,7] (35 elements): operand {b=4,d=8} f32");
  EXPECT_EQ(run(Op::broadcast_in_dim, {Shape({8})}, BroadcastAttrs{Shape({4, 8}), {1}})[0], Shape({4, 8}));
  EXPECT_ERROR(run(Op::broadcast_in_dim, {Shape({3})}, BroadcastAttrs{Shape({4, 8}), {1}}),
               "[broadcast_in_dim] axis 0 of size 3 cannot broadcast to size 8");
  EXPECT_EQ(run(Op::slice, {f32_4x8}, SliceAttrs{{1, 0}, {4, 8}, {2, 3}})[0], Shape({{"b", 2}, {"d", 3}}));
  EXPECT_ERROR(run(Op::slice, {f32_4x8}, SliceAttrs{{0, 2}, {4, 9}, {1, 1}}),
               "[slice] range [2, 9) is outside axis 'd' of size 8: operand {b=4,d=8} f32");
  EXPECT_EQ(run(Op::pad, {Shape({3}), Shape()}, PadAttrs{{-1}, {2}, {1}})[0], Shape({6}));
  EXPECT_ERROR(run(Op::pad, {Shape({3}), Shape()}, PadAttrs{{0}, {0}, {-1}}),
               "[pad] interior padding -1 on axis 0 must be >= 0");
  EXPECT_ERROR(run(Op::pad, {Shape({3}), Shape()}, PadAttrs{{-3}, {-1}, {0}}),
               "[pad] axis 0 would have negative size -1");
  EXPECT_EQ(run(Op::concatenate, {Shape({2, 3}), Shape({5, 3})}, ConcatenateAttrs{0})[0], Shape({7, 3}));
  EXPECT_ERROR(run(Op::concatenate, {Shape({2, 3}), Shape({5, 4})}, ConcatenateAttrs{0}),
               "[concatenate] operand 1 differs on axis 1 (4 vs 3): operand0 {2,3} f32, operand1 {5,4} f32");
}

TEST(Infer, DynamicSlices) {
  const Shape i32(DType::i32);
  EXPECT_EQ(run(Op::dynamic_slice, {f32_4x8, i32, i32}, DynamicSliceAttrs{{2, 8}})[0], Shape({{"b", 2}, {"d", 8}}));
  EXPECT_ERROR(run(Op::dynamic_slice, {f32_4x8, i32}, DynamicSliceAttrs{{2, 8}}),
               "[dynamic_slice] needs 2 scalar start indices, one per axis, got 1");
  EXPECT_ERROR(run(Op::dynamic_slice, {f32_4x8, i32, Shape(DType::f32)}, DynamicSliceAttrs{{2, 8}}),
               "[dynamic_slice] start index 1 must be an integer scalar");
  EXPECT_EQ(run(Op::dynamic_update_slice, {f32_4x8, Shape({1, 8}), i32, i32})[0], f32_4x8);
  EXPECT_ERROR(run(Op::dynamic_update_slice, {f32_4x8, Shape({5, 8}), i32, i32}),
               "[dynamic_update_slice] update axis 0 of size 5 exceeds the operand's 4");
}

TEST(Infer, GatherEmbeddingLookup) {
  // table {voc=10, d=4} gathered by ids {b=2, s=3} -> {b, s, d}
  GatherAttrs a{{2}, {0}, {0}, 2, {1, 4}};
  const Shape out = run(Op::gather, {Shape({{"voc", 10}, {"d", 4}}), Shape({{"b", 2}, {"s", 3}}, DType::i32)}, a)[0];
  EXPECT_EQ(out, Shape({{"b", 2}, {"s", 3}, {"d", 4}}));
  a.slice_sizes = {2, 4};
  EXPECT_ERROR(run(Op::gather, {Shape({10, 4}), Shape({2, 3}, DType::i32)}, a),
               "[gather] collapsed axis 0 must have slice size <= 1: operand {10,4} f32, indices {2,3} i32");
  EXPECT_ERROR(run(Op::gather, {Shape({10, 4}), Shape({2, 3}, DType::f32)}, a), "[gather] indices must be integers");
}

TEST(Infer, ScatterRows) {
  ScatterAttrs a{{1}, {0}, {0}, 1, ScatterMode::add};
  EXPECT_EQ(run(Op::scatter, {Shape({10, 4}), Shape({3}, DType::i32), Shape({3, 4})}, a)[0], Shape({10, 4}));
  EXPECT_ERROR(run(Op::scatter, {Shape({10, 4}), Shape({3}, DType::i32), Shape({2, 4})}, a),
               "[scatter] updates axis 0 has size 2 but indices axis 0 has 3");
}

TEST(Infer, Reductions) {
  EXPECT_EQ(run(Op::reduce, {f32_4x8}, ReduceAttrs{ReduceKind::sum, {1}})[0], Shape({{"b", 4}}));
  auto arg = run(Op::reduce, {f32_4x8}, ReduceAttrs{ReduceKind::argmax, {1}, DType::i32});
  ASSERT_EQ(arg.size(), 2u);
  EXPECT_EQ(arg[1], Shape({{"b", 4}}, DType::i32));
  EXPECT_ERROR(run(Op::reduce, {f32_4x8}, ReduceAttrs{ReduceKind::sum, {2}}),
               "[reduce] reduce axis 2 is out of range for rank 2");
  EXPECT_ERROR(run(Op::reduce, {f32_4x8}, ReduceAttrs{ReduceKind::and_, {0}}), "[reduce] f32 is not supported");
  ReduceWindowAttrs w{ReduceKind::max, {1, 3}, {1, 2}, {0, 1}, {0, 1}, {1, 1}, {1, 1}};
  EXPECT_EQ(run(Op::reduce_window, {f32_4x8}, w)[0], Shape({{"b", 4}, {"d", 4}}));
  w.strides = {0, 1};
  EXPECT_ERROR(run(Op::reduce_window, {f32_4x8}, w), "[reduce_window] window, strides and dilations must be >= 1");
}

TEST(Infer, DotGeneral) {
  DotAttrs a{{}, {}, {1}, {0}, DType::f32};
  EXPECT_EQ(run(Op::dot_general, {f32_4x8, Shape({{"d", 8}, {"o", 3}})}, a)[0], Shape({{"b", 4}, {"o", 3}}));
  EXPECT_ERROR(run(Op::dot_general, {Shape({{"b", 4}, {"d", 512}}), Shape({{"d", 256}, {"o", 64}})}, a),
               "[dot_general] contracting axis 'd' has 512 on the left and 256 on the right: lhs {b=4,d=512} f32, "
               "rhs {d=256,o=64} f32");
  DotAttrs batched{{0}, {0}, {2}, {1}, DType::f32};
  EXPECT_EQ(run(Op::dot_general, {Shape({2, 3, 4}), Shape({2, 4, 5})}, batched)[0], Shape({2, 3, 5}));
  DotAttrs mixed{{}, {}, {1}, {0}, DType::f32};
  EXPECT_EQ(run(Op::dot_general, {Shape({2, 3}, DType::bf16), Shape({3, 5}, DType::bf16)}, mixed)[0], Shape({2, 5}));
  DotAttrs bad{{}, {}, {1}, {0}, DType::i32};
  EXPECT_ERROR(run(Op::dot_general, {Shape({2, 3}), Shape({3, 5})}, bad),
               "[dot_general] result dtype i32 does not match");
}

TEST(Infer, Convolution) {
  ConvolutionAttrs a{{2, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1};
  EXPECT_EQ(run(Op::convolution, {Shape({1, 3, 8, 8}), Shape({16, 3, 3, 3})}, a)[0], Shape({1, 16, 4, 4}));
  a.feature_group_count = 2;
  EXPECT_ERROR(run(Op::convolution, {Shape({1, 3, 8, 8}), Shape({16, 3, 3, 3})}, a),
               "[convolution] feature_group_count 2 must divide the input features 3 and output features 16");
}

TEST(Infer, SortTopKRngIota) {
  EXPECT_EQ(run(Op::sort, {Shape({3, 4}), Shape({3, 4}, DType::i32)}, SortAttrs{1}).size(), 2u);
  EXPECT_ERROR(run(Op::sort, {Shape({3, 4}), Shape({3, 5})}, SortAttrs{1}), "[sort] operands have different dims");
  auto topk = run(Op::top_k, {Shape({3, 10})}, TopKAttrs{4});
  EXPECT_EQ(topk[0], Shape({3, 4}));
  EXPECT_EQ(topk[1], Shape({3, 4}, DType::i32));
  EXPECT_ERROR(run(Op::top_k, {Shape({3, 10})}, TopKAttrs{11}),
               "[top_k] k = 11 is outside [0, 10]: operand {3,10} f32");
  EXPECT_EQ(run(Op::rng, {Shape({2}, DType::u32)}, RngAttrs{RngDistribution::normal, Shape({5})})[0], Shape({5}));
  EXPECT_ERROR(run(Op::rng, {Shape({2}, DType::u64)}, RngAttrs{RngDistribution::normal, Shape({5})}),
               "[rng] the key must be u32 [2]: operand {2} u64");
  EXPECT_ERROR(run(Op::iota, {}, IotaAttrs{Shape({3}), 1}), "[iota] iota axis 1 is out of range for rank 1");
}

}  // namespace
}  // namespace kiln::ir
