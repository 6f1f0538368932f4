#pragma once
// Host callbacks: your own C++ code in the middle of a compiled graph, to
// inspect values, call a library kiln does not have, or keep state across
// calls.
//
//   struct Counter {
//     static kiln::CallbackConfig config() { return {.has_side_effect = true}; }
//     int calls = 0;
//     void call(std::span<const kiln::HostBuffer> inputs, std::span<kiln::HostBuffer> outputs) { ++calls; }
//   };
//
//   // while tracing:
//   std::vector<Tensor> outs = kiln::callback<Counter>({x}, {x.shape()});
//   // after compiling:
//   Counter counter;                   // you own it; it must outlive the calls
//   exe.bind<Counter>(&counter);       // per executable: another exe may bind another Counter
//
// A callback is known by its name: T::name when the type has one, else its
// C++ type name. Two callbacks of one type with different states take a name
// each: kiln::callback<Counter>({x}, {x.shape()}, "left") and
// exe.bind<Counter>(&left_counter, "left").
//
// `call` receives the inputs in host memory and writes the outputs, which
// arrive zero-filled, or holding a copy of an input when config().aliases
// says so. An exception thrown by `call` surfaces from the executable's call
// as a kiln::Error naming the callback; the executable stays usable.
#include <span>
#include <string>
#include <typeindex>
#include <typeinfo>
#include <vector>

#include "kiln/frontend/trace.h"
#include "kiln/ir/host_callback.h"

namespace kiln {

struct CallbackConfig {
  // Kept even when nothing uses its outputs, and never reordered across
  // other side effects.
  bool has_side_effect = false;
  // Output i starts as a copy of input aliases[i] (an in-place update); -1 or
  // absent: zero-filled.
  std::vector<int> aliases;
  // Device platforms copy the inputs to host memory before the call.
  bool copy_inputs_to_host = true;
};

namespace detail {

template <typename T>
concept HasConfig = requires {
  { T::config() } -> std::convertible_to<CallbackConfig>;
};
template <typename T>
concept HasName = requires {
  { T::name } -> std::convertible_to<std::string_view>;
};

std::vector<Tensor> add_callback(std::span<const Tensor> inputs, std::span<const Shape> outputs,
                                 std::shared_ptr<const ir::HostCallback> callback, bool has_side_effect);

// The readable C++ name of a type ("Counter", "my::Logger").
std::string demangled(const std::type_info& type);

// A callback type's default name: T::name if the type has one, else its C++ name.
template <typename T>
std::string callback_name() {
  if constexpr (HasName<T>)
    return std::string(T::name);
  else
    return demangled(typeid(T));
}

// "Counter" for my::Counter, "Cache<float>" for my::Cache<float>.
std::string unqualified(const std::string& type_name);

// Runs state->call(inputs, outputs) for a state of type T.
template <typename T>
void invoke_callback(void* state, std::span<const HostBuffer> inputs, std::span<HostBuffer> outputs) {
  static_cast<T*>(state)->call(inputs, outputs);
}

// `name` empty: the callback's default name.
template <typename T>
std::shared_ptr<const ir::HostCallback> describe_callback(std::string name) {
  const CallbackConfig config = [] {
    if constexpr (HasConfig<T>)
      return T::config();
    else
      return CallbackConfig{};
  }();
  const std::string type_name = demangled(typeid(T));
  std::string hint =
      fmt::format("exe.bind<{}>(&state{})", unqualified(type_name), name.empty() ? "" : fmt::format(", \"{}\"", name));
  if (name.empty()) name = callback_name<T>();
  return std::make_shared<const ir::HostCallback>(ir::HostCallback{.name = std::move(name),
                                                                   .type_name = type_name,
                                                                   .bind_hint = std::move(hint),
                                                                   .type = std::type_index(typeid(T)),
                                                                   .builtin_state = nullptr,
                                                                   .builtin = "",
                                                                   .copy_inputs_to_host = config.copy_inputs_to_host,
                                                                   .aliases = config.aliases,
                                                                   .invoke = &invoke_callback<T>});
}

}  // namespace detail

// Inserts the callback T into the graph being traced, with outputs of the
// given shapes, known as `name` (default: callback_name<T>()). Each
// executable compiled from the graph needs exe.bind<T>(&state[, name])
// before it is called.
template <typename T>
std::vector<Tensor> callback(std::initializer_list<Tensor> inputs, std::initializer_list<Shape> outputs,
                             std::string name = "") {
  const bool side_effect = [] {
    if constexpr (detail::HasConfig<T>)
      return T::config().has_side_effect;
    else
      return false;
  }();
  return detail::add_callback(std::span(inputs.begin(), inputs.size()), std::span(outputs.begin(), outputs.size()),
                              detail::describe_callback<T>(std::move(name)), side_effect);
}

}  // namespace kiln
