#include "kiln/backend/cpu/render.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "kiln/core/element.h"
#include "kiln/core/error.h"
#include "kiln/core/hash.h"

namespace kiln::cpu {
namespace {

using ir::Op;

// Work below this many elements runs on one thread: starting a parallel
// region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;
constexpr int kLanes = 16;                  // accumulators per reduction, so the reduction loop vectorizes
constexpr int64_t kScratchElements = 4096;  // rows up to this size keep their reduced values for the store
// Float sums accumulate in f64, except sums of at most this many terms that
// cannot be negative (exp, squares, abs: softmax's denominator): those
// accumulate in f32, 16 lanes of at most 16 terms and a 4-level tree, so the
// relative error stays under 20 ulp without any cancellation to amplify it.
constexpr int64_t kShortSum = 256;

// An index or value expression and the loop depth of the innermost loop
// variable it uses (0: none, loop-invariant).
struct Expr {
  std::string text;
  int depth = 0;
};
using Index = std::vector<Expr>;

Expr constant_index(int64_t v) { return {std::to_string(v), 0}; }
int depth_of(const Index& index) {
  int d = 0;
  for (const Expr& e : index) d = std::max(d, e.depth);
  return d;
}

// The unsigned and signed C types of an integer dtype's width.
std::string_view unsigned_of(DType d) {
  switch (size_of(d)) {
    case 1:
      return "u8";
    case 2:
      return "u16";
    case 4:
      return "u32";
    default:
      return "u64";
  }
}
std::string_view signed_of(DType d) {
  switch (size_of(d)) {
    case 1:
      return "i8";
    case 2:
      return "i16";
    case 4:
      return "i32";
    default:
      return "i64";
  }
}

// A literal of the compute type holding exactly `bytes` of dtype `d`.
std::string literal(DType d, const std::byte* bytes) {
  switch (d) {
    case DType::bool_:
      return std::to_integer<uint8_t>(bytes[0]) != 0 ? "true" : "false";
    case DType::f32:
    case DType::bf16:
    case DType::f16: {
      const float f = static_cast<float>(load_double(d, bytes));
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      return fmt::format("__builtin_bit_cast(f32, 0x{:08x}u)", bits);
    }
    case DType::f64: {
      uint64_t bits;
      std::memcpy(&bits, bytes, 8);
      return fmt::format("__builtin_bit_cast(f64, 0x{:016x}ull)", bits);
    }
    default: {
      const int64_t v = load_int(d, bytes);
      return fmt::format("(({})0x{:x}ull)", compute_type(d), static_cast<uint64_t>(v));
    }
  }
}

std::string float_fn(std::string_view name, DType d) {
  return fmt::format("__builtin_{}{}", name, d == DType::f64 ? "" : "f");
}

class Renderer {
 public:
  Renderer(const ir::Graph& graph, const Fusion& fusion, int32_t group)
      : graph_(graph), fusion_(fusion), group_(group), g_(fusion.groups[static_cast<size_t>(group)]) {}

  KernelSource render();

 private:
  struct Scope {
    std::string code;
    std::map<std::string, Expr> memo;
  };

  const ir::Node& node(int32_t id) const { return graph_.node(id); }
  const Shape& shape(ir::Value v) const { return graph_.shape(v); }

  // --- emission -------------------------------------------------------------
  void open_scope() { scopes_.emplace_back(); }
  std::string close_scope() {
    std::string code = std::move(scopes_.back().code);
    scopes_.pop_back();
    return code;
  }
  int depth() const { return static_cast<int>(scopes_.size()) - 1; }
  void line(int at, const std::string& text) {
    auto& code = scopes_[static_cast<size_t>(at)].code;
    code.append(static_cast<size_t>(2 * (at + 1)), ' ');
    code += text;
    code += '\n';
  }
  // Binds `text` to a fresh variable in the scope of `at`.
  Expr bind(DType dtype, const std::string& text, int at) {
    const std::string var = fmt::format("v{}", next_var_++);
    line(at, fmt::format("const {} {} = {};", compute_type(dtype), var, text));
    return {var, at};
  }

  // Emits `header { ... }` into the current scope, the body made by `body()`
  // in a new scope. Statements the body hoists into outer scopes land before
  // the header, so they are computed once and stay visible after the loop.
  template <typename F>
  void loop(const std::string& header, F&& body) {
    open_scope();
    body();
    const std::string code = close_scope();
    line(depth(), header + " {");
    scopes_.back().code += code;
    line(depth(), "}");
  }

  // --- values ---------------------------------------------------------------
  // A value computed in this group that is >= 0 or NaN by its op alone.
  bool is_nonnegative(ir::Value v) const {
    if (!computed_here(v.node)) return false;
    const ir::Node& n = node(v.node);
    return n.op == Op::exp || n.op == Op::abs || (n.op == Op::mul && n.operands[0] == n.operands[1]);
  }
  bool computed_here(int32_t id) const {
    const int32_t g = fusion_.group_of[static_cast<size_t>(id)];
    return g == group_ || g == kInlineAnywhere;
  }

