#pragma once
// Built-in host callbacks: they run without bind() (their state travels with
// the node), and the text form names their kind (builtin=print) so that
// ir::parse makes them again and a saved executable keeps them.
#include <memory>
#include <string>
#include <string_view>

#include "kiln/ir/host_callback.h"

namespace kiln::ir {

// x.print(label): prints the label, the tagged shape, the dtype and the first
// values to stdout, and returns its input unchanged. Named "print(<label>)".
std::shared_ptr<const HostCallback> print_callback(std::string label);

// The built-in of kind `kind` named `name`, made again from its text form;
// throws kiln::Error saying what is wrong when there is no such built-in.
std::shared_ptr<const HostCallback> builtin_callback(std::string_view kind, std::string_view name);

}  // namespace kiln::ir
