// Reference gather and scatter against PyTorch/NumPy results in
// tests/fixtures/ops/movement.safetensors (make_op_fixtures_movement.py).
// Each test runs every gather/scatter case of the fixture and checks that
// every tensor of each case (inputs, attributes, expected output) was used.
#include <gtest/gtest.h>

#include <cmath>
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

::testing::AssertionResult same_bytes(const HostBuffer& got, const HostBuffer& expected) {
  const HostBuffer a = got.copy(), b = expected.copy();
  if (a.bytes().size() != b.bytes().size() ||
      (a.bytes().size() != 0 && std::memcmp(a.data(), b.data(), a.bytes().size()) != 0))
    return ::testing::AssertionFailure() << "bytes differ from the expected result";
  return ::testing::AssertionSuccess();
}

// Non-finite expected elements (operand elements no update touches, in the
// float scatter-add cases) must come back with their exact bits.
::testing::AssertionResult same_non_finite_bits(const HostBuffer& got, const HostBuffer& expected) {
  const HostBuffer a = got.copy(), b = expected.copy();
  const size_t size = size_of(b.dtype());
  for (int64_t i = 0; i < b.shape().count(); ++i) {
    const std::byte* pb = b.data() + static_cast<size_t>(i) * size;
    if (!std::isfinite(load_double(b.dtype(), pb)) && std::memcmp(a.data() + static_cast<size_t>(i) * size, pb, size))
      return ::testing::AssertionFailure() << "element " << i << " is not bit-identical";
  }
  return ::testing::AssertionSuccess();
}

std::vector<HostBuffer> run(const Platform& platform, ir::Op op, const std::vector<HostBuffer>& inputs,
                            ir::Attributes attrs) {
  ir::Graph g;
  std::vector<ir::Value> operands;
  for (const HostBuffer& input : inputs) operands.push_back(g.parameter(input.shape()));
  g.set_outputs({g.add(op, operands, std::move(attrs))});
  ir::verify(g);
  return testing::evaluate(platform, g, inputs);
}

class RefIndexing : public testing::OnEveryBackend {};
KILN_ON_EVERY_BACKEND(RefIndexing);

TEST_P(RefIndexing, GatherAllFixtureCases) {
  testing::TrackedFixture fixture(kFixture);
  const auto prefixes = fixture.case_prefixes("gather");
  EXPECT_GE(prefixes.size(), 15u);
  for (const std::string& prefix : prefixes) {
    SCOPED_TRACE(prefix);
    const std::string attr = prefix + "attr.";
    const ir::GatherAttrs attrs{fixture.axes(attr + "offset_dims"), fixture.axes(attr + "collapsed_slice_dims"),
                                fixture.axes(attr + "start_index_map"), fixture.scalar(attr + "index_vector_dim"),
                                fixture.axes(attr + "slice_sizes")};
    const auto out =
        run(platform(), ir::Op::gather, {fixture.get(prefix + "operand"), fixture.get(prefix + "indices")}, attrs);
    const HostBuffer& expected = fixture.get(prefix + "out");
    EXPECT_TRUE(testing::all_close(out[0], expected, prefix));
    EXPECT_TRUE(same_bytes(out[0], expected)) << prefix;
    EXPECT_EQ(fixture.unread_under(prefix), std::vector<std::string>{});
  }
}

// replace and integer/bool add are exact; float add accumulates in double
// and rounds once, as the fixture does, so it is compared with all_close
// (and untouched NaN/inf elements bit for bit).
TEST_P(RefIndexing, ScatterAllFixtureCases) {
  testing::TrackedFixture fixture(kFixture);
  const auto prefixes = fixture.case_prefixes("scatter");
  EXPECT_GE(prefixes.size(), 17u);
  int add_cases = 0, replace_cases = 0;
  for (const std::string& prefix : prefixes) {
    SCOPED_TRACE(prefix);
    const std::string attr = prefix + "attr.";
    const int64_t mode = fixture.scalar(attr + "mode");
    ASSERT_TRUE(mode == 0 || mode == 1);
    const ir::ScatterAttrs attrs{fixture.axes(attr + "update_window_dims"), fixture.axes(attr + "inserted_window_dims"),
                                 fixture.axes(attr + "scatter_dims_to_operand_dims"),
                                 fixture.scalar(attr + "index_vector_dim"),
                                 mode == 0 ? ir::ScatterMode::replace : ir::ScatterMode::add};
    const auto out =
        run(platform(), ir::Op::scatter,
            {fixture.get(prefix + "operand"), fixture.get(prefix + "indices"), fixture.get(prefix + "updates")}, attrs);
    const HostBuffer& expected = fixture.get(prefix + "out");
    EXPECT_TRUE(testing::all_close(out[0], expected, prefix));
    if (mode == 1 && is_float(expected.dtype()))
      EXPECT_TRUE(same_non_finite_bits(out[0], expected)) << prefix;
    else
      EXPECT_TRUE(same_bytes(out[0], expected)) << prefix;
    EXPECT_EQ(fixture.unread_under(prefix), std::vector<std::string>{});
    ++(mode == 1 ? add_cases : replace_cases);
  }
  EXPECT_GE(add_cases, 8);
  EXPECT_GE(replace_cases, 4);
}

