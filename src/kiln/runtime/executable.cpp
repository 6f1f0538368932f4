#include "kiln/runtime/executable.h"

#include <cstring>

namespace kiln::detail {
namespace {

bool same_layout(const Shape& a, const Shape& b) {
  return a.dtype() == b.dtype() && std::ranges::equal(a.dims(), b.dims());
}

}  // namespace

ExecutableCore ExecutableCore::bind(const std::vector<std::string>& names, const std::vector<Buffer>& weights) const {
  if (weight_count == 0) fail("[prepare] this executable has no weights to bind");
  if (!bound.empty()) fail("[prepare] the weights are already bound");
  if (weights.size() != weight_count)
    fail("[prepare] the executable was compiled with {} weights but {} were given", weight_count, weights.size());
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
  }
  ExecutableCore prepared = *this;
  prepared.bound = weights;
  return prepared;
}

std::vector<Buffer> ExecutableCore::call(std::span<const Argument> arguments) const {
  if (weight_count > 0 && bound.empty())
    fail("[call] bind the model's {} weights with prepare(weights) before calling", weight_count);
  const size_t expected = parameters.size() - bound.size();
  if (arguments.size() != expected) fail("[call] expects {} arguments, got {}", expected, arguments.size());

  std::vector<HostBuffer> inputs;
  inputs.reserve(parameters.size());
  for (const Buffer& w : bound) inputs.push_back(w.memory("a bound weight"));
  std::vector<const Buffer*> donated;
  for (size_t i = 0; i < arguments.size(); ++i) {
    const ParameterSpec& spec = parameters[bound.size() + i];
    const bool is_donated = std::holds_alternative<Donated>(arguments[i]);
    const Buffer& buffer = is_donated ? std::get<Donated>(arguments[i]).buffer : std::get<Buffer>(arguments[i]);
    const HostBuffer& memory = buffer.memory(fmt::format("argument {}", i));
    if (!same_layout(memory.shape(), spec.shape))
      fail("[call] argument {} must be {}, got {}", i, spec.shape.to_string(), memory.shape().to_string());
    if (!(buffer.platform() == platform))
      fail("[call] argument {} lives on platform '{}', the executable on '{}'", i, buffer.platform().name(),
           platform.name());
    inputs.push_back(memory);
    if (is_donated) donated.push_back(&buffer);
  }

  std::vector<HostBuffer> results = program->run(inputs, callbacks);

  // Reuse donated memory for outputs of the same layout. The reference
  // backend computes into fresh memory and copies; an optimizing backend
  // plans the output into the donated buffer directly.
  std::vector<bool> reused(results.size(), false);
  for (const Buffer* d : donated) {
    HostBuffer memory = d->memory("a donated argument");
    d->mark_donated();
    if (memory.is_borrowed()) continue;  // read-only (e.g. a mapped weight): nothing to reuse
    for (size_t r = 0; r < results.size(); ++r) {
      if (reused[r] || !same_layout(results[r].shape(), memory.shape())) continue;
      if (memory.shape().byte_size() > 0)
        std::memcpy(memory.mutable_data(), results[r].data(), memory.shape().byte_size());
      results[r] = memory.reshape(results[r].shape());
      reused[r] = true;
      break;
    }
  }
  std::vector<Buffer> outputs;
  outputs.reserve(results.size());
  for (const HostBuffer& r : results) outputs.push_back(Buffer::from(platform, r));
  return outputs;
}

}  // namespace kiln::detail
