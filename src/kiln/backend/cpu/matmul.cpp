#include "kiln/backend/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>

#include "kiln/core/error.h"

namespace kiln::cpu {
namespace {

// The engine and stream every matmul runs on: one per process, made on
// first use and never destroyed (primitives may outlive static destructors).
struct Device {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};
Device& device() {
  static Device* d = new Device();
  return *d;
}

dnnl::memory::data_type dnnl_type(DType d) {
  return d == DType::bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

// The stride of a group of axes merged into one, or -1 when they do not merge.
int64_t merged_stride(const Shape& s, const ir::Axes& axes) {
  const auto strides = s.strides();
  int64_t stride = -1, expected = -1;
  for (size_t i = axes.size(); i-- > 0;) {
    const auto a = static_cast<size_t>(axes[i]);
    const int64_t d = s.dim(static_cast<int>(a));
    if (d == 1) continue;
    if (stride < 0) {
      stride = strides[a];
    } else if (strides[a] != expected) {
      return -1;
    }
    expected = strides[a] * d;
  }
  return stride < 0 ? 1 : stride;
}

int64_t product(const Shape& s, const ir::Axes& axes) {
  int64_t p = 1;
  for (int64_t a : axes) p *= s.dim(static_cast<int>(a));
  return p;
}

}  // namespace

ir::Axes free_axes(int rank, const ir::Axes& batch, const ir::Axes& contracting) {
  ir::Axes free;
  for (int i = 0; i < rank; ++i)
    if (std::find(batch.begin(), batch.end(), i) == batch.end() &&
        std::find(contracting.begin(), contracting.end(), i) == contracting.end())
      free.push_back(i);
  return free;
}

std::optional<MatmulShape> matmul_shape(const ir::Graph& graph, const ir::Node& dot) {
  const auto& a = dot.attrs_as<ir::DotAttrs>();
  const Shape& lhs = graph.shape(dot.operands[0]);
  const Shape& rhs = graph.shape(dot.operands[1]);
  const DType t = lhs.dtype();
  if (t != DType::f32 && t != DType::bf16) return std::nullopt;
  if (a.result != DType::f32 && a.result != t) return std::nullopt;
  const ir::Axes lhs_free = free_axes(lhs.rank(), a.lhs_batch, a.lhs_contracting);
  const ir::Axes rhs_free = free_axes(rhs.rank(), a.rhs_batch, a.rhs_contracting);
  MatmulShape m;
  m.operand = t;
  m.result = a.result;
  m.batch = product(lhs, a.lhs_batch);
  m.m = product(lhs, lhs_free);
  m.k = product(lhs, a.lhs_contracting);
  m.n = product(rhs, rhs_free);
  m.lhs_strides = {merged_stride(lhs, a.lhs_batch), merged_stride(lhs, lhs_free),
                   merged_stride(lhs, a.lhs_contracting)};
  m.rhs_strides = {merged_stride(rhs, a.rhs_batch), merged_stride(rhs, a.rhs_contracting),
                   merged_stride(rhs, rhs_free)};
  for (int64_t s : m.lhs_strides)
    if (s < 0) return std::nullopt;
  for (int64_t s : m.rhs_strides)
    if (s < 0) return std::nullopt;
  // The contracting axes must pair up in the same memory order on both sides.
  for (size_t i = 0; i + 1 < a.lhs_contracting.size(); ++i)
    if ((a.lhs_contracting[i] < a.lhs_contracting[i + 1]) != (a.rhs_contracting[i] < a.rhs_contracting[i + 1]))
      return std::nullopt;
  for (size_t i = 0; i + 1 < a.lhs_batch.size(); ++i)
    if ((a.lhs_batch[i] < a.lhs_batch[i + 1]) != (a.rhs_batch[i] < a.rhs_batch[i + 1])) return std::nullopt;
  return m;
}

struct Matmul::Impl {
  MatmulShape shape;
  bool packed = false;
  bool empty = false;  // M, N or B is 0, or K is 0 (the result is zeros)
  dnnl::memory::desc lhs_md, rhs_md, out_md;
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul primitive;
  dnnl::memory lhs_mem, rhs_mem, out_mem;
  std::unordered_map<int, dnnl::memory> args;
};

Matmul::Matmul(const MatmulShape& s, bool packed_weights) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.shape = s;
  m.packed = packed_weights;
  m.empty = s.batch == 0 || s.m == 0 || s.n == 0 || s.k == 0;
  if (m.empty) return;
  using dims = dnnl::memory::dims;
  // A size-1 dimension's stride is arbitrary in the IR; give it the value
  // of a dense layout so oneDNN sees non-overlapping views.
  auto dense = [](std::array<int64_t, 3> strides, std::array<int64_t, 3> sizes) {
    for (int i = 2; i >= 0; --i)
      if (sizes[static_cast<size_t>(i)] == 1) {
        int64_t extent = 1;
        for (int j = 0; j < 3; ++j)
          if (j != i) extent = std::max(extent, strides[static_cast<size_t>(j)] * sizes[static_cast<size_t>(j)]);
        strides[static_cast<size_t>(i)] = extent;
      }
    return strides;
  };
  const auto ls = dense(s.lhs_strides, {s.batch, s.m, s.k});
  const auto rs = dense(s.rhs_strides, {s.batch, s.k, s.n});
  m.shape.lhs_strides = ls;
  m.shape.rhs_strides = rs;
  const auto src = dnnl_type(s.operand), dst = dnnl_type(s.result);
  // Two dimensions when there is no batch: the plain GEMM path, whose weights can be packed.
  if (s.batch == 1) {
    m.lhs_md = dnnl::memory::desc(dims{s.m, s.k}, src, dims{ls[1], ls[2]});
    m.rhs_md = dnnl::memory::desc(dims{s.k, s.n}, src, dims{rs[1], rs[2]});
    m.out_md = dnnl::memory::desc(dims{s.m, s.n}, dst, dnnl::memory::format_tag::ab);
  } else {
    m.lhs_md = dnnl::memory::desc(dims{s.batch, s.m, s.k}, src, dims{ls[0], ls[1], ls[2]});
    m.rhs_md = dnnl::memory::desc(dims{s.batch, s.k, s.n}, src, dims{rs[0], rs[1], rs[2]});
    m.out_md = dnnl::memory::desc(dims{s.batch, s.m, s.n}, dst, dnnl::memory::format_tag::abc);
  }
  dnnl::memory::desc weights_md = m.rhs_md;
  if (packed_weights)
    weights_md =
        dnnl::memory::desc(s.batch == 1 ? dims{s.k, s.n} : dims{s.batch, s.k, s.n}, src, dnnl::memory::format_tag::any);
  try {
    m.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(m.lhs_md, weights_md, m.out_md), device().engine);
    m.primitive = dnnl::matmul(m.pd);
  } catch (const dnnl::error& e) {
    fail("[dot_general] oneDNN has no matmul for [{}x{}x{}] x{} {}: {}", s.m, s.k, s.n, s.batch, name(s.operand),
         e.what());
  }
  auto& engine = device().engine;
  m.lhs_mem = dnnl::memory(m.lhs_md, engine, DNNL_MEMORY_NONE);
  m.rhs_mem = dnnl::memory(packed_weights ? m.pd.weights_desc() : m.rhs_md, engine, DNNL_MEMORY_NONE);
  m.out_mem = dnnl::memory(m.out_md, engine, DNNL_MEMORY_NONE);
  m.args = {{DNNL_ARG_SRC, m.lhs_mem}, {DNNL_ARG_WEIGHTS, m.rhs_mem}, {DNNL_ARG_DST, m.out_mem}};
}

