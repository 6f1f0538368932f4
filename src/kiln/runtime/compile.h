#pragma once
// compile(): trace a model's forward (or a free function) for fixed argument
// shapes and compile it for a platform; load(): move a model's weights to a
// platform.
//
//   auto store    = kiln::io::open("mlp.safetensors");
//   auto platform = kiln::Platform::cpu();
//   auto exe      = kiln::compile(platform, &Mlp::forward, store, kiln::Shape({{"b", 4}, {"d", 512}}));
//   auto run      = exe.prepare(kiln::load<Mlp>(platform, store));
//   kiln::Buffer y = run(kiln::Buffer::from(platform, x));
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/frontend/model.h"
#include "kiln/frontend/trace.h"
#include "kiln/runtime/executable.h"

namespace kiln {
namespace detail {

template <typename>
using AsTensor = Tensor;

ExecutableCore make_core(const Platform& platform, ir::Graph graph, size_t weight_count,
                         std::vector<size_t> result_layout);

}  // namespace detail

// Compiles `fn(model, arguments...)` for arguments of the given shapes: the
// model's tensors (declared by populate()) become the executable's leading
// parameters, its weights. `fn` is usually &Model::forward, or a lambda
// taking (const Model&, Tensor...).
template <typename Model, typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) &&
    std::is_invocable_v<F&, const Model&, detail::AsTensor<Shapes>...> auto compile(const Platform& platform, F&& fn,
                                                                                    const Model& model,
                                                                                    const Shapes&... shapes) {
  using R = std::invoke_result_t<F&, const Model&, detail::AsTensor<Shapes>...>;
  size_t weight_count = 0;
  std::vector<size_t> layout;
  ir::Graph graph = detail::trace_body(
      [&](ir::Graph& g) {
        Model traced = model;
        for_each_tensor(traced, "", [&](const std::string& name, Tensor& t) {
          t = Tensor(&g, g.parameter(t.shape(), name));
          ++weight_count;
        });
        return std::apply([&](const auto&... a) { return std::invoke(fn, std::as_const(traced), a...); },
                          detail::argument_parameters(g, shapes...));
      },
      layout);
  return Executable<detail::BufferResult<R>>(
      detail::make_core(platform, std::move(graph), weight_count, std::move(layout)));
}

// The same, populating the model from `store` first (under options.prefix,
// or a prefix given as a string). Model is deduced from a member function
// (&Model::forward) or given: compile<Model>(platform, fn, store, ...).
template <typename Model, typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) &&
    std::is_invocable_v<F&, const Model&, detail::AsTensor<Shapes>...> auto compile(const Platform& platform, F&& fn,
                                                                                    const io::BufferStore& store,
                                                                                    const LoadOptions& options,
                                                                                    const Shapes&... shapes) {
  return compile(platform, std::forward<F>(fn), populate<Model>(store, options), shapes...);
}
template <typename Model, typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) &&
    std::is_invocable_v<F&, const Model&, detail::AsTensor<Shapes>...> auto compile(const Platform& platform, F&& fn,
                                                                                    const io::BufferStore& store,
                                                                                    const Shapes&... shapes) {
  return compile<Model>(platform, std::forward<F>(fn), store, LoadOptions{}, shapes...);
}
template <typename Model, typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) &&
    std::is_invocable_v<F&, const Model&, detail::AsTensor<Shapes>...> auto compile(const Platform& platform, F&& fn,
                                                                                    const io::BufferStore& store,
                                                                                    const std::string& prefix,
                                                                                    const Shapes&... shapes) {
  return compile<Model>(platform, std::forward<F>(fn), store, LoadOptions{.prefix = prefix}, shapes...);
}
template <typename Model, typename R, typename... Args, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) auto compile(const Platform& platform, R (Model::*forward)(Args...) const,
                                                          const io::BufferStore& store, const LoadOptions& options,
                                                          const Shapes&... shapes) {
  return compile(platform, forward, populate<Model>(store, options), shapes...);
}
template <typename Model, typename R, typename... Args, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) auto compile(const Platform& platform, R (Model::*forward)(Args...) const,
                                                          const io::BufferStore& store, const Shapes&... shapes) {
  return compile(platform, forward, populate<Model>(store), shapes...);
}
template <typename Model, typename R, typename... Args, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) auto compile(const Platform& platform, R (Model::*forward)(Args...) const,
                                                          const io::BufferStore& store, const std::string& prefix,
                                                          const Shapes&... shapes) {
  return compile(platform, forward, populate<Model>(store, prefix), shapes...);
}

// A forward that is not const cannot be traced: tracing calls it on a const
// model, as every call of the compiled executable leaves the model unchanged.
template <typename Model, typename R, typename... Args, typename... Rest>
auto compile(const Platform&, R (Model::*)(Args...), Rest&&...) {
  static_assert(sizeof(Model) == 0, "kiln::compile: declare the model's forward const (Tensor forward(...) const)");
}

// Compiles a free function of Tensors; there are no weights to prepare.
template <typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) auto compile_fn(const Platform& platform, F&& fn,
                                                             const Shapes&... shapes) {
  using R = std::invoke_result_t<F&, detail::AsTensor<Shapes>...>;
  std::vector<size_t> layout;
  ir::Graph graph = detail::trace_body(
      [&](ir::Graph& g) { return std::apply(fn, detail::argument_parameters(g, shapes...)); }, layout);
  return Executable<detail::BufferResult<R>>(detail::make_core(platform, std::move(graph), 0, std::move(layout)));
}

// The model's weights from `store` on `platform`, in compile() order. On host
// platforms the buffers share the store's (mapped) memory.
template <typename Model>
Weights<Model> load(const Platform& platform, const io::BufferStore& store, const LoadOptions& options) {
  Model model = populate<Model>(store, options);
  const io::BufferStore scoped = options.prefix.empty() ? store : store.view(options.prefix);
  Weights<Model> weights;
  for_each_tensor(model, "", [&](const std::string& name, Tensor&) {
    weights.names.push_back(name);
    weights.buffers.push_back(Buffer::from(platform, scoped.get(name)));
  });
  return weights;
}
template <typename Model>
Weights<Model> load(const Platform& platform, const io::BufferStore& store, const std::string& prefix = "") {
  return load<Model>(platform, store, LoadOptions{.prefix = prefix});
}

// Releases the weights' memory (what remains is empty).
template <typename Model>
void unload(Weights<Model>& weights) {
  weights.names.clear();
  weights.buffers.clear();
}

}  // namespace kiln
