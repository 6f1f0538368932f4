#include "kiln/io/gguf.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "kiln/io/atomic_file.h"

namespace kiln::io {
namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

constexpr std::array<std::byte, 4> kMagic = {std::byte{'G'}, std::byte{'G'}, std::byte{'U'}, std::byte{'F'}};
constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;         // GGML's
constexpr int kMaxArrayDepth = 16;  // arrays of arrays: deeper is not a model file
// The fewest bytes a metadata entry (a 1-byte key, type, a u8) and a tensor
// info (a 1-byte name, n_dims 1, one dim, type, offset) take: counts are
// bounded by the bytes left for them.
constexpr uint64_t kMinEntryBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

using enum GgufType;

constexpr std::array<GgmlType, 31> kGgmlTypes = {{
    {0, "F32", 1, 4, DType::f32},
    {1, "F16", 1, 2, DType::f16},
    {2, "Q4_0", 32, 18, DType::q4_0},
    {3, "Q4_1", 32, 20, DType::q4_1},
    {6, "Q5_0", 32, 22, DType::q5_0},
    {7, "Q5_1", 32, 24, DType::q5_1},
    {8, "Q8_0", 32, 34, DType::q8_0},
    {9, "Q8_1", 32, 36, std::nullopt},
    {10, "Q2_K", 256, 84, std::nullopt},
    {11, "Q3_K", 256, 110, std::nullopt},
    {12, "Q4_K", 256, 144, DType::q4_k},
    {13, "Q5_K", 256, 176, DType::q5_k},
    {14, "Q6_K", 256, 210, DType::q6_k},
    {15, "Q8_K", 256, 292, std::nullopt},
    {16, "IQ2_XXS", 256, 66, std::nullopt},
    {17, "IQ2_XS", 256, 74, std::nullopt},
    {18, "IQ3_XXS", 256, 98, std::nullopt},
    {19, "IQ1_S", 256, 50, std::nullopt},
    {20, "IQ4_NL", 32, 18, std::nullopt},
    {21, "IQ3_S", 256, 110, std::nullopt},
    {22, "IQ2_S", 256, 82, std::nullopt},
    {23, "IQ4_XS", 256, 136, std::nullopt},
    {24, "I8", 1, 1, DType::i8},
    {25, "I16", 1, 2, DType::i16},
    {26, "I32", 1, 4, DType::i32},
    {27, "I64", 1, 8, DType::i64},
    {28, "F64", 1, 8, DType::f64},
    {29, "IQ1_M", 256, 56, std::nullopt},
    {30, "BF16", 1, 2, DType::bf16},
    {34, "TQ1_0", 256, 54, std::nullopt},
    {35, "TQ2_0", 256, 66, std::nullopt},
}};

// Bytes of one scalar of `type`; 0 for string and array.
uint64_t scalar_bytes(GgufType type) {
  switch (type) {
    case u8:
    case i8:
    case bool_:
      return 1;
    case u16:
    case i16:
      return 2;
    case u32:
    case i32:
    case f32:
      return 4;
    case u64:
    case i64:
    case f64:
      return 8;
    case string:
    case array:
      return 0;
  }
  return 0;
}

bool known_type(uint32_t type) { return type <= static_cast<uint32_t>(f64); }

// A cursor over the file's bytes: every read checks that the bytes are there.
class Reader {
 public:
  Reader(std::span<const std::byte> bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  uint64_t position() const { return pos_; }
  void skip(uint64_t n) {
    need(n, "the magic");
    pos_ += n;
  }
  uint64_t left() const { return bytes_.size() - pos_; }

  void need(uint64_t n, std::string_view what) const {
    if (n > left())
      fail("{}: {}: {} bytes needed at offset {}, but the file ends {} bytes later", file_, what, n, pos_, left());
  }
  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string read_string(std::string_view what) {
    const auto length = read<uint64_t>(what);
    need(length, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(length));
    pos_ += length;
    return s;
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& file_;
  uint64_t pos_ = 0;
};

// One scalar of `type` as JSON (for arrays of arrays), or as a MetaValue.
nlohmann::json read_scalar_json(Reader& r, GgufType type, const std::string& file, const std::string& what) {
  switch (type) {
    case u8:
      return r.read<uint8_t>(what);
    case i8:
      return r.read<int8_t>(what);
    case u16:
      return r.read<uint16_t>(what);
    case i16:
      return r.read<int16_t>(what);
    case u32:
      return r.read<uint32_t>(what);
    case i32:
      return r.read<int32_t>(what);
    case u64:
      return r.read<uint64_t>(what);
    case i64:
      return r.read<int64_t>(what);
    case f32:
      return r.read<float>(what);
    case f64:
      return r.read<double>(what);
    case bool_: {
      const auto b = r.read<uint8_t>(what);
      if (b > 1) fail("{}: {}: a bool must be 0 or 1, found {}", file, what, b);
      return b == 1;
    }
    case string:
      return r.read_string(what);
    case array:
      break;
  }
  fail("{}: {}: not a scalar type", file, what);
}

uint32_t read_type(Reader& r, const std::string& file, const std::string& what) {
  const auto type = r.read<uint32_t>(what);
  if (!known_type(type)) fail("{}: {} has unknown value type {} (GGUF defines 0 to 12)", file, what, type);
  return type;
}

// Checks that `count` elements of `element` can fit in what is left.
void check_count(Reader& r, uint64_t count, GgufType element, const std::string& file, const std::string& what) {
  const uint64_t least = element == string ? 8 : element == array ? 12 : scalar_bytes(element);
  if (count > r.left() / least)
    fail("{}: {} claims {} elements of {} but only {} bytes are left in the file", file, what, count,
         gguf_type_name(static_cast<uint32_t>(element)), r.left());
}

nlohmann::json read_array_json(Reader& r, const std::string& file, const std::string& what, int depth) {
  if (depth > kMaxArrayDepth) fail("{}: {} nests arrays more than {} deep", file, what, kMaxArrayDepth);
  const auto element = static_cast<GgufType>(read_type(r, file, what + " element type"));
  const auto count = r.read<uint64_t>(what + " length");
  check_count(r, count, element, file, what);
  nlohmann::json out = nlohmann::json::array();
  for (uint64_t i = 0; i < count; ++i) {
    const std::string at = fmt::format("{}[{}]", what, i);
    out.push_back(element == array ? read_array_json(r, file, at, depth + 1) : read_scalar_json(r, element, file, at));
  }
  return out;
}

int64_t as_int(const nlohmann::json& v) {
  return v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
}
bool fits_int64(const nlohmann::json& v) {
  return !v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

MetaValue scalar_value(const nlohmann::json& v, GgufType type) {
  if (type == string) return v.get<std::string>();
  if (type == bool_) return v.get<bool>();
  if (type == f32 || type == f64) return v.get<double>();
  if (!fits_int64(v)) return std::to_string(v.get<uint64_t>());
  return as_int(v);
}

GgufEntry read_entry(Reader& r, const std::string& file, uint64_t index) {
  GgufEntry e;
  e.key = r.read_string(fmt::format("metadata key {}", index));
  if (e.key.empty()) fail("{}: metadata key {} is empty", file, index);
  const std::string what = fmt::format("metadata '{}'", e.key);
  e.type = static_cast<GgufType>(read_type(r, file, what));
  if (e.type != array) {
    e.value = scalar_value(read_scalar_json(r, e.type, file, what), e.type);
    return e;
  }
  e.element = static_cast<GgufType>(read_type(r, file, what + " element type"));
  e.count = r.read<uint64_t>(what + " length");
  check_count(r, e.count, e.element, file, what);
  const auto n = static_cast<size_t>(e.count);
  auto item = [&](uint64_t i) { return fmt::format("{}[{}]", what, i); };
  switch (e.element) {
    case string: {
      std::vector<std::string> items;
      items.reserve(n);
      for (size_t i = 0; i < n; ++i) items.push_back(r.read_string(item(i)));
      e.value = std::move(items);
      break;
    }
    case f32:
    case f64: {
      std::vector<double> items;
      items.reserve(n);
      for (size_t i = 0; i < n; ++i)
        items.push_back(e.element == f32 ? r.read<float>(item(i)) : r.read<double>(item(i)));
      e.value = std::move(items);
      break;
    }
    case bool_: {
      std::vector<bool> items;
      items.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        const auto b = r.read<uint8_t>(item(i));
        if (b > 1) fail("{}: {}: a bool must be 0 or 1, found {}", file, item(i), b);
        items.push_back(b == 1);
      }
      e.value = std::move(items);
      break;
    }
    case array: {
      nlohmann::json items = nlohmann::json::array();
      for (size_t i = 0; i < n; ++i) items.push_back(read_array_json(r, file, item(i), 2));
      // Strings need not be valid UTF-8: JSON text replaces bad bytes.
      e.value = items.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      break;
    }
    default: {  // integers
      std::vector<int64_t> items;
      items.reserve(n);
      bool all_fit = true;
      nlohmann::json big = nlohmann::json::array();
      for (size_t i = 0; i < n; ++i) {
        const nlohmann::json v = read_scalar_json(r, e.element, file, item(i));
        all_fit = all_fit && fits_int64(v);
        if (all_fit) items.push_back(as_int(v));
        big.push_back(v);
      }
      if (all_fit)
        e.value = std::move(items);
      else
        e.value = big.dump();  // u64s above INT64_MAX: kept as text
    }
  }
  return e;
}

// a * b, or nullopt on overflow.
std::optional<uint64_t> times(uint64_t a, uint64_t b) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return std::nullopt;
  return a * b;
}

struct TensorInfo {
  GgufTensor tensor;
  uint64_t size = 0;  // bytes
};

TensorInfo read_tensor_info(Reader& r, const std::string& file, uint64_t index) {
  TensorInfo info;
  GgufTensor& t = info.tensor;
  t.name = r.read_string(fmt::format("the name of tensor {}", index));
  if (t.name.empty()) fail("{}: tensor {} has an empty name", file, index);
  const std::string what = fmt::format("tensor '{}'", t.name);
  const auto n_dims = r.read<uint32_t>("the n_dims of " + what);
  if (n_dims < 1 || n_dims > kMaxDims)
    fail("{}: {} has {} dimensions; GGUF allows 1 to {}", file, what, n_dims, kMaxDims);
  std::vector<uint64_t> ne(n_dims);  // innermost first, as stored
  for (auto& d : ne) {
    d = r.read<uint64_t>("the dims of " + what);
    if (d == 0 || d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: {} has dimension {}; each must be between 1 and 2^63-1", file, what, d);
  }
  t.type = r.read<uint32_t>("the type of " + what);
  t.offset = r.read<uint64_t>("the offset of " + what);
  const GgmlType* type = ggml_type(t.type);
  if (type == nullptr) fail("{}: {} has unknown GGML type {}", file, what, t.type);
  uint64_t count = 1;
  for (uint64_t d : ne) {
    const auto product = times(count, d);
    if (!product || *product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: {} has more elements than fit in 64 bits", file, what);
    count = *product;
  }
  const auto block = static_cast<uint64_t>(type->block);
  if (ne[0] % block != 0)
    fail("{}: {} of type {} has an innermost dimension {} that is not a multiple of its {}-element block", file, what,
         type->name, ne[0], block);
  const auto size = times(count / block, static_cast<uint64_t>(type->block_bytes));
  if (!size) fail("{}: {} has more bytes than fit in 64 bits", file, what);
  info.size = *size;
  for (auto d = ne.rbegin(); d != ne.rend(); ++d) t.dims.push_back(static_cast<int64_t>(*d));
  return info;
}

}  // namespace

std::string gguf_type_name(uint32_t type) {
  static constexpr std::array<std::string_view, 13> kNames = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                              "bool", "string", "array", "u64", "i64", "f64"};
  return type < kNames.size() ? std::string(kNames[type]) : fmt::format("type {}", type);
}

const GgmlType* ggml_type(uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

const GgmlType* ggml_type_of(DType dtype) {
  for (const auto& t : kGgmlTypes)
    if (t.dtype == dtype) return &t;
  return nullptr;
}

bool is_gguf(std::span<const std::byte> bytes) {
  return bytes.size() >= 4 && std::equal(kMagic.begin(), kMagic.end(), bytes.begin());
}

GgufFile parse_gguf(SourcePtr source) {
  const std::string& file = source->name();
  const auto bytes = source->bytes();
  if (!is_gguf(bytes)) fail("{}: not a GGUF file (it does not start with the magic \"GGUF\")", file);
  Reader r(bytes, file);
  r.skip(kMagic.size());
  GgufFile out;
  out.source = source;
  out.version = r.read<uint32_t>("the version");
  if (out.version == 0x02000000u || out.version == 0x03000000u)
    fail("{}: a big-endian GGUF file (version {}); kiln reads little-endian ones", file,
         __builtin_bswap32(out.version));
  if (out.version != 2 && out.version != 3)
    fail("{}: GGUF version {} is not supported (kiln reads versions 2 and 3)", file, out.version);
  const auto tensor_count = r.read<uint64_t>("the tensor count");
  const auto entry_count = r.read<uint64_t>("the metadata count");
  if (entry_count > r.left() / kMinEntryBytes)
    fail("{}: the header claims {} metadata entries but only {} bytes follow", file, entry_count, r.left());
  if (tensor_count > r.left() / kMinTensorInfoBytes)
    fail("{}: the header claims {} tensors but only {} bytes follow", file, tensor_count, r.left());

  std::set<std::string, std::less<>> keys;
  for (uint64_t i = 0; i < entry_count; ++i) {
    GgufEntry e = read_entry(r, file, i);
    if (!keys.insert(e.key).second) fail("{}: metadata key '{}' appears twice", file, e.key);
    if (e.key == "general.alignment") {
      if (e.type != u32)
        fail("{}: general.alignment must be a u32, found a {}", file, gguf_type_name(static_cast<uint32_t>(e.type)));
      const auto alignment = static_cast<uint64_t>(std::get<int64_t>(e.value));
      if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        fail("{}: general.alignment is {}; it must be a power of two", file, alignment);
      out.alignment = alignment;
    }
    out.metadata.push_back(std::move(e));
  }

  std::vector<TensorInfo> infos;
  std::set<std::string, std::less<>> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo info = read_tensor_info(r, file, i);
    if (!names.insert(info.tensor.name).second) fail("{}: tensor '{}' appears twice", file, info.tensor.name);
    infos.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment (the
  // positions so far are within the file, so this cannot overflow).
  const uint64_t infos_end = r.position();
  out.data_offset = (infos_end + out.alignment - 1) / out.alignment * out.alignment;
  if (out.data_offset > bytes.size() && !infos.empty())
    fail("{}: the data section would start at offset {}, past the end of the {}-byte file", file, out.data_offset,
         bytes.size());
  const auto data = out.data_offset <= bytes.size() ? bytes.subspan(out.data_offset) : std::span<const std::byte>{};

  for (TensorInfo& info : infos) {
    GgufTensor& t = info.tensor;
    if (t.offset % out.alignment != 0)
      fail("{}: tensor '{}' starts at data offset {}, not a multiple of the alignment {}", file, t.name, t.offset,
           out.alignment);
    if (t.offset > data.size() || info.size > data.size() - t.offset)
      fail("{}: tensor '{}' ({} bytes at data offset {}) runs past the {}-byte data section", file, t.name, info.size,
           t.offset, data.size());
    t.bytes = data.subspan(t.offset, info.size);
  }
  std::vector<const TensorInfo*> by_offset;
  for (const auto& info : infos) by_offset.push_back(&info);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->tensor.offset < b->tensor.offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& before = *by_offset[i - 1];
    const TensorInfo& next = *by_offset[i];
    if (next.tensor.offset < before.tensor.offset + before.size)
      fail("{}: tensor '{}' (data offset {}) overlaps tensor '{}' (bytes [{}, {}))", file, next.tensor.name,
           next.tensor.offset, before.tensor.name, before.tensor.offset, before.tensor.offset + before.size);
  }

  for (TensorInfo& info : infos) {
    GgufTensor& t = info.tensor;
    if (const auto dtype = ggml_type(t.type)->dtype) {
      const Shape shape(t.dims, *dtype);
      const size_t alignment = is_quantized(*dtype) ? 1 : size_of(*dtype);
      const bool aligned = reinterpret_cast<uintptr_t>(t.bytes.data()) % alignment == 0;
      t.buffer = aligned ? HostBuffer::borrow(shape, t.bytes, source) : HostBuffer::copy_of(shape, t.bytes);
    }
    out.tensors.push_back(std::move(t));
  }
  return out;
}

namespace {

class Writer {
 public:
  std::vector<std::byte> bytes;

  template <typename T>
  void put(T value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    bytes.insert(bytes.end(), p, p + s.size());
  }
  void pad_to(uint64_t alignment) { bytes.resize((bytes.size() + alignment - 1) / alignment * alignment); }
};

template <typename T>
void put_integer(Writer& w, int64_t value, GgufType type, const std::string& key) {
  if (!std::in_range<T>(value))
    fail("write_gguf: metadata '{}': {} is out of range for {}", key, value,
         gguf_type_name(static_cast<uint32_t>(type)));
  w.put<T>(static_cast<T>(value));
}

void put_scalar(Writer& w, GgufType type, const MetaValue& value, const std::string& key) {
  auto wrong = [&]() {
    fail("write_gguf: metadata '{}' is a {} but its value is {}", key, gguf_type_name(static_cast<uint32_t>(type)),
         type_name(value));
  };
  const auto* i = std::get_if<int64_t>(&value);
  const auto* d = std::get_if<double>(&value);
  switch (type) {
    case u8:
    case i8:
    case u16:
    case i16:
    case u32:
    case i32:
    case u64:
    case i64:
      if (!i) wrong();
      if (type == u8) return put_integer<uint8_t>(w, *i, type, key);
      if (type == i8) return put_integer<int8_t>(w, *i, type, key);
      if (type == u16) return put_integer<uint16_t>(w, *i, type, key);
      if (type == i16) return put_integer<int16_t>(w, *i, type, key);
      if (type == u32) return put_integer<uint32_t>(w, *i, type, key);
      if (type == i32) return put_integer<int32_t>(w, *i, type, key);
      if (type == u64) return put_integer<uint64_t>(w, *i, type, key);
      return put_integer<int64_t>(w, *i, type, key);
    case f32:
    case f64: {
      if (!i && !d) wrong();
      const double v = d ? *d : static_cast<double>(*i);
      return type == f32 ? w.put<float>(static_cast<float>(v)) : w.put<double>(v);
    }
    case bool_:
      if (!std::holds_alternative<bool>(value)) wrong();
      return w.put<uint8_t>(std::get<bool>(value) ? 1 : 0);
    case string:
      if (!std::holds_alternative<std::string>(value)) wrong();
      return w.put_string(std::get<std::string>(value));
    case array:
      break;
  }
  wrong();
}

void put_entry(Writer& w, const GgufWriteEntry& e) {
  if (e.key.empty()) fail("write_gguf: a metadata key is empty");
  w.put_string(e.key);
  w.put<uint32_t>(static_cast<uint32_t>(e.type));
  if (e.type != array) return put_scalar(w, e.type, e.value, e.key);
  if (e.element == array) fail("write_gguf: metadata '{}': arrays of arrays are not written", e.key);
  w.put<uint32_t>(static_cast<uint32_t>(e.element));
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::vector<int64_t>> || std::is_same_v<V, std::vector<double>> ||
                      std::is_same_v<V, std::vector<bool>> || std::is_same_v<V, std::vector<std::string>>) {
          w.put<uint64_t>(v.size());
          for (const auto& item : v) put_scalar(w, e.element, MetaValue(item), e.key);
        } else {
          fail("write_gguf: metadata '{}' is an array but its value is {}", e.key, type_name(e.value));
        }
      },
      e.value);
}

}  // namespace

