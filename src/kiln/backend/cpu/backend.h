#pragma once
// The optimizing CPU backend: graphs are rewritten (layout.h), fused into
// loop nests (fusion.h), rendered to C++ (render.h), compiled by the system
// compiler and cached (compiler.h), and run as a flat list of steps over one
// planned arena (program.h). Matmuls go to oneDNN with weights packed at
// prepare. Renderer, compiler and runtime are separate pieces, so that each
// can be replaced (an LLVM JIT, another device) without touching the others.
#include <memory>

#include "kiln/backend/backend.h"

namespace kiln::cpu {

std::shared_ptr<const backend::Backend> make_backend();

}  // namespace kiln::cpu
