// Reference kernels for the movement ops against PyTorch/NumPy results in
// tests/fixtures/ops/movement.safetensors (make_op_fixtures_movement.py).
// Every test runs every case of its op found in the fixture and checks that
// each tensor of the case was used; RefMovementFixture checks that every
// tensor of the file belongs to an op that is tested (gather and scatter in
// indexing_test.cpp).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "kiln/backend/reference/interpreter.h"
#include "kiln/io/buffer_store.h"
#include "support/compare.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

const io::BufferStore& store() { return testing::fixture("ops/movement.safetensors"); }

// The prefixes "<op>.case<N>." of every case of `op` in the fixture.
std::vector<std::string> cases_of(const std::string& op) {
  std::set<std::string> prefixes;
  for (const std::string& name : store().names()) {
    if (name.rfind(op + ".case", 0) != 0) continue;
    const size_t end = name.find('.', op.size() + 5);
    prefixes.insert(name.substr(0, end + 1));
  }
  return {prefixes.begin(), prefixes.end()};
}

// Reads the tensors of one case and remembers which ones were read, so a
// test can check that it used everything the fixture says about the case.
class Case {
 public:
  explicit Case(std::string prefix) : prefix_(std::move(prefix)) {}

  const std::string& name() const { return prefix_; }
  bool has(const std::string& what) const { return store().contains(prefix_ + what); }
  const HostBuffer& tensor(const std::string& what) {
    used_.insert(prefix_ + what);
    return store().get(prefix_ + what);
  }
  ir::Axes axes(const std::string& attr) {
    const HostBuffer& b = tensor("attr." + attr);
    const auto values = b.span<int64_t>();
    return {values.begin(), values.end()};
  }
  int64_t scalar(const std::string& attr) { return tensor("attr." + attr).span<int64_t>()[0]; }
  // The 1-D `starts` tensor as rank-0 operands of its dtype.
  std::vector<HostBuffer> starts() {
    const HostBuffer& b = tensor("starts");
    const size_t size = size_of(b.dtype());
    std::vector<HostBuffer> scalars;
    for (int64_t i = 0; i < b.shape().count(); ++i)
      scalars.push_back(HostBuffer::copy_of(Shape(b.dtype()), b.bytes().subspan(static_cast<size_t>(i) * size, size)));
    return scalars;
  }

  // Fixture tensors of this case that the test never read.
  std::vector<std::string> unused() const {
    std::vector<std::string> names;
    for (const std::string& name : store().names())
      if (name.rfind(prefix_, 0) == 0 && !used_.contains(name)) names.push_back(name);
    return names;
  }

 private:
  std::string prefix_;
  std::set<std::string> used_;
};

// These ops only move bytes: the result must equal the expectation bit for
// bit (all_close alone would accept -0 for 0 and any NaN for a NaN).
::testing::AssertionResult same_bytes(const HostBuffer& got, const HostBuffer& expected) {
  const HostBuffer a = got.copy(), b = expected.copy();
  if (a.bytes().size() != b.bytes().size() ||
      (a.bytes().size() != 0 && std::memcmp(a.data(), b.data(), a.bytes().size()) != 0))
    return ::testing::AssertionFailure() << "bytes differ from the expected result";
  return ::testing::AssertionSuccess();
}

// Builds `op` on parameters holding `inputs`, evaluates it and compares with
// the case's `out`.
void run_case(Case& c, ir::Op op, const std::vector<HostBuffer>& inputs, ir::Attributes attrs) {
  SCOPED_TRACE(c.name());
  ir::Graph g;
  std::vector<ir::Value> operands;
  for (const HostBuffer& input : inputs) operands.push_back(g.parameter(input.shape()));
  g.set_outputs({g.add(op, operands, std::move(attrs))});
  ir::verify(g);
  const std::vector<HostBuffer> out = reference::evaluate(g, inputs);
  ASSERT_EQ(out.size(), 1u);
  const HostBuffer& expected = c.tensor("out");
  EXPECT_TRUE(testing::all_close(out[0], expected, c.name()));
  EXPECT_TRUE(same_bytes(out[0], expected)) << c.name();
  EXPECT_EQ(c.unused(), std::vector<std::string>{}) << "the test ignored part of " << c.name();
}

// Runs `one` on every case of `op` and checks the fixture has enough of them.
template <typename F>
void for_each_case(const std::string& op, size_t at_least, F one) {
  const auto prefixes = cases_of(op);
  EXPECT_GE(prefixes.size(), at_least) << op;
  for (const std::string& prefix : prefixes) {
    Case c(prefix);
    one(c);
  }
}