std::vector<std::byte> serialize_gguf(const std::vector<GgufWriteEntry>& metadata,
                                      const std::vector<std::pair<std::string, HostBuffer>>& tensors) {
  std::set<std::string, std::less<>> keys, names;
  bool has_alignment = false;
  for (const auto& e : metadata) {
    if (!keys.insert(e.key).second) fail("write_gguf: metadata key '{}' is given twice", e.key);
    if (e.key == "general.alignment" &&
        !(e.type == u32 && std::holds_alternative<int64_t>(e.value) && std::get<int64_t>(e.value) == 32))
      fail("write_gguf: general.alignment must be the u32 32 the writer aligns to");
    has_alignment = has_alignment || e.key == "general.alignment";
  }
  Writer w;
  w.bytes.insert(w.bytes.end(), kMagic.begin(), kMagic.end());
  w.put<uint32_t>(3);
  w.put<uint64_t>(tensors.size());
  w.put<uint64_t>(metadata.size() + (has_alignment ? 0 : 1));
  if (!has_alignment) put_entry(w, {"general.alignment", u32, int64_t{32}});
  for (const auto& e : metadata) put_entry(w, e);
  uint64_t offset = 0;
  std::vector<HostBuffer> contiguous;
  for (const auto& [name, buffer] : tensors) {
    if (name.empty()) fail("write_gguf: a tensor name is empty");
    if (!names.insert(name).second) fail("write_gguf: tensor '{}' is given twice", name);
    const Shape& shape = buffer.shape();
    const GgmlType* type = ggml_type_of(shape.dtype());
    if (type == nullptr)
      fail("write_gguf: tensor '{}' is {}, which GGUF does not hold", name, kiln::name(shape.dtype()));
    if (shape.rank() < 1 || shape.rank() > kMaxDims)
      fail("write_gguf: tensor '{}' has rank {}; GGUF holds 1 to {}", name, shape.rank(), kMaxDims);
    w.put_string(name);
    w.put<uint32_t>(static_cast<uint32_t>(shape.rank()));
    for (int i = shape.rank() - 1; i >= 0; --i) w.put<uint64_t>(static_cast<uint64_t>(shape.dim(i)));
    w.put<uint32_t>(type->id);
    w.put<uint64_t>(offset);
    offset += (shape.byte_size() + kDefaultAlignment - 1) / kDefaultAlignment * kDefaultAlignment;
    contiguous.push_back(buffer.is_contiguous() ? buffer : buffer.copy());
  }
  w.pad_to(kDefaultAlignment);
  for (const HostBuffer& b : contiguous) {
    w.bytes.insert(w.bytes.end(), b.bytes().begin(), b.bytes().end());
    w.pad_to(kDefaultAlignment);
  }
  return std::move(w.bytes);
}

void write_gguf(const std::filesystem::path& path, const std::vector<GgufWriteEntry>& metadata,
                const std::vector<std::pair<std::string, HostBuffer>>& tensors) {
  const auto bytes = serialize_gguf(metadata, tensors);
  AtomicFile file(path);
  file.write(bytes);
  file.commit();
}

}  // namespace kiln::io
