#include "kiln/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kiln/core/error.h"

namespace kiln::io {

AtomicFile::AtomicFile(const std::filesystem::path& target) : target_(target), path_(target.string() + ".tmp-XXXXXX") {
  fd_ = ::mkstemp(path_.data());
  if (fd_ < 0) fail("cannot create a temporary file next to '{}': {}", target.string(), std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(path_.c_str());
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write '{}': {}", path_, std::strerror(errno));
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail("cannot flush '{}': {}", path_, std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(path_.c_str(), target_.c_str()) != 0)
    fail("cannot rename '{}' to '{}': {}", path_, target_.string(), std::strerror(errno));
  committed_ = true;
}

}  // namespace kiln::io
