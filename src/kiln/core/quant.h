#pragma once
// The reference (de)quantization of GGML's block-quantized types, written
// from their published block layouts (ggml-common.h): what "the value of a
// q4_k element" means everywhere in kiln. Checked bit-exact against gguf-py
// by tests/core/quant_test.cpp (fixtures from tests/fixtures/make_quant_fixtures.py).
//
// dequantize_row computes each element in f32 exactly as llama.cpp's
// dequantize_row_* do (same operations, same order). quantize_row follows
// llama.cpp's reference quantizers for the 32-element types (bit-exact with
// them); for the k-quants it picks each sub-block's scale and minimum from
// its range (no error search: a little less accurate than llama-quantize,
// the same format).
#include <cstddef>
#include <cstdint>

#include "kiln/core/dtype.h"
#include "kiln/core/host_buffer.h"

namespace kiln {

// `count` elements (a multiple of block_size(dtype)) from the blocks at
// `blocks` into `out`.
void dequantize_row(DType dtype, const std::byte* blocks, int64_t count, float* out);

// `count` f32 elements (a multiple of block_size(dtype)) into blocks.
void quantize_row(DType dtype, const float* in, int64_t count, std::byte* blocks);

// An f32 copy of a block-quantized buffer, of the same shape.
HostBuffer dequantize(const HostBuffer& blocks);

// A block-quantized copy of a float buffer (its innermost dimension a
// multiple of the block); an error naming both types otherwise.
HostBuffer quantize(const HostBuffer& values, DType dtype);

}  // namespace kiln