TEST(RefMovement, BroadcastInDim) {
  for_each_case("broadcast_in_dim", 8, [](Case& c) {
    const HostBuffer& x = c.tensor("operand");
    run_case(c, ir::Op::broadcast_in_dim, {x}, ir::BroadcastAttrs{c.tensor("out").shape(), c.axes("dims")});
  });
}

TEST(RefMovement, Reshape) {
  for_each_case("reshape", 7, [](Case& c) {
    run_case(c, ir::Op::reshape, {c.tensor("operand")}, ir::ReshapeAttrs{c.tensor("out").shape()});
  });
}

TEST(RefMovement, Transpose) {
  for_each_case("transpose", 7, [](Case& c) {
    run_case(c, ir::Op::transpose, {c.tensor("operand")}, ir::TransposeAttrs{c.axes("permutation")});
  });
}

TEST(RefMovement, Slice) {
  for_each_case("slice", 8, [](Case& c) {
    run_case(c, ir::Op::slice, {c.tensor("operand")},
             ir::SliceAttrs{c.axes("start"), c.axes("limit"), c.axes("stride")});
  });
}

TEST(RefMovement, DynamicSliceClampsStarts) {
  for_each_case("dynamic_slice", 9, [](Case& c) {
    std::vector<HostBuffer> inputs = {c.tensor("operand")};
    for (HostBuffer& s : c.starts()) inputs.push_back(s);
    run_case(c, ir::Op::dynamic_slice, inputs, ir::DynamicSliceAttrs{c.axes("sizes")});
  });
}

TEST(RefMovement, DynamicUpdateSliceClampsStarts) {
  for_each_case("dynamic_update_slice", 8, [](Case& c) {
    std::vector<HostBuffer> inputs = {c.tensor("operand"), c.tensor("update")};
    for (HostBuffer& s : c.starts()) inputs.push_back(s);
    run_case(c, ir::Op::dynamic_update_slice, inputs, ir::NoAttrs{});
  });
}

TEST(RefMovement, Concatenate) {
  for_each_case("concatenate", 7, [](Case& c) {
    std::vector<HostBuffer> inputs;
    for (int i = 0; c.has("operand" + std::to_string(i)); ++i)
      inputs.push_back(c.tensor("operand" + std::to_string(i)));
    run_case(c, ir::Op::concatenate, inputs, ir::ConcatenateAttrs{c.scalar("axis")});
  });
}

TEST(RefMovement, PadWithInteriorAndCropping) {
  for_each_case("pad", 9, [](Case& c) {
    run_case(c, ir::Op::pad, {c.tensor("operand"), c.tensor("padding_value")},
             ir::PadAttrs{c.axes("low"), c.axes("high"), c.axes("interior")});
  });
}

TEST(RefMovement, Reverse) {
  for_each_case("reverse", 7,
                [](Case& c) { run_case(c, ir::Op::reverse, {c.tensor("operand")}, ir::ReverseAttrs{c.axes("axes")}); });
}

// A dynamic slice whose starts change between evaluations of one graph: the
// clamp happens at run time, on the values, not when the graph is built.
TEST(RefMovement, DynamicSliceStartsAreReadPerEvaluation) {
  Case c("dynamic_slice.case0.");
  const HostBuffer& x = c.tensor("operand");  // {5,6} f32, sizes [2,3]
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
  const std::vector<HostBuffer> clamped = reference::evaluate(g, std::vector<HostBuffer>{x, scalar(100), scalar(-100)});
  const std::vector<HostBuffer> explicit_start =
      reference::evaluate(g, std::vector<HostBuffer>{x, scalar(3), scalar(0)});
  const std::vector<HostBuffer> in_range = reference::evaluate(g, std::vector<HostBuffer>{x, scalar(1), scalar(2)});
  EXPECT_TRUE(same_bytes(clamped[0], explicit_start[0]));
  EXPECT_TRUE(same_bytes(in_range[0], c.tensor("out")));
  EXPECT_FALSE(same_bytes(clamped[0], in_range[0]));
}

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
  size_t cases = 0;
  for (const std::string& op : ops) cases += cases_of(op).size();
  EXPECT_GE(cases, 100u);
  for (const std::string& name : store().names()) {
    bool known = false;
    for (const std::string& op : ops) known |= name.rfind(op + ".case", 0) == 0;
    EXPECT_TRUE(known) << name << " is not exercised by any test";
  }
}

}  // namespace
}  // namespace kiln
