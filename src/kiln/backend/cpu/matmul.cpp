#include "kiln/backend/cpu/matmul.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <string_view>
#include <vector>

#include "kiln/backend/cpu/half.h"
#include "kiln/backend/cpu/matvec.h"
#include "kiln/backend/cpu/onednn.h"
#include "kiln/backend/cpu/quantized_matmul.h"
#include "kiln/core/error.h"

namespace kiln::cpu {
namespace {

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

// Bytes of f32 weights made from bf16 ones by the matmuls alive now.
std::atomic<size_t>& f32_weight_bytes() {
  static std::atomic<size_t> bytes{0};
  return bytes;
}

size_t memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : size_t{0};
}

// Whether oneDNN's f32 GEMM beats its bf16 one here by more than 10%,
// measured once per process on a 256 x 1024 x 1024 product with packed
// weights, interleaved, the best of 5 each (about 30 ms).
bool f32_gemm_is_faster() {
  static const bool faster = [] {
    constexpr int64_t m = 256, k = 1024, n = 1024;
    auto make = [&](DType t) {
      MatmulShape s;
      s.m = m, s.k = k, s.n = n;
      s.lhs_strides = {m * k, k, 1};
      s.rhs_strides = {k * n, n, 1};
      s.operand = s.result = s.compute = t;
      return std::make_unique<Matmul>(s, true);
    };
    const auto bf16 = make(DType::bf16), f32 = make(DType::f32);
    std::vector<float> lhs(static_cast<size_t>(m * k), 0.5f), out(static_cast<size_t>(m * n));
    std::vector<std::byte> packed_bf16(bf16->packed_bytes()), packed_f32(f32->packed_bytes());
    std::vector<uint16_t> lhs_bf16(lhs.size(), 0x3f00), rhs_bf16(static_cast<size_t>(k * n), 0x3c00);
    std::vector<float> rhs_f32(rhs_bf16.size(), 0.0078125f);
    bf16->pack(rhs_bf16.data(), packed_bf16.data());
    f32->pack(rhs_f32.data(), packed_f32.data());
    double best_bf16 = 1e30, best_f32 = 1e30;
    for (int rep = 0; rep < 6; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      bf16->run(lhs_bf16.data(), packed_bf16.data(), out.data());
      const auto t1 = std::chrono::steady_clock::now();
      f32->run(lhs.data(), packed_f32.data(), out.data());
      const auto t2 = std::chrono::steady_clock::now();
      if (rep == 0) continue;  // the first call of each warms its code and caches
      best_bf16 = std::min(best_bf16, std::chrono::duration<double>(t1 - t0).count());
      best_f32 = std::min(best_f32, std::chrono::duration<double>(t2 - t1).count());
    }
    return best_f32 < 0.9 * best_bf16;
  }();
  return faster;
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
  if (t != DType::f32 && t != DType::bf16 && t != DType::f16) return std::nullopt;
  if (is_quantized(rhs.dtype()) && (t != DType::f32 || a.result != DType::f32)) return std::nullopt;
  if (a.result != DType::f32 && a.result != t) return std::nullopt;
  const ir::Axes lhs_free = free_axes(lhs.rank(), a.lhs_batch, a.lhs_contracting);
  const ir::Axes rhs_free = free_axes(rhs.rank(), a.rhs_batch, a.rhs_contracting);
  MatmulShape m;
  m.operand = t;
  m.compute = t == DType::f16 ? DType::f32 : t;  // oneDNN has no f16 GEMM on CPUs without avx512_fp16
  m.result = a.result;
  if (is_quantized(rhs.dtype())) m.quantized = rhs.dtype();
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

DType compute_dtype(const MatmulShape& shape) {
  if (shape.operand == DType::f16) return DType::f32;
  if (shape.operand != DType::bf16) return shape.operand;
  const char* forced = std::getenv("KILN_BF16_MATMUL");
  const std::string_view choice = forced == nullptr ? "" : forced;
  if (choice == "bf16") return DType::bf16;
  if (choice == "f32") return DType::f32;
  if (!choice.empty() && choice != "auto") fail("KILN_BF16_MATMUL is '{}'; it takes auto, bf16 or f32", choice);
  if (shape.m < 64) return DType::bf16;  // bandwidth-bound: bf16 weights are half the bytes
  const auto bytes = static_cast<size_t>(shape.batch * shape.k * shape.n) * 4;
  if (f32_weight_bytes().load() + bytes > memory_bytes() / 4) return DType::bf16;
  return f32_gemm_is_faster() ? DType::f32 : DType::bf16;
}

struct Matmul::Impl {
  MatmulShape shape;
  bool packed = false;
  bool empty = false;                         // M, N or B is 0, or K is 0 (the result is the epilogue of zeros)
  bool matvec = false;                        // one row against unpacked weights: matvec.h, not oneDNN
  bool quantized_tiles = false;               // a quantized rhs, more rows than matvec takes: quantized_matmul.h
  bool widen_lhs = false;                     // bf16/f16 operands computed in f32: the lhs is converted per call
  bool widen_rhs = false;                     // so is an unpacked rhs (only f16: activations on both sides)
  bool narrow_out = false;                    // f32 computed, bf16/f16 stored: the result goes through f32 scratch
  size_t reserved_bytes = 0;                  // of f32_weight_bytes(), given back when the matmul goes
  dnnl::memory::desc lhs_md, rhs_md, out_md;  // as the operands and result are stored
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul primitive;
  dnnl::reorder widen, narrow;  // bf16 only: f16 goes through half.h
  dnnl::memory lhs_mem, rhs_mem, out_mem, lhs_wide, rhs_wide, out_wide;
  std::vector<dnnl::memory> extra_mem;
  std::unordered_map<int, dnnl::memory> args, widen_args, narrow_args;
};

namespace {

dnnl::algorithm eltwise_algorithm(PostOp::Kind kind) {
  switch (kind) {
    case PostOp::Kind::swish:
      return dnnl::algorithm::eltwise_swish;
    case PostOp::Kind::logistic:
      return dnnl::algorithm::eltwise_logistic;
    case PostOp::Kind::tanh:
      return dnnl::algorithm::eltwise_tanh;
    case PostOp::Kind::relu:
      return dnnl::algorithm::eltwise_relu;
    default:
      return dnnl::algorithm::binary_add;
  }
}

dnnl::algorithm binary_algorithm(PostOp::Kind kind) {
  switch (kind) {
    case PostOp::Kind::sub:
      return dnnl::algorithm::binary_sub;
    case PostOp::Kind::mul:
      return dnnl::algorithm::binary_mul;
    default:
      return dnnl::algorithm::binary_add;
  }
}

// Per-thread scratch for the f32 copies of a widened matmul's lhs, result
// and unpacked rhs: grown on first use, then reused by every call on that
// thread.
std::byte* scratch(int which, size_t bytes) {
  thread_local std::vector<std::byte> buffers[3];
  auto& b = buffers[which];
  if (b.size() < bytes) b.resize(bytes);
  return b.data();
}

}  // namespace

Matmul::Matmul(const MatmulShape& s, bool packed_weights) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.shape = s;
  m.packed = packed_weights;
  m.empty = s.batch == 0 || s.m == 0 || s.n == 0 || s.k == 0;
  m.matvec = !m.empty && !packed_weights && is_matvec(s);
  if (m.empty || m.matvec) return;
  if (s.quantized) {  // quantized_matmul.h: tiles dequantized per call, nothing packed
    if (!s.epilogue.empty() || packed_weights || s.batch != 1)
      fail("[dot_general] a {} weight's matmul has no post-ops, packing or batch here", name(*s.quantized));
    m.quantized_tiles = true;
    return;
  }
  using dims = dnnl::memory::dims;
  using tag = dnnl::memory::format_tag;
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
  const bool widened = s.operand != s.compute;  // bf16 or f16 computed in f32
  m.widen_lhs = widened;
  m.widen_rhs = widened && !packed_weights;
  m.narrow_out = widened && s.result != DType::f32;
  const auto src = dnnl_type(s.operand), dst = dnnl_type(s.result);
  const auto compute = dnnl_type(s.compute), computed = m.narrow_out ? dnnl_type(DType::f32) : dst;
  // Two dimensions when there is no batch: the plain GEMM path, whose weights can be packed.
  const bool plain = s.batch == 1;
  const dims lhs_dims = plain ? dims{s.m, s.k} : dims{s.batch, s.m, s.k};
  const dims rhs_dims = plain ? dims{s.k, s.n} : dims{s.batch, s.k, s.n};
  const dims out_dims = plain ? dims{s.m, s.n} : dims{s.batch, s.m, s.n};
  const tag dense_tag = plain ? tag::ab : tag::abc;
  m.lhs_md = dnnl::memory::desc(lhs_dims, src, plain ? dims{ls[1], ls[2]} : dims{ls[0], ls[1], ls[2]});
  m.rhs_md = dnnl::memory::desc(rhs_dims, src, plain ? dims{rs[1], rs[2]} : dims{rs[0], rs[1], rs[2]});
  m.out_md = dnnl::memory::desc(out_dims, dst, dense_tag);
  const dnnl::memory::desc lhs_compute = widened ? dnnl::memory::desc(lhs_dims, compute, dense_tag) : m.lhs_md;
  const dnnl::memory::desc out_compute = m.narrow_out ? dnnl::memory::desc(out_dims, computed, dense_tag) : m.out_md;
  const dnnl::memory::desc rhs_compute = m.widen_rhs ? dnnl::memory::desc(rhs_dims, compute, dense_tag) : m.rhs_md;
  const dnnl::memory::desc weights_md = packed_weights ? dnnl::memory::desc(rhs_dims, compute, tag::any) : rhs_compute;
  dnnl::post_ops post_ops;
  std::vector<dnnl::memory::desc> extra_mds;
  for (const PostOp& op : s.epilogue) {
    if (!op.binary()) {
      post_ops.append_eltwise(1.0f, eltwise_algorithm(op.kind), op.kind == PostOp::Kind::swish ? 1.0f : 0.0f, 0.0f);
      continue;
    }
    dims extra_dims = out_dims;
    if (op.per_column)
      for (size_t d = 0; d + 1 < extra_dims.size(); ++d) extra_dims[d] = 1;
    extra_mds.emplace_back(extra_dims, dnnl_type(op.dtype), dense_tag);
    post_ops.append_binary(binary_algorithm(op.kind), extra_mds.back());
  }
  dnnl::primitive_attr attributes;
  attributes.set_post_ops(post_ops);
  auto& engine = onednn().engine;
  try {
    m.pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(lhs_compute, weights_md, out_compute), attributes, engine);
    m.primitive = dnnl::matmul(m.pd);
    // f16 is widened and narrowed by half.h's loops: oneDNN's f16 reorders
    // run at reference speed on CPUs without avx512_fp16.
    const bool bf16 = s.operand == DType::bf16;
    if (m.widen_lhs && bf16)
      m.widen = dnnl::reorder(dnnl::reorder::primitive_desc(engine, m.lhs_md, engine, lhs_compute));
    if (m.narrow_out && bf16)
      m.narrow = dnnl::reorder(dnnl::reorder::primitive_desc(engine, out_compute, engine, m.out_md));
  } catch (const dnnl::error& e) {
    fail("[dot_general] oneDNN has no matmul for [{}x{}x{}] x{} {} (computed in {}, {} post-ops): {}", s.m, s.k, s.n,
         s.batch, name(s.operand), name(s.compute), s.epilogue.size(), e.what());
  }
  m.lhs_mem = dnnl::memory(m.lhs_md, engine, DNNL_MEMORY_NONE);
  m.rhs_mem = dnnl::memory(packed_weights ? m.pd.weights_desc() : m.rhs_md, engine, DNNL_MEMORY_NONE);
  m.out_mem = dnnl::memory(m.out_md, engine, DNNL_MEMORY_NONE);
  m.lhs_wide = dnnl::memory(lhs_compute, engine, DNNL_MEMORY_NONE);
  m.rhs_wide = dnnl::memory(rhs_compute, engine, DNNL_MEMORY_NONE);
  m.out_wide = dnnl::memory(out_compute, engine, DNNL_MEMORY_NONE);
  m.args = {{DNNL_ARG_SRC, m.widen_lhs ? m.lhs_wide : m.lhs_mem},
            {DNNL_ARG_WEIGHTS, m.widen_rhs ? m.rhs_wide : m.rhs_mem},
            {DNNL_ARG_DST, m.narrow_out ? m.out_wide : m.out_mem}};
  for (size_t i = 0, extra = 0; i < s.epilogue.size(); ++i) {
    if (!s.epilogue[i].binary()) continue;
    m.extra_mem.push_back(dnnl::memory(extra_mds[extra++], engine, DNNL_MEMORY_NONE));
    m.args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(static_cast<int>(i)) | DNNL_ARG_SRC_1] = m.extra_mem.back();
  }
  m.widen_args = {{DNNL_ARG_FROM, m.lhs_mem}, {DNNL_ARG_TO, m.lhs_wide}};
  m.narrow_args = {{DNNL_ARG_FROM, m.out_wide}, {DNNL_ARG_TO, m.out_mem}};
  if (widened && packed_weights) {
    m.reserved_bytes = m.pd.weights_desc().get_size();
    f32_weight_bytes() += m.reserved_bytes;
  }
}

