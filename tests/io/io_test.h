#pragma once
// Every io test runs once per WeightSource implementation.
#include <gtest/gtest.h>

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

}  // namespace kiln::io
