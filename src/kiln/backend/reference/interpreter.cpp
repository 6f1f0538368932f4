#include "kiln/backend/reference/interpreter.h"

#include "kiln/backend/reference/kernels.h"
#include "kiln/core/error.h"

namespace kiln::reference {
namespace {

Results run_host_callback(const ir::Node& node, Operands operands, const ir::CallbackStates* states) {
  const auto& attrs = node.attrs_as<ir::CustomCallAttrs>();
  if (attrs.target != ir::kHostCallbackTarget || attrs.payload == nullptr)
    fail("[custom_call] target '{}' is not supported by the reference backend", attrs.target);
  const auto& callback = *static_cast<const ir::HostCallback*>(attrs.payload.get());
  Results outputs;
  for (const Shape& shape : node.results) outputs.push_back(HostBuffer::allocate(shape));
  static const ir::CallbackStates kNone;
  ir::invoke(callback, states != nullptr ? *states : kNone, operands, outputs);
  return outputs;
}

Results eval_node(const ir::Node& node, Operands operands, const ir::CallbackStates* states) {
  using ir::Family;
  switch (ir::family(node.op)) {
    case Family::leaf:
      if (node.op == ir::Op::constant) return {node.attrs_as<ir::ConstantAttrs>().value.copy()};
      break;  // parameters are bound by evaluate()
    case Family::generator:
    case Family::conversion:
    case Family::unary:
    case Family::binary:
    case Family::ternary:
      return eval_elementwise(node, operands);
    case Family::movement:
      return eval_movement(node, operands);
    case Family::indexing:
      return eval_indexing(node, operands);
    case Family::reduction:
      return eval_reduction(node, operands);
    case Family::contraction:
      return eval_contraction(node, operands);
    case Family::sorting:
      return eval_sorting(node, operands);
    case Family::random:
      return eval_rng(node, operands);
    case Family::custom:
      return run_host_callback(node, operands, states);
    case Family::barrier:
      return {operands.begin(), operands.end()};
  }
  fail("[{}] has no reference kernel", ir::name(node.op));
}

}  // namespace

std::vector<HostBuffer> evaluate_node(const ir::Node& node, std::span<const HostBuffer> operands) {
  if (node.op == ir::Op::parameter) fail("[parameter] has no value of its own");
  return eval_node(node, operands, nullptr);
}

std::vector<HostBuffer> evaluate(const ir::Graph& graph, std::span<const HostBuffer> parameters,
                                 const ir::CallbackStates* callbacks) {
  const auto& parameter_nodes = graph.parameters();
  if (parameters.size() != parameter_nodes.size())
    fail("reference: the graph takes {} parameters, {} given", parameter_nodes.size(), parameters.size());
  std::vector<Results> values(graph.nodes().size());
  for (size_t i = 0; i < parameters.size(); ++i) {
    const Shape& expected = graph.node(parameter_nodes[i]).results[0];
    const Shape& given = parameters[i].shape();
    if (!std::ranges::equal(expected.dims(), given.dims()) || expected.dtype() != given.dtype())
      fail("reference: parameter {} must be {}, got {}", i, expected.to_string(), given.to_string());
    values[static_cast<size_t>(parameter_nodes[i])] = {parameters[i].is_contiguous() ? parameters[i]
                                                                                     : parameters[i].copy()};
  }
  const auto nodes = graph.nodes();
  for (size_t id = 0; id < nodes.size(); ++id) {
    const ir::Node& node = nodes[id];
    if (node.op == ir::Op::parameter) continue;
    std::vector<HostBuffer> operands;
    for (const ir::Value& v : node.operands)
      operands.push_back(values[static_cast<size_t>(v.node)][static_cast<size_t>(v.output)]);
    values[id] = eval_node(node, operands, callbacks);
    // Results carry the IR's tags, so callers see the shapes they traced.
    for (size_t r = 0; r < values[id].size(); ++r) values[id][r] = values[id][r].reshape(node.results[r]);
  }
  std::vector<HostBuffer> outputs;
  for (const ir::Value& v : graph.outputs())
    outputs.push_back(values[static_cast<size_t>(v.node)][static_cast<size_t>(v.output)]);
  return outputs;
}

}  // namespace kiln::reference
