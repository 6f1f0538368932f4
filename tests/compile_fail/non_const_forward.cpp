// expect: declare the model's forward const
// A forward that is not const is refused with a message saying so.
#include <kiln/kiln.h>

struct Model {
  kiln::Tensor weight;
  kiln::Tensor forward(kiln::Tensor x) { return x * weight; }  // not const
};
KILN_FIELDS(Model, weight)

void compile_it(const kiln::io::BufferStore& store) {
  kiln::compile(kiln::Platform::cpu(), &Model::forward, store, kiln::Shape({{"d", 4}}));
}
