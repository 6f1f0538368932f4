#pragma once
// THE op table. Every op of the IR is one row:
//   X(id, "printed name", operand count (-1: variadic), attribute struct, dtype rule)
// The Op enum, names, arities and attribute types below are generated from
// it; shape inference, the printer, the verifier and every backend switch
// over Op without a default case, so a new row that is not handled
// everywhere fails to compile (-Werror=switch).
// The op set follows StableHLO so that an exporter is a printer.
#include <array>
#include <cstdint>
#include <string_view>

#include "kiln/ir/attributes.h"

namespace kiln::ir {

// Which operand dtypes an op accepts (result dtype rules live in infer.cpp).
enum class TypeRule : uint8_t {
  any,          // every dtype
  numeric,      // integers and floats, not bool
  floating,     // floats only
  signed_num,   // floats and signed integers
  integer,      // integers only
  int_or_bool,  // integers and bool (bitwise logic)
};

// clang-format off
#define KILN_IR_OPS(X)                                                         \
  /* leaves */                                                                 \
  X(parameter,        "parameter",        0, ParameterAttrs,    any)           \
  X(constant,         "constant",         0, ConstantAttrs,     any)           \
  X(iota,             "iota",             0, IotaAttrs,         numeric)       \
  /* conversions */                                                            \
  X(convert,          "convert",          1, ConvertAttrs,      any)           \
  X(bitcast_convert,  "bitcast_convert",  1, ConvertAttrs,      any)           \
  /* unary elementwise */                                                      \
  X(neg,              "neg",              1, NoAttrs,           signed_num)    \
  X(abs,              "abs",              1, NoAttrs,           signed_num)    \
  X(sign,             "sign",             1, NoAttrs,           signed_num)    \
  X(exp,              "exp",              1, NoAttrs,           floating)      \
  X(expm1,            "expm1",            1, NoAttrs,           floating)      \
  X(log,              "log",              1, NoAttrs,           floating)      \
  X(log1p,            "log1p",            1, NoAttrs,           floating)      \
  X(sqrt,             "sqrt",             1, NoAttrs,           floating)      \
  X(rsqrt,            "rsqrt",            1, NoAttrs,           floating)      \
  X(cbrt,             "cbrt",             1, NoAttrs,           floating)      \
  X(tanh,             "tanh",             1, NoAttrs,           floating)      \
  X(logistic,         "logistic",         1, NoAttrs,           floating)      \
  X(sin,              "sin",              1, NoAttrs,           floating)      \
  X(cos,              "cos",              1, NoAttrs,           floating)      \
  X(tan,              "tan",              1, NoAttrs,           floating)      \
  X(erf,              "erf",              1, NoAttrs,           floating)      \
  X(floor,            "floor",            1, NoAttrs,           floating)      \
  X(ceil,             "ceil",             1, NoAttrs,           floating)      \
  X(round_nearest_even, "round_nearest_even", 1, NoAttrs,       floating)      \
  X(not_,             "not",              1, NoAttrs,           int_or_bool)   \
  X(is_finite,        "is_finite",        1, NoAttrs,           floating)      \
  X(popcnt,           "popcnt",           1, NoAttrs,           integer)       \
  /* binary elementwise */                                                     \
  X(add,              "add",              2, NoAttrs,           numeric)       \
  X(sub,              "sub",              2, NoAttrs,           numeric)       \
  X(mul,              "mul",              2, NoAttrs,           numeric)       \
  X(div,              "div",              2, NoAttrs,           numeric)       \
  X(rem,              "rem",              2, NoAttrs,           numeric)       \
  X(pow,              "pow",              2, NoAttrs,           numeric)       \
  X(max,              "max",              2, NoAttrs,           any)           \
  X(min,              "min",              2, NoAttrs,           any)           \
  X(atan2,            "atan2",            2, NoAttrs,           floating)      \
  X(and_,             "and",              2, NoAttrs,           int_or_bool)   \
  X(or_,              "or",               2, NoAttrs,           int_or_bool)   \
  X(xor_,             "xor",              2, NoAttrs,           int_or_bool)   \
  X(shift_left,       "shift_left",       2, NoAttrs,           integer)       \
  X(shift_right_logical, "shift_right_logical", 2, NoAttrs,     integer)       \
  X(shift_right_arithmetic, "shift_right_arithmetic", 2, NoAttrs, integer)     \
  X(compare,          "compare",          2, CompareAttrs,      any)           \
  X(select,           "select",           3, NoAttrs,           any)           \
  X(clamp,            "clamp",            3, NoAttrs,           any)           \
  /* data movement */                                                          \
  X(broadcast_in_dim, "broadcast_in_dim", 1, BroadcastAttrs,    any)           \
  X(reshape,          "reshape",          1, ReshapeAttrs,      any)           \
  X(transpose,        "transpose",        1, TransposeAttrs,    any)           \
  X(slice,            "slice",            1, SliceAttrs,        any)           \
  X(dynamic_slice,    "dynamic_slice",   -1, DynamicSliceAttrs, any)           \
  X(dynamic_update_slice, "dynamic_update_slice", -1, NoAttrs,  any)           \
  X(concatenate,      "concatenate",     -1, ConcatenateAttrs,  any)           \
  X(pad,              "pad",              2, PadAttrs,          any)           \
  X(reverse,          "reverse",          1, ReverseAttrs,      any)           \
  X(gather,           "gather",           2, GatherAttrs,       any)           \
  X(scatter,          "scatter",          3, ScatterAttrs,      any)           \
  /* reductions and contractions */                                            \
  X(reduce,           "reduce",           1, ReduceAttrs,       any)           \
  X(reduce_window,    "reduce_window",    1, ReduceWindowAttrs, numeric)       \
  X(dot_general,      "dot_general",      2, DotAttrs,          numeric)       \
  X(convolution,      "convolution",      2, ConvolutionAttrs,  numeric)       \
  X(sort,             "sort",            -1, SortAttrs,         any)           \
  X(top_k,            "top_k",            1, TopKAttrs,         numeric)       \
  /* other */                                                                  \
  X(rng,              "rng",              1, RngAttrs,          any)           \
  X(custom_call,      "custom_call",     -1, CustomCallAttrs,   any)           \
  X(optimization_barrier, "optimization_barrier", -1, NoAttrs,  any)
// clang-format on

enum class Op : uint8_t {
#define KILN_IR_ENUM(id, name, arity, attrs, rule) id,
  KILN_IR_OPS(KILN_IR_ENUM)
#undef KILN_IR_ENUM
};

struct OpInfo {
  std::string_view name;
  int arity;  // -1: variadic
  TypeRule rule;
  size_t attrs_index;  // index of the op's attribute type in Attributes
};

namespace detail {
template <typename T, typename Variant>
struct VariantIndex;
template <typename T, typename... Ts>
struct VariantIndex<T, std::variant<Ts...>> {
  static constexpr size_t value = [] {
    constexpr bool matches[] = {std::is_same_v<T, Ts>...};
    for (size_t i = 0; i < sizeof...(Ts); ++i)
      if (matches[i]) return i;
    return sizeof...(Ts);
  }();
  static_assert(value < sizeof...(Ts), "an op's attribute struct is missing from ir::Attributes");
};
}  // namespace detail

inline constexpr std::array kOps = {
#define KILN_IR_INFO(id, name, arity, attrs, rule) \
  OpInfo{name, arity, TypeRule::rule, detail::VariantIndex<attrs, Attributes>::value},
    KILN_IR_OPS(KILN_IR_INFO)
#undef KILN_IR_INFO
};
inline constexpr size_t kOpCount = kOps.size();

inline const OpInfo& info(Op op) { return kOps[static_cast<size_t>(op)]; }
inline std::string_view name(Op op) { return info(op).name; }

}  // namespace kiln::ir
