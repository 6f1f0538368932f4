#include "inspect.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <set>

#include "kiln/io/open.h"

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

nlohmann::json to_json(const io::MetaValue& value) {
  return std::visit(
      [](const auto& v) -> nlohmann::json {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>)
          return nullptr;
        else
          return v;
      },
      value);
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
  for (const auto& [key, value] : store.metadata().entries()) metadata[key] = to_json(value);
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

}  // namespace

void inspect(const std::filesystem::path& path, bool json, std::ostream& out) {
  const io::BufferStore store = io::open(path);
  if (json)
    print_json(store, out);
  else
    print_table(path, store, out);
}

}  // namespace kiln::tools
