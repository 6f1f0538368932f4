#include "kiln/io/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "kiln/io/atomic_file.h"

namespace kiln::io {
namespace {

using nlohmann::json;

uint64_t read_le64(const std::byte* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

// Parses the header, rejecting a tensor name that appears twice (plain JSON
// parsing would silently keep the last one).
json parse_header(std::string_view text, const std::string& file) {
  std::string duplicate;
  std::set<std::string, std::less<>> seen;
  auto reject_duplicates = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, reject_duplicates);
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON ({})", file, e.what());
  }
  if (!duplicate.empty()) fail("{}: tensor '{}' appears twice in the header", file, duplicate);
  if (!header.is_object()) fail("{}: header must be a JSON object, found {}", file, header.type_name());
  return header;
}

uint64_t as_u64(const json& value, const std::string& file, const std::string& tensor, std::string_view what) {
  if (!value.is_number_unsigned())
    fail("{}: tensor '{}': {} must be non-negative integers, found {}", file, tensor, what, value.dump());
  return value.get<uint64_t>();
}

struct Range {
  uint64_t begin, end;
  const std::string* name;
};

Shape parse_shape(const json& entry, const std::string& file, const std::string& tensor) {
  if (!entry.contains("dtype")) fail("{}: tensor '{}' has no \"dtype\"", file, tensor);
  const json& dtype_json = entry["dtype"];
  if (!dtype_json.is_string())
    fail("{}: tensor '{}': dtype must be a string, found {}", file, tensor, dtype_json.dump());
  auto dtype = dtype_from_safetensors(dtype_json.get_ref<const std::string&>());
  if (!dtype) fail("{}: tensor '{}' has unknown dtype {}", file, tensor, dtype_json.dump());

  if (!entry.contains("shape")) fail("{}: tensor '{}' has no \"shape\"", file, tensor);
  const json& shape_json = entry["shape"];
  if (!shape_json.is_array())
    fail("{}: tensor '{}': shape must be an array, found {}", file, tensor, shape_json.dump());
  if (shape_json.size() > kMaxRank)
    fail("{}: tensor '{}' has rank {}, more than the {} kiln supports", file, tensor, shape_json.size(), kMaxRank);
  std::vector<int64_t> dims;
  for (const auto& d : shape_json) {
    uint64_t size = as_u64(d, file, tensor, "shape dims");
    if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: tensor '{}': shape dim {} is too large", file, tensor, size);
    dims.push_back(static_cast<int64_t>(size));
  }
  Shape shape(dims, *dtype);
  try {
    (void)shape.byte_size();
  } catch (const Error&) {
    fail("{}: tensor '{}': shape {} overflows 64 bits", file, tensor, shape.dims_string());
  }
  return shape;
}

Metadata parse_metadata_block(const json& block, const std::string& file) {
  if (!block.is_object()) fail("{}: __metadata__ must be an object, found {}", file, block.type_name());
  Metadata metadata;
  for (const auto& [key, value] : block.items()) {
    if (!value.is_string()) fail("{}: __metadata__ '{}' must be a string, found {}", file, key, value.dump());
    metadata.set(key, value.get<std::string>());
  }
  return metadata;
}

// The ranges must tile [0, data_size) exactly: sorted by start, each begins
// where the previous ended and the last ends at the end of the data.
void check_tiling(std::vector<Range>& ranges, uint64_t data_size, const std::string& file) {
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t expected = 0;
  const std::string* previous = nullptr;
  for (const auto& r : ranges) {
    if (r.begin < expected)
      fail("{}: tensor '{}' (bytes [{}, {})) overlaps tensor '{}' (ending at {})", file, *r.name, r.begin, r.end,
           *previous, expected);
    if (r.begin > expected)
      fail("{}: bytes [{}, {}) of the data section before tensor '{}' belong to no tensor (a hole)", file, expected,
           r.begin, *r.name);
    expected = r.end;
    previous = r.name;
  }
  if (expected != data_size)
    fail("{}: the data section has {} bytes but the tensors cover only {}", file, data_size, expected);
}

}  // namespace

