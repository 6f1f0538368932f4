// Compiles y = x * 3 + 1 on the optimizing CPU backend and tokenizes a text,
// so that both installed libraries are linked and run. Prints "consumer ok"
// when every value is what the arithmetic says.
//   consumer TOKENIZER_MODEL
#include <kiln/kiln.h>
#include <kiln/models/tokenizer.h>
#include <kiln/version.h>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer TOKENIZER_MODEL\n");
    return 2;
  }
  try {
    const auto platform = kiln::Platform::cpu();
    const kiln::Shape shape({{"n", 5}}, kiln::DType::f32);
    auto exe = kiln::compile_fn(
        platform, [](kiln::Tensor x) { return x * 3.0 + 1.0; }, shape);
    const std::vector<float> x{0, 1, -2, 0.5f, 100};
    const kiln::HostBuffer y = exe(kiln::Buffer::from(platform, shape, x)).to_host();
    const auto values = y.span<float>();
    for (size_t i = 0; i < x.size(); ++i) {
      if (values[i] != x[i] * 3 + 1) {
        std::fprintf(stderr, "consumer: y[%zu] = %g, expected %g\n", i, values[i], x[i] * 3 + 1);
        return 1;
      }
    }
    const auto tokenizer = kiln::models::Tokenizer::load(argv[1]);
    const std::vector<int> ids = tokenizer.encode("In the beginning");
    if (ids.size() < 2 || tokenizer.decode(ids) != "In the beginning") {
      std::fprintf(stderr, "consumer: tokenizer round trip failed (%zu ids)\n", ids.size());
      return 1;
    }
    std::printf("consumer ok: kiln %s on %s, %zu tokens\n", KILN_VERSION_STRING, std::string(platform.name()).c_str(),
                ids.size());
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}
