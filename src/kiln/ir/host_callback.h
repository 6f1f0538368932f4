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

// Calls a callback state of a known type: state->call(inputs, outputs).
using InvokeFunction = void (*)(void* state, std::span<const HostBuffer> inputs, std::span<HostBuffer> outputs);

struct HostCallback {
  std::string name;       // the key of the bound state, e.g. "Counter" or "print(label)"
  std::string type_name;  // the state's C++ type, for errors
  std::string bind_hint;  // how to bind it, for errors: "exe.bind<Counter>(&state)"
  std::type_index type;   // checked against the bound state's type
  // Built-ins (ir/builtin_callbacks.h) run without bind(): their state
  // travels with the node, and `builtin` names their kind ("print").
  std::shared_ptr<void> builtin_state;
  std::string builtin;
  bool copy_inputs_to_host = true;  // device backends copy inputs to host memory first
  // output i starts as a copy of input aliases[i] (-1: zero-filled); the
  // callback may update it in place.
  std::vector<int> aliases;
  // Calls state->call(inputs, outputs) on the bound (or built-in) state;
  // null for a callback read back by ir::parse, which runs the bound state's.
  InvokeFunction invoke;
};

// A user state bound to an executable, its type, and the code that calls it
// (what a callback read back from a saved graph runs: its node knows only
// the name and the type's name).
struct BoundState {
  void* state;
  std::type_index type;
  std::string type_name;
  InvokeFunction invoke;
};
// The user states bound to an executable, by callback name.
using CallbackStates = std::map<std::string, BoundState, std::less<>>;

// The state a call of `callback` runs with, and the function that calls it:
// its built-in state, or the one bound under its name (checked to have the
// callback's type, by name for a callback read back from text). Throws a
// kiln::Error naming the callback when none is bound.
struct ResolvedCallback {
  void* state;
  InvokeFunction invoke;
};
ResolvedCallback resolve(const HostCallback& callback, const CallbackStates& states);

// Runs `callback` the way every backend must: outputs start as copies of
// their aliased inputs (else zero-filled), exceptions become kiln::Errors
// naming the callback, and replaced outputs of the wrong shape are refused.
// `outputs` must have the node's result shapes.
void invoke(const HostCallback& callback, const CallbackStates& states, std::span<const HostBuffer> inputs,
            std::span<HostBuffer> outputs);

}  // namespace kiln::ir
