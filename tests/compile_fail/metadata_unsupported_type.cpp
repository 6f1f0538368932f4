// expect: metadata<T>: T must be an integer, floating-point, bool, std::string
// metadata<T> of a type it cannot convert to fails at compile time, not at link time.
#include <kiln/kiln.h>

#include <map>

auto read(const kiln::io::BufferStore& store) { return store.metadata<std::map<int, int>>("rope_scaling"); }
