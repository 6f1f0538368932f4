// dot_general and convolution. Operands are read once into double (floats)
// or uint64 bit patterns (integers); sums of products accumulate there and
// are rounded once to the result dtype. Integer products and sums wrap modulo
// 2^64, and truncation on store gives the wrapped narrow result.
#include <algorithm>
#include <span>
#include <vector>

#include "kiln/backend/reference/index_util.h"
#include "kiln/backend/reference/kernels.h"
#include "kiln/core/element.h"
#include "kiln/core/error.h"
#include "kiln/core/quant.h"

namespace kiln::reference {
namespace {

// Elements of a contiguous buffer, either all as doubles or all as integers.
struct Elements {
  bool is_float = false;
  std::vector<double> f;
  std::vector<uint64_t> u;
};

Elements load_elements(const HostBuffer& buffer) {
  if (is_quantized(buffer.dtype())) return load_elements(dequantize(buffer));  // a dot's quantized rhs
  Elements e;
  e.is_float = is_float(buffer.dtype());
  const size_t count = static_cast<size_t>(buffer.shape().count());
  const size_t element = size_of(buffer.dtype());
  if (e.is_float) {
    e.f.resize(count);
    for (size_t i = 0; i < count; ++i) e.f[i] = load_double(buffer.dtype(), buffer.data() + i * element);
  } else {
    e.u.resize(count);
    for (size_t i = 0; i < count; ++i)
      e.u[i] = static_cast<uint64_t>(load_int(buffer.dtype(), buffer.data() + i * element));
  }
  return e;
}

// A sum of products in double or in wrapping uint64.
struct Sum {
  double f = 0;
  uint64_t u = 0;
  void add(const Elements& a, int64_t i, const Elements& b, int64_t j) {
    if (a.is_float)
      f += a.f[static_cast<size_t>(i)] * b.f[static_cast<size_t>(j)];
    else
      u += a.u[static_cast<size_t>(i)] * b.u[static_cast<size_t>(j)];
  }
  void store(DType dtype, std::byte* p) const {
    if (is_float(dtype))
      store_double(dtype, p, f);
    else
      store_int(dtype, p, static_cast<int64_t>(u));
  }
};

// The dims and strides of `shape` at `axes`, in the order given.
void gather_axes(const Shape& shape, std::span<const int64_t> axes, std::vector<int64_t>& dims,
                 std::vector<int64_t>& strides) {
  const auto all = shape.strides();
  for (int64_t a : axes) {
    dims.push_back(shape.dim(static_cast<int>(a)));
    strides.push_back(all[static_cast<size_t>(a)]);
  }
}

// Axes of `shape` that are neither batch nor contracting, ascending.
ir::Axes free_axes(const Shape& shape, const ir::Axes& batch, const ir::Axes& contracting) {
  ir::Axes out;
  for (int64_t a = 0; a < shape.rank(); ++a)
    if (std::ranges::find(batch, a) == batch.end() && std::ranges::find(contracting, a) == contracting.end())
      out.push_back(a);
  return out;
}

// Result layout: batch dims, then lhs free dims, then rhs free dims, so the
// result's flat index runs over (batch, lhs free, rhs free) in that order.
Results eval_dot_general(const ir::Node& node, const HostBuffer& lhs, const HostBuffer& rhs) {
  const auto& attrs = node.attrs_as<ir::DotAttrs>();
  const Shape& ls = lhs.shape();
  const Shape& rs = rhs.shape();

  std::vector<int64_t> batch_dims, lhs_batch_strides, rhs_batch_dims, rhs_batch_strides;
  gather_axes(ls, attrs.lhs_batch, batch_dims, lhs_batch_strides);
  gather_axes(rs, attrs.rhs_batch, rhs_batch_dims, rhs_batch_strides);
  std::vector<int64_t> k_dims, lhs_k_strides, rhs_k_dims, rhs_k_strides;
  gather_axes(ls, attrs.lhs_contracting, k_dims, lhs_k_strides);
  gather_axes(rs, attrs.rhs_contracting, rhs_k_dims, rhs_k_strides);
  std::vector<int64_t> lhs_free_dims, lhs_free_strides, rhs_free_dims, rhs_free_strides;
  gather_axes(ls, free_axes(ls, attrs.lhs_batch, attrs.lhs_contracting), lhs_free_dims, lhs_free_strides);
  gather_axes(rs, free_axes(rs, attrs.rhs_batch, attrs.rhs_contracting), rhs_free_dims, rhs_free_strides);

  // Batch and contracting dims agree between lhs and rhs (checked by shape
  // inference), so the i-th offset of each list names the same index.
  const auto lhs_batch = offsets_of(batch_dims, lhs_batch_strides);
  const auto rhs_batch = offsets_of(batch_dims, rhs_batch_strides);
  const auto lhs_k = offsets_of(k_dims, lhs_k_strides);
  const auto rhs_k = offsets_of(k_dims, rhs_k_strides);
  const auto lhs_free = offsets_of(lhs_free_dims, lhs_free_strides);
  const auto rhs_free = offsets_of(rhs_free_dims, rhs_free_strides);

  const Elements a = load_elements(lhs);
  const Elements b = load_elements(rhs);
  HostBuffer result = HostBuffer::allocate(node.results[0]);
  const DType dtype = result.dtype();
  const size_t element = size_of(dtype);
  if (result.shape().count() == 0) return {result};
  std::byte* out = result.mutable_data();
  size_t o = 0;
  for (size_t n = 0; n < lhs_batch.size(); ++n)
    for (int64_t i : lhs_free)
      for (int64_t j : rhs_free) {
        Sum sum;
        for (size_t k = 0; k < lhs_k.size(); ++k)
          sum.add(a, lhs_batch[n] + i + lhs_k[k], b, rhs_batch[n] + j + rhs_k[k]);
        sum.store(dtype, out + o++ * element);
      }
  return {result};
}

// StableHLO convolution with lhs [N, C, spatial...], rhs [O, C/G, spatial...]
// and result [N, O, spatial...]. Output position x and kernel position k read
// the lhs-dilated, padded input at x * stride + k * rhs_dilation - padding_low;
// positions on padding or on a dilation hole contribute nothing. Output
// feature o belongs to group o / (O/G) and reads that group's C/G features.
Results eval_convolution(const ir::Node& node, const HostBuffer& lhs, const HostBuffer& rhs) {
  const auto& attrs = node.attrs_as<ir::ConvolutionAttrs>();
  const Shape& ls = lhs.shape();
  const Shape& rs = rhs.shape();
  const Shape& result_shape = node.results[0];
  const size_t spatial = static_cast<size_t>(ls.rank() - 2);
  const int64_t batch = ls.dim(0), out_features = rs.dim(0), group_features = rs.dim(1);
  const int64_t out_per_group = out_features / attrs.feature_group_count;

  const auto lhs_strides = ls.strides();
  const auto rhs_strides = rs.strides();
  const std::span<const int64_t> out_spatial = result_shape.dims().subspan(2);
  const std::span<const int64_t> kernel_spatial = rs.dims().subspan(2);
  const std::span<const int64_t> in_spatial = ls.dims().subspan(2);
  const auto rhs_kernel = offsets_of(kernel_spatial, std::span(rhs_strides).subspan(2, spatial));

  const Elements a = load_elements(lhs);
  const Elements b = load_elements(rhs);
  HostBuffer result = HostBuffer::allocate(result_shape);
  const DType dtype = result.dtype();
  const size_t element = size_of(dtype);
  if (result_shape.count() == 0) return {result};
  std::byte* out = result.mutable_data();

  std::vector<int64_t> x(spatial, 0), k(spatial, 0);
  auto next = [](std::vector<int64_t>& index, std::span<const int64_t> dims) {
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < dims[d]) return true;
      index[d] = 0;
    }
    return false;
  };

