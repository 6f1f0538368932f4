// Hand-made invalid GGUF files (tests/fixtures/make_gguf_fixtures.py,
// described in gguf/malformed/MANIFEST.json), one per defect, covering the
// classes of llama.cpp's GGUF CVEs: counts, string and array lengths,
// element counts x type sizes and offsets that overflow or wrap, dimensions
// that pass a naive check, unknown value and element types. Each must give a
// kiln::Error naming the file and the problem, and `kiln inspect` must exit
// 1 with that message.
#include <map>

#include "io_test.h"
#include "kiln/io/gguf.h"

namespace kiln::io {
namespace {

const std::string kDir = KILN_FIXTURES "/gguf/malformed/";

// What the error must say, per fixture; every MANIFEST entry must be here.
const std::map<std::string, std::string> kExpected = {
    {"alignment_3.gguf", "general.alignment is 3; it must be a power of two"},
    {"alignment_string.gguf", "general.alignment must be a u32, found a string"},
    {"alignment_u64.gguf", "general.alignment must be a u32, found a u64"},
    {"alignment_zero.gguf", "general.alignment is 0; it must be a power of two"},
    {"array_bool_value_2.gguf", "metadata 'test.flags'[1]: a bool must be 0 or 1, found 2"},
    {"array_element_type_13.gguf", "metadata 'test.arr' element type has unknown value type 13 (GGUF defines 0 to 12)"},
    {"array_nested_100.gguf",
     "metadata 'test.deep'[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0] nests arrays more than 16 deep"},
    {"array_string_count_u64_max.gguf",
     "metadata 'test.arr' claims 18446744073709551615 elements of string but only 101 bytes are left in the file"},
    {"array_u64_count_2p61.gguf",
     "metadata 'test.arr' claims 2305843009213693952 elements of u64 but only 101 bytes are left in the file"},
    {"bad_magic.gguf", "not a GGUF file (it does not start with the magic \"GGUF\")"},
    {"big_endian.gguf", "a big-endian GGUF file (version 3); kiln reads little-endian ones"},
    {"bool_value_2.gguf", "metadata 'test.flag': a bool must be 0 or 1, found 2"},
    {"bytes_overflow.gguf", "tensor 't' has more bytes than fit in 64 bits"},
    {"data_section_missing.gguf", "the data section would start at offset 96, past the end of the 92-byte file"},
    {"dim_u64_max.gguf", "tensor 't' has dimension 18446744073709551615; each must be between 1 and 2^63-1"},
    {"dim_zero.gguf", "tensor 't' has dimension 0; each must be between 1 and 2^63-1"},
    {"duplicate_key.gguf", "metadata key 'general.name' appears twice"},
    {"duplicate_tensor_name.gguf", "tensor 't' appears twice"},
    {"elements_2p64.gguf", "tensor 't' has more elements than fit in 64 bits"},
    {"elements_overflow.gguf", "tensor 't' has more elements than fit in 64 bits"},
    {"empty.gguf", "not a GGUF file (it does not start with the magic \"GGUF\")"},
    {"empty_tensor_name.gguf", "tensor 0 has an empty name"},
    {"ggml_type_200.gguf", "tensor 't' has unknown GGML type 200"},
    {"ggml_type_4_removed.gguf", "tensor 't' has unknown GGML type 4"},
    {"key_empty.gguf", "metadata key 1 is empty"},
    {"key_length_past_eof.gguf", "metadata key 0: 4096 bytes needed at offset 32, but the file ends 96 bytes later"},
    {"key_length_u64_max.gguf",
     "metadata key 0: 18446744073709551615 bytes needed at offset 32, but the file ends 96 bytes later"},
    {"kv_count_exceeds_entries.gguf", "metadata key 2: 8 bytes needed at offset 104, but the file ends 0 bytes later"},
    {"kv_count_u64_max.gguf", "the header claims 18446744073709551615 metadata entries but only 104 bytes follow"},
    {"n_dims_0.gguf", "tensor 't' has 0 dimensions; GGUF allows 1 to 4"},
    {"n_dims_5.gguf", "tensor 't' has 5 dimensions; GGUF allows 1 to 4"},
    {"offset_past_data.gguf", "tensor 't' (16 bytes at data offset 64) runs past the 32-byte data section"},
    {"offset_unaligned.gguf", "tensor 't' starts at data offset 4, not a multiple of the alignment 32"},
    {"offset_wraps.gguf",
     "tensor 't' (64 bytes at data offset 18446744073709551584) runs past the 64-byte data section"},
    {"q4_0_ne0_33.gguf",
     "tensor 't' of type Q4_0 has an innermost dimension 33 that is not a multiple of its 32-element block"},
    {"q4_k_ne0_128.gguf",
     "tensor 't' of type Q4_K has an innermost dimension 128 that is not a multiple of its 256-element block"},
    {"string_value_length_2p63.gguf",
     "metadata 'general.name': 9223372036854775808 bytes needed at offset 56, but the file ends 72 bytes later"},
    {"tensor_count_huge.gguf", "the header claims 1152921504606846976 tensors but only 104 bytes follow"},
    {"tensor_count_u64_max.gguf", "the header claims 18446744073709551615 tensors but only 104 bytes follow"},
    {"tensor_name_length_u64_max.gguf",
     "the name of tensor 0: 18446744073709551615 bytes needed at offset 67, but the file ends 61 bytes later"},
    {"tensor_past_eof_by_1.gguf", "tensor 't' (32 bytes at data offset 0) runs past the 31-byte data section"},
    {"tensors_overlap.gguf", "tensor 'b' (data offset 32) overlaps tensor 'a' (bytes [0, 64))"},
    {"three_bytes.gguf", "not a GGUF file (it does not start with the magic \"GGUF\")"},
    {"truncated_after_version.gguf", "the tensor count: 8 bytes needed at offset 8, but the file ends 0 bytes later"},
    {"truncated_in_metadata.gguf",
     "metadata 'general.description': 23 bytes needed at offset 98, but the file ends 7 bytes later"},
    {"truncated_in_tensor_info.gguf",
     "the dims of tensor 't': 8 bytes needed at offset 72, but the file ends 4 bytes later"},
    {"value_type_13.gguf", "metadata 'test.x' has unknown value type 13 (GGUF defines 0 to 12)"},
    {"value_type_u32_max.gguf", "metadata 'test.x' has unknown value type 4294967295 (GGUF defines 0 to 12)"},
    {"version_1.gguf", "GGUF version 1 is not supported (kiln reads versions 2 and 3)"},
    {"version_4.gguf", "GGUF version 4 is not supported (kiln reads versions 2 and 3)"},
};

class GgufMalformed : public IoTest {};
KILN_IO_TEST_SUITE(GgufMalformed);

TEST_P(GgufMalformed, EveryFileIsAClearError) {
  const auto entries = manifest_entries(kDir);
  EXPECT_GE(entries.size(), 30u);
  for (const auto& name : entries) {
    SCOPED_TRACE(name);
    auto expected = kExpected.find(name);
    ASSERT_NE(expected, kExpected.end()) << "add the expected error for " << name;
    for (int way = 0; way < 2; ++way) {  // the parser, and open() into a store
      try {
        if (way == 0)
          (void)parse_gguf(source(kDir + name));
        else
          (void)open(kDir + name, {.source = GetParam()});
        ADD_FAILURE() << name << " was accepted";
      } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(expected->second), std::string::npos) << message;
        EXPECT_NE(message.find(kDir + name), std::string::npos) << message;
      }
    }
  }
  EXPECT_EQ(entries.size(), kExpected.size());
}

TEST(GgufMalformedCli, InspectExitsOneWithTheMessage) {
  for (const auto& name : manifest_entries(kDir)) {
    SCOPED_TRACE(name);
    const CommandResult result = run_command(std::string(KILN_CLI) + " inspect '" + kDir + name + "'");
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find("kiln inspect: error: "), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(kExpected.at(name)), std::string::npos) << result.output;
  }
}

// Inputs the fuzzer found crashing (tests/fixtures/gguf_fuzz, kept as found):
// each must now be a kiln::Error.
TEST(GgufFuzzFindings, AreClearErrors) {
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(KILN_FIXTURES "/gguf_fuzz")) {
    SCOPED_TRACE(entry.path().string());
    ++files;
    EXPECT_THROW((void)parse_gguf(map_file(entry.path())), Error);
  }
  EXPECT_GE(files, 1u);
}

}  // namespace
}  // namespace kiln::io
