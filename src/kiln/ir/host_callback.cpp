#include "kiln/ir/host_callback.h"

#include <cstring>

#include "kiln/core/error.h"

namespace kiln::ir {

ResolvedCallback resolve(const HostCallback& callback, const CallbackStates& states) {
  if (callback.builtin_state) return {callback.builtin_state.get(), callback.invoke};
  auto it = states.find(callback.name);
  if (it == states.end())
    fail("[callback] '{}' has no bound state: call {} before calling", callback.name, callback.bind_hint);
  const BoundState& bound = it->second;
  if (callback.invoke == nullptr) {  // read back from text: the type is known by name only
    if (bound.type_name != callback.type_name)
      fail("[callback] '{}' is bound to a state of type {}, the saved graph calls {}", callback.name, bound.type_name,
           callback.type_name);
    return {bound.state, bound.invoke};
  }
  if (bound.type != callback.type)
    fail("[callback] '{}' is bound to a state of another type than {}", callback.name, callback.type_name);
  return {bound.state, callback.invoke};
}

void invoke(const HostCallback& callback, const CallbackStates& states, std::span<const HostBuffer> inputs,
            std::span<HostBuffer> outputs) {
  const ResolvedCallback resolved = resolve(callback, states);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const int alias = i < callback.aliases.size() ? callback.aliases[i] : -1;
    const size_t bytes = outputs[i].shape().byte_size();
    if (bytes == 0) continue;
    if (alias >= 0) {
      const HostBuffer& source = inputs[static_cast<size_t>(alias)];
      const HostBuffer flat = source.is_contiguous() ? source : source.copy();
      if (flat.data() != outputs[i].data()) std::memcpy(outputs[i].mutable_data(), flat.data(), bytes);
    } else {
      std::memset(outputs[i].mutable_data(), 0, bytes);
    }
  }
  std::vector<HostBuffer> expected(outputs.begin(), outputs.end());
  try {
    resolved.invoke(resolved.state, inputs, outputs);
  } catch (const std::exception& e) {
    fail("[callback] '{}' threw: {}", callback.name, e.what());
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Shape& want = expected[i].shape();
    if (!std::ranges::equal(outputs[i].shape().dims(), want.dims()) || outputs[i].dtype() != want.dtype())
      fail("[callback] '{}' replaced output {} with {}, expected {}", callback.name, i, outputs[i].shape().to_string(),
           want.to_string());
    // A callback may hand back a buffer of its own: the program's memory must hold the values.
    if (outputs[i].data() != expected[i].data()) {
      const HostBuffer flat = outputs[i].is_contiguous() ? outputs[i] : outputs[i].copy();
      if (want.byte_size() > 0) std::memcpy(expected[i].mutable_data(), flat.data(), want.byte_size());
      outputs[i] = expected[i];
    }
  }
}

}  // namespace kiln::ir
