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

// The Buffer-side type of what a traced function returns.
template <typename T>
struct BufferType;
template <>
struct BufferType<Tensor> {
  using type = Buffer;
};
template <>
struct BufferType<std::vector<Tensor>> {
  using type = std::vector<Buffer>;
};
template <typename... Ts>
struct BufferType<std::tuple<Ts...>> {
  using type = std::tuple<typename BufferType<Ts>::type...>;
};
template <>
struct BufferType<std::pair<Tensor, Tensor>> {
  using type = std::pair<Buffer, Buffer>;
};
template <template <typename> class S>
requires boost::describe::has_describe_members<S<Tensor>>::value struct BufferType<S<Tensor>> {
  using type = S<Buffer>;
};

template <typename>
using AsTensor = Tensor;

template <typename R>
using BufferResult = typename BufferType<std::remove_cvref_t<R>>::type;

ExecutableCore make_core(const Platform& platform, ir::Graph graph, size_t weight_count);

// Traces `body(graph)` (which adds the weight parameters, then the argument
// parameters, and returns the result) into a graph.
template <typename Body>
ir::Graph trace_body(Body&& body) {
  ir::Graph graph;
  TraceScope scope(graph);
  auto result = body(graph);
  std::vector<ir::Value> outputs;
  collect(outputs, result);
  graph.set_outputs(std::move(outputs));
  ir::verify(graph);
  return graph;
}

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
  ir::Graph graph = detail::trace_body([&](ir::Graph& g) {
    Model traced = model;
    for_each_tensor(traced, "", [&](const std::string& name, Tensor& t) {
      t = Tensor(&g, g.parameter(t.shape(), name));
      ++weight_count;
    });
    int index = 0;
    std::array<Tensor, sizeof...(Shapes)> arguments{
        Tensor(&g, g.parameter(shapes, "argument " + std::to_string(index++)))...};
    return std::apply([&](const auto&... a) { return std::invoke(fn, std::as_const(traced), a...); }, arguments);
  });
  return Executable<detail::BufferResult<R>>(detail::make_core(platform, std::move(graph), weight_count));
}

// The same, populating the model from `store` first. Model is deduced from a
// member function (&Model::forward) or given: compile<Model>(platform, fn, store, ...).
template <typename Model, typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) &&
    std::is_invocable_v<F&, const Model&, detail::AsTensor<Shapes>...> auto compile(const Platform& platform, F&& fn,
                                                                                    const io::BufferStore& store,
                                                                                    const Shapes&... shapes) {
  return compile(platform, std::forward<F>(fn), populate<Model>(store), shapes...);
}
template <typename Model, typename R, typename... Args, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) auto compile(const Platform& platform, R (Model::*forward)(Args...) const,
                                                          const io::BufferStore& store, const Shapes&... shapes) {
  return compile(platform, forward, populate<Model>(store), shapes...);
}

// Compiles a free function of Tensors; there are no weights to prepare.
template <typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) auto compile_fn(const Platform& platform, F&& fn,
                                                             const Shapes&... shapes) {
  using R = std::invoke_result_t<F&, detail::AsTensor<Shapes>...>;
  ir::Graph graph = trace(std::forward<F>(fn), shapes...);
  return Executable<detail::BufferResult<R>>(detail::make_core(platform, std::move(graph), 0));
}

// The model's weights from `store` on `platform`, in compile() order. On host
// platforms the buffers share the store's (mapped) memory.
template <typename Model>
Weights<Model> load(const Platform& platform, const io::BufferStore& store, const std::string& prefix = "") {
  Model model = populate<Model>(store, prefix);
  const io::BufferStore scoped = prefix.empty() ? store : store.view(prefix);
  Weights<Model> weights;
  for_each_tensor(model, "", [&](const std::string& name, Tensor&) {
    weights.names.push_back(name);
    weights.buffers.push_back(Buffer::from(platform, scoped.get(name)));
  });
  return weights;
}

// Releases the weights' memory (what remains is empty).
template <typename Model>
void unload(Weights<Model>& weights) {
  weights.names.clear();
  weights.buffers.clear();
}

}  // namespace kiln
