#pragma once
// Comparing buffers against reference values in tests.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "kiln/core/element.h"
#include "kiln/core/host_buffer.h"
#include "kiln/io/open.h"

namespace kiln::testing {

// Tolerance for floats: |got - expected| <= atol + rtol * |expected|. NaN must
// match NaN, infinities must match exactly. Integers and bools compare exactly.
struct Tolerance {
  double rtol = 0;
  double atol = 0;
};

// The default tolerance for results of `dtype` computed by a correctly
// rounded implementation and compared with another one (a few ulps).
inline Tolerance default_tolerance(DType dtype) {
  switch (dtype) {
    case DType::f64:
      return {1e-12, 1e-300};
    case DType::f32:
      return {1e-6, 1e-30};
    case DType::f16:
      return {2e-3, 1e-7};
    case DType::bf16:
      return {1.6e-2, 1e-30};
    case DType::f8e4m3fn:
      return {1.3e-1, 0};
    case DType::f8e5m2:
      return {2.6e-1, 0};
    default:
      return {0, 0};
  }
}

// Checks dims, dtype and every element; reports up to 10 mismatches with
// their flat index. `what` names the case in failure messages.
inline ::testing::AssertionResult all_close(const HostBuffer& got, const HostBuffer& expected, Tolerance tol,
                                            const std::string& what = "") {
  if (!std::ranges::equal(got.shape().dims(), expected.shape().dims()) || got.dtype() != expected.dtype())
    return ::testing::AssertionFailure() << what << ": got " << got.shape().to_string() << ", expected "
                                         << expected.shape().to_string();
  const HostBuffer a = got.copy(), b = expected.copy();
  const DType dtype = a.dtype();
  const size_t element = size_of(dtype);
  const auto count = static_cast<size_t>(a.shape().count());
  int mismatches = 0;
  std::string report;
  for (size_t i = 0; i < count; ++i) {
    const std::byte* pa = a.data() + i * element;
    const std::byte* pb = b.data() + i * element;
    bool ok;
    double x = 0, y = 0;
    if (is_float(dtype)) {
      x = load_double(dtype, pa);
      y = load_double(dtype, pb);
      if (std::isnan(y) || std::isinf(y))
        ok = std::isnan(y) ? std::isnan(x) : x == y;
      else
        ok = std::abs(x - y) <= tol.atol + tol.rtol * std::abs(y);
    } else {
      ok = std::memcmp(pa, pb, element) == 0;
      x = load_double(dtype, pa);
      y = load_double(dtype, pb);
    }
    if (!ok && ++mismatches <= 10)
      report += "\n  [" + std::to_string(i) + "] got " + std::to_string(x) + ", expected " + std::to_string(y);
  }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << mismatches << " of " << count << " elements differ" << report;
}

inline ::testing::AssertionResult all_close(const HostBuffer& got, const HostBuffer& expected,
                                            const std::string& what = "") {
  return all_close(got, expected, default_tolerance(expected.dtype()), what);
}

// A fixture file under tests/fixtures, opened once per process.
inline const io::BufferStore& fixture(const std::string& relative) {
  static std::map<std::string, io::BufferStore> cache;
  auto it = cache.find(relative);
  if (it == cache.end()) it = cache.emplace(relative, io::open(std::string(KILN_FIXTURES) + "/" + relative)).first;
  return it->second;
}

}  // namespace kiln::testing
