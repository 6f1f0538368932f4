#pragma once
// Scaled dot-product attention with causal or explicit masks and grouped
// query heads, and a fixed-capacity key/value cache.
#include <optional>

#include "kiln/frontend/tensor.h"

namespace kiln::nn {

struct AttentionOptions {
  // Query i (at absolute position query_offset + i) sees keys 0..that position.
  bool causal = false;
  // Absolute position of the first query (an integer scalar); needed with a
  // cache, where the queries are the newest positions. Default 0.
  std::optional<Tensor> query_offset;
  // Bool, true where attention is allowed, aligned by tags with the scores
  // {b, h, s, t} (e.g. {s, t} or {b, t}).
  std::optional<Tensor> mask;
  // Default 1 / sqrt(head_dim).
  std::optional<double> scale;
};

// softmax(q k^T * scale + mask) v, with q {b, h, s, hd} and k, v {b, h, t, hd}.
// k and v may have fewer heads than q (grouped-query attention: each key/value
// head serves h_q / h_kv query heads). Softmax runs in f32. Result {b, h, s, hd}.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options = {});

// Keys and values of past positions, {b, h, t, hd} with t the capacity.
struct KvCache {
  Tensor k, v;
  // Writes k_new, v_new {b, h, s, hd} at positions pos .. pos + s - 1 (pos
  // an integer scalar, clamped so the update fits) and returns the cache.
  KvCache update(const Tensor& k_new, const Tensor& v_new, const Tensor& pos) const;
};

}  // namespace kiln::nn
