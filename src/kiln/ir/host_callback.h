#pragma once
// Host callbacks as backends see them: a custom_call node whose target is
// kHostCallbackTarget carries a HostCallback in its payload. Backends call
// `invoke` with the state bound under the callback's name for this call (see
// frontend/callback.h for the user side). The name is the callback's stable
// identity: graphs are hashed and saved with it, and two callbacks of one
// type in a graph are told apart by it. Every backend must run these nodes
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
  std::string name;       // the key of the bound state, e.g. "Counter" or "print(label)"
  std::string type_name;  // the state's C++ type, for errors
  std::string bind_hint;  // how to bind it, for errors: "exe.bind<Counter>(&state)"
  std::type_index type;   // checked against the bound state's type
  // Built-ins run without bind(): their state travels with the node.
  std::shared_ptr<void> builtin_state;
  bool copy_inputs_to_host = true;  // device backends copy inputs to host memory first
  // output i starts as a copy of input aliases[i] (-1: zero-filled); the
  // callback may update it in place.
  std::vector<int> aliases;
  // Calls state->call(inputs, outputs) on the bound (or built-in) state.
  void (*invoke)(void* state, std::span<const HostBuffer> inputs, std::span<HostBuffer> outputs);
};

// A user state bound to an executable, and its type.
struct BoundState {
  void* state;
  std::type_index type;
};
// The user states bound to an executable, by callback name.
using CallbackStates = std::map<std::string, BoundState, std::less<>>;

// The state a call of `callback` runs with: its built-in state, or the one
// bound under its name (checked to have the callback's type). Throws a
// kiln::Error naming the callback when none is bound.
void* state_for(const HostCallback& callback, const CallbackStates& states);

// Runs `callback` the way every backend must: outputs start as copies of
// their aliased inputs (else zero-filled), exceptions become kiln::Errors
// naming the callback, and replaced outputs of the wrong shape are refused.
// `outputs` must have the node's result shapes.
void invoke(const HostCallback& callback, const CallbackStates& states, std::span<const HostBuffer> inputs,
            std::span<HostBuffer> outputs);

}  // namespace kiln::ir
