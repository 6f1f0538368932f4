#include "kiln/io/weight_source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kiln/core/error.h"

namespace kiln::io {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(const std::filesystem::path& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) fail("cannot open '{}': {}", path.string(), std::strerror(errno));
  }
  ~FileDescriptor() { ::close(fd_); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

  size_t regular_file_size(const std::filesystem::path& path) const {
    struct stat info {};
    if (::fstat(fd_, &info) != 0) fail("cannot stat '{}': {}", path.string(), std::strerror(errno));
    if (!S_ISREG(info.st_mode)) fail("'{}' is not a regular file", path.string());
    return static_cast<size_t>(info.st_size);
  }

 private:
  int fd_;
};

class MappedFile final : public WeightSource {
 public:
  explicit MappedFile(const std::filesystem::path& path) : name_(path.string()) {
    FileDescriptor fd(path);
    size_ = fd.regular_file_size(path);
    if (size_ == 0) return;  // mmap rejects length 0; an empty span is the truth
    void* address = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (address == MAP_FAILED) fail("cannot map '{}': {}", name_, std::strerror(errno));
    address_ = address;
    // Weights are read front to back once (copied, converted or packed), so
    // aggressive read-ahead is right; failure is harmless.
    ::madvise(address_, size_, MADV_SEQUENTIAL);
  }
  ~MappedFile() override {
    if (address_ != nullptr) ::munmap(address_, size_);
  }
  std::span<const std::byte> bytes() const override { return {static_cast<const std::byte*>(address_), size_}; }
  const std::string& name() const override { return name_; }

 private:
  std::string name_;
  void* address_ = nullptr;
  size_t size_ = 0;
};

class OwnedBytes final : public WeightSource {
 public:
  OwnedBytes(std::vector<std::byte> bytes, std::string name) : bytes_(std::move(bytes)), name_(std::move(name)) {}
  std::span<const std::byte> bytes() const override { return bytes_; }
  const std::string& name() const override { return name_; }

 private:
  std::vector<std::byte> bytes_;
  std::string name_;
};

}  // namespace

SourcePtr map_file(const std::filesystem::path& path) { return std::make_shared<MappedFile>(path); }

SourcePtr read_file(const std::filesystem::path& path) {
  FileDescriptor fd(path);
  std::vector<std::byte> bytes(fd.regular_file_size(path));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot read '{}': {}", path.string(), std::strerror(errno));
    if (n == 0) fail("'{}' shrank while being read", path.string());
    done += static_cast<size_t>(n);
  }
  return std::make_shared<OwnedBytes>(std::move(bytes), path.string());
}

SourcePtr from_bytes(std::vector<std::byte> bytes, std::string name) {
  return std::make_shared<OwnedBytes>(std::move(bytes), std::move(name));
}

SourcePtr open_source(const std::filesystem::path& path, SourceKind kind) {
  return kind == SourceKind::mapped ? map_file(path) : read_file(path);
}

}  // namespace kiln::io
