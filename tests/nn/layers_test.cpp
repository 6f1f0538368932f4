// Layer parity: activations recorded from PyTorch modules
// (tests/fixtures/make_nn_fixtures.py) replayed through kiln's nn layers,
// compiled with compile() and run on the CPU platform.
#include "kiln/nn/layers.h"

#include <gtest/gtest.h>

#include "kiln/nn/attention.h"
#include "kiln/nn/rope.h"
#include "kiln/runtime/compile.h"
#include "support/compare.h"

namespace kiln::nn {
namespace {

const io::BufferStore& fx() { return testing::fixture("nn/layers.safetensors"); }
const Platform platform = Platform::cpu();

HostBuffer tagged(const std::string& name, std::initializer_list<std::string_view> tags) {
  return fx().get(name).with_tags(tags);
}
Buffer on_platform(const HostBuffer& h) { return Buffer::from(platform, h); }

// f32 layers compute each output from a handful of rounded f32 steps.
const testing::Tolerance kF32{2e-5, 1e-6};

// Runs `layer(x)` compiled from the fixture's tensors under `prefix`.
template <typename Layer>
HostBuffer run_layer(const std::string& prefix, const HostBuffer& x) {
  const io::BufferStore store = fx().view(prefix);
  auto exe = compile<Layer>(
      platform, [](const Layer& layer, Tensor t) { return layer(t); }, store, x.shape());
  return exe.prepare(load<Layer>(platform, store))(on_platform(x)).to_host();
}

TEST(NnParity, LinearWithAndWithoutBias) {
  const HostBuffer x = tagged("linear.x", {"b", "s", "d"});
  EXPECT_TRUE(testing::all_close(run_layer<Linear>("linear", x), fx().get("linear.y"), kF32));
  io::BufferStore no_bias;
  no_bias.add("weight", fx().get("linear.weight"), "fixture");
  auto exe = compile<Linear>(
      platform, [](const Linear& l, Tensor t) { return l(t); }, no_bias, x.shape());
  Buffer y = exe.prepare(load<Linear>(platform, no_bias))(on_platform(x));
  EXPECT_TRUE(testing::all_close(y.to_host(), fx().get("linear_nobias.y"), kF32));
}

TEST(NnParity, LinearBf16) {
  const HostBuffer x = tagged("linear_bf16.x", {"b", "s", "d"});
  // Both sides round the bf16 result once; accumulation order differs.
  EXPECT_TRUE(testing::all_close(run_layer<Linear>("linear_bf16", x), fx().get("linear_bf16.y"),
                                 testing::Tolerance{1.6e-2, 1e-2}));
}

TEST(NnParity, Embedding) {
  const HostBuffer ids = tagged("embedding.ids", {"b", "s"});
  EXPECT_TRUE(testing::all_close(run_layer<Embedding>("embedding", ids), fx().get("embedding.y")));
}

TEST(NnParity, Norms) {
  const HostBuffer x = tagged("linear.x", {"b", "s", "d"});
  EXPECT_TRUE(testing::all_close(run_layer<LayerNorm>("layernorm", x), fx().get("layernorm.y"), kF32));
  EXPECT_TRUE(testing::all_close(run_layer<RmsNorm>("rmsnorm", x), fx().get("rmsnorm.y"), kF32));
}

TEST(NnParity, SwiGluMlp) {
  const HostBuffer x = tagged("linear.x", {"b", "s", "d"});
  EXPECT_TRUE(testing::all_close(run_layer<SwiGluMlp>("swiglu", x), fx().get("swiglu.y"), kF32));
}

struct GeluBlock {
  LayerNorm ln;
  GeluMlp mlp;
  Tensor operator()(Tensor x) const { return x + mlp(ln(x)); }
};
KILN_FIELDS(GeluBlock, ln, mlp)

TEST(NnParity, LayerNormGeluBlock) {
  const HostBuffer x = tagged("linear.x", {"b", "s", "d"});
  EXPECT_TRUE(testing::all_close(run_layer<GeluBlock>("gelu_block", x), fx().get("gelu_block.y"), kF32));
}

HostBuffer run_rope(const RopeOptions& options) {
  const HostBuffer x = tagged("rope.x", {"b", "h", "s", "hd"});
  const HostBuffer positions = tagged("rope.positions", {"s"});
  auto exe = compile_fn(
      platform, [&](Tensor t, Tensor p) { return rope(t, p, options); }, x.shape(), positions.shape());
  return exe(on_platform(x), on_platform(positions)).to_host();
}

TEST(NnParity, RopeLayoutsAndScalings) {
  RopeOptions options{RopeLayout::half_split, 500.0, {}};
  EXPECT_TRUE(testing::all_close(run_rope(options), fx().get("rope.half_split.default"), kF32));
  options.scaling = {RopeScaling::Kind::linear, 4.0};
  EXPECT_TRUE(testing::all_close(run_rope(options), fx().get("rope.half_split.linear"), kF32));
  options.scaling = {RopeScaling::Kind::llama3, 8.0, 1.0, 4.0, 16};
  EXPECT_TRUE(testing::all_close(run_rope(options), fx().get("rope.half_split.llama3"), kF32));
  options = {RopeLayout::interleaved, 500.0, {}};
  EXPECT_TRUE(testing::all_close(run_rope(options), fx().get("rope.interleaved.default"), kF32));
}

HostBuffer run_attention(const AttentionOptions& base, bool with_offset, bool with_mask) {
  const HostBuffer q = tagged("attn.q", {"b", "h", "s", "hd"});
  const HostBuffer k = tagged("attn.k", {"b", "h", "t", "hd"});
  const HostBuffer v = tagged("attn.v", {"b", "h", "t", "hd"});
  const HostBuffer mask = tagged("attn.mask", {"s", "t"});
  HostBuffer offset = HostBuffer::allocate(Shape(DType::i32));
  offset.mutable_span<int32_t>()[0] = 2;
  auto exe = compile_fn(
      platform,
      [&](Tensor tq, Tensor tk, Tensor tv, Tensor off, Tensor m) {
        AttentionOptions o = base;
        if (with_offset) o.query_offset = off;
        if (with_mask) o.mask = m;
        return attention(tq, tk, tv, o);
      },
      q.shape(), k.shape(), v.shape(), offset.shape(), mask.shape());
  return exe(on_platform(q), on_platform(k), on_platform(v), on_platform(offset), on_platform(mask)).to_host();
}

TEST(NnParity, AttentionGroupedQueryHeads) {
  EXPECT_TRUE(testing::all_close(run_attention({}, false, false), fx().get("attn.full"), kF32));
  EXPECT_TRUE(testing::all_close(run_attention({.causal = true}, true, false), fx().get("attn.causal_offset2"), kF32));
  EXPECT_TRUE(testing::all_close(run_attention({}, false, true), fx().get("attn.masked"), kF32));
}

TEST(NnParity, AttentionRejectsUngroupableHeads) {
  try {
    compile_fn(
        platform, [](Tensor q, Tensor k) { return attention(q, k, k); },
        Shape({{"b", 1}, {"h", 3}, {"s", 2}, {"hd", 4}}), Shape({{"b", 1}, {"h", 2}, {"t", 2}, {"hd", 4}}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[attention] 3 query heads cannot be grouped over 2 key/value heads"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kiln::nn
