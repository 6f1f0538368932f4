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
  void* state = callback.builtin_state.get();
  if (state == nullptr) {
    if (states == nullptr || !states->contains(callback.type))
      fail("[callback] '{}' has no bound state: call exe.bind<{}>(&state) before calling", callback.name,
           callback.name);
    state = states->at(callback.type);
  }
  Results outputs;
  for (size_t i = 0; i < node.results.size(); ++i) {
    const int alias = i < callback.aliases.size() ? callback.aliases[i] : -1;
    outputs.push_back(alias >= 0 ? operands[static_cast<size_t>(alias)].copy() : HostBuffer::allocate(node.results[i]));
  }
  try {
    callback.invoke(state, operands, outputs);
  } catch (const std::exception& e) {
    fail("[callback] '{}' threw: {}", callback.name, e.what());
  }
  for (size_t i = 0; i < outputs.size(); ++i)
    if (!std::ranges::equal(outputs[i].shape().dims(), node.results[i].dims()) ||
        outputs[i].dtype() != node.results[i].dtype())
      fail("[callback] '{}' replaced output {} with {}, expected {}", callback.name, i, outputs[i].shape().to_string(),
           node.results[i].to_string());
  return outputs;
}

Results eval_node(const ir::Node& node, Operands operands, const ir::CallbackStates* states) {
  using ir::Op;
  switch (node.op) {
    case Op::parameter:
      break;  // bound by evaluate()
    case Op::constant:
      return {node.attrs_as<ir::ConstantAttrs>().value.copy()};
    case Op::iota:
    case Op::convert:
    case Op::bitcast_convert:
    case Op::neg:
    case Op::abs:
    case Op::sign:
    case Op::exp:
    case Op::expm1:
    case Op::log:
    case Op::log1p:
    case Op::sqrt:
    case Op::rsqrt:
    case Op::cbrt:
    case Op::tanh:
    case Op::logistic:
    case Op::sin:
    case Op::cos:
    case Op::tan:
    case Op::erf:
    case Op::floor:
    case Op::ceil:
    case Op::round_nearest_even:
    case Op::not_:
    case Op::is_finite:
    case Op::popcnt:
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div:
    case Op::rem:
    case Op::pow:
    case Op::max:
    case Op::min:
    case Op::atan2:
    case Op::and_:
    case Op::or_:
    case Op::xor_:
    case Op::shift_left:
    case Op::shift_right_logical:
    case Op::shift_right_arithmetic:
    case Op::compare:
    case Op::select:
    case Op::clamp:
      return eval_elementwise(node, operands);
    case Op::broadcast_in_dim:
    case Op::reshape:
    case Op::transpose:
    case Op::slice:
    case Op::dynamic_slice:
    case Op::dynamic_update_slice:
    case Op::concatenate:
    case Op::pad:
    case Op::reverse:
      return eval_movement(node, operands);
    case Op::gather:
    case Op::scatter:
      return eval_indexing(node, operands);
    case Op::reduce:
    case Op::reduce_window:
      return eval_reduction(node, operands);
    case Op::dot_general:
    case Op::convolution:
      return eval_contraction(node, operands);
    case Op::sort:
    case Op::top_k:
      return eval_sorting(node, operands);
    case Op::rng:
      return eval_rng(node, operands);
    case Op::custom_call:
      return run_host_callback(node, operands, states);
    case Op::optimization_barrier: {
      Results out;
      for (const auto& operand : operands) out.push_back(operand);
      return out;
    }
  }
  fail("[{}] has no reference kernel", ir::name(node.op));
}

}  // namespace

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