  std::string offset(const Shape& s, const Index& index) const {
    if (s.rank() == 0) return "0";
    const auto strides = s.strides();
    std::string text;
    for (int i = 0; i < s.rank(); ++i) {
      if (s.dim(i) == 1) continue;
      if (!text.empty()) text += " + ";
      text += strides[static_cast<size_t>(i)] == 1
                  ? index[static_cast<size_t>(i)].text
                  : fmt::format("{} * {}", index[static_cast<size_t>(i)].text, strides[static_cast<size_t>(i)]);
    }
    return text.empty() ? "0" : text;
  }

  int input_slot(ir::Value v) {
    for (size_t i = 0; i < inputs_.size(); ++i)
      if (inputs_[i] == v) return static_cast<int>(i);
    inputs_.push_back(v);
    return static_cast<int>(inputs_.size() - 1);
  }

  std::string load_text(DType d, const std::string& element) const {
    switch (d) {
      case DType::bool_:
        return fmt::format("({} != 0)", element);
      case DType::bf16:
        return fmt::format("bf16_load({})", element);
      case DType::f16:
        return fmt::format("(f32)({})", element);
      default:
        return element;
    }
  }

  Expr value(ir::Value v, const Index& index) {
    std::string key = fmt::format("{}.{}", v.node, v.output);
    for (const Expr& e : index) key += "," + e.text;
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (auto found = it->memo.find(key); found != it->memo.end()) return found->second;
    Expr result = compute(v, index);
    scopes_[static_cast<size_t>(result.depth)].memo[key] = result;
    return result;
  }

  Expr compute(ir::Value v, const Index& index) {
    const ir::Node& n = node(v.node);
    const Shape& s = shape(v);
    if (auto phase = phase_values_.find(v.node); phase != phase_values_.end()) return phase->second;
    if (!computed_here(v.node)) {
      const int slot = input_slot(v);
      const std::string element = fmt::format("in{}[{}]", slot, offset(s, index));
      return bind(s.dtype(), load_text(s.dtype(), element), depth_of(index));
    }
    if (n.op == Op::constant) return {literal(s.dtype(), n.attrs_as<ir::ConstantAttrs>().value.data()), 0};
    if (ir::family(n.op) == ir::Family::movement) return movement(n, index);
    if (n.op == Op::iota) {
      const auto axis = static_cast<size_t>(n.attrs_as<ir::IotaAttrs>().axis);
      return bind(s.dtype(), round(s.dtype(), fmt::format("({}){}", compute_type(s.dtype()), index[axis].text)),
                  index[axis].depth);
    }
    // Elementwise: operands at the same index (rank-0 operands of select/clamp at []).
    std::vector<Expr> args;
    int at = depth_of(index);
    for (const ir::Value& operand : n.operands) {
      const Index operand_index = shape(operand).rank() == 0 ? Index{} : index;
      args.push_back(value(operand, operand_index));
      at = std::max(at, args.back().depth);
    }
    const DType in = n.operands.empty() ? s.dtype() : shape(n.operands[0]).dtype();
    if (n.op == Op::div && is_float(in) && args[1].depth < at) {
      // A divisor hoisted out of the inner loop (softmax's sum): its
      // reciprocal once, a multiply and a correction per element.
      const std::string t(compute_type(in));
      const Expr y = bind(in, fmt::format("({})1 / {}", t, args[1].text), args[1].depth);
      const std::string ok = fmt::format("ok{}", next_var_++);
      line(args[1].depth, fmt::format("const bool {} = k_recip_ok({});", ok, args[1].text));
      return bind(s.dtype(),
                  round(s.dtype(), fmt::format("k_div_by({}, {}, {}, {})", args[0].text, args[1].text, y.text, ok)),
                  at);
    }
    return bind(s.dtype(), round(s.dtype(), elementwise(n, in, s.dtype(), args)), at);
  }

  // A value computed in f32 for a bf16/f16 node is rounded to the node's
  // dtype, so fused chains keep the IR's per-op semantics.
  static std::string round(DType d, std::string text) {
    if (d == DType::bf16) return fmt::format("bf16_round({})", text);
    if (d == DType::f16) return fmt::format("f16_round({})", text);
    return text;
  }

