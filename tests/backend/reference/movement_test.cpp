// Reference kernels for the movement ops against PyTorch/NumPy results in
// tests/fixtures/ops/movement.safetensors (make_op_fixtures_movement.py).
// Every test runs every case of its op found in the fixture and checks that
// each tensor of the case was used; RefMovementFixture checks that every
// tensor of the file belongs to an op that is tested (gather and scatter in
// indexing_test.cpp).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kiln/core/element.h"
#include "kiln/io/buffer_store.h"
#include "support/compare.h"
#include "support/expect_error.h"
#include "support/graph_batch.h"
#include "support/tracked_fixture.h"

namespace kiln {
namespace {

constexpr const char* kFixture = "ops/movement.safetensors";

// A 1-D `starts` tensor as rank-0 operands of its dtype.
std::vector<HostBuffer> scalars_of(const HostBuffer& starts) {
  const size_t size = size_of(starts.dtype());
  std::vector<HostBuffer> scalars;
  for (int64_t i = 0; i < starts.shape().count(); ++i)
    scalars.push_back(
        HostBuffer::copy_of(Shape(starts.dtype()), starts.bytes().subspan(static_cast<size_t>(i) * size, size)));
  return scalars;
}

// These ops only move bytes: the result must equal the expectation bit for
// bit (all_close alone would accept -0 for 0 and any NaN for a NaN).
::testing::AssertionResult same_bytes(const HostBuffer& got, const HostBuffer& expected) {
  const HostBuffer a = got.copy(), b = expected.copy();
  if (a.bytes().size() != b.bytes().size() ||
      (a.bytes().size() != 0 && std::memcmp(a.data(), b.data(), a.bytes().size()) != 0))
    return ::testing::AssertionFailure() << "bytes differ from the expected result";
  return ::testing::AssertionSuccess();
}

using Fixture = testing::TrackedFixture;

// Builds `op` on parameters holding `inputs`, evaluates it and compares with
// the case's `out`.
void run_case(testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix, ir::Op op,
              const std::vector<HostBuffer>& inputs, ir::Attributes attrs) {
  ir::Graph g;
  std::vector<ir::Value> operands;
  for (const HostBuffer& input : inputs) operands.push_back(g.parameter(input.shape()));
  g.set_outputs({g.add(op, operands, std::move(attrs))});
  ir::verify(g);
  const HostBuffer expected = fixture.get(prefix + "out");
  batch.add(g, inputs, [=](const std::vector<HostBuffer>& out) {
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(testing::all_close(out[0], expected, prefix));
    EXPECT_TRUE(same_bytes(out[0], expected)) << prefix;
  });
  EXPECT_EQ(fixture.unread_under(prefix), std::vector<std::string>{}) << "the test ignored part of " << prefix;
}

// Runs `one(batch, fixture, prefix)` on every case of `op` on `backend` (in
// one compile) and checks the fixture has enough of them.
template <typename F>
void for_each_case(const std::string& backend, const std::string& op, size_t at_least, F one) {
  Fixture fixture(kFixture);
  const auto prefixes = fixture.case_prefixes(op);
  EXPECT_GE(prefixes.size(), at_least) << op;
  testing::GraphBatch batch;
  for (const std::string& prefix : prefixes) one(batch, fixture, prefix);
  batch.run(Platform::get(backend));
}

// Each movement test runs on every backend.
class RefMovement : public testing::OnEveryBackend {};

TEST_P(RefMovement, BroadcastInDim) {
  for_each_case(GetParam(), "broadcast_in_dim", 8,
                [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
                  run_case(batch, fixture, prefix, ir::Op::broadcast_in_dim, {fixture.get(prefix + "operand")},
                           ir::BroadcastAttrs{fixture.get(prefix + "out").shape(), fixture.axes(prefix + "attr.dims")});
                });
}

TEST_P(RefMovement, Reshape) {
  for_each_case(GetParam(), "reshape", 7, [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
    run_case(batch, fixture, prefix, ir::Op::reshape, {fixture.get(prefix + "operand")},
             ir::ReshapeAttrs{fixture.get(prefix + "out").shape()});
  });
}

TEST_P(RefMovement, Transpose) {
  for_each_case(GetParam(), "transpose", 7,
                [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
                  run_case(batch, fixture, prefix, ir::Op::transpose, {fixture.get(prefix + "operand")},
                           ir::TransposeAttrs{fixture.axes(prefix + "attr.permutation")});
                });
}

TEST_P(RefMovement, Slice) {
  for_each_case(GetParam(), "slice", 8, [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
    run_case(batch, fixture, prefix, ir::Op::slice, {fixture.get(prefix + "operand")},
             ir::SliceAttrs{fixture.axes(prefix + "attr.start"), fixture.axes(prefix + "attr.limit"),
                            fixture.axes(prefix + "attr.stride")});
  });
}

TEST_P(RefMovement, DynamicSliceClampsStarts) {
  for_each_case(GetParam(), "dynamic_slice", 9,
                [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
                  std::vector<HostBuffer> inputs = {fixture.get(prefix + "operand")};
                  for (HostBuffer& s : scalars_of(fixture.get(prefix + "starts"))) inputs.push_back(s);
                  run_case(batch, fixture, prefix, ir::Op::dynamic_slice, inputs,
                           ir::DynamicSliceAttrs{fixture.axes(prefix + "attr.sizes")});
                });
}

TEST_P(RefMovement, DynamicUpdateSliceClampsStarts) {
  for_each_case(GetParam(), "dynamic_update_slice", 8,
                [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
                  std::vector<HostBuffer> inputs = {fixture.get(prefix + "operand"), fixture.get(prefix + "update")};
                  for (HostBuffer& s : scalars_of(fixture.get(prefix + "starts"))) inputs.push_back(s);
                  run_case(batch, fixture, prefix, ir::Op::dynamic_update_slice, inputs, ir::NoAttrs{});
                });
}

TEST_P(RefMovement, Concatenate) {
  for_each_case(GetParam(), "concatenate", 7,
                [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
                  std::vector<HostBuffer> inputs;
                  for (int i = 0; fixture.contains(prefix + "operand" + std::to_string(i)); ++i)
                    inputs.push_back(fixture.get(prefix + "operand" + std::to_string(i)));
                  run_case(batch, fixture, prefix, ir::Op::concatenate, inputs,
                           ir::ConcatenateAttrs{fixture.scalar(prefix + "attr.axis")});
                });
}

TEST_P(RefMovement, PadWithInteriorAndCropping) {
  for_each_case(GetParam(), "pad", 9, [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
    run_case(batch, fixture, prefix, ir::Op::pad,
             {fixture.get(prefix + "operand"), fixture.get(prefix + "padding_value")},
             ir::PadAttrs{fixture.axes(prefix + "attr.low"), fixture.axes(prefix + "attr.high"),
                          fixture.axes(prefix + "attr.interior")});
  });
}

TEST_P(RefMovement, Reverse) {
  for_each_case(GetParam(), "reverse", 7, [](testing::GraphBatch& batch, Fixture& fixture, const std::string& prefix) {
    run_case(batch, fixture, prefix, ir::Op::reverse, {fixture.get(prefix + "operand")},
             ir::ReverseAttrs{fixture.axes(prefix + "attr.axes")});
  });
}

// A dynamic slice whose starts change between evaluations of one graph: the
// clamp happens at run time, on the values, not when the graph is built.
TEST_P(RefMovement, DynamicSliceStartsAreReadPerEvaluation) {
  const io::BufferStore& store = testing::fixture(kFixture);
  const HostBuffer& x = store.get("dynamic_slice.case0.operand");  // {5,6} f32, sizes [2,3]
  ir::Graph g;
  const ir::Value p = g.parameter(x.shape());
  const ir::Value r = g.parameter(Shape(DType::i32));
  const ir::Value col = g.parameter(Shape(DType::i32));
  g.set_outputs({g.add(ir::Op::dynamic_slice, {p, r, col}, ir::DynamicSliceAttrs{{2, 3}})});
  const auto scalar = [](int32_t v) {
    HostBuffer b = HostBuffer::allocate(Shape(DType::i32));
    b.mutable_span<int32_t>()[0] = v;
    return b;
  };
  // Starts (100, -100) must clamp to (3, 0) when evaluated, and (1, 2) give
  // the fixture's expected block.
  const testing::Compiled run(Platform::get(GetParam()), g);
  const std::vector<HostBuffer> clamped = run({x, scalar(100), scalar(-100)});
  const std::vector<HostBuffer> explicit_start = run({x, scalar(3), scalar(0)});
  const std::vector<HostBuffer> in_range = run({x, scalar(1), scalar(2)});
  EXPECT_TRUE(same_bytes(clamped[0], explicit_start[0]));
  EXPECT_TRUE(same_bytes(in_range[0], store.get("dynamic_slice.case0.out")));
  EXPECT_FALSE(same_bytes(clamped[0], in_range[0]));
}

KILN_ON_EVERY_BACKEND(RefMovement);

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RefMovementErrors, ShapeErrorsNameTheOpAndTheOperand) {
  ir::Graph g;
  const ir::Value x = g.parameter(Shape({4, 6}, DType::f32));
  const ir::Value y = g.parameter(Shape({3, 5}, DType::f32));
  const ir::Value pv = g.parameter(Shape(DType::f32));

  std::string e = error_of([&] { g.add(ir::Op::slice, {x}, ir::SliceAttrs{{0, 2}, {5, 6}, {1, 1}}); });
  EXPECT_NE(e.find("[slice]"), std::string::npos) << e;
  EXPECT_NE(e.find("{4,6} f32"), std::string::npos) << e;

  e = error_of([&] { g.add(ir::Op::concatenate, {x, y}, ir::ConcatenateAttrs{0}); });
  EXPECT_NE(e.find("[concatenate]"), std::string::npos) << e;
  EXPECT_NE(e.find("{3,5} f32"), std::string::npos) << e;

  e = error_of([&] { g.add(ir::Op::pad, {x, pv}, ir::PadAttrs{{0, 0}, {0, 0}, {-1, 0}}); });
  EXPECT_NE(e.find("[pad]"), std::string::npos) << e;
  EXPECT_NE(e.find("{4,6} f32"), std::string::npos) << e;

  EXPECT_ERROR(g.add(ir::Op::pad, {x, pv}, ir::PadAttrs{{-3, 0}, {-2, 0}, {0, 0}}), "[pad]");
  EXPECT_ERROR(g.add(ir::Op::reshape, {x}, ir::ReshapeAttrs{Shape({5, 5})}), "[reshape]");
  EXPECT_ERROR(g.add(ir::Op::transpose, {x}, ir::TransposeAttrs{{0, 0}}), "[transpose]");
  EXPECT_ERROR(g.add(ir::Op::broadcast_in_dim, {y}, ir::BroadcastAttrs{Shape({3, 4}), {0, 1}}), "[broadcast_in_dim]");
  EXPECT_ERROR(g.add(ir::Op::reverse, {x}, ir::ReverseAttrs{{2}}), "[reverse]");
  const ir::Value i = g.parameter(Shape(DType::i32));
  EXPECT_ERROR(g.add(ir::Op::dynamic_slice, {x, i, i}, ir::DynamicSliceAttrs{{5, 1}}), "[dynamic_slice]");
  EXPECT_ERROR(g.add(ir::Op::dynamic_slice, {x, i}, ir::DynamicSliceAttrs{{1, 1}}), "[dynamic_slice]");
  const ir::Value big = g.parameter(Shape({5, 6}, DType::f32));
  EXPECT_ERROR(g.add(ir::Op::dynamic_update_slice, {x, big, i, i}), "[dynamic_update_slice]");
}

// Every tensor in the fixture belongs to a case of an op whose test runs all
// of that op's cases (and checks it read every tensor of each case).
TEST(RefMovementFixture, EveryCaseBelongsToATestedOp) {
  const std::vector<std::string> ops = {
      "broadcast_in_dim", "reshape", "transpose", "slice",  "dynamic_slice", "dynamic_update_slice",
      "concatenate",      "pad",     "reverse",   "gather", "scatter"};
  const testing::TrackedFixture fixture(kFixture);
  size_t cases = 0;
  for (const std::string& op : ops) cases += fixture.case_prefixes(op).size();
  EXPECT_GE(cases, 100u);
  for (const std::string& name : fixture.store().names()) {
    bool known = false;
    for (const std::string& op : ops) known |= name.rfind(op + ".case", 0) == 0;
    EXPECT_TRUE(known) << name << " is not exercised by any test";
  }
}

}  // namespace
}  // namespace kiln
