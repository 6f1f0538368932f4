// Peer figures from oneDNN matmul (called directly) and the memory read
// bandwidth, to set kiln's numbers against.
//
// Build (from the repository root; one compile job):
//   cd bench/peers &&
//   g++ -std=c++20 -O3 -march=native -fopenmp onednn_main.cpp onednn_direct.cpp -ldnnl -o /tmp/kiln_onednn_peer
// Run:
//   OMP_NUM_THREADS=2 /tmp/kiln_onednn_peer [reps=10] [bandwidth MiB=1024]
//
// Shapes are given as M, N, K: dst{M,N} = src{M,K} x weights{K,N}.
//   2048 x 2048 x 2048: a square reference.
//   M=512, N=5632, K=2048: 512 tokens through a TinyLlama gate/up projection.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "onednn_direct.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
  const size_t mib = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1024;
  std::printf("OpenMP threads: %d, reps: %d\n", omp_get_max_threads(), reps);

  struct Shape {
    int64_t m, n, k;
  };
  for (const Shape s : {Shape{2048, 2048, 2048}, Shape{512, 5632, 2048}}) {
    for (const bool bf16 : {false, true}) {
      const std::vector<double> ms = kiln::bench::onednn_matmul_ms(s.m, s.n, s.k, bf16, reps);
      const double med = median(ms), best = *std::min_element(ms.begin(), ms.end());
      const double flop = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k);
      std::printf("matmul M=%-5lld N=%-5lld K=%-5lld %-4s  median %8.2f ms  %7.1f GFLOP/s  (min %8.2f ms)\n",
                  static_cast<long long>(s.m), static_cast<long long>(s.n), static_cast<long long>(s.k),
                  bf16 ? "bf16" : "f32", med, flop / med / 1e6, best);
    }
  }
  std::printf("read bandwidth (%zu MiB buffer): %.1f GB/s (median)\n", mib, kiln::bench::read_bandwidth_gbs(mib << 20));
  return 0;
}
