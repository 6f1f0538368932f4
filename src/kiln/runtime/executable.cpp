#include "kiln/runtime/executable.h"

namespace kiln::detail {
namespace {

bool same_layout(const Shape& a, const Shape& b) {
  return a.dtype() == b.dtype() && std::ranges::equal(a.dims(), b.dims());
}

}  // namespace

ExecutableCore ExecutableCore::bind(const std::vector<std::string>& names, const std::vector<Buffer>& weights) const {
  if (!program) fail("[prepare] this executable is empty (default-constructed); assign it from kiln::compile first");
  if (weight_count == 0) fail("[prepare] this executable has no weights to bind");
  if (!bound.empty()) fail("[prepare] the weights are already bound");
  if (weights.size() != weight_count)
    fail("[prepare] the executable was compiled with {} weights but {} were given", weight_count, weights.size());
  std::vector<HostBuffer> memory;
  memory.reserve(weight_count);
  for (size_t i = 0; i < weight_count; ++i) {
    const ParameterSpec& spec = parameters[i];
    const std::string what = fmt::format("weight '{}'", spec.name);
    const Shape& given = weights[i].memory(what).shape();
    if (i < names.size() && names[i] != spec.name)
      fail("[prepare] weight {} is '{}' but the executable expects '{}' there", i, names[i], spec.name);
    if (!same_layout(given, spec.shape))
      fail("[prepare] weight '{}' is {} but the executable was compiled for {}", spec.name, given.to_string(),
           spec.shape.to_string());
    if (!(weights[i].platform() == platform))
      fail("[prepare] weight '{}' lives on platform '{}', the executable on '{}'", spec.name,
           weights[i].platform().name(), platform.name());
    memory.push_back(weights[i].memory(what));
  }
  ExecutableCore prepared = *this;
  prepared.bound = weights;
  prepared.prepared = program->prepare(memory);
  return prepared;
}

std::vector<Buffer> ExecutableCore::call(std::span<const Argument> arguments) const {
  if (!program) fail("[call] this executable is empty (default-constructed); assign it from kiln::compile first");
  if (weight_count > 0 && bound.empty())
    fail("[call] bind the model's {} weights with prepare(weights) before calling", weight_count);
  const size_t expected = parameters.size() - weight_count;
  if (arguments.size() != expected) fail("[call] expects {} arguments, got {}", expected, arguments.size());

  // Small fixed-size work per call: check the arguments, pick each output's
  // memory, run.
  std::vector<HostBuffer> inputs;
  inputs.reserve(arguments.size());
  std::vector<const Buffer*> donated(arguments.size(), nullptr);
  for (size_t i = 0; i < arguments.size(); ++i) {
    const ParameterSpec& spec = parameters[weight_count + i];
    const bool is_donated = std::holds_alternative<Donated>(arguments[i]);
    const Buffer& buffer = is_donated ? std::get<Donated>(arguments[i]).buffer : std::get<Buffer>(arguments[i]);
    const HostBuffer& memory = buffer.memory(fmt::format("argument {}", i));
    if (!same_layout(memory.shape(), spec.shape))
      fail("[call] argument {} must be {}, got {}", i, spec.shape.to_string(), memory.shape().to_string());
    if (!(buffer.platform() == platform))
      fail("[call] argument {} lives on platform '{}', the executable on '{}'", i, buffer.platform().name(),
           platform.name());
    inputs.push_back(memory);
    if (is_donated) donated[i] = &buffer;
  }

  // An output aliased to a donated argument is written into that argument's
  // memory by the program itself, unless the memory is read-only (a mapped
  // file) or also passed as another argument.
  const backend::Signature& signature = program->signature();
  std::vector<HostBuffer> outputs;
  outputs.reserve(signature.outputs.size());
  for (size_t o = 0; o < signature.outputs.size(); ++o) {
    const int alias = signature.output_alias[o];
    const size_t a = alias < 0 ? 0 : static_cast<size_t>(alias) - weight_count;
    bool reuse = alias >= 0 && donated[a] != nullptr && !inputs[a].is_borrowed();
    for (size_t j = 0; reuse && j < inputs.size(); ++j)
      reuse = j == a || inputs[j].data() != inputs[a].data() || inputs[a].shape().byte_size() == 0;
    outputs.push_back(reuse ? inputs[a].reshape(signature.outputs[o])
                            : platform.backend().allocate(signature.outputs[o]));
  }
  for (const Buffer* d : donated)
    if (d != nullptr) d->mark_donated();

  program->run(prepared.get(), inputs, outputs, callbacks);

  std::vector<Buffer> results;
  results.reserve(outputs.size());
  for (const HostBuffer& r : outputs) results.push_back(Buffer::from(platform, r));
  return results;
}

}  // namespace kiln::detail
