#pragma once
// The renderer: one fusion group -> the C++ source of one kernel function.
// Values are computed at the index the loop nest asks for: movement ops
// rewrite the index, elementwise ops combine their operands' values, and
// materialized values are loaded from the kernel's arguments. Each
// statement is emitted into the outermost loop it depends on, so row-level
// values (a norm's scale, a broadcast operand) are computed once per row.
#include <string>
#include <vector>

#include "kiln/backend/cpu/fusion.h"

namespace kiln::cpu {

struct KernelSource {
  std::string name;               // k_<hash of the code>: equal kernels share one function
  std::string code;               // extern "C" void name(char* const* args) { ... }
  std::vector<ir::Value> inputs;  // args[0..n): the materialized values it reads
  ir::Value output;               // args[n]: the value it stores
};

KernelSource render_group(const ir::Graph& graph, const Fusion& fusion, int32_t group);

// The C++ compute type of a dtype ("f32" for bf16 and f16) and the type it is
// stored as ("bf16s", "f16s", "u8" for bool).
std::string_view compute_type(DType dtype);
std::string_view storage_type(DType dtype);

}  // namespace kiln::cpu
