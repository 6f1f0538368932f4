#pragma once
// Tracing: running a C++ function of Tensors once, on parameters of fixed
// shapes, records the graph it computes.
//
//   ir::Graph g = kiln::trace([](Tensor x, Tensor w) { return x.dot(w, "d").relu(); },
//                             Shape({{"b", 4}, {"d", 8}}), Shape({{"d", 8}, {"o", 2}}));
//
// The function may return a Tensor, a std::tuple/std::pair of Tensors, a
// std::vector<Tensor> or a described struct of Tensors; they become the
// graph's outputs in order.
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

inline void collect(std::vector<ir::Value>& out, const Tensor& t) { out.push_back(t.value()); }
inline void collect(std::vector<ir::Value>& out, const std::vector<Tensor>& ts) {
  for (const Tensor& t : ts) out.push_back(t.value());
}
template <typename... Ts>
void collect(std::vector<ir::Value>& out, const std::tuple<Ts...>& ts) {
  std::apply([&](const auto&... t) { (collect(out, t), ...); }, ts);
}
template <typename A, typename B>
void collect(std::vector<ir::Value>& out, const std::pair<A, B>& p) {
  collect(out, p.first);
  collect(out, p.second);
}
// A described struct of outputs (see compile.h): its fields in order.
template <typename T>
requires boost::describe::has_describe_members<T>::value void collect(std::vector<ir::Value>& out, const T& outputs) {
  using Members = boost::describe::describe_members<T, boost::describe::mod_public>;
  boost::mp11::mp_for_each<Members>([&](auto member) { collect(out, outputs.*member.pointer); });
}

}  // namespace detail

template <typename F, typename... Shapes>
requires(std::is_same_v<Shapes, Shape>&&...) ir::Graph trace(F&& fn, const Shapes&... shapes) {
  ir::Graph graph;
  detail::TraceScope scope(graph);
  // A braced list is evaluated left to right, so parameter i is argument i.
  int index = 0;
  std::array<Tensor, sizeof...(Shapes)> parameters{
      Tensor(&graph, graph.parameter(shapes, "argument " + std::to_string(index++)))...};
  auto result = std::apply(std::forward<F>(fn), parameters);
  std::vector<ir::Value> outputs;
  detail::collect(outputs, result);
  graph.set_outputs(std::move(outputs));
  ir::verify(graph);
  return graph;
}

}  // namespace kiln
