#include "kiln/ir/graph.h"

#include "kiln/core/error.h"
#include "kiln/ir/infer.h"

namespace kiln::ir {

Value Graph::add(Op op, std::vector<Value> operands, Attributes attrs) {
  std::vector<Shape> operand_shapes;
  operand_shapes.reserve(operands.size());
  for (const Value& v : operands) operand_shapes.push_back(shape(v));
  Node node{op, std::move(operands), infer(op, operand_shapes, attrs), std::move(attrs)};
  nodes_.push_back(std::move(node));
  return {static_cast<int32_t>(nodes_.size() - 1), 0};
}

Value Graph::parameter(const Shape& shape, std::string name) {
  Value v = add(Op::parameter, {}, ParameterAttrs{shape, std::move(name)});
  parameters_.push_back(v.node);
  return v;
}

const Shape& Graph::shape(Value value) const {
  if (value.node < 0 || static_cast<size_t>(value.node) >= nodes_.size())
    fail("value %{} does not exist in a graph of {} nodes", value.node, nodes_.size());
  const Node& n = nodes_[static_cast<size_t>(value.node)];
  if (value.output < 0 || static_cast<size_t>(value.output) >= n.results.size())
    fail("value %{}#{} does not exist: {} has {} results", value.node, value.output, name(n.op), n.results.size());
  return n.results[static_cast<size_t>(value.output)];
}

std::vector<Value> Graph::results(int32_t node_id) const {
  std::vector<Value> out;
  for (size_t i = 0; i < node(node_id).results.size(); ++i) out.push_back({node_id, static_cast<int32_t>(i)});
  return out;
}

void Graph::set_outputs(std::vector<Value> outputs) {
  for (const Value& v : outputs) (void)shape(v);
  outputs_ = std::move(outputs);
}

}  // namespace kiln::ir
