// Hand-made invalid weight files (tests/fixtures/make_malformed.py, described
// in malformed/MANIFEST.json): each must give a kiln::Error naming the file
// and the problem, and `kiln inspect` must exit non-zero with that message.
#include <map>

#include "io_test.h"

namespace kiln::io {
namespace {

const std::string kDir = KILN_FIXTURES "/malformed/";

// What the error must say, per fixture; every MANIFEST entry must be here.
const std::map<std::string, std::string> kExpected = {
    {"dtype_lowercase.safetensors", "tensor 'x' has unknown dtype \"f32\""},
    {"dtype_not_string.safetensors", "dtype must be a string, found 7"},
    {"duplicate_metadata_key.safetensors", "'__metadata__' appears twice in the header"},
    {"duplicate_name.safetensors", "tensor 'x' appears twice in the header"},
    {"duplicate_offsets.safetensors", "overlaps tensor"},
    {"empty.safetensors", "0 bytes is too short for a safetensors file"},
    {"empty_tensor_name.safetensors", "a tensor has an empty name"},
    {"entry_is_string.safetensors", "tensor 'x': entry must be an object, found \"F32\""},
    {"entry_not_object.safetensors", "tensor 'x': entry must be an object, found [1,2]"},
    {"header_array.safetensors", "header must be a JSON object, found array"},
    {"header_bad_utf8.safetensors", "header is not valid JSON"},
    {"header_len_exceeds_file.safetensors", "header length 1000 runs past the end of the 72-byte file"},
    {"header_len_huge.safetensors", "header length 200000000 is over the 100000000 byte limit"},
    {"header_len_u64_max.safetensors", "header length 18446744073709551615 is over the 100000000 byte limit"},
    {"header_len_zero.safetensors", "header length 0 is too short for a JSON object"},
    {"header_not_json.safetensors", "header is not valid JSON"},
    {"header_string.safetensors", "header must be a JSON object, found string"},
    {"header_trailing_garbage.safetensors", "header is not valid JSON"},
    {"header_truncated_json.safetensors", "header is not valid JSON"},
    {"hole.safetensors", "bytes [8, 12) of the data section before tensor 'b' belong to no tensor (a hole)"},
    {"hole_at_start.safetensors", "bytes [0, 4) of the data section before tensor 'x' belong to no tensor"},
    {"index_no_weight_map", "no \"weight_map\" object"},
    {"index_not_json", "model.safetensors.index.json: not valid JSON"},
    {"index_shard_not_string", "weight_map['a'] must be a shard file name, found 1"},
    {"index_weight_map_not_object", "no \"weight_map\" object"},
    {"metadata_array.safetensors", "__metadata__ must be an object, found array"},
    {"metadata_int_value.safetensors", "__metadata__ 'answer' must be a string, found 42"},
    {"metadata_nested_value.safetensors", "__metadata__ 'a' must be a string, found {\"b\":1}"},
    {"metadata_not_object.safetensors", "__metadata__ must be an object, found string"},
    {"missing_data_offsets.safetensors", "has no \"data_offsets\""},
    {"missing_dtype.safetensors", "has no \"dtype\""},
    {"missing_shape.safetensors", "has no \"shape\""},
    {"nbytes_overflow.safetensors", "shape [4611686018427387904] overflows 64 bits"},
    {"offsets_begin_gt_end.safetensors", "data_offsets [8, 0] end before they begin"},
    {"offsets_end_beyond_data.safetensors", "data_offsets [0, 16] run past the 8-byte data section"},
    {"offsets_float.safetensors", "data_offsets must be non-negative integers, found 8.0"},
    {"offsets_huge_end.safetensors", "data_offsets must be non-negative integers"},
    {"offsets_negative.safetensors", "data_offsets must be non-negative integers, found -8"},
    {"offsets_one_element.safetensors", "data_offsets must be [begin, end], found [8]"},
    {"offsets_three_elements.safetensors", "data_offsets must be [begin, end], found [0,8,8]"},
    {"overlap.safetensors", "tensor 'b' (bytes [4, 12)) overlaps tensor 'a' (ending at 8)"},
    {"shape_dim_exceeds_u64.safetensors", "shape dims must be non-negative integers"},
    {"shape_float_dim.safetensors", "shape dims must be non-negative integers, found 1.5"},
    {"shape_float_integral_dim.safetensors", "shape dims must be non-negative integers, found 2.0"},
    {"shape_negative_dim.safetensors", "shape dims must be non-negative integers, found -2"},
    {"shape_not_list.safetensors", "shape must be an array, found 2"},
    {"shape_product_overflow.safetensors", "shape [4294967296,4294967296,16] overflows 64 bits"},
    {"shape_rank9.safetensors", "has rank 9, more than the 8 kiln supports"},
    {"shape_string_dim.safetensors", "shape dims must be non-negative integers, found \"2\""},
    {"sharded_absolute_path", "must be a file name in the index's directory"},
    {"sharded_escape", "shard '../outside.safetensors' must be a file name in the index's directory"},
    {"sharded_missing_shard", "shard 'model-00002-of-00002.safetensors' (holding 'b') does not exist"},
    {"sharded_missing_tensor",
     "tensor 'x' is mapped to shard 'model-00001-of-00001.safetensors' but that shard does not contain it"},
    {"short_5_bytes.safetensors", "5 bytes is too short for a safetensors file"},
    {"short_header_prefix_only.safetensors", "header length 16 runs past the end of the 8-byte file"},
    {"size_mismatch.safetensors", "shape [2] of F32 needs 8 bytes but data_offsets [0, 12] hold 12"},
    {"trailing_bytes.safetensors", "the data section has 12 bytes but the tensors cover only 8"},
    {"unknown_dtype.safetensors", "tensor 'x' has unknown dtype \"F12\""},
};

class Malformed : public IoTest {};
KILN_IO_TEST_SUITE(Malformed);

TEST_P(Malformed, EveryFileIsAClearError) {
  const auto entries = manifest_entries(kDir);
  EXPECT_GE(entries.size(), 20u);
  for (const auto& name : entries) {
    SCOPED_TRACE(name);
    auto expected = kExpected.find(name);
    ASSERT_NE(expected, kExpected.end()) << "add the expected error for " << name;
    try {
      open(kDir + name, {.source = GetParam()});
      ADD_FAILURE() << name << " was accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(expected->second), std::string::npos) << message;
      // The message names the file at fault (for directories, a file in them).
      EXPECT_NE(message.find(kDir + name), std::string::npos) << message;
    }
  }
  EXPECT_EQ(entries.size(), kExpected.size());
}

// The CLI turns each error into a message and exit code 1, never a crash.
TEST(MalformedCli, InspectExitsNonZeroWithTheMessage) {
  for (const auto& name : manifest_entries(kDir)) {
    SCOPED_TRACE(name);
    CommandResult result = run_command(std::string(KILN_CLI) + " inspect '" + kDir + name + "'");
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find("kiln inspect: error: "), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(kExpected.at(name)), std::string::npos) << result.output;
  }
}

TEST(MalformedCli, InspectValidFileSucceeds) {
  CommandResult result = run_command(std::string(KILN_CLI) + " inspect --json " KILN_FIXTURES "/io/sharded");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto json = nlohmann::json::parse(result.output);
  ASSERT_EQ(json["tensors"].size(), 9u);
  EXPECT_EQ(json["tensors"][0]["name"], "lm_head.weight");  // sorted by name
  EXPECT_EQ(json["tensors"][0]["dtype"], "F32");
  EXPECT_EQ(json["tensors"][0]["shape"], nlohmann::json({8, 4}));
  EXPECT_EQ(json["tensors"][0]["file"], "model-00002-of-00002.safetensors");
  EXPECT_EQ(json["metadata"]["rope_scaling.factor"], 8.0);
  EXPECT_EQ(json["metadata"]["total_size"], 752);
  CommandResult table = run_command(std::string(KILN_CLI) + " inspect " KILN_FIXTURES "/io/sharded");
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("model.layers.2.mlp.up_proj.weight"), std::string::npos);
  EXPECT_NE(table.output.find("9 tensors, 188 elements"), std::string::npos) << table.output;
  EXPECT_EQ(run_command(std::string(KILN_CLI) + " inspect").exit_code, 106);  // CLI11: required PATH missing
}

}  // namespace
}  // namespace kiln::io
