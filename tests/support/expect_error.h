#pragma once
#include <gtest/gtest.h>

#include <string>

#include "kiln/core/error.h"

// Expects `statement` to throw kiln::Error whose message contains `text`.
#define EXPECT_ERROR(statement, text)                                             \
  do {                                                                            \
    try {                                                                         \
      statement;                                                                  \
      ADD_FAILURE() << "expected kiln::Error containing \"" << (text) << "\"";    \
    } catch (const ::kiln::Error& e) {                                            \
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what(); \
    }                                                                             \
  } while (0)
