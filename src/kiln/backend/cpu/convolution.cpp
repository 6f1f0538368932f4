#include "kiln/backend/cpu/convolution.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "kiln/backend/cpu/onednn.h"

namespace kiln::cpu {

struct Convolution::Impl {
  dnnl::memory::desc rhs_md;  // the weights as stored
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward primitive;
  dnnl::memory lhs_mem, rhs_mem, out_mem;
  std::unordered_map<int, dnnl::memory> args;
};

Convolution::Convolution(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Convolution::~Convolution() = default;

std::shared_ptr<const Convolution> Convolution::make(const ir::Graph& graph, const ir::Node& node,
                                                     bool packed_weights) {
  using dims = dnnl::memory::dims;
  using tag = dnnl::memory::format_tag;
  const auto& a = node.attrs_as<ir::ConvolutionAttrs>();
  const Shape& lhs = graph.shape(node.operands[0]);
  const Shape& rhs = graph.shape(node.operands[1]);
  const Shape& out = node.results[0];
  const DType t = lhs.dtype();
  const int spatial = lhs.rank() - 2;
  if ((t != DType::f32 && t != DType::bf16) || spatial < 1 || spatial > 3 || out.count() == 0 || rhs.count() == 0)
    return nullptr;
  for (int i = 0; i < spatial; ++i) {
    const auto s = static_cast<size_t>(i);
    if (a.lhs_dilation[s] != 1 || a.padding_low[s] < 0 || a.padding_high[s] < 0) return nullptr;
  }
  const int64_t groups = a.feature_group_count;
  dims lhs_dims(lhs.dims().begin(), lhs.dims().end()), out_dims(out.dims().begin(), out.dims().end());
  dims rhs_dims(rhs.dims().begin(), rhs.dims().end());
  if (groups > 1) {  // [G, O/G, C/G, spatial...]: the same memory as [O, C/G, spatial...]
    rhs_dims[0] /= groups;
    rhs_dims.insert(rhs_dims.begin(), groups);
  }
  dims strides, dilation, pad_low, pad_high;
  for (int i = 0; i < spatial; ++i) {
    const auto s = static_cast<size_t>(i);
    strides.push_back(a.strides[s]);
    dilation.push_back(a.rhs_dilation[s] - 1);  // oneDNN counts the holes
    pad_low.push_back(a.padding_low[s]);
    pad_high.push_back(a.padding_high[s]);
  }
  static constexpr tag kData[] = {tag::ncw, tag::nchw, tag::ncdhw};
  static constexpr tag kWeights[] = {tag::oiw, tag::oihw, tag::oidhw};
  static constexpr tag kGroupWeights[] = {tag::goiw, tag::goihw, tag::goidhw};
  const auto type = dnnl_type(t);
  const auto s = static_cast<size_t>(spatial - 1);
  const dnnl::memory::desc lhs_md(lhs_dims, type, kData[s]), out_md(out_dims, type, kData[s]);
  auto impl = std::make_unique<Impl>();
  impl->rhs_md = dnnl::memory::desc(rhs_dims, type, groups > 1 ? kGroupWeights[s] : kWeights[s]);
  const dnnl::memory::desc weights_md = packed_weights ? dnnl::memory::desc(rhs_dims, type, tag::any) : impl->rhs_md;
  auto& engine = onednn().engine;
  try {
    const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                               lhs_md, weights_md, out_md, strides, dilation, pad_low, pad_high);
    impl->pd = dnnl::convolution_forward::primitive_desc(desc, engine);
    impl->primitive = dnnl::convolution_forward(impl->pd);
  } catch (const dnnl::error&) {
    return nullptr;  // no oneDNN implementation for this case: the shared kernel computes it
  }
  impl->lhs_mem = dnnl::memory(lhs_md, engine, DNNL_MEMORY_NONE);
  impl->rhs_mem = dnnl::memory(packed_weights ? impl->pd.weights_desc() : impl->rhs_md, engine, DNNL_MEMORY_NONE);
  impl->out_mem = dnnl::memory(out_md, engine, DNNL_MEMORY_NONE);
  impl->args = {{DNNL_ARG_SRC, impl->lhs_mem}, {DNNL_ARG_WEIGHTS, impl->rhs_mem}, {DNNL_ARG_DST, impl->out_mem}};
  return std::shared_ptr<const Convolution>(new Convolution(std::move(impl)));
}

size_t Convolution::packed_bytes() const { return impl_->pd.weights_desc().get_size(); }

std::string Convolution::packing_key() const { return reorder_key(impl_->rhs_md, impl_->pd.weights_desc()); }

void Convolution::pack(const void* rhs, void* packed) const {
  auto& d = onednn();
  dnnl::memory from(impl_->rhs_md, d.engine, const_cast<void*>(rhs));
  dnnl::memory to(impl_->pd.weights_desc(), d.engine, packed);
  dnnl::reorder(from, to).execute(d.stream, from, to);
  d.stream.wait();
}

void Convolution::run(const void* lhs, const void* rhs, void* out) const {
  Impl& c = *impl_;
  c.lhs_mem.set_data_handle(const_cast<void*>(lhs));
  c.rhs_mem.set_data_handle(const_cast<void*>(rhs));
  c.out_mem.set_data_handle(out);
  auto& d = onednn();
  c.primitive.execute(d.stream, c.args);
  d.stream.wait();
}

}  // namespace kiln::cpu
