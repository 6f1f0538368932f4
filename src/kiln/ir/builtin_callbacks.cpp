#include "kiln/ir/builtin_callbacks.h"

#include <fmt/format.h>

#include <cstdio>

#include "kiln/core/element.h"
#include "kiln/core/error.h"

namespace kiln::ir {
namespace {

constexpr std::string_view kPrint = "print";

struct PrintCallback {
  std::string label;
  void call(std::span<const HostBuffer> inputs) const {
    const HostBuffer& x = inputs[0];
    fmt::print("{}: {} {}\n", label, x.shape().to_string(), summarize(x, 8));
    std::fflush(stdout);
  }
};

void invoke_print(void* state, std::span<const HostBuffer> inputs, std::span<HostBuffer>) {
  static_cast<const PrintCallback*>(state)->call(inputs);
}

}  // namespace

std::shared_ptr<const HostCallback> print_callback(std::string label) {
  std::string name = fmt::format("{}({})", kPrint, label);
  return std::make_shared<const HostCallback>(
      HostCallback{.name = std::move(name),
                   .type_name = "kiln::ir::PrintCallback",
                   .bind_hint = "",
                   .type = std::type_index(typeid(PrintCallback)),
                   .builtin_state = std::make_shared<PrintCallback>(PrintCallback{std::move(label)}),
                   .builtin = std::string(kPrint),
                   .copy_inputs_to_host = true,
                   .aliases = {0},
                   .invoke = &invoke_print});
}

std::shared_ptr<const HostCallback> builtin_callback(std::string_view kind, std::string_view name) {
  if (kind != kPrint) fail("no built-in callback of kind '{}' (kiln knows '{}')", kind, kPrint);
  if (!name.starts_with("print(") || !name.ends_with(")"))
    fail("a built-in print callback is named print(<label>), not '{}'", name);
  return print_callback(std::string(name.substr(6, name.size() - 7)));
}

}  // namespace kiln::ir
