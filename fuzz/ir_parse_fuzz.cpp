// Fuzzes ir::parse, the reader of saved graphs: any text is either a
// kiln::Error or a graph that verifies and prints back to text that parses
// to the same print (print -> parse -> print is the identity). Crashes,
// sanitizer reports, other exceptions and a round trip that differs are bugs.
#include <cstdint>
#include <string>

#include "kiln/core/error.h"
#include "kiln/ir/graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kiln::ir::Graph graph;
  try {
    graph = kiln::ir::parse(text, "fuzz");
  } catch (const kiln::Error&) {
    return 0;
  }
  kiln::ir::verify(graph);
  const std::string printed = kiln::ir::print(graph, {.full_constants = true});
  if (kiln::ir::print(kiln::ir::parse(printed, "fuzz (printed)"), {.full_constants = true}) != printed)
    __builtin_trap();
  return 0;
}
