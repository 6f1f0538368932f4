#pragma once
// The contract between the runtime and a backend. A Backend compiles a whole
// graph once into a Program; the Program transforms the weights once
// (prepare) and then runs as often as it is called, writing its outputs
// into memory the runtime hands it (fresh, or a donated argument's). Every
// backend implements this and nothing else, so user code never changes when
// a backend does. Backends are found by name in a registry: the built-in
// "reference" (the interpreter, the oracle) and "cpu" (the optimizing CPU
// backend), plus any a program registers itself.
//
// Host callbacks (custom_call nodes with a callback payload) are part of the
// contract: a program calls them in program order and never drops, merges or
// reorders side-effecting ones.
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/host_callback.h"

namespace kiln::backend {

// What a program takes and gives, decided when it is compiled.
struct Signature {
  std::vector<Shape> parameters;  // every graph parameter, weights first
  size_t weight_count = 0;        // how many leading parameters prepare() binds
  std::vector<Shape> outputs;
  // output_alias[i] >= 0: when that (non-weight) parameter is donated, the
  // program writes output i straight into its memory; -1: output i always
  // gets memory of its own. Each parameter appears at most once.
  std::vector<int> output_alias;
};

// Weights after a program's one-time transformation (converted, re-laid out,
// pre-packed): opaque to the runtime, kept alive with the executable.
class PreparedWeights {
 public:
  virtual ~PreparedWeights() = default;
};

// Named blobs a program is made of besides its graph (the CPU backend's
// compiled kernels, the CPU features they need, the compiler that built
// them): what a saved executable stores so that compiling it again on load
// runs no external tool.
using Artifacts = std::map<std::string, std::string, std::less<>>;

class Program {
 public:
  virtual ~Program() = default;
  const Signature& signature() const { return signature_; }
  // What compile() needs, beside the graph, to rebuild this program without
  // external tools; empty for backends that have none.
  virtual Artifacts artifacts() const { return {}; }

  // Transforms the weights (one per leading weight parameter, dims and
  // dtype already checked) once. The result may keep `weights` alive.
  virtual std::shared_ptr<const PreparedWeights> prepare(std::span<const HostBuffer> weights) const = 0;

  // Runs once: `arguments` are the non-weight parameters in order,
  // `outputs` the memory for each output (contiguous, of the output's dims
  // and dtype). outputs[i] is arguments[output_alias[i] - weight_count]
  // itself when that argument was donated; the program must be correct both
  // ways. `callbacks` holds the states bound to the executable.
  virtual void run(const PreparedWeights* weights, std::span<const HostBuffer> arguments, std::span<HostBuffer> outputs,
                   const ir::CallbackStates& callbacks) const = 0;

 protected:
  explicit Program(Signature signature) : signature_(std::move(signature)) {}

 private:
  Signature signature_;
};

struct CompileOptions {
  // Called with a line of progress for steps that take a while (the system
  // compiler); empty: silent.
  std::function<void(const std::string&)> progress;
  // A saved program's artifacts (Program::artifacts()): compile from them and
  // never run an external tool; what they lack, or a machine they do not
  // suit, is an error.
  const Artifacts* artifacts = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // One line for listings and errors, e.g. "optimizing CPU backend (AVX-512, 2 threads)".
  virtual std::string description() const = 0;

  // Compiles `graph` (verified first) whose first `weight_count` parameters
  // are weights.
  virtual std::shared_ptr<const Program> compile(const ir::Graph& graph, size_t weight_count,
                                                 const CompileOptions& options) const = 0;

  // The backend's memory: a contiguous, 64-byte aligned buffer of `shape`
  // whose contents are unspecified.
  virtual HostBuffer allocate(const Shape& shape) const = 0;
};

// The registry. Built-in backends are registered on first use.
using BackendFactory = std::function<std::shared_ptr<const Backend>()>;
void register_backend(std::string name, BackendFactory factory);
// The backend registered as `name`, made once; throws listing the names.
std::shared_ptr<const Backend> find_backend(std::string_view name);
std::vector<std::string> backend_names();

// The signature every backend starts from: the graph's parameters and
// outputs with no aliases.
Signature signature_of(const ir::Graph& graph, size_t weight_count);

}  // namespace kiln::backend
