// A LLaMA decoder layer (grouped-query attention, RoPE, SwiGLU, RMSNorm)
// recorded from PyTorch (tools/python/torch_llama.py via
// tests/fixtures/make_nn_fixtures.py) and replayed through kiln's llama
// model code: prefill, then one decode step through the donated KV cache.
#include <gtest/gtest.h>

#include "kiln/models/llama.h"
#include "kiln/runtime/compile.h"
#include "support/compare.h"

namespace kiln::models::llama {
namespace {

const io::BufferStore& fx() { return testing::fixture("nn/decoder_layer.safetensors"); }
const Platform platform = Platform::cpu();

// x {b, s, d} at positions pos..pos+s-1 through the layer, with a cache of
// capacity 6: returns (y, cache_k, cache_v).
auto step(const DecoderLayer& layer, Tensor x, Tensor cache_k, Tensor cache_v, Tensor pos) {
  const Tensor positions = iota(Shape({{"s", x.dim("s")}}, DType::i32), "s") + pos;
  auto [y, cache] = layer.forward(x, positions, nn::KvCache{cache_k, cache_v}, pos);
  return std::make_tuple(y, cache.k, cache.v);
}

struct LayerOutputs {
  HostBuffer prefill, decode;
};

LayerOutputs run_layer(const std::string& prefix, DType dtype, const HostBuffer& input,
                       const HostBuffer& decode_input) {
  const io::BufferStore store = fx().view(prefix);
  const Shape cache_shape({{"b", 2}, {"h", 2}, {"t", 6}, {"hd", 8}}, dtype);
  auto exe_prefill =
      compile<DecoderLayer>(platform, step, store, input.shape(), cache_shape, cache_shape, Shape(DType::i32));
  auto exe_decode =
      compile<DecoderLayer>(platform, step, store, decode_input.shape(), cache_shape, cache_shape, Shape(DType::i32));
  const Weights<DecoderLayer> weights = load<DecoderLayer>(platform, store);
  auto prefill = exe_prefill.prepare(weights);
  auto decode = exe_decode.prepare(weights);

  auto scalar_i32 = [](int32_t v) {
    HostBuffer b = HostBuffer::allocate(Shape(DType::i32));
    b.mutable_span<int32_t>()[0] = v;
    return Buffer::from(platform, b);
  };
  Buffer k = Buffer::from(platform, HostBuffer::allocate(cache_shape));
  Buffer v = Buffer::from(platform, HostBuffer::allocate(cache_shape));
  auto [y, k1, v1] = prefill(Buffer::from(platform, input), donate(k), donate(v), scalar_i32(0));
  auto [y_decode, k2, v2] = decode(Buffer::from(platform, decode_input), donate(k1), donate(v1), scalar_i32(5));
  return {y.to_host(), y_decode.to_host()};
}

TEST(DecoderLayerParity, F32PrefillAndDecodeMatchPyTorch) {
  LayerOutputs run = run_layer("layer", DType::f32, fx().get("input").with_tags({"b", "s", "d"}),
                               fx().get("decode_input").with_tags({"b", "s", "d"}));
  // f32 throughout; differences come from summation order only.
  const testing::Tolerance tolerance{1e-4, 1e-5};
  EXPECT_TRUE(testing::all_close(run.prefill, fx().get("output"), tolerance, "prefill"));
  EXPECT_TRUE(testing::all_close(run.decode, fx().get("decode_output"), tolerance, "decode"));
}

TEST(DecoderLayerParity, Bf16MatchesPyTorchBf16) {
  HostBuffer decode_input_bf16 = HostBuffer::allocate(Shape({{"b", 2}, {"s", 1}, {"d", 32}}, DType::bf16));
  const auto f32 = fx().get("decode_input").span<float>();
  for (size_t i = 0; i < f32.size(); ++i) decode_input_bf16.mutable_span<uint16_t>()[i] = f32_to_bf16(f32[i]);
  LayerOutputs run =
      run_layer("layer_bf16", DType::bf16, fx().get("input_bf16").with_tags({"b", "s", "d"}), decode_input_bf16);
  // Both sides round every intermediate to bf16 (8 bits of mantissa) but at
  // different points (kiln keeps RoPE and softmax in f32), so outputs of
  // magnitude ~1-4 agree to a few bf16 ulps.
  const testing::Tolerance bf16_tolerance{3e-2, 3e-2};
  EXPECT_TRUE(testing::all_close(run.prefill, fx().get("output_bf16"), bf16_tolerance, "bf16 prefill"));
  // And the bf16 layer stays close to the f32 reference.
  HostBuffer prefill_f32 = HostBuffer::allocate(run.prefill.shape().with_dtype(DType::f32));
  for (size_t i = 0; i < prefill_f32.span<float>().size(); ++i)
    prefill_f32.mutable_span<float>()[i] = bf16_to_f32(run.prefill.span<uint16_t>()[i]);
  EXPECT_TRUE(testing::all_close(prefill_f32, fx().get("output"), testing::Tolerance{5e-2, 5e-2}, "bf16 vs f32"));
}

}  // namespace
}  // namespace kiln::models::llama
