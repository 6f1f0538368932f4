#pragma once
// Attributes of IR nodes: one plain struct per kind of op that needs any.
// Vectors of axes/sizes use int64_t and follow StableHLO's meaning.
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "kiln/core/host_buffer.h"

namespace kiln::ir {

using Axes = std::vector<int64_t>;

struct NoAttrs {};

struct ParameterAttrs {
  Shape shape;
  std::string name;  // for dumps and errors, e.g. "layers.0.attn.q.weight"
};
struct ConstantAttrs {
  HostBuffer value;
};
struct IotaAttrs {
  Shape shape;
  int64_t axis;
};
struct ConvertAttrs {
  DType dtype;  // the result dtype (convert: by value; bitcast_convert: by bits)
};

enum class Comparison : uint8_t { eq, ne, lt, le, gt, ge };
struct CompareAttrs {
  Comparison direction;
  // Floats compared by IEEE total order (-NaN < -inf < ... < -0 < +0 < ... < inf < NaN).
  bool total_order = false;
};

struct BroadcastAttrs {
  Shape shape;  // the result
  Axes dims;    // operand axis i becomes result axis dims[i]
};
struct ReshapeAttrs {
  Shape shape;  // the result; same element count
};
struct TransposeAttrs {
  Axes permutation;  // result axis i is operand axis permutation[i]
};
struct SliceAttrs {
  Axes start, limit, stride;
};
struct DynamicSliceAttrs {
  Axes sizes;  // start indices are scalar operands, clamped into range
};
struct ConcatenateAttrs {
  int64_t axis;
};
struct PadAttrs {
  Axes low, high, interior;  // low/high may be negative (cropping)
};
struct ReverseAttrs {
  Axes axes;
};

// StableHLO gather: for each index in `indices` (its vectors along
// index_vector_dim), take a slice of `slice_sizes` starting at the index
// (clamped so the slice fits), drop collapsed_slice_dims.
struct GatherAttrs {
  Axes offset_dims, collapsed_slice_dims, start_index_map;
  int64_t index_vector_dim;
  Axes slice_sizes;
};

enum class ScatterMode : uint8_t { replace, add };
// StableHLO scatter; updates whose window does not fit are skipped.
struct ScatterAttrs {
  Axes update_window_dims, inserted_window_dims, scatter_dims_to_operand_dims;
  int64_t index_vector_dim;
  ScatterMode mode;
};

enum class ReduceKind : uint8_t { sum, prod, max, min, and_, or_, argmax, argmin };
struct ReduceAttrs {
  ReduceKind kind;
  Axes axes;
  DType index_dtype = DType::i64;  // argmax/argmin: second output's dtype
};

struct ReduceWindowAttrs {
  ReduceKind kind;  // sum, prod, max, min
  Axes window, strides, padding_low, padding_high, base_dilation, window_dilation;
};

struct DotAttrs {
  Axes lhs_batch, rhs_batch, lhs_contracting, rhs_contracting;
  DType result;  // accumulation happens in at least f32 for floats
};

// Convolution with the layout lhs [N, C, spatial...], rhs [O, C/groups,
// spatial...], result [N, O, spatial...].
struct ConvolutionAttrs {
  Axes strides, padding_low, padding_high, lhs_dilation, rhs_dilation;
  int64_t feature_group_count = 1;
};

struct SortAttrs {
  int64_t axis;
  bool descending = false;
  bool stable = true;  // sorts by the first operand; the others follow it
};
struct TopKAttrs {
  int64_t k;  // along the last axis; results: values, i32 indices
};

enum class RngDistribution : uint8_t { uniform, normal };
// Counter-based: element i of the result is a function of (key, i) only.
struct RngAttrs {
  RngDistribution distribution;
  Shape shape;
};

struct CustomCallAttrs {
  std::string target;
  std::vector<Shape> results;
  bool has_side_effect = false;
  std::shared_ptr<void> payload;  // owned by whatever registered the call
};

using Attributes =
    std::variant<NoAttrs, ParameterAttrs, ConstantAttrs, IotaAttrs, ConvertAttrs, CompareAttrs, BroadcastAttrs,
                 ReshapeAttrs, TransposeAttrs, SliceAttrs, DynamicSliceAttrs, ConcatenateAttrs, PadAttrs, ReverseAttrs,
                 GatherAttrs, ScatterAttrs, ReduceAttrs, ReduceWindowAttrs, DotAttrs, ConvolutionAttrs, SortAttrs,
                 TopKAttrs, RngAttrs, CustomCallAttrs>;

}  // namespace kiln::ir
