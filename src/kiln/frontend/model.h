#pragma once
// Models as plain C++ structs. A model is a struct whose fields are Tensors,
// nested model structs, std::vector / std::array of them (layers),
// std::optional of them (weights that may be absent) and configuration
// values (ints, floats, enums, ...). Describe the fields once:
//
//   struct Mlp {
//     kiln::nn::Linear up, gate, down;
//     kiln::Tensor forward(kiln::Tensor x) const;
//   };
//   KILN_FIELDS(Mlp, up, gate, down)
//
// Field paths map to weight names: layers[2].attn.q_proj.weight is
// "layers.2.attn.q_proj.weight". A struct may define
//   void init(const kiln::io::BufferStore& store)
// to set its configuration fields (and size non-layer vectors) from the
// store's metadata (config.json) before its tensors are populated.
//
// A std::vector of layers is sized by the numbered entries under its name
// (layers.0.*, layers.1.*, ...); finding none is an error. Weights in the
// store that the model does not use are reported (LoadOptions).
#include <array>
#include <boost/describe.hpp>
#include <boost/mp11/algorithm.hpp>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/frontend/tensor.h"
#include "kiln/io/buffer_store.h"

// Lists the fields of a model struct (a thin name for Boost.Describe). Put it
// in the namespace of the struct, after the struct.
#define KILN_FIELDS(Type, ...) BOOST_DESCRIBE_STRUCT(Type, (), (__VA_ARGS__))

namespace kiln {

// What to do with weights in the store that the model never uses.
enum class UnusedWeights {
  warn,   // list them on stderr (once per distinct list)
  error,  // refuse the store: a strict check that the model reads everything
  ignore,
};

// How populate(), load() and compile() read a model from a store.
struct LoadOptions {
  // Where the model's weights live in the store: "model" reads
  // model.layers.0.* as layers.0.* ("" for none).
  std::string prefix;
  UnusedWeights unused = UnusedWeights::warn;
  // Unused weights under these dotted prefixes are expected (e.g.
  // "rotary_emb" for precomputed tables the model recomputes).
  std::vector<std::string> allow_unused;
};

namespace detail {

template <typename T>
struct IsVector : std::false_type {};
template <typename T, typename A>
struct IsVector<std::vector<T, A>> : std::true_type {};
template <typename T>
struct IsArray : std::false_type {};
template <typename T, size_t N>
struct IsArray<std::array<T, N>> : std::true_type {};
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

template <typename T>
concept Described = boost::describe::has_describe_members<T>::value;

// True when T holds Tensors (a layer), false for configuration values.
template <typename T>
constexpr bool holds_tensors() {
  if constexpr (std::is_same_v<T, Tensor>) {
    return true;
  } else if constexpr (IsOptional<T>::value || IsVector<T>::value || IsArray<T>::value) {
    return holds_tensors<typename T::value_type>();
  } else if constexpr (Described<T>) {
    using Members = boost::describe::describe_members<T, boost::describe::mod_public>;
    bool any = false;
    boost::mp11::mp_for_each<Members>([&](auto member) {
      using Field = std::remove_cvref_t<decltype(std::declval<T&>().*member.pointer)>;
      any = any || holds_tensors<Field>();
    });
    return any;
  } else {
    return false;
  }
}

inline std::string join(const std::string& prefix, std::string_view field) {
  return prefix.empty() ? std::string(field) : prefix + "." + std::string(field);
}

}  // namespace detail

// Calls visit(name, tensor) for every Tensor reachable from `value`, in field
// order; absent optionals are skipped.
template <typename T, typename Visit>
void for_each_tensor(T& value, const std::string& prefix, Visit&& visit) {
  using U = std::remove_const_t<T>;
  if constexpr (std::is_same_v<U, Tensor>) {
    visit(prefix, value);
  } else if constexpr (detail::IsOptional<U>::value) {
    if (value) for_each_tensor(*value, prefix, visit);
  } else if constexpr (detail::IsVector<U>::value || detail::IsArray<U>::value) {
    for (size_t i = 0; i < value.size(); ++i) for_each_tensor(value[i], detail::join(prefix, std::to_string(i)), visit);
  } else if constexpr (detail::Described<U>) {
    using Members = boost::describe::describe_members<U, boost::describe::mod_public>;
    boost::mp11::mp_for_each<Members>(
        [&](auto member) { for_each_tensor(value.*member.pointer, detail::join(prefix, member.name), visit); });
  }
  // Anything else is configuration, not weights.
}

namespace detail {

struct PopulateState {
  const io::BufferStore& store;
  std::vector<std::string> missing;
  std::vector<std::string> empty_layers;  // layer vectors that found no entries
  std::set<std::string, std::less<>> used;
};

template <typename T>
void populate_into(T& value, const std::string& name, PopulateState& state) {
  if constexpr (std::is_same_v<T, Tensor>) {
    if (state.store.contains(name)) {
      value = Tensor::declare(state.store.get(name).shape());
      state.used.insert(name);
    } else {
      state.missing.push_back(name);
    }
  } else if constexpr (IsOptional<T>::value) {
    // An optional is present exactly when the store has its weights.
    if (state.store.contains_prefix(name)) {
      value.emplace();
      populate_into(*value, name, state);
    } else {
      value.reset();
    }
  } else if constexpr (IsVector<T>::value) {
    // Layers: sized by the store unless init() already sized the vector.
    if constexpr (holds_tensors<T>()) {
      if (value.empty()) value.resize(static_cast<size_t>(state.store.count_layers(name)));
      if (value.empty()) state.empty_layers.push_back(name);
    }
    for (size_t i = 0; i < value.size(); ++i) populate_into(value[i], join(name, std::to_string(i)), state);
  } else if constexpr (IsArray<T>::value) {
    for (size_t i = 0; i < value.size(); ++i) populate_into(value[i], join(name, std::to_string(i)), state);
  } else if constexpr (Described<T>) {
    if constexpr (requires { value.init(state.store); }) value.init(state.store);
    using Members = boost::describe::describe_members<T, boost::describe::mod_public>;
    boost::mp11::mp_for_each<Members>(
        [&](auto member) { populate_into(value.*member.pointer, join(name, member.name), state); });
  }
}

[[noreturn]] void fail_missing(const io::BufferStore& store, const PopulateState& state, std::string_view prefix);
// Warns about or refuses the weights of `store` the model did not use.
void check_unused(const io::BufferStore& store, const std::set<std::string, std::less<>>& used,
                  const LoadOptions& options);

}  // namespace detail

// Builds a Model whose tensors are declared with the shapes found in `store`
// under options.prefix ("model" for Hugging Face checkpoints, or "" for
// none). Every missing weight and empty layer vector is reported in one
// error, each with the most similar names in the store; unused weights as
// options.unused says.
template <typename Model>
Model populate(const io::BufferStore& store, const LoadOptions& options) {
  static_assert(detail::Described<Model>, "describe the model's fields with KILN_FIELDS(Model, field, ...)");
  Model model{};
  const io::BufferStore scoped = options.prefix.empty() ? store : store.view(options.prefix);
  detail::PopulateState state{scoped, {}, {}, {}};
  detail::populate_into(model, "", state);
  if (!state.missing.empty() || !state.empty_layers.empty()) detail::fail_missing(scoped, state, options.prefix);
  detail::check_unused(scoped, state.used, options);
  return model;
}
template <typename Model>
Model populate(const io::BufferStore& store, const std::string& prefix = "") {
  return populate<Model>(store, LoadOptions{.prefix = prefix});
}

}  // namespace kiln
