#include "kiln/io/metadata.h"

#include <gtest/gtest.h>

#include "support/expect_error.h"

namespace kiln::io {
namespace {

TEST(Metadata, FlattensNestedConfig) {
  Metadata m = parse_json_metadata(
      R"({"a": 1, "b": {"c": 2.5, "d": {"e": "x"}}, "f": [true, false], "g": [1, 2.5],
          "h": [{"k": 1}, {"k": 2}], "i": null, "j": [], "u": 18446744073709551615})",
      "config.json");
  EXPECT_EQ(m.get<int>("a"), 1);
  EXPECT_EQ(m.get<double>("b.c"), 2.5);
  EXPECT_EQ(m.get<std::string>("b.d.e"), "x");
  EXPECT_EQ(m.get<std::vector<bool>>("f"), (std::vector<bool>{true, false}));
  EXPECT_EQ(m.get<std::vector<double>>("g"), (std::vector<double>{1.0, 2.5}));
  EXPECT_EQ(m.get<int>("h.1.k"), 2);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(m.at("i")));
  EXPECT_TRUE(m.get<std::vector<int64_t>>("j").empty());
  EXPECT_EQ(m.get<double>("u"), 18446744073709551615.0);  // too big for int64: kept as float
  EXPECT_EQ(m.get<double>("a"), 1.0);                     // ints widen to float
  EXPECT_EQ(to_string(m.at("f")), "[true,false]");
  EXPECT_EQ(type_name(m.at("b.d.e")), "string");
}

TEST(Metadata, NumericStrings) {
  Metadata m;
  m.set("n", std::string("42"));
  m.set("x", std::string("1.5"));
  m.set("word", std::string("pt"));
  EXPECT_EQ(m.get<int64_t>("n"), 42);
  EXPECT_EQ(m.get<double>("x"), 1.5);
  EXPECT_ERROR(m.get<int>("x"), "metadata 'x' is string \"1.5\", not int");
  EXPECT_ERROR(m.get<double>("word"), "not float");
}

TEST(Metadata, IntRangeIsChecked) {
  Metadata m = parse_json_metadata(R"({"big": 5000000000})", "c.json");
  EXPECT_EQ(m.get<int64_t>("big"), 5000000000);
  EXPECT_ERROR(m.get<int>("big"), "metadata 'big' is 5000000000, out of range for i32");
}

TEST(Metadata, EveryIntegerAndFloatType) {
  Metadata m = parse_json_metadata(R"({"n": 200, "neg": -3, "x": 0.5, "dims": [1, 300], "fs": [0.25, 2]})", "c.json");
  EXPECT_EQ(m.get<size_t>("n"), 200u);
  EXPECT_EQ(m.get<uint8_t>("n"), 200u);
  EXPECT_EQ(m.get<long long>("neg"), -3);
  EXPECT_EQ(m.get<unsigned>("n"), 200u);
  EXPECT_EQ(m.get<int16_t>("neg"), -3);
  EXPECT_EQ(m.get<long double>("x"), 0.5L);
  EXPECT_EQ(m.get<std::vector<size_t>>("dims"), (std::vector<size_t>{1, 300}));
  EXPECT_EQ(m.get<std::vector<float>>("fs"), (std::vector<float>{0.25f, 2.0f}));
  EXPECT_ERROR(m.get<int8_t>("n"), "metadata 'n' is 200, out of range for i8");
  EXPECT_ERROR(m.get<size_t>("neg"), "metadata 'neg' is -3, out of range for u64");
  EXPECT_ERROR(m.get<std::vector<uint8_t>>("dims"), "metadata 'dims' is 300, out of range for u8");
}

TEST(Metadata, MissingKeysSayWhy) {
  Metadata m;
  EXPECT_ERROR(m.get<int>("hidden_size"), "no metadata key 'hidden_size' (the store has no metadata: no config.json");
  m.set("format", std::string("pt"));
  m.set_missing_key_hint("there is no config.json in 'dir'");
  EXPECT_ERROR(m.get<int>("hidden_size"), "no metadata key 'hidden_size' (there is no config.json in 'dir')");
}

TEST(Metadata, Errors) {
  EXPECT_ERROR(parse_json_metadata("{\"a\": ", "config.json"), "config.json: not valid JSON");
  EXPECT_ERROR(parse_json_metadata("[1, 2]", "config.json"), "config.json: expected a JSON object");
  EXPECT_ERROR(parse_json_metadata(R"({"a": [1, "x"]})", "config.json"), "'a' mixes values of different types");
  std::string deep = std::string(100, '[') + std::string(100, ']');
  EXPECT_ERROR(parse_json_metadata("{\"a\": " + deep + "}", "config.json"), "nested more than");
}

}  // namespace
}  // namespace kiln::io
