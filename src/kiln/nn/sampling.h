#pragma once
// Choosing the next token from logits. Sampling is reproducible: the random
// numbers come from a counter-based generator keyed by a u32 [2] key, so the
// same key and logits always give the same token.
#include "kiln/frontend/tensor.h"

namespace kiln::nn {

struct SamplingOptions {
  double temperature = 1.0;  // <= 0 means greedy (argmax)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 keeps all
  double top_p = 1.0;        // keep the smallest set whose probability reaches top_p
};

// The most likely token along `axis`, as i64 ids.
Tensor greedy(const Tensor& logits, std::string_view axis = "voc");

// A token drawn from softmax(logits / temperature) restricted by top_k and
// top_p (tokens tied with the last one kept are kept too), using the
// Gumbel-max trick with uniforms from `key`. Returns i64 ids.
Tensor sample(const Tensor& logits, const Tensor& key, const SamplingOptions& options, std::string_view axis = "voc");

}  // namespace kiln::nn
