// kiln compile writes every step of generation into one file, and
// `kiln generate --exe` runs from it without compiling: in a process whose
// PATH has no C++ compiler, with the greedy tokens PyTorch gives
// (tests/fixtures/make_llama_fixtures.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "../io/io_test.h"
#include "support/compare.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using io::run_command;
const fs::path kModel = fs::path(KILN_FIXTURES) / ".." / ".." / "models" / "kjv-llama";

TEST(KilnCompile, GenerateWithExeCompilesNothingAndGivesPyTorchsGreedyTokens) {
  const io::BufferStore& expected = testing::fixture("llama/kjv_expected.safetensors");
  const fs::path file = fs::path(::testing::TempDir()) / "kiln_kjv_steps.kexe";
  const auto compiled =
      run_command(std::string(KILN_CLI) + " compile -m '" + kModel.string() + "' -o '" + file.string() + "' --temp 0");
  ASSERT_EQ(compiled.exit_code, 0) << compiled.output;
  EXPECT_NE(compiled.output.find("compiled steps and the sampler to"), std::string::npos) << compiled.output;

  const fs::path empty_cache = fs::path(::testing::TempDir()) / "kiln_compile_test_cache";
  fs::remove_all(empty_cache);
  fs::create_directories(empty_cache);
  for (int i = 0; i < 3; ++i) {
    const std::string prompt = expected.metadata<std::string>("prompt" + std::to_string(i));
    const auto run = run_command("env -u KILN_CXX PATH=/nonexistent KILN_CACHE_DIR='" + empty_cache.string() + "' " +
                                 KILN_CLI + " generate -m '" + kModel.string() + "' --exe '" + file.string() +
                                 "' --temp 0 -n 32 --json -p '" + prompt + "'");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("(nothing to compile)"), std::string::npos) << run.output;
    const auto json = nlohmann::json::parse(run.output.substr(run.output.rfind("\n{") + 1));
    const auto tokens = json.at("tokens").get<std::vector<int32_t>>();
    const auto greedy = expected.get("prompt" + std::to_string(i) + ".greedy").span<int32_t>();
    ASSERT_GE(tokens.size(), 1u);
    ASSERT_LE(tokens.size(), greedy.size());
    EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), greedy.begin())) << run.output;
  }
  EXPECT_TRUE(fs::is_empty(empty_cache)) << "generate --exe wrote kernels to the cache";

  // Other sampling options than the file was compiled for: a clear error, not a compile.
  const auto other = run_command("env PATH=/nonexistent " + std::string(KILN_CLI) + " generate -m '" + kModel.string() +
                                 "' --exe '" + file.string() + "' --temp 0.5 -p 'And' -q");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("has no sampler for --temp 0.5 --top-k 40 --top-p 0.9"), std::string::npos)
      << other.output;
  const auto missing =
      run_command(std::string(KILN_CLI) + " generate -m '" + kModel.string() + "' --exe /nonexistent.kexe -p 'And' -q");
  EXPECT_NE(missing.output.find("cannot open the compiled steps /nonexistent.kexe"), std::string::npos)
      << missing.output;
  fs::remove_all(empty_cache);
  fs::remove(file);
}

}  // namespace
}  // namespace kiln
