#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kiln/core/element.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/host_callback.h"

namespace kiln::ir {
namespace {

std::string_view to_string(Comparison c) {
  constexpr std::string_view names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  return names[static_cast<int>(c)];
}
std::string_view to_string(ReduceKind k) {
  constexpr std::string_view names[] = {"sum", "prod", "max", "min", "and", "or", "argmax", "argmin"};
  return names[static_cast<int>(k)];
}

std::string axes(const Axes& a) { return fmt::format("[{}]", fmt::join(a, ",")); }

// A string literal the parser reads back: quotes, backslashes and bytes
// outside printable ASCII escaped.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\')
      out += {'\\', c};
    else if (byte < 0x20 || byte >= 0x7f)
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", byte);
    else
      out += c;
  }
  return out + '"';
}

std::string hex(std::span<const std::byte> bytes) {
  std::string out = "0x";
  out.reserve(2 + 2 * bytes.size());
  constexpr char digits[] = "0123456789abcdef";
  for (const std::byte b : bytes) {
    out += digits[static_cast<unsigned>(b) >> 4];
    out += digits[static_cast<unsigned>(b) & 15];
  }
  return out;
}

// Attributes as "{key=value, ...}", or empty when there are none.
struct AttrPrinter {
  bool full_constants = false;

  std::string operator()(const NoAttrs&) const { return ""; }
  std::string operator()(const ParameterAttrs& a) const {
    return a.name.empty() ? "" : fmt::format("{{name={}}}", quoted(a.name));
  }
  std::string operator()(const ConstantAttrs& a) const {
    if (!full_constants) return fmt::format("{{value={}}}", summarize(a.value));
    return fmt::format("{{bytes={}}}", hex((a.value.is_contiguous() ? a.value : a.value.copy()).bytes()));
  }
  std::string operator()(const IotaAttrs& a) const { return fmt::format("{{axis={}}}", a.axis); }
  std::string operator()(const ConvertAttrs&) const { return ""; }  // the result dtype says it
  std::string operator()(const CompareAttrs& a) const {
    return fmt::format("{{direction={}{}}}", to_string(a.direction), a.total_order ? ", total_order" : "");
  }
  std::string operator()(const BroadcastAttrs& a) const { return fmt::format("{{dims={}}}", axes(a.dims)); }
  std::string operator()(const ReshapeAttrs&) const { return ""; }
  std::string operator()(const TransposeAttrs& a) const {
    return fmt::format("{{permutation={}}}", axes(a.permutation));
  }
  std::string operator()(const SliceAttrs& a) const {
    return fmt::format("{{start={}, limit={}, stride={}}}", axes(a.start), axes(a.limit), axes(a.stride));
  }
  std::string operator()(const DynamicSliceAttrs& a) const { return fmt::format("{{sizes={}}}", axes(a.sizes)); }
  std::string operator()(const ConcatenateAttrs& a) const { return fmt::format("{{axis={}}}", a.axis); }
  std::string operator()(const PadAttrs& a) const {
    return fmt::format("{{low={}, high={}, interior={}}}", axes(a.low), axes(a.high), axes(a.interior));
  }
  std::string operator()(const ReverseAttrs& a) const { return fmt::format("{{axes={}}}", axes(a.axes)); }
  std::string operator()(const GatherAttrs& a) const {
    return fmt::format(
        "{{offset_dims={}, collapsed_slice_dims={}, start_index_map={}, index_vector_dim={}, slice_sizes={}}}",
        axes(a.offset_dims), axes(a.collapsed_slice_dims), axes(a.start_index_map), a.index_vector_dim,
        axes(a.slice_sizes));
  }
  std::string operator()(const ScatterAttrs& a) const {
    return fmt::format(
        "{{mode={}, update_window_dims={}, inserted_window_dims={}, scatter_dims_to_operand_dims={}, "
        "index_vector_dim={}}}",
        a.mode == ScatterMode::add ? "add" : "replace", axes(a.update_window_dims), axes(a.inserted_window_dims),
        axes(a.scatter_dims_to_operand_dims), a.index_vector_dim);
  }
  std::string operator()(const ReduceAttrs& a) const {
    return fmt::format("{{kind={}, axes={}}}", to_string(a.kind), axes(a.axes));
  }
  std::string operator()(const ReduceWindowAttrs& a) const {
    return fmt::format(
        "{{kind={}, window={}, strides={}, padding_low={}, padding_high={}, base_dilation={}, window_dilation={}}}",
        to_string(a.kind), axes(a.window), axes(a.strides), axes(a.padding_low), axes(a.padding_high),
        axes(a.base_dilation), axes(a.window_dilation));
  }
  std::string operator()(const DotAttrs& a) const {
    return fmt::format("{{lhs_batch={}, rhs_batch={}, lhs_contracting={}, rhs_contracting={}}}", axes(a.lhs_batch),
                       axes(a.rhs_batch), axes(a.lhs_contracting), axes(a.rhs_contracting));
  }
  std::string operator()(const ConvolutionAttrs& a) const {
    return fmt::format(
        "{{strides={}, padding_low={}, padding_high={}, lhs_dilation={}, rhs_dilation={}, feature_group_count={}}}",
        axes(a.strides), axes(a.padding_low), axes(a.padding_high), axes(a.lhs_dilation), axes(a.rhs_dilation),
        a.feature_group_count);
  }
  std::string operator()(const SortAttrs& a) const {
    return fmt::format("{{axis={}, {}{}}}", a.axis, a.descending ? "descending" : "ascending",
                       a.stable ? ", stable" : "");
  }
  std::string operator()(const TopKAttrs& a) const { return fmt::format("{{k={}}}", a.k); }
  std::string operator()(const RngAttrs& a) const {
    return fmt::format("{{distribution={}}}", a.distribution == RngDistribution::uniform ? "uniform" : "normal");
  }
  std::string operator()(const CustomCallAttrs& a) const {
    std::string callback;
    if (a.target == kHostCallbackTarget && a.payload) {
      const auto& c = *static_cast<const HostCallback*>(a.payload.get());
      callback =
          fmt::format(", callback={}, type={}, aliases={}{}{}", quoted(c.name), quoted(c.type_name),
                      fmt::format("[{}]", fmt::join(c.aliases, ",")), c.copy_inputs_to_host ? "" : ", no_host_copy",
                      c.builtin.empty() ? "" : ", builtin=" + quoted(c.builtin));
    }
    return fmt::format("{{target={}{}{}}}", quoted(a.target), callback, a.has_side_effect ? ", has_side_effect" : "");
  }
};

