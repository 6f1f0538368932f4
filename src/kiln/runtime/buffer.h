#pragma once
// Buffer: an array in a platform's memory. On host platforms it shares the
// HostBuffer it was made from (zero copy, e.g. straight from a mapped
// weight file). Copies of a Buffer are handles on the same memory.
//
// Donation: passing kiln::donate(buffer) to an executable lets it reuse the
// buffer's memory for an output of the same shape (the KV-cache update
// case). The donated buffer, and every copy of it, is unusable afterwards.
#include <memory>

#include "kiln/core/host_buffer.h"
#include "kiln/runtime/platform.h"

namespace kiln {

class Buffer {
 public:
  Buffer() = default;
  static Buffer from(const Platform& platform, const HostBuffer& host);

  const Shape& shape() const;
  DType dtype() const { return shape().dtype(); }
  const Platform& platform() const { return platform_; }
  // A copy of the contents in host memory.
  HostBuffer to_host() const;
  bool is_donated() const { return state_ && state_->donated; }

  // For the runtime: the memory, checked not to be donated; `what` names the
  // buffer in the error.
  const HostBuffer& memory(std::string_view what) const;
  void mark_donated() const { state_->donated = true; }

 private:
  struct State {
    HostBuffer memory;
    bool donated = false;
  };
  std::shared_ptr<State> state_;
  Platform platform_ = Platform::cpu();
};

// An argument whose memory the executable may reuse for an output.
struct Donated {
  Buffer buffer;
};
inline Donated donate(const Buffer& buffer) { return Donated{buffer}; }

}  // namespace kiln
