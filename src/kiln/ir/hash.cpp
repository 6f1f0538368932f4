#include "kiln/ir/hash.h"

#include "kiln/ir/host_callback.h"

namespace kiln::ir {
namespace {

void add(Hasher& h, const Shape& s) {
  h.value(s.dtype());
  h.value(static_cast<uint8_t>(s.rank()));
  for (int i = 0; i < s.rank(); ++i) {
    h.value(s.dim(i));
    h.string(s.tag(i).view());
  }
}
void add(Hasher& h, const Axes& axes) {
  h.value(static_cast<uint64_t>(axes.size()));
  for (int64_t a : axes) h.value(a);
}

// One overload per attribute struct; a new struct without one fails to compile.
void add(Hasher&, const NoAttrs&) {}
void add(Hasher& h, const ParameterAttrs& a) {
  add(h, a.shape);
  h.string(a.name);
}
void add(Hasher& h, const ConstantAttrs& a) {
  add(h, a.value.shape());
  const HostBuffer flat = a.value.is_contiguous() ? a.value : a.value.copy();
  h.bytes(flat.bytes());
}
void add(Hasher& h, const IotaAttrs& a) {
  add(h, a.shape);
  h.value(a.axis);
}
void add(Hasher& h, const ConvertAttrs& a) { h.value(a.dtype); }
void add(Hasher& h, const CompareAttrs& a) {
  h.value(a.direction);
  h.value(a.total_order);
}
void add(Hasher& h, const BroadcastAttrs& a) {
  add(h, a.shape);
  add(h, a.dims);
}
void add(Hasher& h, const ReshapeAttrs& a) { add(h, a.shape); }
void add(Hasher& h, const TransposeAttrs& a) { add(h, a.permutation); }
void add(Hasher& h, const SliceAttrs& a) {
  add(h, a.start);
  add(h, a.limit);
  add(h, a.stride);
}
void add(Hasher& h, const DynamicSliceAttrs& a) { add(h, a.sizes); }
void add(Hasher& h, const ConcatenateAttrs& a) { h.value(a.axis); }
void add(Hasher& h, const PadAttrs& a) {
  add(h, a.low);
  add(h, a.high);
  add(h, a.interior);
}
void add(Hasher& h, const ReverseAttrs& a) { add(h, a.axes); }
void add(Hasher& h, const GatherAttrs& a) {
  add(h, a.offset_dims);
  add(h, a.collapsed_slice_dims);
  add(h, a.start_index_map);
  h.value(a.index_vector_dim);
  add(h, a.slice_sizes);
}
void add(Hasher& h, const ScatterAttrs& a) {
  add(h, a.update_window_dims);
  add(h, a.inserted_window_dims);
  add(h, a.scatter_dims_to_operand_dims);
  h.value(a.index_vector_dim);
  h.value(a.mode);
}
void add(Hasher& h, const ReduceAttrs& a) {
  h.value(a.kind);
  add(h, a.axes);
  h.value(a.index_dtype);
}
void add(Hasher& h, const ReduceWindowAttrs& a) {
  h.value(a.kind);
  for (const Axes* axes :
       {&a.window, &a.strides, &a.padding_low, &a.padding_high, &a.base_dilation, &a.window_dilation})
    add(h, *axes);
}
void add(Hasher& h, const DotAttrs& a) {
  add(h, a.lhs_batch);
  add(h, a.rhs_batch);
  add(h, a.lhs_contracting);
  add(h, a.rhs_contracting);
  h.value(a.result);
}
void add(Hasher& h, const ConvolutionAttrs& a) {
  for (const Axes* axes : {&a.strides, &a.padding_low, &a.padding_high, &a.lhs_dilation, &a.rhs_dilation})
    add(h, *axes);
  h.value(a.feature_group_count);
}
void add(Hasher& h, const SortAttrs& a) {
  h.value(a.axis);
  h.value(a.descending);
  h.value(a.stable);
}
void add(Hasher& h, const TopKAttrs& a) { h.value(a.k); }
void add(Hasher& h, const RngAttrs& a) {
  h.value(a.distribution);
  add(h, a.shape);
}
void add(Hasher& h, const CustomCallAttrs& a) {
  h.string(a.target);
  h.value(static_cast<uint64_t>(a.results.size()));
  for (const Shape& s : a.results) add(h, s);
  h.value(a.has_side_effect);
  if (a.target == kHostCallbackTarget && a.payload) {
    const auto& callback = *static_cast<const HostCallback*>(a.payload.get());
    h.string(callback.name);
    h.string(callback.type_name);
    h.value(callback.copy_inputs_to_host);
    for (int alias : callback.aliases) h.value(alias);
  }
}

}  // namespace

void hash_attributes(Hasher& h, const Attributes& attrs) {
  h.value(static_cast<uint64_t>(attrs.index()));
  std::visit([&](const auto& a) { add(h, a); }, attrs);
}

Hash128 hash(const Graph& graph) {
  Hasher h;
  h.string("kiln.graph.v1");
  h.value(static_cast<uint64_t>(graph.nodes().size()));
  for (const Node& node : graph.nodes()) {
    h.string(name(node.op));  // by name, so reordering the op table keeps hashes
    h.value(static_cast<uint64_t>(node.operands.size()));
    for (const Value& v : node.operands) {
      h.value(v.node);
      h.value(v.output);
    }
    h.value(static_cast<uint64_t>(node.results.size()));
    for (const Shape& s : node.results) add(h, s);
    hash_attributes(h, node.attrs);
  }
  h.value(static_cast<uint64_t>(graph.outputs().size()));
  for (const Value& v : graph.outputs()) {
    h.value(v.node);
    h.value(v.output);
  }
  return h.finish();
}

}  // namespace kiln::ir
