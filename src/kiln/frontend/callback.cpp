#include "kiln/frontend/callback.h"

#include <cxxabi.h>
#include <fmt/format.h>

#include <array>
#include <cstdlib>

#include "kiln/ir/builtin_callbacks.h"

namespace kiln {
namespace detail {

std::string unqualified(const std::string& type_name) {
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < type_name.size(); ++i) {
    const char c = type_name[i];
    if (c == '<' || c == '(') ++depth;
    if (c == '>' || c == ')') --depth;
    if (depth == 0 && c == ':' && i + 1 < type_name.size() && type_name[i + 1] == ':') start = i + 2;
  }
  return type_name.substr(start);
}

std::string demangled(const std::type_info& type) {
  int status = 0;
  char* name = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  if (status != 0 || name == nullptr) return type.name();
  std::string result(name);
  std::free(name);
  return result;
}

std::vector<Tensor> add_callback(std::span<const Tensor> inputs, std::span<const Shape> outputs,
                                 std::shared_ptr<const ir::HostCallback> callback, bool has_side_effect) {
  ir::Graph* graph = current_graph();
  if (graph == nullptr) fail("[callback] '{}' can only be added inside kiln::trace() or compile()", callback->name);
  std::vector<ir::Value> operands;
  for (const Tensor& t : inputs) operands.push_back(t.value());
  for (size_t i = 0; i < callback->aliases.size(); ++i) {
    const int alias = callback->aliases[i];
    if (alias < 0) continue;
    if (static_cast<size_t>(alias) >= inputs.size() || i >= outputs.size() ||
        !std::ranges::equal(inputs[static_cast<size_t>(alias)].shape().dims(), outputs[i].dims()) ||
        inputs[static_cast<size_t>(alias)].dtype() != outputs[i].dtype())
      fail("[callback] '{}': output {} aliases input {}, which does not exist or has another shape", callback->name, i,
           alias);
  }
  const std::string name = callback->name;
  ir::CustomCallAttrs attrs{std::string(ir::kHostCallbackTarget),
                            {outputs.begin(), outputs.end()},
                            has_side_effect,
                            std::const_pointer_cast<ir::HostCallback>(callback)};
  ir::Value v = graph->add(ir::Op::custom_call, std::move(operands), std::move(attrs));
  std::vector<Tensor> results;
  for (size_t i = 0; i < outputs.size(); ++i) results.emplace_back(graph, ir::Value{v.node, static_cast<int32_t>(i)});
  return results;
}

}  // namespace detail

Tensor Tensor::print(std::string label) const {
  return detail::add_callback(std::array{*this}, std::array{shape()}, ir::print_callback(std::move(label)),
                              /*has_side_effect=*/true)[0];
}

}  // namespace kiln
