#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::tools {

struct BenchArgs {
  std::filesystem::path model;
  std::vector<int> prompt = {512};    // pp tests: prefill lengths (0 skips)
  std::vector<int> generate = {128};  // tg tests: decode steps (0 skips)
  int threads = 0;                    // 0: one per core
  int repetitions = 5;
  std::string dtype;  // empty: the checkpoint's (f32, bf16 or f16)
  bool json = false;
  bool quiet = false;
};

// Times prefill (ppN) and decode (tgN) like llama-bench and prints its table,
// or JSON.
void bench(const BenchArgs& args);

}  // namespace kiln::tools