  std::string elementwise(const ir::Node& n, DType in, DType out, const std::vector<Expr>& a) {
    const std::string_view t = compute_type(in);
    const bool fl = is_float(in);
    auto x = [&](size_t i) { return a[i].text; };
    auto wrap = [&](const std::string& e) { return fl ? e : fmt::format("({})({})", t, e); };
    switch (n.op) {
      case Op::convert:
        return convert(in, out, x(0));
      case Op::bitcast_convert:
        return bitcast(in, out, x(0));
      case Op::neg:
        return wrap(fmt::format("-{}", x(0)));
      case Op::abs:
        return fmt::format("k_abs({})", x(0));
      case Op::sign:
        return fmt::format("k_sign({})", x(0));
      case Op::exp:
        return fmt::format("k_exp({})", x(0));
      case Op::logistic:
        return fmt::format("k_logistic({})", x(0));
      case Op::expm1:
      case Op::log:
      case Op::log1p:
      case Op::sqrt:
      case Op::cbrt:
      case Op::tanh:
      case Op::sin:
      case Op::cos:
      case Op::tan:
      case Op::erf:
      case Op::floor:
      case Op::ceil:
        return fmt::format("{}({})", float_fn(ir::name(n.op), in), x(0));
      case Op::rsqrt:
        return fmt::format("(({})1 / {}({}))", t, float_fn("sqrt", in), x(0));
      case Op::round_nearest_even:
        return fmt::format("{}({})", float_fn("rint", in), x(0));
      case Op::is_finite:
        return fmt::format("(bool)__builtin_isfinite({})", x(0));
      case Op::not_:
        return in == DType::bool_ ? fmt::format("!{}", x(0)) : wrap(fmt::format("~{}", x(0)));
      case Op::popcnt:
        return fmt::format("({})__builtin_popcountll((u64)({}){})", t, unsigned_of(in), x(0));
      case Op::add:
        return wrap(fmt::format("{} + {}", x(0), x(1)));
      case Op::sub:
        return wrap(fmt::format("{} - {}", x(0), x(1)));
      case Op::mul:
        return wrap(fmt::format("{} * {}", x(0), x(1)));
      case Op::div:
        return fmt::format("k_div({}, {})", x(0), x(1));
      case Op::rem:
        return fmt::format("k_rem({}, {})", x(0), x(1));
      case Op::pow:
        return fmt::format("k_pow({}, {})", x(0), x(1));
      case Op::max:
        return fmt::format("k_max({}, {})", x(0), x(1));
      case Op::min:
        return fmt::format("k_min({}, {})", x(0), x(1));
      case Op::atan2:
        return fmt::format("{}({}, {})", float_fn("atan2", in), x(0), x(1));
      case Op::and_:
        return in == DType::bool_ ? fmt::format("({} && {})", x(0), x(1)) : wrap(fmt::format("{} & {}", x(0), x(1)));
      case Op::or_:
        return in == DType::bool_ ? fmt::format("({} || {})", x(0), x(1)) : wrap(fmt::format("{} | {}", x(0), x(1)));
      case Op::xor_:
        return in == DType::bool_ ? fmt::format("({} != {})", x(0), x(1)) : wrap(fmt::format("{} ^ {}", x(0), x(1)));
      case Op::shift_left:
        return fmt::format("k_shl<{}, {}>({}, {})", t, unsigned_of(in), x(0), x(1));
      case Op::shift_right_logical:
        return fmt::format("k_shr_logical<{}, {}>({}, {})", t, unsigned_of(in), x(0), x(1));
      case Op::shift_right_arithmetic:
        return fmt::format("k_shr_arithmetic<{}, {}, {}>({}, {})", t, signed_of(in), unsigned_of(in), x(0), x(1));
      case Op::compare: {
        const auto& c = n.attrs_as<ir::CompareAttrs>();
        std::string l = x(0), r = x(1);
        if (fl && c.total_order) l = fmt::format("k_total_key({})", l), r = fmt::format("k_total_key({})", r);
        switch (c.direction) {
          case ir::Comparison::eq:
            return fmt::format("({} == {})", l, r);
          case ir::Comparison::ne:
            return fmt::format("!({} == {})", l, r);
          case ir::Comparison::lt:
            return fmt::format("({} < {})", l, r);
          case ir::Comparison::le:
            return fmt::format("({0} < {1} || {0} == {1})", l, r);
          case ir::Comparison::gt:
            return fmt::format("({1} < {0})", l, r);
          case ir::Comparison::ge:
            return fmt::format("({1} < {0} || {0} == {1})", l, r);
        }
        break;
      }
      case Op::select:
        return fmt::format("({} ? {} : {})", x(0), x(1), x(2));
      case Op::clamp:
        return fmt::format("k_min(k_max({}, {}), {})", x(1), x(0), x(2));
      default:
        break;
    }
    fail("[{}] cpu: no loop-nest rule", ir::name(n.op));
  }

  static std::string convert(DType from, DType to, const std::string& x) {
    if (to == DType::bool_) return fmt::format("({} != 0)", x);
    if (to == DType::bf16 || to == DType::f16) {
      // Sources wider than f32's 24 bits are rounded to odd first, so the
      // rounding to the small format happens once.
      if (from == DType::f64) return fmt::format("k_f64_to_f32_odd({})", x);
      if (is_integer(from) && size_of(from) >= 4)
        return is_unsigned(from) ? fmt::format("k_u64_to_f32_odd((u64){})", x)
                                 : fmt::format("k_i64_to_f32_odd((i64){})", x);
    }
    if (is_float(to)) return fmt::format("({}){}", compute_type(to), x);
    if (is_float(from)) {
      const int bits = static_cast<int>(size_of(to) * 8);
      const bool is_signed = !is_unsigned(to);
      const double upper = std::ldexp(1.0, is_signed ? bits - 1 : bits);
      const std::string_view t = compute_type(to);
      const std::string max = is_signed ? fmt::format("(({})0x{:x}ull)", t, (~uint64_t{0}) >> (65 - bits))
                                        : fmt::format("(({})~({})0)", t, t);
      const std::string min = is_signed ? fmt::format("(({})(0x1ull << {}))", t, bits - 1) : fmt::format("(({})0)", t);
      return fmt::format("k_f2i<{}>((f64){}, {}, {}, {})", t, x, literal(DType::f64, as_bytes(upper).data()), max, min);
    }
    return fmt::format("({}){}", compute_type(to), x);
  }

