#pragma once
// Reading and writing single elements of any dtype through a common type.
// Used where clarity beats speed: printing, the reference backend, tests.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/core/dtype.h"

namespace kiln {

class HostBuffer;

// The element at `p` as a double (integers above 2^53 lose precision; use
// load_int for exact integer values).
double load_double(DType dtype, const std::byte* p);
// The element at `p` as an int64 (u64 reinterpreted; floats truncated).
int64_t load_int(DType dtype, const std::byte* p);
// Stores `value` rounded once to the dtype (round to nearest even for every
// float dtype); integers truncate toward zero, saturating at the type's range.
void store_double(DType dtype, std::byte* p, double value);
void store_int(DType dtype, std::byte* p, int64_t value);

// "[1, 2.5, nan, ...]" of the first `max_elements` values in row-major order.
std::string summarize(const HostBuffer& buffer, size_t max_elements = 8);

}  // namespace kiln