// Scatter must not change its operand buffer (the interpreter may hand the
// same buffer to other nodes).
TEST_P(RefIndexing, ScatterLeavesItsOperandUnchanged) {
  const io::BufferStore& store = testing::fixture(kFixture);
  const HostBuffer& x = store.get("scatter.case0.operand");
  const HostBuffer& indices = store.get("scatter.case0.indices");
  const HostBuffer& updates = store.get("scatter.case0.updates");
  const HostBuffer before = x.copy();
  ir::Graph g;
  const ir::Value p = g.parameter(x.shape());
  const ir::Value i = g.parameter(indices.shape());
  const ir::Value u = g.parameter(updates.shape());
  const ir::ScatterAttrs attrs{{1}, {0}, {0}, 1, ir::ScatterMode::add};
  g.set_outputs({g.add(ir::Op::scatter, {p, i, u}, attrs), p});
  const auto out = testing::evaluate(platform(), g, {x, indices, updates});
  EXPECT_TRUE(same_bytes(out[1], before));
  EXPECT_TRUE(same_bytes(x, before));
  EXPECT_TRUE(testing::all_close(out[0], store.get("scatter.case0.out")));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RefIndexingErrors, ShapeErrorsNameTheOp) {
  ir::Graph g;
  const ir::Value x = g.parameter(Shape({5, 4}, DType::f32));
  const ir::Value idx = g.parameter(Shape({3}, DType::i32));
  const ir::Value fidx = g.parameter(Shape({3}, DType::f32));

  // start_index_map names axis 2 of a rank-2 operand.
  std::string e = error_of([&] { g.add(ir::Op::gather, {x, idx}, ir::GatherAttrs{{1}, {0}, {2}, 1, {1, 4}}); });
  EXPECT_NE(e.find("[gather]"), std::string::npos) << e;
  EXPECT_NE(e.find("start_index_map"), std::string::npos) << e;
  EXPECT_NE(e.find("{5,4} f32"), std::string::npos) << e;
  // start_index_map with two entries for index vectors of size 1.
  EXPECT_ERROR(g.add(ir::Op::gather, {x, idx}, ir::GatherAttrs{{1}, {0}, {0, 1}, 1, {1, 4}}), "[gather]");
  EXPECT_ERROR(g.add(ir::Op::gather, {x, idx}, ir::GatherAttrs{{1}, {0}, {0}, 1, {1, 5}}), "[gather]");
  EXPECT_ERROR(g.add(ir::Op::gather, {x, idx}, ir::GatherAttrs{{1}, {0}, {0}, 1, {2, 4}}), "[gather]");
  EXPECT_ERROR(g.add(ir::Op::gather, {x, fidx}, ir::GatherAttrs{{1}, {0}, {0}, 1, {1, 4}}), "[gather]");

  const ir::Value rows = g.parameter(Shape({3, 4}, DType::f32));
  const ir::Value wide = g.parameter(Shape({3, 5}, DType::f32));
  EXPECT_ERROR(g.add(ir::Op::scatter, {x, idx, wide}, ir::ScatterAttrs{{1}, {0}, {0}, 1, ir::ScatterMode::add}),
               "[scatter]");
  EXPECT_ERROR(g.add(ir::Op::scatter, {x, idx, rows}, ir::ScatterAttrs{{1}, {0}, {3}, 1, ir::ScatterMode::add}),
               "[scatter]");
  const ir::Value other = g.parameter(Shape({3, 4}, DType::i32));
  EXPECT_ERROR(g.add(ir::Op::scatter, {x, idx, other}, ir::ScatterAttrs{{1}, {0}, {0}, 1, ir::ScatterMode::add}),
               "[scatter]");
  // The valid forms of the same calls build.
  EXPECT_NO_THROW(g.add(ir::Op::gather, {x, idx}, ir::GatherAttrs{{1}, {0}, {0}, 1, {1, 4}}));
  EXPECT_NO_THROW(g.add(ir::Op::scatter, {x, idx, rows}, ir::ScatterAttrs{{1}, {0}, {0}, 1, ir::ScatterMode::add}));
}

}  // namespace
}  // namespace kiln