Matmul::~Matmul() {
  if (impl_->reserved_bytes > 0) f32_weight_bytes() -= impl_->reserved_bytes;
}

const MatmulShape& Matmul::shape() const { return impl_->shape; }

size_t Matmul::packed_bytes() const {
  return impl_->empty || impl_->matvec || impl_->quantized_tiles ? 0 : impl_->pd.weights_desc().get_size();
}

std::string Matmul::packing_key() const {
  return impl_->empty || impl_->matvec || impl_->quantized_tiles ? std::string()
                                                                 : reorder_key(impl_->rhs_md, impl_->pd.weights_desc());
}

void Matmul::pack(const void* rhs, void* packed) const {
  Impl& m = *impl_;
  if (m.empty || m.matvec || m.quantized_tiles) return;
  auto& d = onednn();
  dnnl::memory from(m.rhs_md, d.engine, const_cast<void*>(rhs));
  dnnl::memory to(m.pd.weights_desc(), d.engine, packed);
  dnnl::reorder(from, to).execute(d.stream, from, to);  // converts bf16/f16 to f32 for a widened matmul
  d.stream.wait();
}

void Matmul::run(const void* lhs, const void* rhs, void* out, const void* const* extra) const {
  Impl& m = *impl_;
  if (m.empty) {
    if (!m.shape.epilogue.empty()) fail("[dot_general] a matmul with no elements to contract has no epilogue");
    const int64_t count = m.shape.batch * m.shape.m * m.shape.n;
    std::memset(out, 0, static_cast<size_t>(count) * size_of(m.shape.result));
    return;
  }
  if (m.matvec) {
    run_matvec(m.shape, lhs, rhs, out, extra);
    return;
  }
  if (m.quantized_tiles) {
    run_quantized_matmul(m.shape, lhs, rhs, out);
    return;
  }
  auto& d = onednn();
  m.lhs_mem.set_data_handle(const_cast<void*>(lhs));
  m.rhs_mem.set_data_handle(const_cast<void*>(rhs));
  m.out_mem.set_data_handle(out);
  for (size_t i = 0; i < m.extra_mem.size(); ++i) m.extra_mem[i].set_data_handle(const_cast<void*>(extra[i]));
  const auto& s = m.shape;
  const bool f16 = s.operand == DType::f16;
  if (m.widen_lhs) {
    auto* wide = scratch(0, m.lhs_wide.get_desc().get_size());
    m.lhs_wide.set_data_handle(wide);
    if (f16)
      widen_f16(static_cast<const uint16_t*>(lhs), s.lhs_strides, {s.batch, s.m, s.k}, reinterpret_cast<float*>(wide));
    else
      m.widen.execute(d.stream, m.widen_args);
  }
  if (m.widen_rhs) {  // f16 only
    auto* wide = scratch(2, m.rhs_wide.get_desc().get_size());
    m.rhs_wide.set_data_handle(wide);
    widen_f16(static_cast<const uint16_t*>(rhs), s.rhs_strides, {s.batch, s.k, s.n}, reinterpret_cast<float*>(wide));
  }
  if (m.narrow_out) m.out_wide.set_data_handle(scratch(1, m.out_wide.get_desc().get_size()));
  m.primitive.execute(d.stream, m.args);
  if (m.narrow_out && !f16) m.narrow.execute(d.stream, m.narrow_args);
  d.stream.wait();
  if (m.narrow_out && f16)
    narrow_to_f16(static_cast<const float*>(m.out_wide.get_data_handle()), static_cast<uint16_t*>(out),
                  s.batch * s.m * s.n);
}

}  // namespace kiln::cpu
