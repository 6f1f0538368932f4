// optimization_barrier returns its operands unchanged, bit for bit, whatever
// their dtypes (it only constrains what optimizing backends may move).
#include <gtest/gtest.h>

#include <cstring>

#include "support/graph_batch.h"

namespace kiln {
namespace {

class RefBarrier : public testing::OnEveryBackend {};
KILN_ON_EVERY_BACKEND(RefBarrier);

TEST_P(RefBarrier, PassesOperandsThrough) {
  ir::Graph g;
  const ir::Value a = g.parameter(Shape({{"n", 3}}, DType::f32));
  const ir::Value b = g.parameter(Shape({2, 2}, DType::i8));
  const ir::Value barrier = g.add(ir::Op::optimization_barrier, {a, b});
  g.set_outputs({{barrier.node, 0}, {barrier.node, 1}});
  ir::verify(g);

  HostBuffer x = HostBuffer::allocate(Shape({{"n", 3}}, DType::f32));
  const float xs[] = {1.5f, -0.0f, std::numeric_limits<float>::quiet_NaN()};
  std::memcpy(x.mutable_data(), xs, sizeof(xs));
  HostBuffer y = HostBuffer::allocate(Shape({2, 2}, DType::i8));
  const int8_t ys[] = {-128, 0, 7, 127};
  std::memcpy(y.mutable_data(), ys, sizeof(ys));

  const auto out = testing::evaluate(platform(), g, {x, y});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].shape(), x.shape());
  EXPECT_EQ(std::memcmp(out[0].data(), xs, sizeof(xs)), 0);
  EXPECT_EQ(out[1].shape(), y.shape());
  EXPECT_EQ(std::memcmp(out[1].data(), ys, sizeof(ys)), 0);
}

}  // namespace
}  // namespace kiln