  size_t o = 0;
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t f = 0; f < out_features; ++f) {
      const int64_t first_in_feature = f / out_per_group * group_features;
      std::fill(x.begin(), x.end(), 0);
      do {
        Sum sum;
        std::fill(k.begin(), k.end(), 0);
        // k walks the kernel positions in the row-major order of rhs_kernel.
        for (size_t kernel = 0; kernel < rhs_kernel.size(); ++kernel, next(k, kernel_spatial)) {
          int64_t lhs_offset = n * lhs_strides[0] + first_in_feature * lhs_strides[1];
          bool inside = true;
          for (size_t d = 0; d < spatial && inside; ++d) {
            const int64_t dilated = x[d] * attrs.strides[d] + k[d] * attrs.rhs_dilation[d] - attrs.padding_low[d];
            const int64_t i = dilated / attrs.lhs_dilation[d];
            inside = dilated >= 0 && dilated % attrs.lhs_dilation[d] == 0 && i < in_spatial[d];
            lhs_offset += i * lhs_strides[d + 2];
          }
          if (!inside) continue;
          const int64_t rhs_offset = f * rhs_strides[0] + rhs_kernel[kernel];
          for (int64_t c = 0; c < group_features; ++c)
            sum.add(a, lhs_offset + c * lhs_strides[1], b, rhs_offset + c * rhs_strides[1]);
        }
        sum.store(dtype, out + o++ * element);
      } while (next(x, out_spatial));
    }
  return {result};
}

}  // namespace

Results eval_contraction(const ir::Node& node, Operands operands) {
  if (node.op == ir::Op::dot_general) return eval_dot_general(node, operands[0], operands[1]);
  if (node.op == ir::Op::convolution) return eval_convolution(node, operands[0], operands[1]);
  fail("[{}] is not a contraction", ir::name(node.op));
}

}  // namespace kiln::reference
