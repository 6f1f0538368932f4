#pragma once
// Buffer: a handle on an array in memory that its platform's backend owns
// (host memory for the CPU backends today; the same type holds device memory
// later). Buffer::from shares host memory it is given when it is laid out
// row-major (zero copy, e.g. straight from a mapped weight file). Copies of
// a Buffer are handles on the same memory.
//
// Donation: passing kiln::donate(buffer) to an executable lets the program
// write an output straight into the buffer's memory (the KV-cache update
// case). The donated buffer, and every copy of it, is unusable afterwards.
#include <memory>

#include "kiln/core/host_buffer.h"
#include "kiln/runtime/platform.h"

namespace kiln {

class Buffer {
 public:
  Buffer() = default;
  static Buffer from(const Platform& platform, const HostBuffer& host);
  // A buffer holding a copy of `values` (see HostBuffer::from_values):
  //   Buffer ids = Buffer::from(platform, Shape({{"s", 3}}, DType::i32), std::vector<int32_t>{1, 5, 9});
  template <typename T>
  static Buffer from(const Platform& platform, const Shape& shape, std::span<const T> values) {
    return from(platform, HostBuffer::from_values(shape, values));
  }
  template <typename T>
  static Buffer from(const Platform& platform, const Shape& shape, const std::vector<T>& values) {
    return from(platform, HostBuffer::from_values(shape, values));
  }

  const Shape& shape() const;
  DType dtype() const { return shape().dtype(); }
  const Platform& platform() const;
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
    Platform platform;
    bool donated = false;
  };
  std::shared_ptr<State> state_;
};

// An argument whose memory the executable may reuse for an output.
struct Donated {
  Buffer buffer;
};
inline Donated donate(const Buffer& buffer) { return Donated{buffer}; }

}  // namespace kiln
