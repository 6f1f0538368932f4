#include "kiln/nn/sampling.h"

#include <limits>

#include "kiln/core/error.h"

namespace kiln::nn {

Tensor greedy(const Tensor& logits, std::string_view axis) { return logits.argmax(axis); }

Tensor sample(const Tensor& logits, const Tensor& key, const SamplingOptions& options, std::string_view axis) {
  if (options.temperature <= 0) return greedy(logits, axis);
  if (options.top_p <= 0 || options.top_p > 1) fail("[sample] top_p must be in (0, 1], got {}", options.top_p);
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor scaled = logits.convert(DType::f32) / options.temperature;
  const Tensor minus_inf = scalar(-inf, DType::f32);
  Tensor keep = scaled.eq(scaled);  // all true (NaN logits are never kept)

  if (options.top_k > 0 && options.top_k < logits.dim(axis)) {
    const Tensor kth = scaled.top_k(options.top_k, axis).first.min(axis);
    keep = keep & (scaled >= kth);
  }
  if (options.top_p < 1) {
    // The smallest probability still needed to reach top_p: walk the sorted
    // probabilities and keep each one whose predecessors sum to < top_p.
    const Tensor probabilities = select(keep, scaled, minus_inf).softmax(axis);
    const Tensor sorted = probabilities.sort(axis, /*descending=*/true);
    const Tensor before = sorted.cumsum(axis) - sorted;
    const Tensor needed = before < scalar(options.top_p, DType::f32);
    const Tensor threshold = select(needed, sorted, scalar(inf, DType::f32)).min(axis);
    keep = keep & (probabilities >= threshold);
  }
  // Gumbel-max: argmax(logits + g) with g = -log(-log(u)) draws from softmax(logits).
  const Tensor u = rng_uniform(key, scaled.shape());
  const Tensor gumbel = -(-(u.log())).log();
  return (select(keep, scaled, minus_inf) + gumbel).argmax(axis);
}

}  // namespace kiln::nn
