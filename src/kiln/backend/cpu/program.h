#pragma once
// The CPU backend's runtime: a compiled program is a flat list of steps
// (generated kernels, oneDNN matmuls and convolutions, in-place slice updates, shared kernels
// for the rare ops, host callbacks, copies) over numbered slots. A slot is a
// parameter, a constant, a piece of the one arena planned at compile time,
// an output, or a view of another slot. run() fills the slot table and launches the steps in order:
// no graph walking, and no allocation beyond what the shared kernels of the
// rare ops (sort, gather, ...) make.
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "kiln/backend/backend.h"
#include "kiln/backend/cpu/compiler.h"
#include "kiln/backend/cpu/convolution.h"
#include "kiln/backend/cpu/matmul.h"

namespace kiln::cpu {

struct Slot {
  // view: bytes of another slot (a reshape, a contiguous slice), no copy.
  enum class Kind : uint8_t { parameter, constant, arena, output, view };
  Kind kind;
  size_t index = 0;  // parameter, constant or output number; arena and view: byte offset
  Shape shape;
  int32_t base = -1;  // view: the slot it is part of
};

using KernelFunction = void (*)(char* const* args);

struct Step {
  enum class Kind : uint8_t { kernel, matmul, convolution, update_slice, shared_kernel, callback, copy };
  Kind kind;
  std::vector<int32_t> reads;   // slots read
  std::vector<int32_t> writes;  // slots written
  KernelFunction kernel = nullptr;
  std::shared_ptr<const Matmul> matmul;
  std::shared_ptr<const Convolution> convolution;
  int packed_weight = -1;  // matmul, convolution: index into the prepared packed weights, or -1
  ir::Node node;           // shared kernels and callbacks: the node they compute
  std::string what;        // for errors: "[sort] %12"
};

class CpuProgram final : public backend::Program {
 public:
  ~CpuProgram() override;
  CpuProgram(backend::Signature signature, std::vector<Slot> slots, std::vector<Step> steps,
             std::vector<HostBuffer> constants, size_t arena_bytes,
             std::vector<std::shared_ptr<const Library>> libraries, std::string saved_compiler = "");

  std::shared_ptr<const backend::PreparedWeights> prepare(std::span<const HostBuffer> weights) const override;
  void run(const backend::PreparedWeights* weights, std::span<const HostBuffer> arguments,
           std::span<HostBuffer> outputs, const ir::CallbackStates& callbacks) const override;

  // The kernels' shared object ("cpu.kernels.<digest>"), the ISA extensions
  // it may use ("cpu.features") and the compiler that built it ("cpu.compiler").
  backend::Artifacts artifacts() const override;

  size_t arena_bytes() const { return arena_.shape().byte_size(); }
  // The step list, one line per step, for KILN_DUMP_PROGRAM=1.
  std::string describe() const;
  const std::vector<Step>& steps() const { return steps_; }

 private:
  void launch(const Step& step, const ir::CallbackStates& callbacks) const;
  void run_library(const Step& step, const backend::PreparedWeights* weights) const;  // matmul, convolution
  HostBuffer view(int32_t slot) const;

  std::vector<Slot> slots_;
  std::vector<Step> steps_;
  std::vector<HostBuffer> constants_;
  std::vector<std::shared_ptr<const Library>> libraries_;  // keep the kernels loaded
  std::string saved_compiler_;                             // loaded from a saved executable: the compiler that built it
  // Per-call state, guarded by mutex_: one call at a time per program.
  mutable std::mutex mutex_;
  mutable HostBuffer arena_;
  mutable std::vector<std::byte*> pointers_;       // per slot
  mutable std::vector<char*> arguments_;           // kernel argument scratch
  mutable std::vector<const void*> matmul_extra_;  // a matmul epilogue's extra inputs
  // KILN_PROFILE=1: time per step over all calls, printed when the program goes.
  bool profile_ = false;
  mutable std::vector<double> step_seconds_;
  mutable int64_t calls_ = 0;
};

}  // namespace kiln::cpu
