#include "kiln/backend/cpu/onednn.h"

#include <fmt/format.h>

namespace kiln::cpu {
namespace {

std::string describe(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  std::string text =
      fmt::format("t{} f{} o{} [", static_cast<int>(d.data_type), static_cast<int>(d.format_kind), d.offset0);
  for (int i = 0; i < d.ndims; ++i)
    text += fmt::format("{}/{}:{} ", d.dims[i], d.padded_dims[i], d.format_desc.blocking.strides[i]);
  text += "] blocks";
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  for (int i = 0; i < b.inner_nblks; ++i) text += fmt::format(" {}{}", b.inner_blks[i], b.inner_idxs[i]);
  text += fmt::format(" extra {} {}", d.extra.flags, d.extra.compensation_mask);
  return text;
}

}  // namespace

std::string reorder_key(const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
  return describe(from) + " -> " + describe(to);
}

}  // namespace kiln::cpu
