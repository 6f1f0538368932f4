#include <fmt/format.h>

#include "kiln/core/error.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/infer.h"

namespace kiln::ir {

void verify(const Graph& graph) {
  const auto nodes = graph.nodes();
  int32_t parameters_seen = 0;
  for (size_t id = 0; id < nodes.size(); ++id) {
    const Node& node = nodes[id];
    std::vector<Shape> operand_shapes;
    for (const Value& v : node.operands) {
      if (v.node < 0 || static_cast<size_t>(v.node) >= id)
        fail("verify: %{} ({}) uses %{}, which is not an earlier node", id, name(node.op), v.node);
      const Node& producer = nodes[static_cast<size_t>(v.node)];
      if (v.output < 0 || static_cast<size_t>(v.output) >= producer.results.size())
        fail("verify: %{} ({}) uses result {} of %{}, which has {}", id, name(node.op), v.output, v.node,
             producer.results.size());
      operand_shapes.push_back(producer.results[static_cast<size_t>(v.output)]);
    }
    std::vector<Shape> expected;
    try {
      expected = infer(node.op, operand_shapes, node.attrs);
    } catch (const Error& e) {
      fail("verify: %{}: {}", id, e.what());
    }
    if (expected.size() != node.results.size())
      fail("verify: %{} ({}) has {} results, expected {}", id, name(node.op), node.results.size(), expected.size());
    for (size_t r = 0; r < expected.size(); ++r) {
      // Tags are free to differ (the Tensor API renames axes); dims and dtype are not.
      if (!std::ranges::equal(expected[r].dims(), node.results[r].dims()) ||
          expected[r].dtype() != node.results[r].dtype())
        fail("verify: %{} ({}) result {} is {} but its operands give {}", id, name(node.op), r,
             node.results[r].to_string(), expected[r].to_string());
    }
    if (node.op == Op::parameter) {
      const auto& params = graph.parameters();
      if (static_cast<size_t>(parameters_seen) >= params.size() || params[parameters_seen] != static_cast<int32_t>(id))
        fail("verify: parameter %{} is not registered in order", id);
      ++parameters_seen;
    }
  }
  if (static_cast<size_t>(parameters_seen) != graph.parameters().size())
    fail("verify: {} parameters registered but {} found", graph.parameters().size(), parameters_seen);
  for (const Value& v : graph.outputs()) {
    if (v.node < 0 || static_cast<size_t>(v.node) >= nodes.size() ||
        static_cast<size_t>(v.output) >= nodes[static_cast<size_t>(v.node)].results.size())
      fail("verify: output %{}#{} does not exist", v.node, v.output);
  }
}

}  // namespace kiln::ir
