#include "kiln/nn/attention.h"

#include <cmath>
#include <limits>

#include "kiln/core/error.h"

namespace kiln::nn {

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const int64_t heads = q.dim("h"), kv_heads = k.dim("h");
  if (kv_heads == 0 || heads % kv_heads != 0)
    fail("[attention] {} query heads cannot be grouped over {} key/value heads: q {}, k {}", heads, kv_heads,
         q.shape().to_string(), k.shape().to_string());
  const DType dtype = q.dtype();
  // Group query heads: {b, h, s, hd} -> {b, h=kv_heads, _g, s, hd}.
  const Tensor grouped = q.split_axis("h", {{"h", kv_heads}, {"_g", heads / kv_heads}});
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.dim("hd"))));

  Tensor scores = grouped.dot(k, {"hd"}, DType::f32) * scale;  // {b, h, _g, s, t}
  // Masks become an additive f32 bias (0 where allowed, -inf where not),
  // made once at the mask's own shape: the softmax loop then reads floats
  // only, which the CPU backend's compiler vectorizes (a bool load inside it
  // kept GCC from vectorizing the whole row, 8x slower).
  const double neg_inf = -std::numeric_limits<double>::infinity();
  auto bias = [&](const Tensor& allowed) {
    return select(allowed, scalar(0, DType::f32), scalar(neg_inf, DType::f32));
  };
  if (options.causal) {
    const Tensor offset = options.query_offset ? options.query_offset->convert(DType::i32) : scalar(0, DType::i32);
    const Tensor query_pos = iota(Shape({{"s", q.dim("s")}}, DType::i32), "s") + offset;
    const Tensor key_pos = iota(Shape({{"t", k.dim("t")}}, DType::i32), "t");
    // {s, t}: t innermost, as in the scores.
    scores = scores + bias(query_pos >= key_pos);
  }
  if (options.mask) scores = scores + bias(*options.mask);
  const Tensor probabilities = scores.softmax("t").convert(dtype);
  const Tensor out = probabilities.dot(v, "t");  // {b, h, _g, s, hd}
  return out.merge({"h", "_g"}, "h").transpose({"b", "h", "s", "hd"});
}

KvCache KvCache::update(const Tensor& k_new, const Tensor& v_new, const Tensor& pos) const {
  const Tensor k_entry = k_new.rename({{"s", "t"}});
  const Tensor v_entry = v_new.rename({{"s", "t"}});
  return {k.dynamic_update_slice({{"t", pos}}, k_entry), v.dynamic_update_slice({{"t", pos}}, v_entry)};
}

}  // namespace kiln::nn