  static std::array<std::byte, 8> as_bytes(double v) {
    std::array<std::byte, 8> b;
    std::memcpy(b.data(), &v, 8);
    return b;
  }

  // Same bits, other type: to the storage bits of `from`, then read as `to`.
  static std::string bitcast(DType from, DType to, const std::string& x) {
    const std::string_view u = unsigned_of(from);
    std::string bits;
    switch (from) {
      case DType::f32:
      case DType::f64:
        bits = fmt::format("__builtin_bit_cast({}, {})", u, x);
        break;
      case DType::bf16:
        bits = fmt::format("(u16)bf16_store({})", x);
        break;
      case DType::f16:
        bits = fmt::format("__builtin_bit_cast(u16, (f16s){})", x);
        break;
      default:
        bits = fmt::format("(({}){})", u, x);
    }
    switch (to) {
      case DType::f32:
      case DType::f64:
        return fmt::format("__builtin_bit_cast({}, {})", compute_type(to), bits);
      case DType::bf16:
        return fmt::format("bf16_load({})", bits);
      case DType::f16:
        return fmt::format("(f32)__builtin_bit_cast(f16s, (u16){})", bits);
      case DType::bool_:
        return fmt::format("({} != 0)", bits);
      default:
        return fmt::format("({}){}", compute_type(to), bits);
    }
  }

  // --- movement: rewrite the index ------------------------------------------
  Expr movement(const ir::Node& n, const Index& index) {
    const ir::Value x = n.operands.empty() ? ir::Value{} : n.operands[0];
    const Shape& in = shape(x);
    const Shape& out = n.results[0];
    switch (n.op) {
      case Op::broadcast_in_dim: {
        const auto& a = n.attrs_as<ir::BroadcastAttrs>();
        Index o;
        for (int j = 0; j < in.rank(); ++j)
          o.push_back(in.dim(j) == 1 ? constant_index(0) : index[static_cast<size_t>(a.dims[static_cast<size_t>(j)])]);
        return value(x, o);
      }
      case Op::reshape:
        return value(x, reshape_index(in, out, index));
      case Op::transpose: {
        const auto& perm = n.attrs_as<ir::TransposeAttrs>().permutation;
        Index o(static_cast<size_t>(in.rank()));
        for (size_t i = 0; i < perm.size(); ++i) o[static_cast<size_t>(perm[i])] = index[i];
        return value(x, o);
      }
      case Op::slice: {
        const auto& a = n.attrs_as<ir::SliceAttrs>();
        Index o;
        for (size_t i = 0; i < index.size(); ++i) o.push_back(affine(index[i], a.stride[i], a.start[i]));
        return value(x, o);
      }
      case Op::reverse: {
        Index o = index;
        for (int64_t axis : n.attrs_as<ir::ReverseAttrs>().axes) {
          const auto i = static_cast<size_t>(axis);
          o[i] = {fmt::format("({} - {})", in.dim(static_cast<int>(axis)) - 1, index[i].text), index[i].depth};
        }
        return value(x, o);
      }
      case Op::dynamic_slice: {
        const auto& sizes = n.attrs_as<ir::DynamicSliceAttrs>().sizes;
        Index o;
        for (size_t i = 0; i < index.size(); ++i) {
          const Expr start = value(n.operands[i + 1], {});
          const int64_t hi = in.dim(static_cast<int>(i)) - sizes[i];
          const Expr clamped =
              bind(DType::i64, fmt::format("k_clamp_index(k_index({}), {})", start.text, hi), start.depth);
          o.push_back({fmt::format("({} + {})", index[i].text, clamped.text), std::max(index[i].depth, clamped.depth)});
        }
        return value(x, o);
      }
      case Op::pad:
        return pad(n, index);
      case Op::concatenate:
        return concatenate(n, index);
      default:
        break;
    }
    fail("[{}] cpu: no loop-nest rule", ir::name(n.op));
  }

  static Expr affine(const Expr& i, int64_t scale, int64_t offset) {
    std::string text = scale == 1 ? i.text : fmt::format("{} * {}", i.text, scale);
    if (offset != 0) text = fmt::format("({} + {})", text, offset);
    return {text, i.depth};
  }