Matmul::~Matmul() = default;

const MatmulShape& Matmul::shape() const { return impl_->shape; }

size_t Matmul::packed_bytes() const { return impl_->empty ? 0 : impl_->pd.weights_desc().get_size(); }

void Matmul::pack(const void* rhs, void* packed) const {
  Impl& m = *impl_;
  if (m.empty) return;
  auto& d = device();
  dnnl::memory from(m.rhs_md, d.engine, const_cast<void*>(rhs));
  dnnl::memory to(m.pd.weights_desc(), d.engine, packed);
  dnnl::reorder(from, to).execute(d.stream, from, to);
  d.stream.wait();
}

void Matmul::run(const void* lhs, const void* rhs, void* out) const {
  Impl& m = *impl_;
  if (m.empty) {
    const int64_t count = m.shape.batch * m.shape.m * m.shape.n;
    std::memset(out, 0, static_cast<size_t>(count) * size_of(m.shape.result));
    return;
  }
  m.lhs_mem.set_data_handle(const_cast<void*>(lhs));
  m.rhs_mem.set_data_handle(const_cast<void*>(rhs));
  m.out_mem.set_data_handle(out);
  auto& d = device();
  m.primitive.execute(d.stream, m.args);
  d.stream.wait();
}

}  // namespace kiln::cpu
