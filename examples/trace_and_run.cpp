// Traces a small function with the Tensor API, prints the graph, runs it on
// the reference backend and prints the result.
//
//   build/release/examples/trace_and_run
#include <fmt/core.h>

#include "kiln/backend/reference/interpreter.h"
#include "kiln/core/element.h"
#include "kiln/frontend/trace.h"

// One attention-like step: scores over the key axis, softmax, weighted sum.
kiln::Tensor attend(kiln::Tensor q, kiln::Tensor k, kiln::Tensor v) {
  kiln::Tensor scores = q.dot(k, "d") * (1.0 / 2.0);  // {s, t}
  kiln::Tensor weights = scores.softmax("t");         // normalised over t
  return weights.dot(v, "t");                         // {s, d}
}

kiln::HostBuffer filled(const kiln::Shape& shape, float start, float step) {
  kiln::HostBuffer b = kiln::HostBuffer::allocate(shape);
  float value = start;
  for (float& x : b.mutable_span<float>()) x = (value += step);
  return b;
}

int main() {
  const kiln::Shape q_shape({{"s", 2}, {"d", 4}});
  const kiln::Shape k_shape({{"t", 3}, {"d", 4}});
  const kiln::Shape v_shape({{"t", 3}, {"d", 4}});
  kiln::ir::Graph graph = kiln::trace(attend, q_shape, k_shape, v_shape);
  fmt::print("traced graph:\n{}\n", kiln::ir::print(graph));

  auto outputs = kiln::reference::evaluate(
      graph, {filled(q_shape, 0, 0.25f), filled(k_shape, 1, -0.125f), filled(v_shape, 0, 1.0f)});
  fmt::print("result {}: {}\n", outputs[0].shape().to_string(), kiln::summarize(outputs[0], 16));
  return 0;
}