  // Reshape maps index groups whose sizes multiply to the same number: the
  // result indices of a group are linearized, then split over the operand's
  // axes of that group (no division when the operand has one axis there).
  static Index reshape_index(const Shape& in, const Shape& out, const Index& index) {
    Index o(static_cast<size_t>(in.rank()), constant_index(0));
    if (in.count() == 0) return o;
    int i = 0, j = 0;
    while (i < in.rank() || j < out.rank()) {
      // Skip size-1 axes on either side: they contribute index 0.
      if (i < in.rank() && in.dim(i) == 1) {
        ++i;
        continue;
      }
      if (j < out.rank() && out.dim(j) == 1) {
        ++j;
        continue;
      }
      const int i0 = i, j0 = j;
      int64_t pi = in.dim(i++), pj = out.dim(j++);
      while (pi != pj) {
        if (pi < pj)
          pi *= in.dim(i++);
        else
          pj *= out.dim(j++);
      }
      // Linearize the result's group.
      std::string linear;
      int depth = 0;
      int64_t stride = 1;
      for (int k = j - 1; k >= j0; --k) {
        const Expr& e = index[static_cast<size_t>(k)];
        if (out.dim(k) != 1) {
          const std::string term = stride == 1 ? e.text : fmt::format("{} * {}", e.text, stride);
          linear = linear.empty() ? term : fmt::format("{} + {}", term, linear);
          depth = std::max(depth, e.depth);
        }
        stride *= out.dim(k);
      }
      if (linear.empty()) linear = "0";
      linear = fmt::format("({})", linear);
      // Split it over the operand's group.
      int64_t inner = 1;
      for (int k = i - 1; k >= i0; --k) {
        const int64_t d = in.dim(k);
        std::string text = linear;
        if (inner != 1) text = fmt::format("({} / {})", text, inner);
        if (k != i0) text = fmt::format("({} % {})", text, d);
        o[static_cast<size_t>(k)] = {d == 1 ? "0" : text, d == 1 ? 0 : depth};
        inner *= d;
      }
    }
    return o;
  }

  Expr pad(const ir::Node& n, const Index& index) {
    const auto& a = n.attrs_as<ir::PadAttrs>();
    const Shape& in = shape(n.operands[0]);
    const Expr fill = value(n.operands[1], {});
    if (in.count() == 0) return fill;
    Index o;
    std::string inside = "true";
    int depth = fill.depth;
    for (size_t i = 0; i < index.size(); ++i) {
      const int64_t d = in.dim(static_cast<int>(i)), step = a.interior[i] + 1;
      const std::string t = fmt::format("({} - {})", index[i].text, a.low[i]);
      std::string cond = fmt::format("{0} >= 0 && {0} < {1}", t, (d - 1) * step + 1);
      if (step != 1) cond += fmt::format(" && {} % {} == 0", t, step);
      inside += " && " + cond;
      const std::string position = step == 1 ? t : fmt::format("({} / {})", t, step);
      o.push_back({fmt::format("k_clamp_index({}, {})", position, d - 1), index[i].depth});
      depth = std::max(depth, index[i].depth);
    }
    const Expr v = value(n.operands[0], o);
    depth = std::max(depth, v.depth);
    return bind(n.results[0].dtype(), fmt::format("(({}) ? {} : {})", inside, v.text, fill.text), depth);
  }

  Expr concatenate(const ir::Node& n, const Index& index) {
    const auto axis = static_cast<size_t>(n.attrs_as<ir::ConcatenateAttrs>().axis);
    std::string text;
    int depth = index[axis].depth;
    int64_t start = 0;
    std::vector<std::pair<int64_t, Expr>> parts;  // (end, value)
    for (const ir::Value& operand : n.operands) {
      const int64_t size = shape(operand).dim(static_cast<int>(axis));
      if (size > 0) {
        Index o = index;
        o[axis] = {fmt::format("k_clamp_index({} - {}, {})", index[axis].text, start, size - 1), index[axis].depth};
        const Expr v = value(operand, o);
        depth = std::max(depth, v.depth);
        parts.emplace_back(start + size, v);
      }
      start += size;
    }
    text = parts.back().second.text;
    for (size_t k = parts.size() - 1; k-- > 0;)
      text = fmt::format("({} < {} ? {} : {})", index[axis].text, parts[k].first, parts[k].second.text, text);
    return bind(n.results[0].dtype(), text, depth);
  }

  // --- loops ----------------------------------------------------------------
  // Declares index variables for `dims` decomposed from the linear `linear`
  // at depth `at`; returns them.
  Index decompose(const std::string& linear, std::span<const int64_t> dims, int at, const std::string& prefix) {
    Index index(dims.size());
    int64_t inner = 1;
    for (size_t k = dims.size(); k-- > 0;) {
      if (dims[k] == 1) {
        index[k] = constant_index(0);
        continue;
      }
      const std::string var = fmt::format("{}{}", prefix, k);
      std::string text = linear;
      if (inner != 1) text = fmt::format("({} / {})", text, inner);
      if (k != 0) text = fmt::format("({} % {})", text, dims[k]);
      line(at, fmt::format("const i64 {} = {};", var, text));
      index[k] = {var, at};
      inner *= dims[k];
    }
    return index;
  }

