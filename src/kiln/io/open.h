#pragma once
// Opening a model's weights into a BufferStore: a single .safetensors file, a
// sharded model's *.safetensors.index.json, a model directory holding
// either (model.safetensors or model.safetensors.index.json), or a GGUF file
// (known by its magic; its metadata is the store's, and no config.json is
// read beside it). For safetensors, a config.json
// next to the weights is flattened into the store's metadata
// ("rope_scaling.factor"), after the safetensors/index metadata, so config
// keys win on a clash.
#include <filesystem>

#include "kiln/io/buffer_store.h"
#include "kiln/io/weight_source.h"

namespace kiln::io {

struct OpenOptions {
  SourceKind source = SourceKind::mapped;  // in_memory reads files into RAM
  bool load_config = true;                 // read config.json beside the weights
};

BufferStore open(const std::filesystem::path& path, const OpenOptions& options = {});

// Just the config.json at `path`, flattened.
Metadata load_config(const std::filesystem::path& path, SourceKind source = SourceKind::mapped);

}  // namespace kiln::io
