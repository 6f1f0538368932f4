#pragma once
// Shape and dtype inference: the one place that knows what each op accepts
// and produces. Graph::add and verify both call it, so a graph that verifies
// is exactly a graph the builder could have made.
#include <span>
#include <vector>

#include "kiln/ir/ops.h"

namespace kiln::ir {

// The result shapes of `op` applied to operands of these shapes. Throws
// kiln::Error "[op] what is wrong: operand shapes" on invalid input. Tags of
// results follow the operands where that is unambiguous.
std::vector<Shape> infer(Op op, std::span<const Shape> operands, const Attributes& attrs);

}  // namespace kiln::ir
