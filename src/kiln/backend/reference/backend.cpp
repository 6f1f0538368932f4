#include "kiln/backend/reference/backend.h"

#include <cstring>

#include "kiln/backend/reference/interpreter.h"
#include "kiln/passes/dce.h"

namespace kiln::reference {
namespace {

using backend::Backend;
using backend::CompileOptions;
using backend::PreparedWeights;
using backend::Program;
using backend::Signature;

struct KeptWeights final : PreparedWeights {
  std::vector<HostBuffer> buffers;
};

bool same_layout(const Shape& a, const Shape& b) {
  return a.dtype() == b.dtype() && std::ranges::equal(a.dims(), b.dims());
}

// Any output may go into a donated argument of its layout: the interpreter
// computes into fresh memory and copies the result over at the end, so no
// read can see a half-written output.
Signature with_aliases(Signature s) {
  std::vector<bool> taken(s.parameters.size(), false);
  for (size_t o = 0; o < s.outputs.size(); ++o)
    for (size_t p = s.weight_count; p < s.parameters.size(); ++p)
      if (!taken[p] && same_layout(s.outputs[o], s.parameters[p])) {
        s.output_alias[o] = static_cast<int>(p);
        taken[p] = true;
        break;
      }
  return s;
}

class ReferenceProgram final : public Program {
 public:
  ReferenceProgram(ir::Graph graph, size_t weight_count)
      : Program(with_aliases(backend::signature_of(graph, weight_count))), graph_(std::move(graph)) {}

  std::shared_ptr<const PreparedWeights> prepare(std::span<const HostBuffer> weights) const override {
    auto kept = std::make_shared<KeptWeights>();
    kept->buffers.assign(weights.begin(), weights.end());
    return kept;
  }

  void run(const PreparedWeights* weights, std::span<const HostBuffer> arguments, std::span<HostBuffer> outputs,
           const ir::CallbackStates& callbacks) const override {
    std::vector<HostBuffer> parameters;
    if (weights != nullptr) {
      const auto& kept = static_cast<const KeptWeights*>(weights)->buffers;
      parameters.assign(kept.begin(), kept.end());
    }
    parameters.insert(parameters.end(), arguments.begin(), arguments.end());
    const std::vector<HostBuffer> results = evaluate(graph_, parameters, &callbacks);
    for (size_t i = 0; i < results.size(); ++i) {
      const HostBuffer flat = results[i].is_contiguous() ? results[i] : results[i].copy();
      if (flat.shape().byte_size() > 0) std::memcpy(outputs[i].mutable_data(), flat.data(), flat.shape().byte_size());
    }
  }

 private:
  ir::Graph graph_;
};

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "reference"; }
  std::string description() const override { return "reference interpreter (the oracle; slow)"; }

  std::shared_ptr<const Program> compile(const ir::Graph& graph, size_t weight_count,
                                         const CompileOptions&) const override {
    ir::verify(graph);
    return std::make_shared<ReferenceProgram>(passes::eliminate_dead_code(graph), weight_count);
  }

  HostBuffer allocate(const Shape& shape) const override { return HostBuffer::uninitialized(shape); }
};

}  // namespace

std::shared_ptr<const backend::Backend> make_backend() { return std::make_shared<ReferenceBackend>(); }

}  // namespace kiln::reference
