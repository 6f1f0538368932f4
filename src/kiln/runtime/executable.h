#pragma once
// Executable: a graph compiled for fixed shapes on one platform. The first
// parameters of a model's executable are its weights; prepare(weights)
// binds them once and returns an executable taking the remaining arguments
// (partial application). Calls check each argument's dims and dtype against
// the compiled ones and return the outputs as Buffers, mirroring what the
// traced function returned (runtime/results.h): a Buffer for a Tensor, and
// any nesting of tuples, pairs, vectors, arrays and described structs.
#include <boost/describe.hpp>
#include <boost/mp11/algorithm.hpp>
#include <filesystem>
#include <span>
#include <string>
#include <tuple>
#include <typeindex>
#include <typeinfo>
#include <variant>
#include <vector>

#include "kiln/backend/backend.h"
#include "kiln/frontend/callback.h"
#include "kiln/runtime/buffer.h"
#include "kiln/runtime/results.h"

namespace kiln {

struct ParameterSpec {
  std::string name;  // weight name, or "argument N"
  Shape shape;
};

// The weights of a Model on a platform, in the order compile() made them
// parameters.
template <typename Model>
struct Weights {
  std::vector<std::string> names;
  std::vector<Buffer> buffers;
};

using Argument = std::variant<Buffer, Donated>;

namespace detail {

// The untyped part of every executable.
struct ExecutableCore {
  std::shared_ptr<const backend::Program> program;
  Platform platform;
  std::vector<ParameterSpec> parameters;                     // every graph parameter, in order
  size_t weight_count = 0;                                   // how many leading parameters are weights
  std::vector<Buffer> bound;                                 // the weights, once prepared
  std::shared_ptr<const backend::PreparedWeights> prepared;  // what the backend made of them
  ir::CallbackStates callbacks;                              // host callback states, by callback name
  std::vector<size_t> result_layout;                         // vector lengths in the result (results.h)
  std::shared_ptr<const ir::Graph> graph;                    // what was compiled, for save()

  ExecutableCore bind(const std::vector<std::string>& names, const std::vector<Buffer>& weights) const;
  std::vector<Buffer> call(std::span<const Argument> arguments) const;
};

// Saved executables (runtime/saved_executable.cpp has the file format).
// save_core writes `core` atomically, its weights never; load_core reads it
// back for `platform`, unprepared, without compiling anything.
// serialize_core / deserialize_core: the same bytes in memory (`where` names
// them in errors), for containers of several executables.
void save_core(const ExecutableCore& core, const std::filesystem::path& path);
ExecutableCore load_core(const std::filesystem::path& path, const Platform& platform);
std::string serialize_core(const ExecutableCore& core);
ExecutableCore deserialize_core(std::string_view bytes, const std::string& where, const Platform& platform);
// For kiln inspect: whether `bytes` start like a saved executable, and a
// saved executable's manifest (JSON text), its header and checksum checked.
bool is_saved_executable(std::string_view bytes);
std::string saved_manifest(const std::filesystem::path& path);

}  // namespace detail

template <typename Result>
class Executable {
 public:
  // Empty, to be assigned from compile() later (a member of a class, say);
  // calling or preparing it is an error.
  Executable() = default;
  explicit Executable(detail::ExecutableCore core) : core_(std::move(core)) {}

  // Writes the compiled executable to one file: its code, its program and
  // signature, never its weights (bind them with prepare() after load()).
  void save(const std::filesystem::path& path) const { detail::save_core(core_, path); }
  // An executable saved by save(), for `platform` (whose backend must be the
  // one it was saved from), unprepared. Needs no C++ compiler. Refuses
  // another format major version, another backend, a CPU lacking features
  // the code uses, and truncated or corrupted files.
  static Executable load(const std::filesystem::path& path, const Platform& platform) {
    return Executable(detail::load_core(path, platform));
  }
  // The file's bytes in memory, and an executable from them (`where` names them in errors).
  std::string serialize() const { return detail::serialize_core(core_); }
  static Executable deserialize(std::string_view bytes, const std::string& where, const Platform& platform) {
    return Executable(detail::deserialize_core(bytes, where, platform));
  }

  // Binds the weights (checked against the compiled shapes) and returns an
  // executable that takes the remaining arguments.
  template <typename Model>
  Executable prepare(const Weights<Model>& weights) const {
    return Executable(core_.bind(weights.names, weights.buffers));
  }

  // Runs with Buffers or kiln::donate(buffer) as arguments.
  template <typename... Args>
  Result operator()(const Args&... args) const {
    const std::vector<Argument> arguments{Argument(args)...};
    return call(arguments);
  }
  Result call(std::span<const Argument> arguments) const {
    std::vector<Buffer> outputs = core_.call(arguments);
    return detail::make_result<Result>(outputs, core_.result_layout);
  }

  // Attaches the state of host callback T (kiln::callback<T> in the traced
  // code) to this executable, for the callbacks named `name` (default: T's
  // callback name). The caller owns `state`; it must outlive the calls. Each
  // executable has its own bindings.
  template <typename T>
  Executable& bind(T* state, std::string name = "") {
    if (name.empty()) name = detail::callback_name<T>();
    core_.callbacks.insert_or_assign(
        std::move(name),
        ir::BoundState{state, std::type_index(typeid(T)), detail::demangled(typeid(T)), &detail::invoke_callback<T>});
    return *this;
  }

  // Every parameter of the compiled graph (weights first), and how many of
  // them are still to be passed per call.
  const std::vector<ParameterSpec>& parameters() const { return core_.parameters; }
  size_t argument_count() const { return core_.parameters.size() - core_.bound.size(); }
  bool is_prepared() const { return core_.weight_count == 0 || !core_.bound.empty(); }
  const Platform& platform() const { return core_.platform; }

 private:
  detail::ExecutableCore core_;
};

}  // namespace kiln
