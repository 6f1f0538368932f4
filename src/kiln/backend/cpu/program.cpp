#include "kiln/backend/cpu/program.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include "kiln/backend/cpu/packed_weights.h"
#include "kiln/backend/reference/index_util.h"
#include "kiln/backend/reference/interpreter.h"
#include "kiln/core/element.h"

namespace kiln::cpu {
namespace {

struct CpuWeights final : backend::PreparedWeights {
  std::vector<HostBuffer> buffers;                        // the weights as bound (kept alive)
  std::vector<std::shared_ptr<const HostBuffer>> packed;  // per packed matmul weight (see packed_weights.h)
};

// A dynamic_update_slice in place: when the result shares the operand's
// memory (a donated cache), only the update's rows are written. The start
// indices are scalars of `start_dtypes` at `start_data`; nothing is
// allocated (a KV-cache update runs once per layer per token).
void update_slice(const HostBuffer& operand, const HostBuffer& update, const DType* start_dtypes,
                  std::byte* const* start_data, HostBuffer& out) {
  const Shape& s = operand.shape();
  const size_t element = size_of(s.dtype());
  if (out.data() != operand.data() && s.byte_size() > 0) std::memcpy(out.mutable_data(), operand.data(), s.byte_size());
  const Shape& u = update.shape();
  if (u.count() == 0) return;
  std::array<int64_t, kMaxRank> index{};
  for (int i = 0; i < s.rank(); ++i) {
    const int64_t given = reference::load_index(start_dtypes[i], start_data[i]);
    index[static_cast<size_t>(i)] = std::clamp<int64_t>(given, 0, s.dim(i) - u.dim(i));
  }
  const std::span<const int64_t> at(index.data(), static_cast<size_t>(s.rank()));
  // Copy the update row by row (its last axis is contiguous in both): the
  // row's position is the start plus the row's index in the update.
  const int64_t row = u.rank() == 0 ? 1 : u.dim(-1);
  const int64_t rows = u.count() / row;
  const std::array<int64_t, kMaxRank> start = index;
  std::byte* base = out.mutable_data();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rest = r;
    for (int i = u.rank() - 2; i >= 0; --i) {
      index[static_cast<size_t>(i)] = start[static_cast<size_t>(i)] + rest % u.dim(i);
      rest /= u.dim(i);
    }
    std::memcpy(base + out.offset_of(at), update.data() + r * row * static_cast<int64_t>(element),
                static_cast<size_t>(row) * element);
  }
}

}  // namespace

backend::Artifacts CpuProgram::artifacts() const {
  backend::Artifacts out;
  for (const auto& library : libraries_) out.emplace("cpu.kernels." + library->digest(), library->bytes());
  out.emplace("cpu.features", fmt::format("{}", fmt::join(host_isa_features(), " ")));
  out.emplace("cpu.compiler", !saved_compiler_.empty() ? saved_compiler_
                              : libraries_.empty()     ? std::string("none")
                                                       : compiler_identity());
  return out;
}

CpuProgram::CpuProgram(backend::Signature signature, std::vector<Slot> slots, std::vector<Step> steps,
                       std::vector<HostBuffer> constants, size_t arena_bytes,
                       std::vector<std::shared_ptr<const Library>> libraries, std::string saved_compiler)
    : Program(std::move(signature)),
      slots_(std::move(slots)),
      steps_(std::move(steps)),
      constants_(std::move(constants)),
      libraries_(std::move(libraries)),
      saved_compiler_(std::move(saved_compiler)),
      arena_(HostBuffer::uninitialized(Shape({static_cast<int64_t>(arena_bytes)}, DType::u8))),
      pointers_(slots_.size(), nullptr) {
  const char* profile = std::getenv("KILN_PROFILE");
  profile_ = profile != nullptr && std::string_view(profile) != "0";
  step_seconds_.assign(steps_.size(), 0.0);
  size_t most = 0;
  for (const Step& s : steps_) most = std::max(most, s.reads.size() + s.writes.size());
  arguments_.resize(most);
  matmul_extra_.resize(most);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].kind == Slot::Kind::arena) pointers_[i] = arena_.mutable_data() + slots_[i].index;
    if (slots_[i].kind == Slot::Kind::constant)
      pointers_[i] = const_cast<std::byte*>(constants_[slots_[i].index].data());
    if (slots_[i].kind == Slot::Kind::view && pointers_[static_cast<size_t>(slots_[i].base)] != nullptr)
      pointers_[i] = pointers_[static_cast<size_t>(slots_[i].base)] + slots_[i].index;
  }
}

