// The kiln command line.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>

#include "inspect.h"
#include "kiln/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln: compile and run ML models written as C++ structs"};
  app.require_subcommand(1);

  std::string inspect_path;
  bool inspect_json = false;
  auto* inspect = app.add_subcommand("inspect", "List the tensors and metadata of safetensors weights");
  inspect->add_option("PATH", inspect_path, "a .safetensors file, a *.safetensors.index.json, or a model directory")
      ->required();
  inspect->add_flag("--json", inspect_json, "print {\"tensors\":[...],\"metadata\":{...}} for scripts");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*inspect) kiln::tools::inspect(inspect_path, inspect_json, std::cout);
  } catch (const std::exception& e) {
    std::cout.flush();
    fmt::print(stderr, "kiln {}: error: {}\n", app.get_subcommands().front()->get_name(), e.what());
    return 1;
  }
  return 0;
}
