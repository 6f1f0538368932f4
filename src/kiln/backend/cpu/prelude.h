#pragma once
// The text every generated translation unit starts with: storage and compute
// types, conversions and the elementwise helpers whose semantics match the
// reference interpreter (NaN-propagating max/min, XLA's integer division and
// shift rules, round-to-nearest-even conversions). It includes no headers,
// so a kernel file compiles in tens of milliseconds, and everything is
// branch-free where it matters so that GCC vectorizes the loops at -O3.
#include <string_view>

namespace kiln::cpu {

inline constexpr std::string_view kPrelude = R"PRELUDE(
typedef __INT8_TYPE__ i8;
typedef __INT16_TYPE__ i16;
typedef __INT32_TYPE__ i32;
typedef __INT64_TYPE__ i64;
typedef __UINT8_TYPE__ u8;
typedef __UINT16_TYPE__ u16;
typedef __UINT32_TYPE__ u32;
typedef __UINT64_TYPE__ u64;
typedef float f32;
typedef double f64;
typedef _Float16 f16s;  // f16 storage
typedef u16 bf16s;      // bf16 storage (bits)

static inline f32 bf16_load(bf16s b) { return __builtin_bit_cast(f32, (u32)b << 16); }
static inline bf16s bf16_store(f32 x) {
  u32 u = __builtin_bit_cast(u32, x);
  u32 rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  u32 quiet = (u >> 16) | 0x40u;
  return (bf16s)(x != x ? quiet : rounded);
}
static inline f32 bf16_round(f32 x) { return bf16_load(bf16_store(x)); }
static inline f32 f16_round(f32 x) { return (f32)(f16s)x; }

// IEEE maximum/minimum (NaN wins, -0 < +0) in five vector instructions:
// vmaxps in both operand orders agrees except on zeros, where the AND (max)
// or OR (min) of the two picks +0 or -0; unordered operands give a + b, a NaN.
template <class F, class U> static inline F k_fmax_bits(F a, F b) {
  const F x = a > b ? a : b, y = b > a ? b : a;
  const F r = __builtin_bit_cast(F, (U)(__builtin_bit_cast(U, x) & __builtin_bit_cast(U, y)));
  return __builtin_isunordered(a, b) ? a + b : r;
}
template <class F, class U> static inline F k_fmin_bits(F a, F b) {
  const F x = a < b ? a : b, y = b < a ? b : a;
  const F r = __builtin_bit_cast(F, (U)(__builtin_bit_cast(U, x) | __builtin_bit_cast(U, y)));
  return __builtin_isunordered(a, b) ? a + b : r;
}
static inline f32 k_max(f32 a, f32 b) { return k_fmax_bits<f32, u32>(a, b); }
static inline f32 k_min(f32 a, f32 b) { return k_fmin_bits<f32, u32>(a, b); }
static inline f64 k_max(f64 a, f64 b) { return k_fmax_bits<f64, u64>(a, b); }
static inline f64 k_min(f64 a, f64 b) { return k_fmin_bits<f64, u64>(a, b); }
template <class T> static inline T k_max(T a, T b) { return a < b ? b : a; }
template <class T> static inline T k_min(T a, T b) { return a < b ? a : b; }
static inline bool k_max(bool a, bool b) { return a || b; }
static inline bool k_min(bool a, bool b) { return a && b; }

// exp for f32 in a form GCC vectorizes: 2^n * p(r), r = x - n ln2, |r| <= ln2/2,
// p the degree-7 Taylor polynomial (error below 1e-8 relative); the scale is
// applied in two halves so that results in the subnormal range stay right.
static inline f32 k_expf(f32 x) {
  f32 xc = -104.0f > x ? -104.0f : x;
  xc = 89.0f < xc ? 89.0f : xc;
  // n = round(x / ln2) by adding 1.5 * 2^23: the sum's low mantissa bits are n.
  const f32 shifter = 12582912.0f;
  const f32 t = __builtin_fmaf(xc, 1.44269504088896341f, shifter);
  const f32 n = t - shifter;
  f32 r = __builtin_fmaf(n, -0.693145751953125f, xc);
  r = __builtin_fmaf(n, -1.428606765330187045e-06f, r);
  f32 p = 1.0f / 5040;
  p = __builtin_fmaf(p, r, 1.0f / 720);
  p = __builtin_fmaf(p, r, 1.0f / 120);
  p = __builtin_fmaf(p, r, 1.0f / 24);
  p = __builtin_fmaf(p, r, 1.0f / 6);
  p = __builtin_fmaf(p, r, 0.5f);
  p = __builtin_fmaf(p, r, 1.0f);
  p = __builtin_fmaf(p, r, 1.0f);
  const i32 ni = __builtin_bit_cast(i32, t) - __builtin_bit_cast(i32, shifter);
  const i32 n1 = ni >> 1;
  const f32 s1 = __builtin_bit_cast(f32, (u32)(n1 + 127) << 23);
  const f32 s2 = __builtin_bit_cast(f32, (u32)(ni - n1 + 127) << 23);
  const f32 result = p * s1 * s2;
  return x != x ? x : result;
}
static inline f64 k_exp(f64 x) { return __builtin_exp(x); }
static inline f32 k_exp(f32 x) { return k_expf(x); }
static inline f32 k_logistic(f32 x) { return 1.0f / (1.0f + k_expf(-x)); }
static inline f64 k_logistic(f64 x) { return 1.0 / (1.0 + __builtin_exp(-x)); }

static inline f32 k_sign(f32 x) { return (x != x || x == 0) ? x : __builtin_copysignf(1.0f, x); }
static inline f64 k_sign(f64 x) { return (x != x || x == 0) ? x : __builtin_copysign(1.0, x); }
template <class T> static inline T k_sign(T x) { return (T)(x > 0 ? 1 : (x < 0 ? -1 : 0)); }

template <class T> static inline T k_abs(T x) { return x < 0 ? (T)(0 - x) : x; }
static inline f32 k_abs(f32 x) { return __builtin_fabsf(x); }
static inline f64 k_abs(f64 x) { return __builtin_fabs(x); }

// Integer division and remainder as XLA defines the cases C leaves open:
// x / 0 = -1 (all ones), x % 0 = x, INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0.
template <class T> static inline T k_div(T a, T b) {
  if (b == 0) return (T)~(T)0;
  if ((T)-1 < 0 && b == (T)-1) return (T)(0 - a);  // wraps for INT_MIN (-fwrapv)
  return (T)(a / b);
}
template <class T> static inline T k_rem(T a, T b) {
  if (b == 0) return a;
  if ((T)-1 < 0 && b == (T)-1) return 0;
  return (T)(a % b);
}
static inline f32 k_div(f32 a, f32 b) { return a / b; }
static inline f64 k_div(f64 a, f64 b) { return a / b; }
// a / b for a divisor b that is the same over a loop, given y = 1 / b and
// ok = k_recip_ok(b), both computed once outside it: vdivps costs 16 cycles
// a vector, a multiply and two FMAs a few. The product a * y corrected once
// (Markstein: r = a - q b is exact, q + r y rounds to a / b) is correctly
// rounded whenever 1/b and a/b neither overflow nor underflow, within an ulp
// when a/b does; NaN and Inf come out as a / b gives them (a corrected value
// that is NaN means q was Inf, NaN or a product with one). Outside the safe
// range of b the loop divides: GCC unswitches the loop on `ok`.
static inline bool k_recip_ok(f32 b) { return __builtin_fabsf(b) >= 0x1p-125f && __builtin_fabsf(b) <= 0x1p125f; }
static inline bool k_recip_ok(f64 b) { return __builtin_fabs(b) >= 0x1p-1021 && __builtin_fabs(b) <= 0x1p1021; }
static inline f32 k_div_by(f32 a, f32 b, f32 y, bool ok) {
  if (!ok) return a / b;
  const f32 q = a * y;
  const f32 c = __builtin_fmaf(__builtin_fmaf(-q, b, a), y, q);
  return c != c ? q : c;
}
static inline f64 k_div_by(f64 a, f64 b, f64 y, bool ok) {
  if (!ok) return a / b;
  const f64 q = a * y;
  const f64 c = __builtin_fma(__builtin_fma(-q, b, a), y, q);
  return c != c ? q : c;
}
static inline f32 k_rem(f32 a, f32 b) { return __builtin_fmodf(a, b); }
static inline f64 k_rem(f64 a, f64 b) { return __builtin_fmod(a, b); }

template <class T> static inline T k_pow(T a, T b) {
  if ((T)-1 < 0 && b < 0) {
    if (a == 1) return 1;
    if (a == (T)-1) return (b & 1) ? (T)-1 : (T)1;
    return 0;
  }
  u64 e = (u64)b;
  T result = 1, base = a;
  while (e != 0) {
    if (e & 1) result = (T)(result * base);
    base = (T)(base * base);
    e >>= 1;
  }
  return result;
}
static inline f32 k_pow(f32 a, f32 b) { return __builtin_powf(a, b); }
static inline f64 k_pow(f64 a, f64 b) { return __builtin_pow(a, b); }

// Shifts by an amount read as unsigned; an amount >= the width shifts every bit out.
template <class T, class U> static inline T k_shl(T a, T b) {
  U amount = (U)b;
  return amount >= sizeof(T) * 8 ? (T)0 : (T)((U)a << amount);
}
template <class T, class U> static inline T k_shr_logical(T a, T b) {
  U amount = (U)b;
  return amount >= sizeof(T) * 8 ? (T)0 : (T)((U)a >> amount);
}
template <class T, class S, class U> static inline T k_shr_arithmetic(T a, T b) {
  U amount = (U)b;
  S v = (S)a;
  if (amount >= sizeof(T) * 8) return v < 0 ? (T)~(T)0 : (T)0;
  return (T)(v >> amount);
}

// Float -> integer as StableHLO converts: truncate, NaN -> 0, saturate.
template <class T> static inline T k_f2i(f64 x, f64 upper, T max, T min) {
  if (x != x) return 0;
  if (x >= upper) return max;
  if (x <= (min == 0 ? 0.0 : -upper)) return min;
  return (T)x;
}

// IEEE total order key of a float's bits (sign-magnitude to two's complement).
static inline i32 k_total_key(f32 x) {
  i32 b = __builtin_bit_cast(i32, x);
  return b < 0 ? b ^ 0x7fffffff : b;
}
static inline i64 k_total_key(f64 x) {
  i64 b = __builtin_bit_cast(i64, x);
  return b < 0 ? b ^ 0x7fffffffffffffffll : b;
}
static inline i32 k_total_key_bf16(f32 x) {
  i32 b = (i16)bf16_store(x);
  return b < 0 ? b ^ 0x7fff : b;
}
static inline i32 k_total_key_f16(f32 x) {
  i32 b = (i16)__builtin_bit_cast(u16, (f16s)x);
  return b < 0 ? b ^ 0x7fff : b;
}

// Round to odd at f32 precision: a second rounding to bf16/f16 then gives
// the correctly rounded result (a plain f64 -> f32 -> bf16 rounds twice).
static inline f32 k_f64_to_f32_odd(f64 x) {
  f32 nearest = (f32)x;
  if (x != x || __builtin_isinf(nearest) || (f64)nearest == x) return nearest;
  u32 bits = __builtin_bit_cast(u32, nearest);
  if (__builtin_fabs((f64)nearest) > __builtin_fabs(x)) bits -= 1;
  return __builtin_bit_cast(f32, bits | 1u);
}
static inline f32 k_u64_to_f32_odd(u64 m) {
  if (m == 0) return 0.0f;
  int drop = (64 - __builtin_clzll(m)) - 24;
  if (drop <= 0) return (f32)m;
  u64 sticky = (m & ((1ull << drop) - 1)) != 0;
  return __builtin_ldexpf((f32)((m >> drop) | sticky), drop);
}
static inline f32 k_i64_to_f32_odd(i64 v) {
  return v < 0 ? -k_u64_to_f32_odd(0 - (u64)v) : k_u64_to_f32_odd((u64)v);
}

// Unsigned 64-bit indices above INT64_MAX are huge, not negative.
static inline i64 k_index(u64 i) { return i > 0x7fffffffffffffffull ? 0x7fffffffffffffffll : (i64)i; }
template <class T> static inline i64 k_index(T i) { return (i64)i; }
static inline i64 k_clamp_index(i64 i, i64 hi) { return i < 0 ? 0 : (i > hi ? hi : i); }
)PRELUDE";

}  // namespace kiln::cpu
