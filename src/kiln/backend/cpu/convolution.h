#pragma once
// convolution through oneDNN: lhs [N, C, spatial...], rhs [O, C/G, spatial...]
// and result [N, O, spatial...] (StableHLO's layout, oneDNN's ncw/nchw/ncdhw
// and (g)oi(d)(h)w), 1 to 3 spatial axes, f32 or bf16, with strides,
// padding that is not negative, rhs dilation and feature groups. Other
// convolutions (lhs dilation, negative padding, other dtypes) stay on the
// shared reference kernel. A weight rhs is packed once at prepare.
#include <memory>
#include <string>

#include "kiln/ir/graph.h"

namespace kiln::cpu {

class Convolution {
 public:
  // The oneDNN convolution computing `node`, or nullptr when oneDNN does not compute it.
  static std::shared_ptr<const Convolution> make(const ir::Graph& graph, const ir::Node& node, bool packed_weights);
  ~Convolution();
  Convolution(const Convolution&) = delete;
  Convolution& operator=(const Convolution&) = delete;

  size_t packed_bytes() const;
  void pack(const void* rhs, void* packed) const;
  // What pack() does, as a text: products whose keys are equal pack the
  // same rhs into the same bytes, so they can share one packed copy.
  std::string packing_key() const;
  // out = lhs (*) rhs (rhs packed when made so). Not reentrant.
  void run(const void* lhs, const void* rhs, void* out) const;

 private:
  struct Impl;
  explicit Convolution(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::cpu
