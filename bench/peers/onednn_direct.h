#pragma once
// Peer baselines measured outside kiln: oneDNN's matmul called directly, and
// the machine's memory read bandwidth. Standalone (no kiln headers), built by
// the command at the top of onednn_main.cpp.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln::bench {

// Times dst{M,N} f32 = src{M,K} x weights{K,N} with oneDNN's matmul on the CPU
// engine. src and weights are f32, or both bf16 when `bf16` (dst stays f32).
// The weights are reordered once, before timing, into the layout the primitive
// prefers (format_tag::any), as a compiler pre-packs them when it prepares.
// Runs 1 untimed warm-up, then returns the milliseconds of each of `reps` runs.
std::vector<double> onednn_matmul_ms(int64_t M, int64_t N, int64_t K, bool bf16, int reps);

// Memory read bandwidth in GB/s (1e9 bytes/s): the median over `reps` passes of
// an OpenMP-parallel vectorised sum of a buffer of `bytes` (allocated and
// touched once, before the first pass).
double read_bandwidth_gbs(size_t bytes = size_t{1} << 30, int reps = 10);

}  // namespace kiln::bench
