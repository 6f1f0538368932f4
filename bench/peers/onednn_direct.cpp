#include "onednn_direct.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <stdexcept>
#include <unordered_map>

namespace kiln::bench {
namespace {

using Clock = std::chrono::steady_clock;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A plain row-major f32 memory of `dims`, filled with uniform [-1, 1) values.
dnnl::memory random_f32(const dnnl::memory::dims& dims, const dnnl::engine& engine, unsigned seed) {
  dnnl::memory m({dims, dt::f32, tag::ab}, engine);
  auto* p = static_cast<float*>(m.get_data_handle());
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t i = 0, n = dims[0] * dims[1]; i < n; ++i) p[i] = uniform(rng);
  return m;
}

// `from` converted/repacked into a new memory of layout `md`, or `from`
// itself when it already has that layout. (dnnl::memory is a shared handle.)
dnnl::memory reordered(dnnl::memory from, const dnnl::memory::desc& md, const dnnl::engine& engine,
                       dnnl::stream& stream) {
  if (from.get_desc() == md) return from;
  dnnl::memory to(md, engine);
  dnnl::reorder(from, to).execute(stream, from, to);
  stream.wait();
  return to;
}

// Keeps the sums alive so the compiler cannot drop the read passes.
volatile uint64_t g_sink = 0;

}  // namespace

std::vector<double> onednn_matmul_ms(int64_t M, int64_t N, int64_t K, bool bf16, int reps) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dt in = bf16 ? dt::bf16 : dt::f32;

  // Activations arrive row-major; only the weights may pick their layout.
  const dnnl::memory::desc src_md({M, K}, in, tag::ab);
  const dnnl::memory::desc weights_md({K, N}, in, tag::any);
  const dnnl::memory::desc dst_md({M, N}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, weights_md, dst_md), engine);
  const dnnl::matmul matmul(pd);

  // Prepare (untimed): f32 -> bf16 conversion and weight packing are reorders.
  const dnnl::memory src = reordered(random_f32({M, K}, engine, 1), pd.src_desc(), engine, stream);
  const dnnl::memory weights = reordered(random_f32({K, N}, engine, 2), pd.weights_desc(), engine, stream);
  const dnnl::memory dst(pd.dst_desc(), engine);
  const std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};

  std::vector<double> ms;
  for (int rep = -1; rep < reps; ++rep) {  // rep -1 is the warm-up
    const auto start = Clock::now();
    matmul.execute(stream, args);
    stream.wait();
    if (rep >= 0) ms.push_back(ms_since(start));
  }
  return ms;
}

double read_bandwidth_gbs(size_t bytes, int reps) {
  const size_t n = bytes / sizeof(uint64_t);
  auto* data = static_cast<uint64_t*>(std::aligned_alloc(64, n * sizeof(uint64_t)));
  if (data == nullptr) throw std::runtime_error("read_bandwidth_gbs: allocation failed");
    // Touch every page once, with the same static partition as the passes, so
    // the pages are faulted in (and first-touch placed) before timing.
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) data[i] = i;

  std::vector<double> gbs;
  for (int rep = 0; rep < reps; ++rep) {
    const auto start = Clock::now();
    // Integer addition is associative, so the reduction vectorises without
    // -ffast-math; each thread streams its contiguous chunk.
    uint64_t sum = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : sum)
    for (size_t i = 0; i < n; ++i) sum += data[i];
    const double seconds = ms_since(start) / 1e3;
    g_sink = g_sink + sum;
    gbs.push_back(static_cast<double>(n * sizeof(uint64_t)) / seconds / 1e9);
  }
  std::free(data);
  std::nth_element(gbs.begin(), gbs.begin() + gbs.size() / 2, gbs.end());
  return gbs[gbs.size() / 2];
}

}  // namespace kiln::bench
