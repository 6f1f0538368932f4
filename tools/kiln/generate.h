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
  bool quiet = false;  // no progress lines on stderr
};

// Runs generation and prints the text (streamed) then the timings, or JSON.
void generate(const GenerateArgs& args);

}  // namespace kiln::tools