  void store(const Expr& v, const std::string& element, int at) {
    const DType d = out_dtype_;
    std::string text = v.text;
    if (d == DType::bool_)
      text = fmt::format("(u8){}", text);
    else if (d == DType::bf16)
      text = fmt::format("bf16_store({})", text);
    else if (d == DType::f16)
      text = fmt::format("(f16s){}", text);
    line(at, fmt::format("out[{}] = {};", element, text));
  }

  std::string render_pointwise();
  std::string render_rows();
  void render_phase(int32_t reduce, const Index& kept, const ir::Axes& kept_axes, std::span<const int64_t> domain,
                    const ir::Axes& axes);

  const ir::Graph& graph_;
  const Fusion& fusion_;
  const int32_t group_;
  const Group& g_;
  std::vector<Scope> scopes_;
  std::vector<ir::Value> inputs_;
  std::map<int32_t, Expr> phase_values_;
  std::map<int32_t, std::string> scratch_;  // node -> the per-row array its phase kept it in
  DType out_dtype_ = DType::f32;
  int next_var_ = 0;
};

std::string Renderer::render_pointwise() {
  const Shape& s = node(g_.root).results[0];
  const ir::Value root{g_.root, 0};
  const int64_t count = s.count();
  if (count == 0) return "";
  if (s.rank() == 0) {
    store(value(root, {}), "0", 0);
    return close_scope();
  }
  const int64_t inner = s.dim(-1);
  const int64_t outer = count / inner;
  const bool parallel = count >= kParallelThreshold;
  const std::span<const int64_t> dims = s.dims();
  auto inner_loop = [&](Index index) {
    const char* pragma = outer > 1 || !parallel ? "_Pragma(\"omp simd\") " : "_Pragma(\"omp parallel for simd\") ";
    loop(fmt::format("{}for (i64 j = 0; j < {}; ++j)", pragma, inner), [&] {
      index.push_back({"j", depth()});
      store(value(root, index), offset(s, index), depth());
    });
  };
  if (outer > 1) {
    // The outer loop runs over all axes but the last, flattened.
    loop(fmt::format("{}for (i64 o = 0; o < {}; ++o)", parallel ? "_Pragma(\"omp parallel for\") " : "", outer),
         [&] { inner_loop(decompose("o", dims.first(dims.size() - 1), depth(), "i")); });
  } else {
    inner_loop(Index(dims.size() - 1, constant_index(0)));
  }
  return close_scope();
}

// Accumulator type, identity and combination of a reduction kind.
struct Combiner {
  std::string type, identity;
  std::string (*combine)(const std::string&, const std::string&, DType);
};

Combiner combiner(ir::ReduceKind kind, DType d) {
  const std::string t(compute_type(d));
  const bool fl = is_float(d);
  auto sum = [](const std::string& a, const std::string& b, DType dt) {
    return is_float(dt) ? fmt::format("{} + {}", a, b) : fmt::format("({})({} + {})", compute_type(dt), a, b);
  };
  auto prod = [](const std::string& a, const std::string& b, DType dt) {
    return is_float(dt) ? fmt::format("{} * {}", a, b) : fmt::format("({})({} * {})", compute_type(dt), a, b);
  };
  auto max = [](const std::string& a, const std::string& b, DType) { return fmt::format("k_max({}, {})", a, b); };
  auto min = [](const std::string& a, const std::string& b, DType) { return fmt::format("k_min({}, {})", a, b); };
  auto band = [](const std::string& a, const std::string& b, DType dt) {
    return dt == DType::bool_ ? fmt::format("({} && {})", a, b) : fmt::format("({})({} & {})", compute_type(dt), a, b);
  };
  auto bor = [](const std::string& a, const std::string& b, DType dt) {
    return dt == DType::bool_ ? fmt::format("({} || {})", a, b) : fmt::format("({})({} | {})", compute_type(dt), a, b);
  };
  const std::string inf = fl ? fmt::format("(({})__builtin_inf())", t) : "";
  switch (kind) {
    // Float sums and products accumulate in f64, as the reference does: at
    // memory speed the wider adds cost nothing, and long sums keep their
    // small terms.
    case ir::ReduceKind::sum:
      return {fl ? "f64" : t, fl ? "0.0" : fmt::format("({})0", t), sum};
    case ir::ReduceKind::prod:
      return {fl ? "f64" : t, fl ? "1.0" : fmt::format("({})1", t), prod};
    case ir::ReduceKind::max:
      if (d == DType::bool_) return {t, "false", max};
      return {
          t,
          fl ? "-" + inf
             : (is_unsigned(d) ? fmt::format("({})0", t) : fmt::format("(({})(0x1ull << {}))", t, 8 * size_of(d) - 1)),
          max};
    case ir::ReduceKind::min:
      if (d == DType::bool_) return {t, "true", min};
      return {t,
              fl ? inf
                 : (is_unsigned(d) ? fmt::format("(({})~({})0)", t, t)
                                   : fmt::format("(({})0x{:x}ull)", t, (~uint64_t{0}) >> (65 - 8 * size_of(d)))),
              min};
    case ir::ReduceKind::and_:
      return {t, d == DType::bool_ ? "true" : fmt::format("(({})~({})0)", t, t), band};
    case ir::ReduceKind::or_:
      return {t, d == DType::bool_ ? "false" : fmt::format("({})0", t), bor};
    default:
      break;
  }
  fail("[reduce] cpu: argmax/argmin are not loop-nest reductions");
}

void Renderer::render_phase(int32_t reduce, const Index& kept, const ir::Axes& kept_axes,
                            std::span<const int64_t> domain, const ir::Axes& axes) {
  const ir::Node& r = node(reduce);
  const DType d = r.results[0].dtype();
  Combiner c = combiner(r.attrs_as<ir::ReduceAttrs>().kind, d);
  int64_t row_size = 1;
  std::vector<int64_t> strides(axes.size(), 1);
  for (size_t k = axes.size(); k-- > 0;) {
    strides[k] = row_size;
    row_size *= domain[static_cast<size_t>(axes[k])];
  }
  const ir::Value operand = r.operands[0];
  if (c.type == "f64" && d != DType::f64 && r.attrs_as<ir::ReduceAttrs>().kind == ir::ReduceKind::sum &&
      row_size <= kShortSum && is_nonnegative(operand))
    c.type = "f32";
  const std::string acc = fmt::format("acc{}", reduce);
  const int row_depth = depth();
  line(row_depth, fmt::format("{} {}[{}];", c.type, acc, kLanes));
  line(row_depth, fmt::format("for (int l = 0; l < {}; ++l) {}[l] = {};", kLanes, acc, c.identity));
  // Full index: kept axes from the row, reduced axes from the loops.
  Index full(domain.size());
  for (size_t k = 0; k < kept_axes.size(); ++k) full[static_cast<size_t>(kept_axes[k])] = kept[k];
  bool empty = false;
  for (int64_t a : axes) empty |= domain[static_cast<size_t>(a)] == 0;
  // The reduced value of each element is kept in a per-row scratch array
  // when the row is small: the store loop reads it back instead of
  // computing it again (softmax's exp is computed once per element).
  const bool keep =
      !axes.empty() && row_size <= kScratchElements && computed_here(operand.node) && !scratch_.contains(operand.node);
  const std::string scratch = fmt::format("s{}", reduce);
  if (keep) {
    line(row_depth, fmt::format("{} {}[{}];", compute_type(shape(operand).dtype()), scratch, row_size));
    scratch_[operand.node] = scratch;
  }
  auto accumulate = [&](const std::string& lane) {
    const Expr v = value(operand, full);
    const std::string slot = fmt::format("{}[{}]", acc, lane);
    line(depth(), fmt::format("{} = {};", slot, c.combine(slot, v.text, d)));
    if (keep) {
      std::string linear;
      for (size_t k = 0; k < axes.size(); ++k) {
        const std::string& at = full[static_cast<size_t>(axes[k])].text;
        linear += (linear.empty() ? "" : " + ") + (strides[k] == 1 ? at : fmt::format("{} * {}", at, strides[k]));
      }
      line(depth(), fmt::format("{}[{}] = {};", scratch, linear, v.text));
    }
  };
  // Loops over the reduced axes; the last one in blocks of kLanes
  // independent accumulators (so it vectorizes), then the remainder.
  auto loops = [&](size_t k, auto&& self) -> void {
    const auto axis = static_cast<size_t>(axes[k]);
    if (k + 1 < axes.size()) {
      const std::string var = fmt::format("r{}_{}", reduce, k);
      loop(fmt::format("for (i64 {0} = 0; {0} < {1}; ++{0})", var, domain[axis]), [&] {
        full[axis] = {var, depth()};
        self(k + 1, self);
      });
      return;
    }
    const std::string j = fmt::format("j{}", reduce);
    const int64_t n = domain[axis];
    line(depth(), fmt::format("i64 {} = 0;", j));
    loop(fmt::format("for (; {0} + {1} <= {2}; {0} += {1})", j, kLanes, n), [&] {
      loop(fmt::format("_Pragma(\"omp simd\") for (int l = 0; l < {}; ++l)", kLanes), [&] {
        full[axis] = {fmt::format("({} + l)", j), depth()};
        accumulate("l");
      });
    });
    loop(fmt::format("for (; {0} < {1}; ++{0})", j, n), [&] {
      full[axis] = {j, depth()};
      accumulate("0");
    });
  };
  if (axes.empty())
    accumulate("0");  // a reduction over no axes combines one element with the identity
  else if (!empty)
    loops(0, loops);
  // The lanes combine as a tree (8 + 8, 4 + 4, ...), which vectorizes.
  for (int width = kLanes / 2; width >= 1; width /= 2)
    line(row_depth, fmt::format("_Pragma(\"omp simd\") for (int l = 0; l < {}; ++l) {}[l] = {};", width, acc,
                                c.combine(fmt::format("{}[l]", acc), fmt::format("{}[l + {}]", acc, width), d)));
  // An f64 accumulator is rounded once to the result dtype (to odd at f32
  // first for bf16/f16, so that the second rounding is the only one).
  std::string result = fmt::format("{}[0]", acc);
  if (c.type == "f64" && d != DType::f64)
    result = d == DType::f32 ? fmt::format("(f32){}", result) : fmt::format("k_f64_to_f32_odd({})", result);
  phase_values_[reduce] = bind(d, round(d, result), row_depth);
}

std::string Renderer::render_rows() {
  const ir::Node& first = node(g_.phases.front());
  const Shape& in = shape(first.operands[0]);
  const ir::Axes& axes = first.attrs_as<ir::ReduceAttrs>().axes;
  const std::span<const int64_t> domain = in.dims();
  ir::Axes kept_axes;
  std::vector<int64_t> kept_dims;
  for (int i = 0; i < in.rank(); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) {
      kept_axes.push_back(i);
      kept_dims.push_back(in.dim(i));
    }
  const Shape& root_shape = node(g_.root).results[0];
  int64_t rows = 1;
  for (int64_t d : kept_dims) rows *= d;
  if (rows == 0) return "";
  std::vector<int64_t> reduced_dims;
  for (int64_t a : axes) reduced_dims.push_back(domain[static_cast<size_t>(a)]);
  int64_t row_size = 1;
  for (int64_t d : reduced_dims) row_size *= d;
  const bool parallel = rows > 1 && in.count() >= kParallelThreshold;
  const ir::Value root{g_.root, 0};
  loop(fmt::format("{}for (i64 row = 0; row < {}; ++row)", parallel ? "_Pragma(\"omp parallel for\") " : "", rows),
       [&] {
         const Index kept = decompose("row", kept_dims, depth(), "k");
         for (int32_t phase : g_.phases) render_phase(phase, kept, kept_axes, domain, axes);
         if (std::ranges::equal(root_shape.dims(), kept_dims)) {
           store(value(root, kept), "row", depth());
           return;
         }
         if (row_size == 0) return;
         // The store loop over the reduced axes, flattened (the innermost is contiguous).
         loop(fmt::format("_Pragma(\"omp simd\") for (i64 c = 0; c < {}; ++c)", row_size), [&] {
           const Index reduced = decompose("c", reduced_dims, depth(), "c");
           Index full(domain.size());
           for (size_t k = 0; k < kept_axes.size(); ++k) full[static_cast<size_t>(kept_axes[k])] = kept[k];
           for (size_t k = 0; k < axes.size(); ++k) full[static_cast<size_t>(axes[k])] = reduced[k];
           // Values the phases kept are read back at this index (the flat c).
           for (const auto& [id, array] : scratch_) {
             std::string key = fmt::format("{}.0", id);
             for (const Expr& e : full) key += "," + e.text;
             scopes_.back().memo[key] = {fmt::format("{}[c]", array), depth()};
           }
           store(value(root, full), offset(root_shape, full), depth());
         });
       });
  return close_scope();
}

KernelSource Renderer::render() {
  const Shape& root_shape = node(g_.root).results[0];
  out_dtype_ = root_shape.dtype();
  open_scope();
  const std::string body = g_.phases.empty() ? render_pointwise() : render_rows();
  std::string declarations;
  for (size_t i = 0; i < inputs_.size(); ++i)
    declarations += fmt::format("  const {}* in{} = (const {}*)args[{}];\n", storage_type(shape(inputs_[i]).dtype()), i,
                                storage_type(shape(inputs_[i]).dtype()), i);
  declarations +=
      fmt::format("  {}* out = ({}*)args[{}];\n", storage_type(out_dtype_), storage_type(out_dtype_), inputs_.size());
  const std::string function_body = declarations + body;
  const std::string name = "k_" + hash_bytes(function_body).hex().substr(0, 20);
  KernelSource source;
  source.name = name;
  source.code = fmt::format("extern \"C\" void {}(char* const* args) {{\n{}}}\n", name, function_body);
  source.inputs = inputs_;
  source.output = {g_.root, 0};
  return source;
}

}  // namespace

std::string_view compute_type(DType dtype) {
  switch (dtype) {
    case DType::bool_:
      return "bool";
    case DType::i8:
      return "i8";
    case DType::i16:
      return "i16";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::u8:
      return "u8";
    case DType::u16:
      return "u16";
    case DType::u32:
      return "u32";
    case DType::u64:
      return "u64";
    case DType::f64:
      return "f64";
    default:
      return "f32";
  }
}

std::string_view storage_type(DType dtype) {
  switch (dtype) {
    case DType::bool_:
      return "u8";
    case DType::bf16:
      return "bf16s";
    case DType::f16:
      return "f16s";
    default:
      return compute_type(dtype);
  }
}

KernelSource render_group(const ir::Graph& graph, const Fusion& fusion, int32_t group) {
  return Renderer(graph, fusion, group).render();
}

}  // namespace kiln::cpu
