#pragma once
// Host callbacks as backends see them: a custom_call node whose target is
// kHostCallbackTarget carries a HostCallback in its payload. Backends call
// `invoke` with the state bound to the callback's type for this call (see
// runtime/callback.h for the user side). Every backend must run these nodes
// in program order, never drop them when their results are unused if they
// have side effects, and never merge or reorder side-effecting ones.
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <typeindex>
#include <vector>

#include "kiln/core/host_buffer.h"

namespace kiln::ir {

inline constexpr std::string_view kHostCallbackTarget = "kiln.host_callback";

struct HostCallback {
  std::string name;      // for errors: the user's type name
  std::type_index type;  // the key of the bound state
  // Built-ins run without bind(): their state travels with the node.
  std::shared_ptr<void> builtin_state;
  bool copy_inputs_to_host = true;  // device backends copy inputs to host memory first
  // output i starts as a copy of input aliases[i] (-1: zero-filled); the
  // callback may update it in place.
  std::vector<int> aliases;
  // Calls state->call(inputs, outputs) on the bound (or built-in) state.
  void (*invoke)(void* state, std::span<const HostBuffer> inputs, std::span<HostBuffer> outputs);
};

// The user states bound to an executable, by callback type.
using CallbackStates = std::map<std::type_index, void*>;

}  // namespace kiln::ir
