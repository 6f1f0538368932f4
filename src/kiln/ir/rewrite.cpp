#include "kiln/ir/rewrite.h"

namespace kiln::ir {

Graph rebuild(const Graph& graph, const Visit& visit) {
  Graph out;
  std::vector<std::vector<Value>> map(graph.nodes().size());
  auto mapped = [&](Value v) { return map[static_cast<size_t>(v.node)][static_cast<size_t>(v.output)]; };
  for (size_t id = 0; id < graph.nodes().size(); ++id) {
    const Node& n = graph.node(static_cast<int32_t>(id));
    if (n.op == Op::parameter) {
      const auto& p = n.attrs_as<ParameterAttrs>();
      map[id] = {out.parameter(p.shape, p.name)};
      continue;
    }
    std::vector<Value> operands;
    operands.reserve(n.operands.size());
    for (const Value& v : n.operands) operands.push_back(mapped(v));
    std::vector<Value> replaced = visit(out, n, operands, ValueMap{map, static_cast<int32_t>(id)});
    map[id] = replaced.empty() ? out.results(out.add(n.op, std::move(operands), n.attrs).node) : std::move(replaced);
  }
  std::vector<Value> outputs;
  for (const Value& v : graph.outputs()) {
    Value o = mapped(v);
    const Shape& want = graph.shape(v);
    if (!(out.shape(o) == want)) o = out.add(Op::reshape, {o}, ReshapeAttrs{want});
    outputs.push_back(o);
  }
  out.set_outputs(std::move(outputs));
  return out;
}

}  // namespace kiln::ir
