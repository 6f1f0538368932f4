#include "kiln/nn/layers.h"

#include <fmt/format.h>

namespace kiln::nn {
namespace {

// Statistics of narrow floats are computed in f32, as PyTorch does.
DType compute_dtype(DType dtype) { return size_of(dtype) < 4 ? DType::f32 : dtype; }

// "weight 'up.weight' {8,16} f32", or "weight {8,16} f32" when unnamed.
std::string describe_weight(const Tensor& w) {
  const std::string name = w.weight_name();
  return fmt::format("weight{} {}", name.empty() ? "" : fmt::format(" '{}'", name), w.shape().to_string());
}

}  // namespace

Tensor Linear::forward(const Tensor& x, std::string_view axis) const {
  if (weight.rank() != 2) fail("[Linear] the {} must have two axes [out, in]", describe_weight(weight));
  if (!x.shape().has_tag(axis)) fail("[Linear] the input {} has no axis tagged '{}'", x.shape().to_string(), axis);
  if (x.dim(axis) != weight.dim(1))
    fail("[Linear] the input's axis '{}' has {} but the {} takes {} (it is [out, in]): input {}", axis, x.dim(axis),
         describe_weight(weight), weight.dim(1), x.shape().to_string());
  if (x.dtype() != weight.dtype() && !(is_quantized(weight.dtype()) && is_float(x.dtype())))
    fail(
        "[Linear] the input {} and the {} differ in dtype; convert the input (x.convert(DType::{})) or load the "
        "weights as {}",
        x.shape().to_string(), describe_weight(weight), name(weight.dtype()), name(x.dtype()));
  const Tensor w = weight.with_tags({"_out", axis});
  Tensor y = x.dot(w, axis).rename({{"_out", axis}});
  if (bias) y = y + bias->with_tags({axis});
  return y;
}

Tensor Embedding::forward(const Tensor& ids, std::string_view axis) const {
  const Tensor rows = weight.with_tags({"_vocabulary", axis}).gather("_vocabulary", ids);
  return is_quantized(weight.dtype()) ? rows.convert(DType::f32) : rows;  // only the rows taken are dequantized
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
