#include "kiln/ir/graph.h"

#include <gtest/gtest.h>

#include "support/expect_error.h"

namespace kiln::ir {
namespace {

Graph small_graph() {
  Graph g;
  Value x = g.parameter(Shape({{"b", 2}, {"d", 3}}), "x");
  Value w = g.parameter(Shape({{"d", 3}, {"o", 4}}), "w");
  Value y = g.add(Op::dot_general, {x, w}, DotAttrs{{}, {}, {1}, {0}, DType::f32});
  Value k = g.add(Op::top_k, {y}, TopKAttrs{2});
  g.set_outputs({y, {k.node, 1}});
  return g;
}

TEST(Graph, PrintIsStableAndReadable) {
  const std::string expected =
      "%0 = parameter() {name=\"x\"} : {b=2,d=3} f32\n"
      "%1 = parameter() {name=\"w\"} : {d=3,o=4} f32\n"
      "%2 = dot_general(%0, %1) {lhs_batch=[], rhs_batch=[], lhs_contracting=[1], rhs_contracting=[0]} : {b=2,o=4} "
      "f32\n"
      "%3 = top_k(%2) {k=2} : ({b=2,o=2} f32, {b=2,o=2} i32)\n"
      "return %2, %3#1\n";
  EXPECT_EQ(print(small_graph()), expected);
}

TEST(Graph, VerifyAcceptsBuiltGraphs) {
  Graph g = small_graph();
  EXPECT_NO_THROW(verify(g));
  EXPECT_EQ(g.parameters(), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(g.shape({3, 1}).dtype(), DType::i32);
}

TEST(Graph, ErrorsForMissingValues) {
  Graph g = small_graph();
  EXPECT_ERROR(g.shape({7, 0}), "value %7 does not exist");
  EXPECT_ERROR(g.shape({2, 1}), "value %2#1 does not exist: dot_general has 1 results");
  EXPECT_ERROR(g.set_outputs({{3, 2}}), "value %3#2 does not exist");
  EXPECT_ERROR(g.add(Op::add, {Value{0, 0}, Value{1, 0}}), "[add] operands have different dims");
}

TEST(Graph, ConstantsPrintTheirValues) {
  Graph g;
  HostBuffer c = HostBuffer::allocate(Shape({3}, DType::i32));
  c.mutable_span<int32_t>()[1] = 7;
  Value v = g.add(Op::constant, {}, ConstantAttrs{c});
  g.set_outputs({v});
  EXPECT_EQ(print(g), "%0 = constant() {value=[0, 7, 0]} : {3} i32\nreturn %0\n");
}

}  // namespace
}  // namespace kiln::ir