SafetensorsFile parse_safetensors(SourcePtr source) {
  const std::string& file = source->name();
  const auto bytes = source->bytes();
  if (bytes.size() < 8)
    fail("{}: {} bytes is too short for a safetensors file (needs an 8-byte header length)", file, bytes.size());
  const uint64_t header_size = read_le64(bytes.data());
  if (header_size > kMaxHeaderBytes)
    fail("{}: header length {} is over the {} byte limit (is this a safetensors file?)", file, header_size,
         kMaxHeaderBytes);
  if (header_size > bytes.size() - 8)
    fail("{}: header length {} runs past the end of the {}-byte file", file, header_size, bytes.size());
  if (header_size < 2) fail("{}: header length {} is too short for a JSON object", file, header_size);

  const std::string_view header_text(reinterpret_cast<const char*>(bytes.data()) + 8, header_size);
  const json header = parse_header(header_text, file);

  SafetensorsFile result;
  result.source = source;
  result.data_offset = 8 + header_size;
  const auto data = bytes.subspan(result.data_offset);

  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      result.metadata = parse_metadata_block(entry, file);
      continue;
    }
    if (name.empty()) fail("{}: a tensor has an empty name", file);
    if (!entry.is_object()) fail("{}: tensor '{}': entry must be an object, found {}", file, name, entry.dump());
    Shape shape = parse_shape(entry, file, name);

    if (!entry.contains("data_offsets")) fail("{}: tensor '{}' has no \"data_offsets\"", file, name);
    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2)
      fail("{}: tensor '{}': data_offsets must be [begin, end], found {}", file, name, offsets.dump());
    const uint64_t begin = as_u64(offsets[0], file, name, "data_offsets");
    const uint64_t end = as_u64(offsets[1], file, name, "data_offsets");
    if (begin > end) fail("{}: tensor '{}': data_offsets [{}, {}] end before they begin", file, name, begin, end);
    if (end > data.size())
      fail("{}: tensor '{}': data_offsets [{}, {}] run past the {}-byte data section", file, name, begin, end,
           data.size());
    if (end - begin != shape.byte_size())
      fail("{}: tensor '{}': shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}", file, name,
           shape.dims_string(), info(shape.dtype()).safetensors, shape.byte_size(), begin, end, end - begin);

    // Zero copy when the bytes are aligned for the dtype (always, for files
    // written with 8-byte aligned tensors); a misaligned tensor is copied so
    // typed access through it stays well defined.
    const auto tensor_bytes = data.subspan(begin, end - begin);
    const bool aligned = reinterpret_cast<uintptr_t>(tensor_bytes.data()) % size_of(shape.dtype()) == 0;
    result.tensors.push_back(
        {name, aligned ? HostBuffer::borrow(shape, tensor_bytes, source) : HostBuffer::copy_of(shape, tensor_bytes)});
    ranges.push_back({begin, end, nullptr});
  }
  for (size_t i = 0; i < ranges.size(); ++i) ranges[i].name = &result.tensors[i].name;
  check_tiling(ranges, data.size(), file);
  return result;
}

namespace {

// Header JSON (padded with spaces so the data section starts 8-byte aligned)
// and the tensors in the order they are laid out.
std::pair<std::string, std::vector<const std::pair<std::string, HostBuffer>*>> build_header(
    const NamedBuffers& tensors, const std::map<std::string, std::string>& metadata) {
  std::vector<const std::pair<std::string, HostBuffer>*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->first == order[i - 1]->first) fail("write_safetensors: tensor '{}' is given twice", order[i]->first);

  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto* t : order) {
    if (t->first.empty() || t->first == "__metadata__") fail("write_safetensors: invalid tensor name '{}'", t->first);
    const Shape& shape = t->second.shape();
    const uint64_t size = shape.byte_size();
    header[t->first] = {{"dtype", info(shape.dtype()).safetensors},
                        {"shape", std::vector<int64_t>(shape.dims().begin(), shape.dims().end())},
                        {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::type_error& e) {  // JSON text must be UTF-8
    fail("write_safetensors: a tensor name or metadata value is not UTF-8: {}", e.what());
  }
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  return {std::move(text), std::move(order)};
}

void append_le64(std::vector<std::byte>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((value >> (8 * i)) & 0xFF));
}

}  // namespace

std::vector<std::byte> serialize_safetensors(const NamedBuffers& tensors,
                                             const std::map<std::string, std::string>& metadata) {
  auto [header, order] = build_header(tensors, metadata);
  std::vector<std::byte> out;
  append_le64(out, header.size());
  auto header_bytes = std::as_bytes(std::span(header));
  out.insert(out.end(), header_bytes.begin(), header_bytes.end());
  for (const auto* t : order) {
    const HostBuffer contiguous = t->second.is_contiguous() ? t->second : t->second.copy();
    out.insert(out.end(), contiguous.bytes().begin(), contiguous.bytes().end());
  }
  return out;
}

void write_safetensors(const std::filesystem::path& path, const NamedBuffers& tensors,
                       const std::map<std::string, std::string>& metadata) {
  auto [header, order] = build_header(tensors, metadata);
  AtomicFile file(path);
  std::vector<std::byte> prefix;
  append_le64(prefix, header.size());
  file.write(prefix);
  file.write(std::as_bytes(std::span(header)));
  for (const auto* t : order) {
    const HostBuffer contiguous = t->second.is_contiguous() ? t->second : t->second.copy();
    file.write(contiguous.bytes());
  }
  file.commit();
}

}  // namespace kiln::io
