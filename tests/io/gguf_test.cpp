// The GGUF reader and writer (io/gguf.h): files written by an independent
// Python writer (tests/fixtures/make_gguf_fixtures.py, its values in
// gguf/expected.json) read back exactly, through both WeightSources, into
// tensors, metadata and a BufferStore; kiln's writer round-trips through the
// reader; the writer refuses what GGUF cannot hold. The malformed files are
// in gguf_malformed_test.cpp.
#include "kiln/io/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io_test.h"
#include "kiln/core/element.h"

namespace kiln::io {
namespace {

const std::string kDir = KILN_FIXTURES "/gguf/";

nlohmann::json expected() {
  std::ifstream in(kDir + "expected.json");
  return nlohmann::json::parse(in);
}

// The expected.json entry of `file` (an object keyed by file name).
nlohmann::json expected_of(const std::string& file) { return expected().at(file); }

// A MetaValue as JSON (nested arrays, and integer arrays holding a u64 above
// INT64_MAX, are kept as JSON text).
nlohmann::json entry_json(const GgufEntry& e) {
  if (e.type == GgufType::array && e.element != GgufType::string && std::holds_alternative<std::string>(e.value))
    return nlohmann::json::parse(std::get<std::string>(e.value));
  return as_json(e.value);
}

// expected.json writes u64s above INT64_MAX as decimal strings.
bool same_number(const nlohmann::json& got, const nlohmann::json& want) {
  if (got.is_number_unsigned() && want.is_string())
    return std::to_string(got.get<uint64_t>()) == want.get<std::string>();
  if (got.is_number() && want.is_number()) {
    const double g = got.get<double>(), w = want.get<double>();
    return g == w || (std::isnan(g) && std::isnan(w));
  }
  if (got.is_array() && want.is_array()) {
    if (got.size() != want.size()) return false;
    for (size_t i = 0; i < got.size(); ++i)
      if (!same_number(got[i], want[i])) return false;
    return true;
  }
  return got == want;
}

class Gguf : public IoTest {};
KILN_IO_TEST_SUITE(Gguf);

TEST_P(Gguf, ValidFilesReadAsTheIndependentWriterWroteThem) {
  for (const char* name : {"all_types.gguf", "aligned_64.gguf", "no_tensors.gguf", "v2.gguf", "llama_names.gguf"}) {
    SCOPED_TRACE(name);
    const nlohmann::json want = expected_of(name);
    const GgufFile file = parse_gguf(source(kDir + name));
    EXPECT_EQ(file.version, want["version"].get<uint32_t>());
    EXPECT_EQ(file.alignment, want["alignment"].get<uint64_t>());

    ASSERT_EQ(file.tensors.size(), want["tensors"].size());
    for (size_t i = 0; i < file.tensors.size(); ++i) {
      const GgufTensor& t = file.tensors[i];
      const nlohmann::json& w = want["tensors"][i];
      SCOPED_TRACE(t.name);
      EXPECT_EQ(t.name, w["name"].get<std::string>());
      EXPECT_EQ(ggml_type(t.type)->name, w["type"].get<std::string>());
      EXPECT_EQ(t.dims, w["shape"].get<std::vector<int64_t>>());
      EXPECT_EQ(t.offset, w["offset"].get<uint64_t>());
      EXPECT_EQ(t.bytes.size(), w["byte_size"].get<uint64_t>());
      const auto& info = *ggml_type(t.type);
      EXPECT_EQ(t.buffer.has_value(), info.dtype.has_value());
      if (!t.buffer) continue;
      EXPECT_EQ(t.buffer->shape().byte_size(), t.bytes.size());
      if (w.contains("values")) {
        const HostBuffer& b = *t.buffer;
        const auto values = w["values"].get<std::vector<double>>();
        ASSERT_EQ(static_cast<size_t>(b.shape().count()), values.size());
        for (size_t k = 0; k < values.size(); ++k)
          EXPECT_EQ(load_double(b.dtype(), b.data() + k * size_of(b.dtype())), values[k]) << "element " << k;
      }
    }

    std::map<std::string, const GgufEntry*> entries;
    for (const auto& e : file.metadata) entries[e.key] = &e;
    for (const auto& w : want["metadata"]) {
      const std::string key = w["key"].get<std::string>();
      SCOPED_TRACE(key);
      ASSERT_TRUE(entries.contains(key));
      const GgufEntry& e = *entries[key];
      EXPECT_EQ(gguf_type_name(static_cast<uint32_t>(e.type)), w["type"].get<std::string>());
      EXPECT_TRUE(same_number(entry_json(e), w["value"])) << entry_json(e).dump() << " vs " << w["value"].dump();
    }
  }
}

TEST_P(Gguf, OpensIntoAStoreWithItsMetadata) {
  const BufferStore store = open_fixture("gguf/llama_names.gguf");
  EXPECT_EQ(store.names(), (std::vector<std::string>{"blk.0.attn_q.weight", "token_embd.weight"}));
  EXPECT_EQ(store.get("token_embd.weight").shape().dims_string(), "[4,8]");  // GGUF ne [8, 4] reversed
  EXPECT_EQ(store.get("blk.0.attn_q.weight").dtype(), DType::f16);
  EXPECT_EQ(store.metadata<std::string>("general.architecture"), "llama");
  EXPECT_EQ(store.metadata<int>("llama.block_count"), 1);
  EXPECT_EQ(store.metadata<std::vector<std::string>>("tokenizer.ggml.tokens").size(), 4u);
  EXPECT_ERROR(store.metadata<int>("llama.context_length"), "is a GGUF file and its metadata has no such key");
}

TEST_P(Gguf, ATensorOfATypeKilnCannotHoldIsNamedWhenOpened) {
  // all_types.gguf holds an IQ2_XXS tensor: listed by parse_gguf, refused by open.
  EXPECT_ERROR(open_fixture("gguf/all_types.gguf"), "tensor 'iq2' has GGML type IQ2_XXS, which kiln does not read");
}

HostBuffer bytes_as(const Shape& shape, uint8_t seed) {
  std::vector<std::byte> bytes(shape.byte_size());
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>((i * 31 + seed) & 0xFF);
  return HostBuffer::copy_of(shape, bytes);
}

TEST(GgufWriter, RoundTripsThroughTheReader) {
  const std::vector<GgufWriteEntry> metadata = {
      {"general.architecture", GgufType::string, std::string("llama")},
      {"llama.block_count", GgufType::u32, int64_t{22}},
      {"llama.rope.freq_base", GgufType::f32, 10000.0},
      {"t.i8", GgufType::i8, int64_t{-5}},
      {"t.u64", GgufType::u64, int64_t{1} << 40},
      {"t.f64", GgufType::f64, 0.1},
      {"t.bool", GgufType::bool_, true},
      {"tokenizer.ggml.tokens", GgufType::array, std::vector<std::string>{"<unk>", "a", ""}, GgufType::string},
      {"tokenizer.ggml.scores", GgufType::array, std::vector<double>{0.5, -1.25}, GgufType::f32},
      {"t.ids", GgufType::array, std::vector<int64_t>{-1, 7}, GgufType::i32},
      {"t.flags", GgufType::array, std::vector<bool>{true, false}, GgufType::bool_},
  };
  const std::vector<std::pair<std::string, HostBuffer>> tensors = {
      {"w.f32", bytes_as(Shape({3, 5}, DType::f32), 1)},       {"w.q4_k", bytes_as(Shape({2, 512}, DType::q4_k), 2)},
      {"w.q8_0", bytes_as(Shape({64}, DType::q8_0), 3)},       {"w.bf16", bytes_as(Shape({7}, DType::bf16), 4)},
      {"w.i64", bytes_as(Shape({1, 1, 2, 1}, DType::i64), 5)},
  };
  const GgufFile file = parse_gguf(from_bytes(serialize_gguf(metadata, tensors), "round trip"));
  EXPECT_EQ(file.version, 3u);
  EXPECT_EQ(file.alignment, 32u);
  ASSERT_EQ(file.metadata.size(), metadata.size() + 1);  // general.alignment added
  EXPECT_EQ(file.metadata[0].key, "general.alignment");
  for (size_t i = 0; i < metadata.size(); ++i) {
    const GgufEntry& e = file.metadata[i + 1];
    EXPECT_EQ(e.key, metadata[i].key);
    EXPECT_EQ(e.type, metadata[i].type);
    if (e.type == GgufType::array) {
      EXPECT_EQ(e.element, metadata[i].element);
    }
    if (metadata[i].type == GgufType::f32 && std::holds_alternative<double>(metadata[i].value)) {
      EXPECT_EQ(std::get<double>(e.value), static_cast<float>(std::get<double>(metadata[i].value)));
    } else {
      EXPECT_EQ(e.value, metadata[i].value) << e.key;
    }
  }
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensor& t = file.tensors[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, tensors[i].first);
    EXPECT_EQ(t.offset % 32, 0u);
    ASSERT_TRUE(t.buffer.has_value());
    EXPECT_EQ(t.buffer->shape().dims_string(), tensors[i].second.shape().dims_string());
    EXPECT_EQ(t.buffer->dtype(), tensors[i].second.dtype());
    const auto want = tensors[i].second.bytes();
    const auto got = t.buffer->bytes();
    ASSERT_EQ(got.size(), want.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin()));
  }
}

