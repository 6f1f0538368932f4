// Fuzzes the reader of kiln files (io/kiln_file.h) and of saved executables
// on the reference backend (Executable::deserialize: manifest, sections,
// graph text, re-planning): any bytes are either a kiln::Error or an
// executable that saves to bytes which load again and save to the same bytes. Crashes, sanitizer reports
// and other exceptions are bugs. The fuzz build skips checksums and the graph
// hash (KILN_FUZZ_SKIP_CHECKSUMS), so mutations reach the code behind them.
// The CPU backend is left out on purpose: its sections are native code, run
// as such (load only saved executables you trust).
//
// KILN_FUZZ_WRITE_SEED=<path>: write a seed (a small saved executable with a
// weight, a callback and a print) to <path> and exit.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "kiln/core/error.h"
#include "kiln/frontend/callback.h"
#include "kiln/io/kiln_file.h"
#include "kiln/runtime/compile.h"

namespace {

struct Counter {
  static constexpr std::string_view name = "Counter";
  void call(std::span<const kiln::HostBuffer>, std::span<kiln::HostBuffer>) {}
};

void write_seed(const char* path) {
  using namespace kiln;
  const Shape n({{"n", 4}}), nm({{"n", 4}, {"m", 3}});
  auto exe = compile_fn(
      Platform::reference(),
      [](Tensor x, Tensor w) {
        Tensor y = (x.dot(w, "n") * 2.0 + 1.0).print("y");
        return callback<Counter>({y}, {y.shape()})[0].sum("m");
      },
      n, nm);
  std::ofstream(path, std::ios::binary) << exe.serialize();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seed = std::getenv("KILN_FUZZ_WRITE_SEED")) {
    write_seed(seed);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)kiln::io::read_kiln_file(bytes, "kiln file", "fuzz");
  } catch (const kiln::Error&) {
    return 0;
  }
  using Exe = kiln::Executable<kiln::Buffer>;
  std::string saved;
  try {
    saved = Exe::deserialize(bytes, "fuzz", kiln::Platform::reference()).serialize();
  } catch (const kiln::Error&) {
    return 0;
  }
  if (Exe::deserialize(saved, "fuzz (saved again)", kiln::Platform::reference()).serialize() != saved) __builtin_trap();
  return 0;
}
