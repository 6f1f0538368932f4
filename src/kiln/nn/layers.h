#pragma once
// Basic layers as model structs. Weights use the PyTorch / Hugging Face
// layouts (Linear.weight is [out, in]) so checkpoints load as they are.
// Inputs must tag their axes; a layer works on the axis named by its `axis`
// argument (default "d", the model dimension) and keeps that tag.
#include <optional>

#include "kiln/frontend/model.h"

namespace kiln::nn {

// y = x W^T + b over axis `axis` of x; the output axis keeps the tag. A
// block-quantized weight (GGUF) takes a float x and is dequantized by the dot.
struct Linear {
  Tensor weight;               // [out, in]
  std::optional<Tensor> bias;  // [out]
  Tensor forward(const Tensor& x, std::string_view axis = "d") const;
  Tensor operator()(const Tensor& x, std::string_view axis = "d") const { return forward(x, axis); }
};

// Rows of `weight` picked by integer ids; the ids' axes come first, then
// `axis` (the embedding width). Out-of-range ids are clamped. Rows of a
// block-quantized weight come out dequantized, in f32.
struct Embedding {
  Tensor weight;  // [vocabulary, width]
  Tensor forward(const Tensor& ids, std::string_view axis = "d") const;
  Tensor operator()(const Tensor& ids, std::string_view axis = "d") const { return forward(ids, axis); }
};

// (x - mean) / sqrt(var + eps) * weight + bias over `axis`, computed in f32
// for narrower inputs and returned in the input dtype.
struct LayerNorm {
  Tensor weight;
  std::optional<Tensor> bias;
  double eps = 1e-5;
  Tensor forward(const Tensor& x, std::string_view axis = "d") const;
  Tensor operator()(const Tensor& x, std::string_view axis = "d") const { return forward(x, axis); }
};

// x / sqrt(mean(x^2) + eps) * weight over `axis`, normalised in f32 and
// converted back before the weight is applied (as LLaMA does).
struct RmsNorm {
  Tensor weight;
  double eps = 1e-6;
  Tensor forward(const Tensor& x, std::string_view axis = "d") const;
  Tensor operator()(const Tensor& x, std::string_view axis = "d") const { return forward(x, axis); }
};

// down(silu(gate(x)) * up(x)), the LLaMA feed-forward block.
struct SwiGluMlp {
  Linear gate_proj, up_proj, down_proj;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
};

// fc2(gelu(fc1(x))), the GPT/BERT feed-forward block.
struct GeluMlp {
  Linear fc1, fc2;
  GeluApproximation approximation = GeluApproximation::erf;
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
};

KILN_FIELDS(Linear, weight, bias)
KILN_FIELDS(Embedding, weight)
KILN_FIELDS(LayerNorm, weight, bias, eps)
KILN_FIELDS(RmsNorm, weight, eps)
KILN_FIELDS(SwiGluMlp, gate_proj, up_proj, down_proj)
KILN_FIELDS(GeluMlp, fc1, fc2, approximation)

}  // namespace kiln::nn
