#pragma once
// A file written atomically: the bytes go to a temporary file in the target's
// directory, and commit() flushes it and renames it over the target, so a
// reader sees the old file or the whole new one, never a part. Without
// commit() (an error on the way) the temporary file is removed.
#include <filesystem>
#include <span>
#include <string>

namespace kiln::io {

class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> bytes);
  void commit();

 private:
  std::filesystem::path target_;
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace kiln::io
