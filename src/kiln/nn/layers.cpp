#include "kiln/nn/layers.h"

namespace kiln::nn {
namespace {

// Statistics of narrow floats are computed in f32, as PyTorch does.
DType compute_dtype(DType dtype) { return size_of(dtype) < 4 ? DType::f32 : dtype; }

}  // namespace

Tensor Linear::forward(const Tensor& x, std::string_view axis) const {
  const Tensor w = weight.with_tags({"_out", axis});
  Tensor y = x.dot(w, axis).rename({{"_out", axis}});
  if (bias) y = y + bias->with_tags({axis});
  return y;
}

Tensor Embedding::forward(const Tensor& ids, std::string_view axis) const {
  return weight.with_tags({"_vocabulary", axis}).gather("_vocabulary", ids);
}

Tensor LayerNorm::forward(const Tensor& x, std::string_view axis) const {
  const Tensor wide = x.convert(compute_dtype(x.dtype()));
  const Tensor centered = wide - wide.mean(axis);
  const Tensor variance = (centered * centered).mean(axis);
  Tensor y = (centered * (variance + eps).rsqrt()).convert(x.dtype());
  y = y * weight.with_tags({axis});
  if (bias) y = y + bias->with_tags({axis});
  return y;
}

Tensor RmsNorm::forward(const Tensor& x, std::string_view axis) const {
  const Tensor wide = x.convert(compute_dtype(x.dtype()));
  const Tensor normalised = wide * ((wide * wide).mean(axis) + eps).rsqrt();
  return weight.with_tags({axis}) * normalised.convert(x.dtype());
}

Tensor SwiGluMlp::forward(const Tensor& x) const { return down_proj(gate_proj(x).silu() * up_proj(x)); }

Tensor GeluMlp::forward(const Tensor& x) const { return fc2(fc1(x).gelu(approximation)); }

}  // namespace kiln::nn
