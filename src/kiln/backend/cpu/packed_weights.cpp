#include "kiln/backend/cpu/packed_weights.h"

#include <map>
#include <mutex>
#include <tuple>

namespace kiln::cpu {
namespace {

struct Packed {
  HostBuffer source;  // kept alive: its address names it in the registry
  HostBuffer packed;
};

using Key = std::tuple<const std::byte*, size_t, std::string>;  // source address, bytes, packing

struct Registry {
  std::mutex mutex;
  std::map<Key, std::weak_ptr<const Packed>> entries;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: programs may outlive static destructors
  return *r;
}

HostBuffer fresh_copy(size_t bytes, const std::function<void(std::byte*)>& pack) {
  HostBuffer packed = HostBuffer::uninitialized(Shape({static_cast<int64_t>(bytes)}, DType::u8));
  pack(packed.mutable_data());
  return packed;
}

}  // namespace

std::shared_ptr<const HostBuffer> packed_weight(const HostBuffer& source, const std::string& key, size_t bytes,
                                                const std::function<void(std::byte*)>& pack) {
  if (!source.is_borrowed()) {
    auto own = std::make_shared<Packed>(Packed{source, fresh_copy(bytes, pack)});
    return std::shared_ptr<const HostBuffer>(own, &own->packed);
  }
  Registry& r = registry();
  const Key name{source.data(), source.shape().byte_size(), key};
  std::lock_guard lock(r.mutex);
  if (auto it = r.entries.find(name); it != r.entries.end())
    if (std::shared_ptr<const Packed> shared = it->second.lock())
      return std::shared_ptr<const HostBuffer>(shared, &shared->packed);
  // Entries of copies that are gone are dropped as new ones come.
  std::erase_if(r.entries, [](const auto& entry) { return entry.second.expired(); });
  auto made = std::make_shared<const Packed>(Packed{source, fresh_copy(bytes, pack)});
  r.entries[name] = made;
  return std::shared_ptr<const HostBuffer>(made, &made->packed);
}

size_t packed_weight_count() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  size_t alive = 0;
  for (const auto& [name, entry] : r.entries) alive += entry.expired() ? 0 : 1;
  return alive;
}

}  // namespace kiln::cpu
