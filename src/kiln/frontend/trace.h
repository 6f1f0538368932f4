#pragma once
// Tracing: running a C++ function of Tensors once, on parameters of fixed
// shapes, records the graph it computes.
//
//   ir::Graph g = kiln::trace([](Tensor x, Tensor w) { return x.dot(w, "d").relu(); },
//                             Shape({{"b", 4}, {"d", 8}}), Shape({{"d", 8}, {"o", 2}}));
//
// The function may return a Tensor or any nesting of std::tuple, std::pair,
// std::vector, std::array and described structs of Tensors (see
// runtime/results.h); they become the graph's outputs in order.
#include <array>
#include <boost/describe.hpp>
#include <boost/mp11/algorithm.hpp>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kiln/frontend/tensor.h"

namespace kiln {
namespace detail {

// The graph that free functions such as constant() and iota() add to. Set
// for the duration of trace(); traces do not nest.
ir::Graph* current_graph();

class TraceScope {
 public:
  explicit TraceScope(ir::Graph& graph);
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;
};

// Appends the values of a traced result to `out` in order; `layout` gets the
// length of every vector met on the way (see runtime/results.h). Declared
// first so that every nesting finds every overload.
template <typename T>
void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const std::vector<T>& items);
template <typename T, size_t N>
void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const std::array<T, N>& items);
template <typename... Ts>
void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const std::tuple<Ts...>& items);
template <typename A, typename B>
void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const std::pair<A, B>& items);
template <typename T>
requires boost::describe::has_describe_members<T>::value void collect(std::vector<ir::Value>& out,
                                                                      std::vector<size_t>& layout, const T& outputs);

inline void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const Tensor& t) {
  out.push_back(t.value());
}
template <typename T>
void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const std::vector<T>& items) {
  layout.push_back(items.size());
  for (const T& item : items) collect(out, layout, item);
}
template <typename T, size_t N>
void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const std::array<T, N>& items) {
  for (const T& item : items) collect(out, layout, item);
}
template <typename... Ts>
void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const std::tuple<Ts...>& items) {
  std::apply([&](const auto&... item) { (collect(out, layout, item), ...); }, items);
}
template <typename A, typename B>
void collect(std::vector<ir::Value>& out, std::vector<size_t>& layout, const std::pair<A, B>& items) {
  collect(out, layout, items.first);
  collect(out, layout, items.second);
}
// A described struct of outputs: its fields in order.
template <typename T>
requires boost::describe::has_describe_members<T>::value void collect(std::vector<ir::Value>& out,
                                                                      std::vector<size_t>& layout, const T& outputs) {
  using Members = boost::describe::describe_members<T, boost::describe::mod_public>;
  boost::mp11::mp_for_each<Members>([&](auto member) { collect(out, layout, outputs.*member.pointer); });
}

// The graph's parameters for the arguments, "argument 0", "argument 1", ...
template <typename... Shapes>
std::array<Tensor, sizeof...(Shapes)> argument_parameters(ir::Graph& graph, const Shapes&... shapes) {
  // A braced list is evaluated left to right, so parameter i is argument i.
  int index = 0;
  return {Tensor(&graph, graph.parameter(shapes, "argument " + std::to_string(index++)))...};
}

// Adds a hint to errors raised while tracing when some argument was declared
// without tags, the usual cause of a tag or broadcast error deep inside a
// model.
[[noreturn]] void rethrow_with_argument_hint(const ir::Graph& graph, const Error& error);

// Traces `body(graph)` (which adds the parameters and returns the result)
// into a verified graph; `layout` gets the result's vector lengths.
template <typename Body>
ir::Graph trace_body(Body&& body, std::vector<size_t>& layout) {
  ir::Graph graph;
  TraceScope scope(graph);
  std::vector<ir::Value> outputs;
  try {
    auto result = body(graph);
    collect(outputs, layout, result);
  } catch (const Error& error) {
    rethrow_with_argument_hint(graph, error);
  }
  graph.set_outputs(std::move(outputs));
  ir::verify(graph);
  return graph;
}

}  // namespace detail

template <typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) ir::Graph trace(F&& fn, const Shapes&... shapes) {
  std::vector<size_t> layout;
  return detail::trace_body(
      [&](ir::Graph& graph) { return std::apply(fn, detail::argument_parameters(graph, shapes...)); }, layout);
}

}  // namespace kiln
