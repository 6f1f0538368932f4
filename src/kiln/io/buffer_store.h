#pragma once
// BufferStore: the weights of a model by name. Buffers borrow from their
// weight files (zero copy) and keep the files alive; copies of a store are
// cheap and share the data.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/io/metadata.h"

namespace kiln::io {

class BufferStore {
 public:
  // Adds a tensor read from `file` (a path, shown by inspect and in errors).
  // A name already present is an error naming both files.
  void add(std::string name, HostBuffer buffer, std::string file);

  bool contains(std::string_view name) const { return tensors_.find(name) != tensors_.end(); }
  // True if `name` is a tensor or some tensor is named "name.<more>".
  bool contains_prefix(std::string_view name) const;
  size_t size() const { return tensors_.size(); }
  std::vector<std::string> names() const;  // sorted
  // The tensor called `name` (zero copy). A missing name is an error that
  // lists the most similar names in the store.
  const HostBuffer& get(std::string_view name) const;
  const std::string& file_of(std::string_view name) const;

  // Number of numbered children under `prefix`: count_layers("model.layers")
  // is 22 when model.layers.0.* ... model.layers.21.* exist. Numbers must run
  // from 0 without gaps; 0 when there are none.
  int64_t count_layers(std::string_view prefix) const;

  // The tensors under "prefix." with that prefix removed (zero copy).
  BufferStore view(std::string_view prefix) const;

  const Metadata& metadata() const { return metadata_; }
  Metadata& metadata() { return metadata_; }
  template <typename T>
  T metadata(std::string_view key) const {
    return metadata_.get<T>(key);
  }

  // Up to `limit` names of the store most similar to `name`, best first.
  std::vector<std::string> similar_names(std::string_view name, size_t limit = 5) const;

 private:
  struct Entry {
    HostBuffer buffer;
    std::string file;
  };
  const Entry& entry(std::string_view name) const;

  std::map<std::string, Entry, std::less<>> tensors_;
  Metadata metadata_;
};

// Up to `limit` of `candidates` most like the dotted name `name`, best first:
// the same name with another parameter suffix or prefix, then names sharing
// components, exact ones or typos (a few edits).
std::vector<std::string> most_similar(std::string_view name, const std::vector<std::string>& candidates, size_t limit);

}  // namespace kiln::io