TEST(GgufWriter, WritesAtomicallyAFileThatOpens) {
  const auto path = std::filesystem::temp_directory_path() / "kiln_gguf_writer_test.gguf";
  write_gguf(path, {{"general.name", GgufType::string, std::string("x")}},
             {{"a", HostBuffer::from_values<float>(Shape({2}, DType::f32), std::vector<float>{1.5f, -2.0f})}});
  const BufferStore store = open(path);
  EXPECT_EQ(store.get("a").span<float>()[1], -2.0f);
  EXPECT_EQ(store.metadata<std::string>("general.name"), "x");
  std::filesystem::remove(path);
}

TEST(GgufWriter, RefusesWhatGgufCannotHold) {
  auto one = [](DType d, std::vector<int64_t> dims) { return HostBuffer::allocate(Shape(dims, d)); };
  EXPECT_ERROR(serialize_gguf({{"k", GgufType::u8, int64_t{256}}}, {}), "metadata 'k': 256 is out of range for u8");
  EXPECT_ERROR(serialize_gguf({{"k", GgufType::u32, std::string("7")}}, {}),
               "metadata 'k' is a u32 but its value is string");
  EXPECT_ERROR(serialize_gguf({{"k", GgufType::bool_, true}, {"k", GgufType::bool_, false}}, {}),
               "metadata key 'k' is given twice");
  EXPECT_ERROR(serialize_gguf({}, {{"b", one(DType::bool_, {2})}}), "tensor 'b' is bool, which GGUF does not hold");
  EXPECT_ERROR(serialize_gguf({}, {{"r5", one(DType::f32, {1, 1, 1, 1, 2})}}), "tensor 'r5' has rank 5");
  EXPECT_ERROR(serialize_gguf({}, {{"a", one(DType::f32, {2})}, {"a", one(DType::f32, {2})}}),
               "tensor 'a' is given twice");
}

