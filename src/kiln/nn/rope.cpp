#include "kiln/nn/rope.h"

#include <cmath>
#include <numbers>

#include "kiln/core/error.h"

namespace kiln::nn {

std::vector<double> rope_frequencies(int64_t head_dim, const RopeOptions& options) {
  if (head_dim % 2 != 0) fail("[rope] the head dimension {} must be even", head_dim);
  std::vector<double> frequencies(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < frequencies.size(); ++i)
    frequencies[i] = std::pow(options.theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
  const RopeScaling& s = options.scaling;
  switch (s.kind) {
    case RopeScaling::Kind::none:
      break;
    case RopeScaling::Kind::linear:
      for (double& f : frequencies) f /= s.factor;
      break;
    case RopeScaling::Kind::llama3: {
      // Long wavelengths are slowed down by `factor`, short ones kept, and the
      // band between is interpolated smoothly (Llama 3.1).
      const double old_length = static_cast<double>(s.original_max_position);
      const double low_wavelength = old_length / s.low_freq_factor;
      const double high_wavelength = old_length / s.high_freq_factor;
      for (double& f : frequencies) {
        const double wavelength = 2 * std::numbers::pi / f;
        if (wavelength < high_wavelength) continue;
        if (wavelength > low_wavelength) {
          f /= s.factor;
          continue;
        }
        const double smooth = (old_length / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
      break;
    }
  }
  return frequencies;
}

Tensor rope(const Tensor& x, const Tensor& positions, const RopeOptions& options) {
  const int64_t head_dim = x.dim("hd");
  const int64_t half = head_dim / 2;
  const std::vector<double> frequencies = rope_frequencies(head_dim, options);
  HostBuffer freq_buffer = HostBuffer::allocate(Shape({{"_half", half}}, DType::f32));
  for (int64_t i = 0; i < half; ++i)
    freq_buffer.mutable_span<float>()[static_cast<size_t>(i)] = static_cast<float>(frequencies[static_cast<size_t>(i)]);

  const DType dtype = x.dtype();
  const Tensor angles = positions.convert(DType::f32) * constant(freq_buffer);  // {s, _half}
  const Tensor cos = angles.cos(), sin = angles.sin();
  const Tensor wide = x.convert(DType::f32);
  Tensor first, second;  // the two members of each rotated pair, tagged _half
  if (options.layout == RopeLayout::half_split) {
    first = wide.slice("hd", 0, half).rename({{"hd", "_half"}});
    second = wide.slice("hd", half, head_dim).rename({{"hd", "_half"}});
  } else {
    const Tensor pairs = wide.split_axis("hd", {{"_half", half}, {"_pair", 2}});
    first = pairs.slice("_pair", 0, 1).merge({"_half", "_pair"}, "_half");
    second = pairs.slice("_pair", 1, 2).merge({"_half", "_pair"}, "_half");
  }
  const Tensor rotated_first = first * cos - second * sin;
  const Tensor rotated_second = second * cos + first * sin;
  Tensor out;
  if (options.layout == RopeLayout::half_split) {
    out = concatenate({rotated_first, rotated_second}, "_half").rename({{"_half", "hd"}});
  } else {
    const Tensor a = rotated_first.split_axis("_half", {{"_half", half}, {"_pair", 1}});
    const Tensor b = rotated_second.split_axis("_half", {{"_half", half}, {"_pair", 1}});
    out = concatenate({a, b}, "_pair").merge({"_half", "_pair"}, "hd");
  }
  // Restore x's axis order (the products above may have reordered axes).
  std::vector<std::string_view> order;
  for (const Tag& t : x.shape().tags()) order.push_back(t.view());
  std::vector<int64_t> permutation;
  for (std::string_view tag : order) permutation.push_back(out.shape().axis(tag));
  return out.transpose(permutation).convert(dtype);
}

}  // namespace kiln::nn
