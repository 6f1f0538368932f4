#include "inspect.h"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <set>

#include "kiln/io/gguf.h"
#include "kiln/io/open.h"
#include "kiln/runtime/executable.h"

namespace kiln::tools {
namespace {

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

void print_json(const io::BufferStore& store, std::ostream& out) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& name : store.names()) {
    const Shape& shape = store.get(name).shape();
    tensors.push_back({{"name", name},
                       {"dtype", info(shape.dtype()).safetensors},
                       {"shape", std::vector<int64_t>(shape.dims().begin(), shape.dims().end())},
                       {"file", file_name(store.file_of(name))}});
  }
  nlohmann::json metadata = nlohmann::json::object();
  for (const auto& [key, value] : store.metadata().entries()) metadata[key] = io::as_json(value);
  out << nlohmann::json{{"tensors", tensors}, {"metadata", metadata}}.dump(2) << '\n';
}

void print_table(const std::filesystem::path& path, const io::BufferStore& store, std::ostream& out) {
  const auto names = store.names();
  size_t name_width = 4, shape_width = 5;
  for (const auto& name : names) {
    name_width = std::max(name_width, name.size());
    shape_width = std::max(shape_width, store.get(name).shape().dims_string().size());
  }
  uint64_t total_bytes = 0, total_elements = 0;
  std::set<std::string> files;
  fmt::print(out, "{:<{}}  {:<7}  {:<{}}  {:>12}  {}\n", "name", name_width, "dtype", "shape", shape_width, "bytes",
             "file");
  for (const auto& name : names) {
    const Shape& shape = store.get(name).shape();
    const std::string& file = store.file_of(name);
    fmt::print(out, "{:<{}}  {:<7}  {:<{}}  {:>12}  {}\n", name, name_width, info(shape.dtype()).safetensors,
               shape.dims_string(), shape_width, shape.byte_size(), file_name(file));
    total_bytes += shape.byte_size();
    total_elements += static_cast<uint64_t>(shape.count());
    files.insert(file);
  }
  if (!store.metadata().empty()) {
    fmt::print(out, "\nmetadata:\n");
    for (const auto& [key, value] : store.metadata().entries())
      fmt::print(out, "  {} = {}\n", key, io::to_string(value));
  }
  const std::string size = total_bytes < 1024 ? human_bytes(total_bytes)
                                              : fmt::format("{} ({} bytes)", human_bytes(total_bytes), total_bytes);
  fmt::print(out, "\n{}: {} tensors, {} elements, {} in {} file{}\n", path.string(), names.size(), total_elements, size,
             files.size(), files.size() == 1 ? "" : "s");
}

// --- GGUF files: every tensor with its GGML type (kiln reads only some of
// them), and the metadata with its GGUF types.

std::string gguf_value_type(const io::GgufEntry& e) {
  if (e.type != io::GgufType::array) return io::gguf_type_name(static_cast<uint32_t>(e.type));
  return fmt::format("array[{}, {}]", io::gguf_type_name(static_cast<uint32_t>(e.element)), e.count);
}

// Long arrays (a vocabulary's 32000 tokens) show their first few items.
std::string short_value(const io::MetaValue& value) {
  constexpr size_t kShown = 8;
  return std::visit(
      [&](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::vector<int64_t>> || std::is_same_v<V, std::vector<double>> ||
                      std::is_same_v<V, std::vector<bool>> || std::is_same_v<V, std::vector<std::string>>) {
          if (v.size() <= kShown) return io::to_string(value);
          const V head(v.begin(), v.begin() + kShown);
          std::string text = io::to_string(io::MetaValue(head));
          text.insert(text.size() - 1, fmt::format(", ... {} more", v.size() - kShown));
          return text;
        } else {
          return io::to_string(value);
        }
      },
      value);
}

void print_gguf_json(const io::GgufFile& file, std::ostream& out) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : file.tensors)
    tensors.push_back({{"name", t.name},
                       {"dtype", io::ggml_type(t.type)->name},
                       {"shape", t.dims},
                       {"file", file_name(file.source->name())}});
  nlohmann::json metadata = nlohmann::json::object();
  for (const auto& e : file.metadata) metadata[e.key] = io::as_json(e.value);
  // GGUF strings need not be valid UTF-8: bad bytes print as U+FFFD.
  out << nlohmann::json{{"tensors", tensors}, {"metadata", metadata}}.dump(2, ' ', false,
                                                                           nlohmann::json::error_handler_t::replace)
      << '\n';
}