std::string value_name(const Graph& graph, const Value& v) {
  if (graph.node(v.node).results.size() == 1) return fmt::format("%{}", v.node);
  return fmt::format("%{}#{}", v.node, v.output);
}

}  // namespace

std::string print(const Graph& graph, const PrintOptions& options) {
  std::string out;
  const auto nodes = graph.nodes();
  for (size_t id = 0; id < nodes.size(); ++id) {
    const Node& node = nodes[id];
    std::vector<std::string> operands;
    for (const Value& v : node.operands) operands.push_back(value_name(graph, v));
    std::vector<std::string> results;
    for (const Shape& s : node.results) results.push_back(s.to_string());
    std::string attrs = std::visit(AttrPrinter{options.full_constants}, node.attrs);
    fmt::format_to(std::back_inserter(out), "%{} = {}({}){}{} : {}\n", id, name(node.op), fmt::join(operands, ", "),
                   attrs.empty() ? "" : " ", attrs,
                   results.size() == 1 ? results[0] : fmt::format("({})", fmt::join(results, ", ")));
  }
  std::vector<std::string> outputs;
  for (const Value& v : graph.outputs()) outputs.push_back(value_name(graph, v));
  fmt::format_to(std::back_inserter(out), "return {}\n", fmt::join(outputs, ", "));
  return out;
}

}  // namespace kiln::ir
