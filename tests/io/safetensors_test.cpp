#include "kiln/io/safetensors.h"

#include <filesystem>
#include <numeric>

#include "io_test.h"

namespace kiln::io {
namespace {

class Safetensors : public IoTest {};
KILN_IO_TEST_SUITE(Safetensors);

// all_dtypes.safetensors was written by NumPy (make_io_fixtures.py) with the
// tensors laid out in reverse name order; each [2,3] tensor holds 0..5.
TEST_P(Safetensors, ReadsEveryDType) {
  BufferStore store = open_fixture("io/all_dtypes.safetensors");
  EXPECT_EQ(store.size(), 17u);
  EXPECT_EQ(store.get("t_f32").shape(), Shape({2, 3}, DType::f32));
  EXPECT_EQ(std::vector<float>(store.get("t_f32").span<float>().begin(), store.get("t_f32").span<float>().end()),
            (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(store.get("t_i64").span<int64_t>()[5], 5);
  EXPECT_EQ(store.get("t_u16").span<uint16_t>()[4], 4);
  EXPECT_EQ(store.get("t_i8").span<int8_t>()[3], 3);
  EXPECT_EQ(store.get("t_f64").span<double>()[2], 2.0);
  EXPECT_EQ(store.get("t_bool").span<bool>()[2], true);
  EXPECT_EQ(store.get("t_bool").span<bool>()[1], false);
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(f16_to_f32(store.get("t_f16").span<uint16_t>()[k]), k);
    EXPECT_EQ(bf16_to_f32(store.get("t_bf16").span<uint16_t>()[k]), k);
    EXPECT_EQ(f8e4m3fn_to_f32(store.get("t_f8e4m3").span<uint8_t>()[k]), k);
    EXPECT_EQ(f8e5m2_to_f32(store.get("t_f8e5m2").span<uint8_t>()[k]), k);
  }
  EXPECT_EQ(store.get("t_f8e4m3").dtype(), DType::f8e4m3fn);
  EXPECT_EQ(store.get("t_scalar").shape().rank(), 0);
  EXPECT_EQ(store.get("t_scalar").span<float>()[0], 3.5f);
  EXPECT_EQ(store.get("t_empty").shape(), Shape({0, 4}, DType::f32));
  EXPECT_EQ(store.metadata<std::string>("format"), "pt");
  EXPECT_EQ(store.metadata<int>("answer"), 42);
  EXPECT_EQ(store.metadata<double>("pi"), 3.25);
}

// unaligned.safetensors (make_io_fixtures.py) places tensors at offsets 0, 3,
// 19 and 31: misaligned tensors are copied, the aligned one is borrowed.
TEST_P(Safetensors, MisalignedTensorsAreCopied) {
  BufferStore store = open_fixture("io/unaligned.safetensors");
  EXPECT_TRUE(store.get("u8").is_borrowed());
  EXPECT_FALSE(store.get("f64").is_borrowed());
  EXPECT_EQ(store.get("f64").span<double>()[0], 1.5);
  EXPECT_EQ(store.get("f64").span<double>()[1], -2.25);
  EXPECT_EQ(store.get("i32").span<int32_t>()[2], 65537);
  EXPECT_EQ(store.get("i32").span<int32_t>()[0], -1);
  EXPECT_EQ(f16_to_f32(store.get("f16").span<uint16_t>()[0]), 0.5f);
}

TEST_P(Safetensors, BuffersBorrowFromTheSource) {
  SourcePtr src = source(KILN_FIXTURES "/io/all_dtypes.safetensors");
  SafetensorsFile file = parse_safetensors(src);
  for (const auto& t : file.tensors) {
    EXPECT_TRUE(t.buffer.is_borrowed()) << t.name;  // this file's tensors are aligned
    EXPECT_GE(t.buffer.data(), src->bytes().data() + file.data_offset);
    EXPECT_LE(t.buffer.data() + t.buffer.shape().byte_size(), src->bytes().data() + src->bytes().size());
  }
  // The buffers keep the source alive after the file object is gone.
  HostBuffer kept = file.tensors.front().buffer;
  file = {};
  src.reset();
  EXPECT_GE(kept.shape().rank(), 0);
  (void)kept.copy();
}

TEST_P(Safetensors, WriteThenReadRoundTrips) {
  // One folder per source kind: ctest runs the two instances at once.
  const auto dir =
      std::filesystem::path(::testing::TempDir()) / ("kiln_roundtrip_" + std::to_string(static_cast<int>(GetParam())));
  std::filesystem::create_directories(dir);
  const auto path = dir / "out.safetensors";

  HostBuffer a = HostBuffer::allocate(Shape({3, 5}, DType::i16));
  std::iota(a.mutable_span<int16_t>().begin(), a.mutable_span<int16_t>().end(), -7);
  HostBuffer b = HostBuffer::allocate(Shape({7}, DType::u8));  // odd size: the next tensor is unaligned
  std::iota(b.mutable_span<uint8_t>().begin(), b.mutable_span<uint8_t>().end(), 1);
  HostBuffer strided = a.slice(1, 0, 5, 2);  // written contiguously
  HostBuffer scalar = HostBuffer::allocate(Shape(DType::f64));
  scalar.mutable_span<double>()[0] = -2.5;
  write_safetensors(path, {{"z.a", a}, {"b", b}, {"strided", strided}, {"scalar", scalar}}, {{"format", "pt"}});

  // The data section starts on an 8-byte boundary.
  SafetensorsFile file = parse_safetensors(source(path));
  EXPECT_EQ(file.data_offset % 8, 0u);
  EXPECT_EQ(file.tensors.size(), 4u);

  BufferStore store = open(path, {.source = GetParam()});
  EXPECT_EQ(store.names(), (std::vector<std::string>{"b", "scalar", "strided", "z.a"}));
  auto read_a = store.get("z.a").span<int16_t>();
  EXPECT_TRUE(std::equal(read_a.begin(), read_a.end(), a.span<int16_t>().begin()));
  auto read_b = store.get("b").span<uint8_t>();
  EXPECT_TRUE(std::equal(read_b.begin(), read_b.end(), b.span<uint8_t>().begin()));
  EXPECT_EQ(store.get("strided").shape(), Shape({3, 3}, DType::i16));
  EXPECT_EQ(store.get("strided").span<int16_t>()[4], -7 + 5 + 2);
  EXPECT_EQ(store.get("scalar").span<double>()[0], -2.5);
  EXPECT_EQ(store.metadata<std::string>("format"), "pt");

  // In-memory serialization produces the same bytes as the file.
  auto bytes =
      serialize_safetensors({{"z.a", a}, {"b", b}, {"strided", strided}, {"scalar", scalar}}, {{"format", "pt"}});
  SourcePtr written = read_file(path);
  auto on_disk = written->bytes();
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), on_disk.begin(), on_disk.end()));
  // No temporary files are left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1);
}

TEST_P(Safetensors, WriterRejectsBadNames) {
  HostBuffer a = HostBuffer::allocate(Shape({1}, DType::f32));
  EXPECT_ERROR(serialize_safetensors({{"x", a}, {"x", a}}), "tensor 'x' is given twice");
  EXPECT_ERROR(serialize_safetensors({{"", a}}), "invalid tensor name");
  EXPECT_ERROR(serialize_safetensors({{"w\xff", a}}), "a tensor name or metadata value is not UTF-8");
  EXPECT_ERROR(write_safetensors("/nonexistent-dir/x.safetensors", {{"x", a}}), "cannot create a temporary file");
}

TEST_P(Safetensors, InMemoryBytesParse) {
  HostBuffer a = HostBuffer::allocate(Shape({2, 2}, DType::f32));
  a.mutable_span<float>()[3] = 1.5f;
  SafetensorsFile file = parse_safetensors(from_bytes(serialize_safetensors({{"a", a}}), "memory"));
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_EQ(file.tensors[0].buffer.span<float>()[3], 1.5f);
}

}  // namespace
}  // namespace kiln::io
