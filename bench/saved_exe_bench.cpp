// Load time of a saved executable against compiling: the one-token decode
// step of a LLaMA model (attending over 256 positions, as kiln generate's
// first window), compiled cold (an empty kernel cache: the C++ compiler
// runs), compiled warm (the kernels come from the disk cache), saved, and
// loaded from the file (no compiler). Medians of REPS for warm and load.
//
//   build/release/bench/kiln_bench_saved MODEL_DIR [REPS] [LOAD_REPS]
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "kiln/backend/cpu/compiler.h"
#include "kiln/io/open.h"
#include "kiln/models/llama.h"
#include "kiln/runtime/compile.h"

namespace {

using Step = kiln::Executable<std::tuple<kiln::Buffer, kiln::Buffer, kiln::Buffer>>;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::ranges::sort(v);
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: {} MODEL_DIR [REPS]\n", argv[0]);
    return 2;
  }
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  const int load_reps = argc > 3 ? std::atoi(argv[3]) : reps;
  namespace fs = std::filesystem;
  const fs::path work = fs::temp_directory_path() / fmt::format("kiln-bench-saved-{}", getpid());
  fs::create_directories(work / "cache");
  setenv("KILN_CACHE_DIR", (work / "cache").c_str(), 1);  // empty: the first compile is cold
  setenv("KILN_QUIET", "1", 1);
  try {
    const kiln::io::BufferStore store = kiln::io::open(argv[1]);
    auto model = kiln::populate<kiln::models::llama::CausalLM>(store);
    model.attention_window = 256;
    const kiln::DType dtype = store.get("model.embed_tokens.weight").dtype();
    const kiln::Shape cache = model.cache_shape(1, model.config.max_positions, dtype);
    const kiln::Platform platform = kiln::Platform::cpu();
    auto compile_step = [&] {
      return kiln::compile(platform, &kiln::models::llama::CausalLM::forward, model,
                           kiln::Shape({{"b", 1}, {"s", 1}}, kiln::DType::i32), cache, cache,
                           kiln::Shape(kiln::DType::i32));
    };
    auto start = std::chrono::steady_clock::now();
    const Step cold = compile_step();
    const double cold_s = seconds_since(start);
    std::vector<double> warm, load;
    for (int r = 0; r < reps; ++r) {
      kiln::cpu::clear_memory_cache();  // the next compile reads the disk cache, as a new process would
      start = std::chrono::steady_clock::now();
      (void)compile_step();
      warm.push_back(seconds_since(start));
    }
    const fs::path file = work / "decode.kexe";
    cold.save(file);
    for (int r = 0; r < load_reps; ++r) {
      kiln::cpu::clear_memory_cache();
      start = std::chrono::steady_clock::now();
      (void)Step::load(file, platform);
      load.push_back(seconds_since(start));
    }
    fmt::print("| model | {} ({}, {} layers) |\n| file | {:.1f} KiB |\n", fs::path(argv[1]).filename().string(),
               kiln::name(dtype), model.config.num_layers, static_cast<double>(fs::file_size(file)) / 1024);
    fmt::print("| cold compile (empty kernel cache) | {:.3f} s |\n", cold_s);
    fmt::print("| warm compile (disk cache), median of {} | {:.3f} s |\n", reps, median(warm));
    fmt::print("| load saved executable, median of {} | {:.3f} s |\n", load_reps, median(load));
  } catch (const kiln::Error& e) {
    fmt::print(stderr, "kiln_bench_saved: {}\n", e.what());
    fs::remove_all(work);
    return 1;
  }
  fs::remove_all(work);
  return 0;
}
