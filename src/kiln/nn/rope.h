#pragma once
// Rotary position embeddings (RoPE). Pairs of features of each head are
// rotated by position * frequency, with frequency_i = theta^(-2i/head_dim).
#include "kiln/frontend/tensor.h"

namespace kiln::nn {

enum class RopeLayout {
  half_split,   // pairs (x[i], x[i + hd/2]): Hugging Face LLaMA ("rotate_half")
  interleaved,  // pairs (x[2i], x[2i+1]): the original paper, Meta's LLaMA code
};

struct RopeScaling {
  enum class Kind { none, linear, llama3 };
  Kind kind = Kind::none;
  double factor = 1.0;                   // linear and llama3
  double low_freq_factor = 1.0;          // llama3
  double high_freq_factor = 4.0;         // llama3
  int64_t original_max_position = 8192;  // llama3
};

struct RopeOptions {
  RopeLayout layout = RopeLayout::half_split;
  double theta = 10000.0;
  RopeScaling scaling;
};

// The rotation frequencies (head_dim / 2 of them), scaled, in double.
std::vector<double> rope_frequencies(int64_t head_dim, const RopeOptions& options);

// Rotates `x` along its head axis `hd` by the positions `positions` (an
// integer tensor tagged "s", matching x's "s" axis). Computed in f32 and
// returned in x's dtype.
Tensor rope(const Tensor& x, const Tensor& positions, const RopeOptions& options);

}  // namespace kiln::nn
