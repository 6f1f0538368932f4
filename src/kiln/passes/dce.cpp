#include "kiln/passes/dce.h"

namespace kiln::passes {

ir::Graph eliminate_dead_code(const ir::Graph& graph) {
  const auto nodes = graph.nodes();
  std::vector<bool> live(nodes.size(), false);
  for (const ir::Value& v : graph.outputs()) live[static_cast<size_t>(v.node)] = true;
  for (size_t id = 0; id < nodes.size(); ++id)
    if (nodes[id].op == ir::Op::parameter || nodes[id].has_side_effect()) live[id] = true;
  // Operands come before their users, so one backward sweep marks everything.
  for (size_t id = nodes.size(); id-- > 0;)
    if (live[id])
      for (const ir::Value& v : nodes[id].operands) live[static_cast<size_t>(v.node)] = true;

  ir::Graph out;
  std::vector<int32_t> new_id(nodes.size(), -1);
  for (size_t id = 0; id < nodes.size(); ++id) {
    if (!live[id]) continue;
    const ir::Node& node = nodes[id];
    std::vector<ir::Value> operands;
    for (const ir::Value& v : node.operands) operands.push_back({new_id[static_cast<size_t>(v.node)], v.output});
    const ir::Value added = node.op == ir::Op::parameter
                                ? out.parameter(node.results[0], node.attrs_as<ir::ParameterAttrs>().name)
                                : out.add(node.op, std::move(operands), node.attrs);
    new_id[id] = added.node;
  }
  std::vector<ir::Value> outputs;
  for (const ir::Value& v : graph.outputs()) outputs.push_back({new_id[static_cast<size_t>(v.node)], v.output});
  out.set_outputs(std::move(outputs));
  ir::verify(out);
  return out;
}

}  // namespace kiln::passes
