#include <omp.h>

#include "kiln/runtime/platform.h"

namespace kiln {

void set_cpu_threads(int threads) {
  if (threads < 1) fail("set_cpu_threads: the thread count must be at least 1, got {}", threads);
  omp_set_num_threads(threads);
}

int cpu_threads() { return omp_get_max_threads(); }

}  // namespace kiln
