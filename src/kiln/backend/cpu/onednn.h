#pragma once
// The oneDNN engine and stream every primitive of the CPU backend runs on.
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "kiln/core/dtype.h"

namespace kiln::cpu {

struct OneDnn {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

// One per process, made on first use and never destroyed (primitives may
// outlive static destructors).
inline OneDnn& onednn() {
  static OneDnn* d = new OneDnn();
  return *d;
}

// f32, bf16 or f16, the dtypes the backend hands to oneDNN (f16 only to
// reorders: it is converted to f32 for the GEMMs).
inline dnnl::memory::data_type dnnl_type(DType d) {
  return d == DType::bf16  ? dnnl::memory::data_type::bf16
         : d == DType::f16 ? dnnl::memory::data_type::f16
                           : dnnl::memory::data_type::f32;
}

// A text naming the reorder from `from` to `to` (dims, data types, strides
// and blocking of both): equal texts pack a weight into the same bytes.
std::string reorder_key(const dnnl::memory::desc& from, const dnnl::memory::desc& to);

}  // namespace kiln::cpu
