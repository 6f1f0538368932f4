// Weight-loading benchmark: creates (once) a large safetensors file, then
// measures on the warm page cache
//   1. opening it (header parse: should cost O(header), not O(file)), and
//   2. reading every tensor through a fresh mapping (page faults included)
//      against plain memcpy from already-resident anonymous memory, in the
//      same run and into the same destination.
// Usage: kiln_bench_io [PATH] [GiB] [tensors]
//        defaults: bench-data/io-2gb.safetensors 2 64
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kiln/io/open.h"
#include "kiln/io/safetensors.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void create(const std::filesystem::path& path, uint64_t total_bytes, int tensors) {
  fmt::print("creating {} ({} tensors, {:.1f} GiB)...\n", path.string(), tensors, total_bytes / 1073741824.0);
  std::filesystem::create_directories(path.parent_path());
  const int64_t per_tensor = static_cast<int64_t>(total_bytes / tensors / 4);
  kiln::io::NamedBuffers buffers;
  for (int i = 0; i < tensors; ++i) {
    auto b = kiln::HostBuffer::allocate(kiln::Shape({per_tensor / 1024, 1024}, kiln::DType::f32));
    std::fill(b.mutable_span<float>().begin(), b.mutable_span<float>().end(), static_cast<float>(i));
    buffers.emplace_back(fmt::format("layers.{}.weight", i), std::move(b));
  }
  kiln::io::write_safetensors(path, buffers);
}

// Reads the whole file once so the measurements see a warm page cache.
void warm_page_cache(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chunk(1 << 24);
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path path = argc > 1 ? argv[1] : "bench-data/io-2gb.safetensors";
  const double gib = argc > 2 ? std::stod(argv[2]) : 2.0;
  const int tensors = argc > 3 ? std::stoi(argv[3]) : 64;
  const auto total = static_cast<uint64_t>(gib * 1073741824.0);
  try {
    if (!std::filesystem::exists(path) || std::filesystem::file_size(path) < total) create(path, total, tensors);
    warm_page_cache(path);

    double open_best = 1e9;
    for (int rep = 0; rep < 20; ++rep) {
      auto start = Clock::now();
      auto store = kiln::io::open(path);
      open_best = std::min(open_best, seconds_since(start));
    }

    auto probe = kiln::io::open(path);
    size_t largest = 0, bytes = 0;
    for (const auto& name : probe.names()) {
      largest = std::max(largest, probe.get(name).shape().byte_size());
      bytes += probe.get(name).shape().byte_size();
    }
    std::vector<std::byte> destination(largest, std::byte{1});  // resident before timing
    std::vector<std::byte> resident(bytes, std::byte{2});       // memcpy baseline source

    double mapped_best = 1e9, memcpy_best = 1e9;
    for (int rep = 0; rep < 5; ++rep) {
      {
        // Fresh mapping each time, so page-table set-up is part of the cost.
        auto start = Clock::now();
        auto store = kiln::io::open(path);
        for (const auto& name : store.names()) {
          auto src = store.get(name).bytes();
          std::memcpy(destination.data(), src.data(), src.size());
        }
        mapped_best = std::min(mapped_best, seconds_since(start));
      }
      {
        auto start = Clock::now();
        for (size_t offset = 0; offset < bytes; offset += largest) {
          const size_t n = std::min(largest, bytes - offset);
          std::memcpy(destination.data(), resident.data() + offset, n);
        }
        memcpy_best = std::min(memcpy_best, seconds_since(start));
      }
    }
    const double gb = bytes / 1e9;
    fmt::print("file: {} ({:.2f} GB, {} tensors)\n", path.string(), gb, probe.size());
    fmt::print("open (header parse):           {:.3f} ms (best of 20)\n", open_best * 1e3);
    fmt::print("read all tensors, fresh mmap:  {:.2f} GB/s (best of 5)\n", gb / mapped_best);
    fmt::print("plain memcpy, resident memory: {:.2f} GB/s (best of 5)\n", gb / memcpy_best);
    fmt::print("mmap read / memcpy:            {:.0f}%\n", 100.0 * memcpy_best / mapped_best);
  } catch (const std::exception& e) {
    fmt::print(stderr, "kiln_bench_io: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
