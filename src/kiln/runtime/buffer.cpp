#include "kiln/runtime/buffer.h"

namespace kiln {

Buffer Buffer::from(const Platform& platform, const HostBuffer& host) {
  Buffer b;
  // Host platforms use the memory as it is when it is laid out row-major;
  // strided views are copied once here rather than on every call.
  b.state_ = std::make_shared<State>(State{host.is_contiguous() ? host : host.copy(), platform, false});
  return b;
}

const Shape& Buffer::shape() const { return memory("buffer").shape(); }

const Platform& Buffer::platform() const {
  if (!state_) fail("buffer is empty (default-constructed Buffer)");
  return state_->platform;
}

HostBuffer Buffer::to_host() const { return memory("buffer").copy(); }

const HostBuffer& Buffer::memory(std::string_view what) const {
  if (!state_) fail("{} is empty (default-constructed Buffer)", what);
  if (state_->donated) fail("{} was donated to an earlier call and can no longer be used", what);
  return state_->memory;
}

}  // namespace kiln