// Block-quantized shapes: bytes by whole blocks, rows as the unit of layout.
TEST(QuantizedShape, BytesAndRowsByWholeBlocks) {
  const Shape q({3, 512}, DType::q4_k);
  EXPECT_EQ(q.byte_size(), 3u * 2 * 144);
  EXPECT_EQ(q.byte_strides()[0], 2 * 144);
  EXPECT_ERROR(Shape({3, 100}, DType::q8_0).byte_size(), "a q8_0 tensor needs an innermost axis that is a multiple");
  const HostBuffer b = bytes_as(q, 9);
  const HostBuffer row = b.select(0, 2);
  EXPECT_EQ(row.bytes().size(), 288u);
  EXPECT_TRUE(std::equal(row.bytes().begin(), row.bytes().end(), b.bytes().begin() + 576));
  const HostBuffer every_other = b.slice(0, 0, 3, 2).copy();  // rows 0 and 2
  ASSERT_EQ(every_other.bytes().size(), 576u);
  EXPECT_TRUE(std::equal(every_other.bytes().begin() + 288, every_other.bytes().end(), b.bytes().begin() + 576));
  EXPECT_ERROR(b.slice(1, 0, 256), "the innermost axis of a block-quantized tensor cannot be split");
  EXPECT_ERROR((void)b.span<uint8_t>(), "does not match dtype q4_k");
}

}  // namespace
}  // namespace kiln::io
