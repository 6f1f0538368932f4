#pragma once
// Every io test runs once per WeightSource implementation; helpers shared by
// the tests of malformed files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kiln/io/open.h"
#include "support/expect_error.h"

namespace kiln::io {

class IoTest : public ::testing::TestWithParam<SourceKind> {
 protected:
  BufferStore open_fixture(const std::string& relative) const {
    return open(std::string(KILN_FIXTURES) + "/" + relative, {.source = GetParam()});
  }
  SourcePtr source(const std::string& path) const { return open_source(path, GetParam()); }
};

#define KILN_IO_TEST_SUITE(suite)                                                                            \
  INSTANTIATE_TEST_SUITE_P(BothSources, suite, ::testing::Values(SourceKind::mapped, SourceKind::in_memory), \
                           [](const auto& info) { return info.param == SourceKind::mapped ? "mapped" : "in_memory"; })

// The fixture names in `dir`/MANIFEST.json (name -> description of the defect).
inline std::vector<std::string> manifest_entries(const std::string& dir) {
  std::ifstream in(dir + "MANIFEST.json");
  const auto manifest = nlohmann::json::parse(in);
  std::vector<std::string> names;
  for (const auto& [name, _] : manifest.items()) names.push_back(name);
  return names;
}

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

// Runs a shell command, collecting its output.
inline CommandResult run_command(const std::string& command) {
  std::array<char, 4096> chunk;
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  while (size_t n = fread(chunk.data(), 1, chunk.size(), pipe)) output.append(chunk.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace kiln::io