CpuProgram::~CpuProgram() {
  if (!profile_ || calls_ == 0) return;
  std::vector<size_t> order(steps_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return step_seconds_[a] > step_seconds_[b]; });
  double total = 0;
  for (double t : step_seconds_) total += t;
  fmt::print(stderr, "kiln profile: {} calls, {:.3f} ms per call; the steps taking most of it:\n", calls_,
             1e3 * total / static_cast<double>(calls_));
  for (size_t k = 0; k < std::min<size_t>(order.size(), 15); ++k) {
    const size_t i = order[k];
    fmt::print(stderr, "  {:5.1f}% {:8.3f} ms  step {:3} {}\n", 100 * step_seconds_[i] / total,
               1e3 * step_seconds_[i] / static_cast<double>(calls_), i, steps_[i].what);
  }
  // The same time by the op that leads each step ("[dot_general] ...").
  std::map<std::string, std::pair<double, int>> by_op;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const std::string& what = steps_[i].what;
    const size_t close = what.find(']');
    auto& [seconds, count] = by_op[close == std::string::npos ? what : what.substr(0, close + 1)];
    seconds += step_seconds_[i];
    ++count;
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> ops(by_op.begin(), by_op.end());
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  fmt::print(stderr, "kiln profile by op:\n");
  for (const auto& [op, entry] : ops)
    fmt::print(stderr, "  {:5.1f}% {:8.3f} ms  {:4} steps  {}\n", 100 * entry.first / total,
               1e3 * entry.first / static_cast<double>(calls_), entry.second, op);
}

std::shared_ptr<const backend::PreparedWeights> CpuProgram::prepare(std::span<const HostBuffer> weights) const {
  auto prepared = std::make_shared<CpuWeights>();
  prepared->buffers.assign(weights.begin(), weights.end());
  for (const Step& step : steps_) {
    if (step.packed_weight < 0) continue;
    const HostBuffer& source = weights[slots_[static_cast<size_t>(step.reads[1])].index];
    const size_t bytes = step.matmul ? step.matmul->packed_bytes() : step.convolution->packed_bytes();
    const std::string key = step.matmul ? step.matmul->packing_key() : step.convolution->packing_key();
    auto packed = packed_weight(source, key, bytes, [&](std::byte* to) {
      if (step.matmul)
        step.matmul->pack(source.data(), to);
      else
        step.convolution->pack(source.data(), to);
    });
    if (prepared->packed.size() <= static_cast<size_t>(step.packed_weight))
      prepared->packed.resize(static_cast<size_t>(step.packed_weight) + 1);
    prepared->packed[static_cast<size_t>(step.packed_weight)] = std::move(packed);
  }
  return prepared;
}

std::string CpuProgram::describe() const {
  static constexpr const char* kinds[] = {"kernel",        "matmul",   "convolution", "update_slice",
                                          "shared_kernel", "callback", "copy"};
  static constexpr const char* homes[] = {"param", "const", "arena", "out", "view"};
  auto slots = [&](const std::vector<int32_t>& list) {
    std::string text;
    for (int32_t i : list) {
      const Slot& s = slots_[static_cast<size_t>(i)];
      text += fmt::format("{}{}{}{} {}", text.empty() ? "" : ", ", homes[static_cast<int>(s.kind)], s.index,
                          s.kind == Slot::Kind::view ? fmt::format("@{}", s.base) : "", s.shape.to_string());
    }
    return text;
  };
  std::string out = fmt::format("{} steps, arena {} bytes\n", steps_.size(), arena_bytes());
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    out += fmt::format("{:4} {:13} {:28} ({}) -> ({}){}\n", i, kinds[static_cast<int>(s.kind)], s.what, slots(s.reads),
                       slots(s.writes), s.packed_weight >= 0 ? " packed" : "");
  }
  return out;
}

HostBuffer CpuProgram::view(int32_t slot) const {
  const Slot& s = slots_[static_cast<size_t>(slot)];
  return HostBuffer::view(s.shape, pointers_[static_cast<size_t>(slot)], nullptr);
}