void print_gguf_table(const std::filesystem::path& path, const io::GgufFile& file, std::ostream& out) {
  size_t name_width = 4, shape_width = 5;
  for (const auto& t : file.tensors) {
    name_width = std::max(name_width, t.name.size());
    shape_width = std::max(shape_width, fmt::format("[{}]", fmt::join(t.dims, ", ")).size());
  }
  fmt::print(out, "{:<{}}  {:<7}  {:<{}}  {:>12}  {}\n", "name", name_width, "type", "shape", shape_width, "bytes",
             "offset");
  uint64_t total_bytes = 0, total_elements = 0;
  for (const auto& t : file.tensors) {
    uint64_t elements = 1;
    for (int64_t d : t.dims) elements *= static_cast<uint64_t>(d);
    fmt::print(out, "{:<{}}  {:<7}  {:<{}}  {:>12}  {}\n", t.name, name_width, io::ggml_type(t.type)->name,
               fmt::format("[{}]", fmt::join(t.dims, ", ")), shape_width, t.bytes.size(), file.data_offset + t.offset);
    total_bytes += t.bytes.size();
    total_elements += elements;
  }
  if (!file.metadata.empty()) {
    fmt::print(out, "\nmetadata:\n");
    for (const auto& e : file.metadata)
      fmt::print(out, "  {} ({}) = {}\n", e.key, gguf_value_type(e), short_value(e.value));
  }
  const std::string size = total_bytes < 1024 ? human_bytes(total_bytes)
                                              : fmt::format("{} ({} bytes)", human_bytes(total_bytes), total_bytes);
  fmt::print(out, "\n{}: GGUF v{}, {} tensors, {} elements, {}, alignment {}\n", path.string(), file.version,
             file.tensors.size(), total_elements, size, file.alignment);
}

}  // namespace

// A kiln file (exe.save, kiln compile's entries, a kernel cache entry): its manifest.
void print_saved_executable(const std::filesystem::path& path, bool json, std::ostream& out) {
  const auto manifest = nlohmann::json::parse(detail::saved_manifest(path));
  if (json) {
    fmt::print(out, "{}\n", manifest.dump());
    return;
  }
  const std::string kind = manifest.value("kind", "executable");
  fmt::print(out, "{}: kiln {}, format {}, saved by kiln {} for the '{}' backend\n", path.string(),
             kind == "cpu kernels" ? "kernel cache entry" : kind, manifest.value("format", "?"),
             manifest.value("kiln_version", "?"), manifest.value("backend", "?"));
  if (manifest.contains("graph_hash")) fmt::print(out, "graph hash {}\n", manifest["graph_hash"].get<std::string>());
  if (manifest.contains("digest")) fmt::print(out, "kernels digest {}\n", manifest["digest"].get<std::string>());
  if (manifest.contains("compiler")) fmt::print(out, "compiler: {}\n", manifest["compiler"].get<std::string>());
  if (manifest.contains("cpu_features"))
    fmt::print(out, "CPU features: {}\n", manifest["cpu_features"].get<std::string>());
  const size_t weights = manifest.value("weight_count", size_t{0});
  size_t i = 0;
  for (const auto& p : manifest.value("parameters", nlohmann::json::array())) {
    const auto& shape = p["shape"];
    std::vector<std::string> dims;
    for (size_t d = 0; d < shape["dims"].size(); ++d) {
      const std::string tag = shape["tags"][d];
      dims.push_back(tag.empty() ? fmt::format("{}", shape["dims"][d].get<int64_t>())
                                 : fmt::format("{}={}", tag, shape["dims"][d].get<int64_t>()));
    }
    fmt::print(out, "  {:8} {} {{{}}} {}\n", i++ < weights ? "weight" : "argument", p["name"].get<std::string>(),
               fmt::join(dims, ","), shape["dtype"].get<std::string>());
  }
  for (const auto& c : manifest.value("callbacks", nlohmann::json::array()))
    fmt::print(out, "  callback {}\n", c.get<std::string>());
  for (const auto& s : manifest["sections"])
    fmt::print(out, "  section  {} ({})\n", s["name"].get<std::string>(), human_bytes(s["size"].get<uint64_t>()));
}

void inspect(const std::filesystem::path& path, bool json, std::ostream& out) {
  std::error_code error;
  if (std::filesystem::is_regular_file(path, error)) {
    auto source = io::map_file(path);
    const auto head = source->bytes();
    if (detail::is_saved_executable({reinterpret_cast<const char*>(head.data()), head.size()}))
      return print_saved_executable(path, json, out);
    if (io::is_gguf(source->bytes()) || path.extension() == ".gguf") {
      const io::GgufFile file = io::parse_gguf(std::move(source));
      return json ? print_gguf_json(file, out) : print_gguf_table(path, file, out);
    }
  }
  const io::BufferStore store = io::open(path);
  if (json)
    print_json(store, out);
  else
    print_table(path, store, out);
}

}  // namespace kiln::tools
