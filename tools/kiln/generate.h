#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln::tools {

struct GenerateArgs {
  std::filesystem::path model;
  std::string prompt;
  int64_t tokens = 64;
  double temperature = 0.7;
  int64_t top_k = 40;
  double top_p = 0.9;
  uint64_t seed = 0;
  std::string dtype = "f32";
  int threads = 0;  // 0: one per core
  bool json = false;
  bool quiet = false;         // no progress lines on stderr
  std::filesystem::path exe;  // steps compiled by `kiln compile`: nothing is compiled
};

// Runs generation and prints the text (streamed) then the timings, or JSON.
void generate(const GenerateArgs& args);

// kiln compile: every step generation with these options can use (the
// prefill chunks and the decode step) and its sampler, compiled into `out`.
void compile_steps(const GenerateArgs& args, const std::filesystem::path& out);

}  // namespace kiln::tools