void CpuProgram::run_library(const Step& step, const backend::PreparedWeights* weights) const {
  const auto* prepared = static_cast<const CpuWeights*>(weights);
  const void* lhs = pointers_[static_cast<size_t>(step.reads[0])];
  const void* rhs = step.packed_weight >= 0 ? prepared->packed[static_cast<size_t>(step.packed_weight)]->data()
                                            : pointers_[static_cast<size_t>(step.reads[1])];
  void* out = pointers_[static_cast<size_t>(step.writes[0])];
  if (step.convolution) return step.convolution->run(lhs, rhs, out);
  // The epilogue's extra inputs: the reads after lhs and rhs.
  for (size_t i = 2; i < step.reads.size(); ++i) matmul_extra_[i - 2] = pointers_[static_cast<size_t>(step.reads[i])];
  step.matmul->run(lhs, rhs, out, matmul_extra_.data());
}

void CpuProgram::launch(const Step& step, const ir::CallbackStates& callbacks) const {
  auto ptr = [&](int32_t slot) { return pointers_[static_cast<size_t>(slot)]; };
  switch (step.kind) {
    case Step::Kind::kernel: {
      size_t n = 0;
      for (int32_t s : step.reads) arguments_[n++] = reinterpret_cast<char*>(ptr(s));
      for (int32_t s : step.writes) arguments_[n++] = reinterpret_cast<char*>(ptr(s));
      step.kernel(arguments_.data());
      return;
    }
    case Step::Kind::matmul:
    case Step::Kind::convolution:
      return;  // run_library()
    case Step::Kind::update_slice: {
      const size_t rank = step.reads.size() - 2;
      std::array<DType, kMaxRank> start_dtypes{};
      std::array<std::byte*, kMaxRank> start_data{};
      for (size_t i = 0; i < rank; ++i) {
        start_dtypes[i] = slots_[static_cast<size_t>(step.reads[2 + i])].shape.dtype();
        start_data[i] = ptr(step.reads[2 + i]);
      }
      HostBuffer out = view(step.writes[0]);
      update_slice(view(step.reads[0]), view(step.reads[1]), start_dtypes.data(), start_data.data(), out);
      return;
    }
    case Step::Kind::copy: {
      const size_t bytes = slots_[static_cast<size_t>(step.writes[0])].shape.byte_size();
      if (bytes > 0 && ptr(step.writes[0]) != ptr(step.reads[0]))
        std::memcpy(ptr(step.writes[0]), ptr(step.reads[0]), bytes);
      return;
    }
    case Step::Kind::shared_kernel:
    case Step::Kind::callback: {
      std::vector<HostBuffer> operands;
      for (int32_t s : step.reads) operands.push_back(view(s));
      if (step.kind == Step::Kind::callback) {
        const auto& attrs = step.node.attrs_as<ir::CustomCallAttrs>();
        std::vector<HostBuffer> outputs;
        for (int32_t s : step.writes) outputs.push_back(view(s));
        ir::invoke(*static_cast<const ir::HostCallback*>(attrs.payload.get()), callbacks, operands, outputs);
        return;
      }
      const std::vector<HostBuffer> results = reference::evaluate_node(step.node, operands);
      for (size_t i = 0; i < results.size(); ++i) {
        const HostBuffer flat = results[i].is_contiguous() ? results[i] : results[i].copy();
        const size_t bytes = flat.shape().byte_size();
        if (bytes > 0 && flat.data() != ptr(step.writes[i])) std::memcpy(ptr(step.writes[i]), flat.data(), bytes);
      }
      return;
    }
  }
}

void CpuProgram::run(const backend::PreparedWeights* weights, std::span<const HostBuffer> arguments,
                     std::span<HostBuffer> outputs, const ir::CallbackStates& callbacks) const {
  std::lock_guard lock(mutex_);
  const auto* prepared = static_cast<const CpuWeights*>(weights);
  const size_t weight_count = signature().weight_count;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.kind == Slot::Kind::parameter)
      pointers_[i] = const_cast<std::byte*>(s.index < weight_count ? prepared->buffers[s.index].data()
                                                                   : arguments[s.index - weight_count].data());
    else if (s.kind == Slot::Kind::output)
      pointers_[i] = outputs[s.index].mutable_data();
    else if (s.kind == Slot::Kind::view)  // bases come first, so they are set already
      pointers_[i] = pointers_[static_cast<size_t>(s.base)] + s.index;
  }
  using Clock = std::chrono::steady_clock;
  ++calls_;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& step = steps_[i];
    const auto start = profile_ ? Clock::now() : Clock::time_point{};
    if (step.kind == Step::Kind::matmul || step.kind == Step::Kind::convolution)
      run_library(step, prepared);
    else
      launch(step, callbacks);
    if (profile_) step_seconds_[i] += std::chrono::duration<double>(Clock::now() - start).count();
  }
}

}  // namespace kiln::cpu
