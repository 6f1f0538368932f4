// Reference sort and top_k against PyTorch/NumPy results in
// tests/fixtures/ops/sorting.safetensors (make_op_fixtures_sorting.py), plus
// hand-checked cases for dtypes torch cannot sort (u64, f16) and errors.
// Each fixture test runs every case of its op and fails if a case, or a
// tensor of a case, is left unused.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kiln/backend/reference/kernels.h"
#include "kiln/io/buffer_store.h"
#include "support/compare.h"
#include "support/expect_error.h"
#include "support/graph_batch.h"
#include "support/tracked_fixture.h"

namespace kiln {
namespace {

constexpr const char* kFixture = "ops/sorting.safetensors";

// The same bytes seen as unsigned integers of the element's size, so that
// all_close compares bit patterns exactly (-0.0 vs +0.0, NaN payloads).
HostBuffer bits_of(const HostBuffer& buffer) {
  DType raw = DType::u8;
  switch (size_of(buffer.dtype())) {
    case 2:
      raw = DType::u16;
      break;
    case 4:
      raw = DType::u32;
      break;
    case 8:
      raw = DType::u64;
      break;
  }
  return buffer.copy().reshape(buffer.shape().with_dtype(raw));
}

// Sort and top_k results are moved elements: equal values and equal bits.
void expect_exact(const HostBuffer& got, const HostBuffer& expected, const std::string& what) {
  EXPECT_TRUE(testing::all_close(got, expected, testing::Tolerance{}, what));
  EXPECT_TRUE(testing::all_close(bits_of(got), bits_of(expected), testing::Tolerance{}, what + " (bits)"));
}

Shape shape_of(const HostBuffer& buffer) { return Shape(buffer.shape().dims(), buffer.dtype()); }

class RefSortingOn : public testing::OnEveryBackend {};
KILN_ON_EVERY_BACKEND(RefSortingOn);

TEST_P(RefSortingOn, SortMatchesTorchFixture) {
  testing::TrackedFixture fixture(kFixture);
  const std::vector<std::string> prefixes = fixture.case_prefixes("sort");
  ASSERT_EQ(static_cast<int64_t>(prefixes.size()), fixture.store().metadata<int64_t>("sort_cases"));
  ASSERT_FALSE(prefixes.empty());
  for (const std::string& prefix : prefixes) {
    SCOPED_TRACE(prefix);
    std::vector<HostBuffer> inputs;
    while (fixture.contains(prefix + "in" + std::to_string(inputs.size())))
      inputs.push_back(fixture.get(prefix + "in" + std::to_string(inputs.size())));
    ASSERT_FALSE(inputs.empty());

    ir::Graph g;
    std::vector<ir::Value> params;
    for (const HostBuffer& input : inputs) params.push_back(g.parameter(shape_of(input)));
    const ir::SortAttrs attrs{fixture.scalar(prefix + "attr.axis"), fixture.scalar(prefix + "attr.descending") != 0,
                              true};
    const ir::Value sorted = g.add(ir::Op::sort, params, attrs);
    g.set_outputs(g.results(sorted.node));
    ir::verify(g);
    const std::vector<HostBuffer> out = testing::evaluate(platform(), g, inputs);

    ASSERT_EQ(out.size(), inputs.size());
    for (size_t j = 0; j < out.size(); ++j)
      expect_exact(out[j], fixture.get(prefix + "out" + std::to_string(j)), prefix);
    EXPECT_TRUE(fixture.all_read_under(prefix));
  }
}

TEST_P(RefSortingOn, TopKMatchesTorchFixture) {
  testing::TrackedFixture fixture(kFixture);
  const std::vector<std::string> prefixes = fixture.case_prefixes("top_k");
  ASSERT_EQ(static_cast<int64_t>(prefixes.size()), fixture.store().metadata<int64_t>("top_k_cases"));
  ASSERT_FALSE(prefixes.empty());
  for (const std::string& prefix : prefixes) {
    SCOPED_TRACE(prefix);
    const HostBuffer& input = fixture.get(prefix + "in");
    const HostBuffer& values = fixture.get(prefix + "values");
    const HostBuffer& indices = fixture.get(prefix + "indices");

    ir::Graph g;
    const ir::Value x = g.parameter(shape_of(input));
    const ir::Value top = g.add(ir::Op::top_k, {x}, ir::TopKAttrs{values.shape().dim(-1)});
    g.set_outputs(g.results(top.node));
    ir::verify(g);
    const std::vector<HostBuffer> out = testing::evaluate(platform(), g, {input});

    ASSERT_EQ(out.size(), 2u);
    expect_exact(out[0], values, prefix + "values");
    EXPECT_TRUE(testing::all_close(out[1], indices, prefix + "indices"));
    EXPECT_TRUE(fixture.all_read_under(prefix));
  }
}

// Every tensor of the fixture belongs to an op that a test walks through.
TEST(RefSorting, FixtureHoldsOnlyKnownOps) {
  for (const std::string& name : testing::fixture(kFixture).names()) {
    const bool known = name.rfind("sort.", 0) == 0 || name.rfind("top_k.", 0) == 0 || name.rfind("rng.", 0) == 0 ||
                       name.rfind("philox.", 0) == 0;
    EXPECT_TRUE(known) << name;
  }
}

template <typename T>
HostBuffer buffer_of(DType dtype, const std::vector<T>& values) {
  HostBuffer b = HostBuffer::allocate(Shape({static_cast<int64_t>(values.size())}, dtype));
  auto span = b.mutable_span<T>();
  std::copy(values.begin(), values.end(), span.begin());
  return b;
}

std::vector<HostBuffer> run_sort(const Platform& platform, const std::vector<HostBuffer>& inputs, ir::SortAttrs attrs) {
  ir::Graph g;
  std::vector<ir::Value> params;
  for (const HostBuffer& input : inputs) params.push_back(g.parameter(shape_of(input)));
  const ir::Value sorted = g.add(ir::Op::sort, params, attrs);
  g.set_outputs(g.results(sorted.node));
  return testing::evaluate(platform, g, inputs);
}

// torch has no u64 sort: unsigned order by hand (2^63 + 1 is not negative).
TEST_P(RefSortingOn, SortU64KeysAsUnsigned) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const HostBuffer keys = buffer_of<uint64_t>(DType::u64, {uint64_t{1} << 63 | 1, 1, kMax, 0, 1});
  const HostBuffer payload = buffer_of<int32_t>(DType::i32, {0, 1, 2, 3, 4});
  const auto asc = run_sort(platform(), {keys, payload}, {0, false, true});
  EXPECT_TRUE(testing::all_close(asc[0], buffer_of<uint64_t>(DType::u64, {0, 1, 1, uint64_t{1} << 63 | 1, kMax})));
  EXPECT_TRUE(testing::all_close(asc[1], buffer_of<int32_t>(DType::i32, {3, 1, 4, 0, 2})));
  const auto desc = run_sort(platform(), {keys, payload}, {0, true, true});
  EXPECT_TRUE(testing::all_close(desc[1], buffer_of<int32_t>(DType::i32, {2, 0, 1, 4, 3})));
}

// f16 keys (f16 bits by hand): NaN last, -0 == +0 keeps order, inf, ties.
TEST_P(RefSortingOn, SortF16KeysByHand) {
  // 2.0, NaN, -0.0, -inf, +0.0, 2.0, -1.0
  const HostBuffer keys = buffer_of<uint16_t>(DType::f16, {0x4000, 0x7E00, 0x8000, 0xFC00, 0x0000, 0x4000, 0xBC00});
  const HostBuffer payload = buffer_of<int32_t>(DType::i32, {0, 1, 2, 3, 4, 5, 6});
  const auto asc = run_sort(platform(), {keys, payload}, {0, false, true});
  EXPECT_TRUE(testing::all_close(asc[1], buffer_of<int32_t>(DType::i32, {3, 6, 2, 4, 0, 5, 1})));
  EXPECT_TRUE(testing::all_close(
      bits_of(asc[0]),
      bits_of(buffer_of<uint16_t>(DType::f16, {0xFC00, 0xBC00, 0x8000, 0x0000, 0x4000, 0x4000, 0x7E00}))));
  const auto desc = run_sort(platform(), {keys, payload}, {0, true, true});
  EXPECT_TRUE(testing::all_close(desc[1], buffer_of<int32_t>(DType::i32, {1, 0, 5, 2, 4, 6, 3})));
  // stable = false asks for less; the stable order is still a valid answer.
  const auto unstable = run_sort(platform(), {keys, payload}, {0, false, false});
  EXPECT_TRUE(testing::all_close(unstable[0], asc[0]));
}

TEST(RefSorting, TopKErrors) {
  ir::Graph g;
  const ir::Value x = g.parameter(Shape({2, 5}, DType::f32));
  EXPECT_ERROR(g.add(ir::Op::top_k, {x}, ir::TopKAttrs{6}), "[top_k]");
  EXPECT_ERROR(g.add(ir::Op::top_k, {x}, ir::TopKAttrs{-1}), "[top_k]");

  // The kernel itself refuses a k it cannot fill rather than reading past
  // the lane (a node that skipped inference).
  ir::Node node{ir::Op::top_k, {}, {Shape({2, 6}, DType::f32), Shape({2, 6}, DType::i32)}, ir::TopKAttrs{6}};
  const std::vector<HostBuffer> operands = {HostBuffer::allocate(Shape({2, 5}, DType::f32))};
  EXPECT_ERROR(reference::eval_sorting(node, operands), "[top_k]");
}

TEST(RefSorting, SortErrors) {
  ir::Graph g;
  const ir::Value keys = g.parameter(Shape({2, 5}, DType::f32));
  const ir::Value other = g.parameter(Shape({2, 4}, DType::i32));
  EXPECT_ERROR(g.add(ir::Op::sort, {keys, other}, ir::SortAttrs{1}), "[sort]");
  EXPECT_ERROR(g.add(ir::Op::sort, {keys}, ir::SortAttrs{2}), "[sort]");

  ir::Node node{ir::Op::sort, {}, {Shape({2, 5}, DType::f32), Shape({2, 4}, DType::i32)}, ir::SortAttrs{1}};
  const std::vector<HostBuffer> operands = {HostBuffer::allocate(Shape({2, 5}, DType::f32)),
                                            HostBuffer::allocate(Shape({2, 4}, DType::i32))};
  EXPECT_ERROR(reference::eval_sorting(node, operands), "[sort]");
}

}  // namespace
}  // namespace kiln
