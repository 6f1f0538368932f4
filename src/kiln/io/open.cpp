#include "kiln/io/open.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "kiln/io/gguf.h"
#include "kiln/io/safetensors.h"

namespace kiln::io {
namespace {

namespace fs = std::filesystem;

std::string_view text_of(const WeightSource& source) {
  return {reinterpret_cast<const char*>(source.bytes().data()), source.bytes().size()};
}

void add_file(BufferStore& store, const SafetensorsFile& file) {
  for (const auto& t : file.tensors) store.add(t.name, t.buffer, file.source->name());
}

// A GGUF file is self-contained: its metadata is the configuration, so no
// config.json is read beside it. A tensor of a GGML type kiln has no dtype
// for is an error (`kiln inspect` still lists it).
BufferStore open_gguf(SourcePtr source) {
  const GgufFile file = parse_gguf(std::move(source));
  BufferStore store;
  for (const auto& t : file.tensors) {
    if (!t.buffer)
      fail("{}: tensor '{}' has GGML type {}, which kiln does not read", file.source->name(), t.name,
           ggml_type(t.type)->name);
    store.add(t.name, *t.buffer, file.source->name());
  }
  for (const auto& e : file.metadata) store.metadata().set(e.key, e.value);
  store.metadata().set_missing_key_hint(
      fmt::format("'{}' is a GGUF file and its metadata has no such key", file.source->name()));
  return store;
}

BufferStore open_single(SourcePtr source) {
  auto file = parse_safetensors(std::move(source));
  BufferStore store;
  add_file(store, file);
  store.metadata().merge(file.metadata);
  return store;
}

// A shard name must be a plain file name in the index's directory: the index
// is untrusted and must not send us elsewhere on the file system.
void check_shard_name(const std::string& shard, const std::string& index) {
  const fs::path p(shard);
  if (shard.empty() || p.has_parent_path() || p.is_absolute() || shard == "." || shard == "..")
    fail("{}: shard '{}' must be a file name in the index's directory", index, shard);
}

BufferStore open_sharded(const fs::path& index_path, const OpenOptions& options) {
  auto index_source = open_source(index_path, options.source);
  const std::string& index_name = index_source->name();
  const nlohmann::json index = parse_json(text_of(*index_source), index_name);
  if (!index.is_object()) fail("{}: an index must be a JSON object", index_name);
  if (!index.contains("weight_map") || !index["weight_map"].is_object())
    fail("{}: no \"weight_map\" object (tensor name -> shard file)", index_name);

  // Each shard is opened once, however many tensors it holds.
  std::map<std::string, SafetensorsFile> shards;
  BufferStore store;
  for (const auto& [tensor, shard_json] : index["weight_map"].items()) {
    if (!shard_json.is_string())
      fail("{}: weight_map['{}'] must be a shard file name, found {}", index_name, tensor, shard_json.dump());
    const std::string& shard = shard_json.get_ref<const std::string&>();
    check_shard_name(shard, index_name);
    auto it = shards.find(shard);
    if (it == shards.end()) {
      const fs::path shard_path = index_path.parent_path() / shard;
      std::error_code missing;
      if (!fs::exists(shard_path, missing))
        fail("{}: shard '{}' (holding '{}') does not exist at {}", index_name, shard, tensor, shard_path.string());
      it = shards.emplace(shard, parse_safetensors(open_source(shard_path, options.source))).first;
    }
    const SafetensorsFile& file = it->second;
    const std::string& wanted = tensor;  // clang 16 cannot capture a structured binding under -fopenmp
    auto found =
        std::find_if(file.tensors.begin(), file.tensors.end(), [&](const auto& t) { return t.name == wanted; });
    if (found == file.tensors.end())
      fail("{}: tensor '{}' is mapped to shard '{}' but that shard does not contain it", index_name, tensor, shard);
    store.add(tensor, found->buffer, file.source->name());
  }
  for (const auto& [_, file] : shards) store.metadata().merge(file.metadata);
  if (index.contains("metadata")) {
    if (!index["metadata"].is_object()) fail("{}: \"metadata\" must be an object", index_name);
    flatten_json(index["metadata"], index_name, store.metadata());
  }
  return store;
}

bool is_index(const fs::path& path) { return path.filename().string().ends_with(".index.json"); }

// The weights file inside a model directory.
fs::path find_weights(const fs::path& dir) {
  for (const char* name : {"model.safetensors", "model.safetensors.index.json"})
    if (fs::exists(dir / name)) return dir / name;
  // Otherwise accept a single index or a single .safetensors file of another name.
  std::vector<fs::path> indexes, files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".safetensors.index.json"))
      indexes.push_back(e.path());
    else if (name.ends_with(".safetensors"))
      files.push_back(e.path());
  }
  if (indexes.size() == 1) return indexes[0];
  if (indexes.empty() && files.size() == 1) return files[0];
  fail(
      "{}: found {} index files and {} .safetensors files; expected model.safetensors, "
      "model.safetensors.index.json, or exactly one of either",
      dir.string(), indexes.size(), files.size());
}

BufferStore open_weights(const fs::path& path, const OpenOptions& options) {
  std::error_code error;
  const auto status = fs::status(path, error);
  if (!fs::exists(status)) fail("'{}' does not exist", path.string());
  const fs::path weights = fs::is_directory(status) ? find_weights(path) : path;
  BufferStore store;
  if (is_index(weights)) {
    store = open_sharded(weights, options);
  } else {
    SourcePtr source = open_source(weights, options.source);
    if (is_gguf(source->bytes()) || weights.extension() == ".gguf") return open_gguf(std::move(source));
    store = open_single(std::move(source));
  }
  const fs::path config = weights.parent_path() / "config.json";
  if (!options.load_config)
    store.metadata().set_missing_key_hint("the store was opened without its config.json");
  else if (fs::exists(config))
    store.metadata().merge(load_config(config, options.source));
  else
    store.metadata().set_missing_key_hint(
        fmt::format("there is no config.json in '{}', so the store has only the weight files' own metadata",
                    weights.parent_path().empty() ? "." : weights.parent_path().string()));
  return store;
}

}  // namespace

Metadata load_config(const fs::path& path, SourceKind source) {
  auto config = open_source(path, source);
  return parse_json_metadata(text_of(*config), config->name());
}

BufferStore open(const fs::path& path, const OpenOptions& options) {
  try {
    return open_weights(path, options);
  } catch (const fs::filesystem_error& e) {
    fail("cannot open '{}': {}", path.string(), e.what());
  }
}

}  // namespace kiln::io
