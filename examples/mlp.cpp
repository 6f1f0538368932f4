// A model written the way a kiln user writes one: a plain struct of layers,
// its weights loaded from a safetensors file (memory-mapped), compiled once
// for a fixed input shape, weights bound once, then called.
//
//   build/release/examples/mlp [examples/data/tiny_mlp.safetensors]
#include <kiln/kiln.h>

#include <cstdio>

struct Mlp {
  kiln::nn::Linear up, gate, down;
  kiln::Tensor forward(kiln::Tensor x) const { return down(up(x) * gate(x).silu()); }
};
KILN_FIELDS(Mlp, up, gate, down)

struct Block {
  kiln::nn::RmsNorm norm;
  Mlp mlp;
  kiln::Tensor forward(kiln::Tensor x) const { return x + mlp.forward(norm(x)); }
};
KILN_FIELDS(Block, norm, mlp)

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "examples/data/tiny_mlp.safetensors";
  try {
    auto store = kiln::io::open(path);  // mmap, zero copy
    auto platform = kiln::Platform::cpu();
    const kiln::Shape input({{"b", 2}, {"d", 64}}, kiln::DType::f32);
    auto exe = kiln::compile(platform, &Block::forward, store, input);
    auto run = exe.prepare(kiln::load<Block>(platform, store));  // weights bound once

    kiln::HostBuffer x = kiln::HostBuffer::allocate(input);
    auto values = x.mutable_span<float>();
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 7) * 0.25f - 0.75f;
    kiln::Buffer y = run(kiln::Buffer::from(platform, x));
    std::printf("y %s: %s\n", y.shape().to_string().c_str(), kiln::summarize(y.to_host(), 6).c_str());
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "mlp: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
