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

  const bool top_k = options.top_k > 0 && options.top_k < logits.dim(axis);
  // The top-k logits, largest first: they bound the kept set, and top-p then
  // walks these k values rather than sorting the whole vocabulary (its
  // cumulative sum is quadratic in the length it runs over: over a 32000-
  // entry vocabulary that was most of a decode step).
  const Tensor candidates = top_k ? scaled.top_k(options.top_k, axis).first : Tensor();
  if (top_k) keep = keep & (scaled >= candidates.min(axis));
  if (options.top_p < 1) {
    // The smallest probability still needed to reach top_p: walk the sorted
    // probabilities and keep each one whose predecessors sum to < top_p; as
    // a logit, the smallest logit still needed.
    const Tensor sorted_logits = top_k ? candidates : select(keep, scaled, minus_inf).sort(axis, /*descending=*/true);
    const Tensor sorted = sorted_logits.softmax(axis);
    const Tensor before = sorted.cumsum(axis) - sorted;
    const Tensor needed = before < scalar(options.top_p, DType::f32);
    const Tensor threshold = select(needed, sorted_logits, scalar(inf, DType::f32)).min(axis);
    keep = keep & (scaled >= threshold);
  }
  // Gumbel-max: argmax(logits + g) with g = -log(-log(u)) draws from softmax(logits).
  const Tensor u = rng_uniform(key, scaled.shape());
  const Tensor gumbel = -(-(u.log())).log();
  return (select(keep, scaled, minus_inf) + gumbel).argmax(axis);
}

}  // namespace kiln::nn
