// The "math interface" over Highway vectors: the same member functions as
// ScalarMath (scalar_math.h), so one loss functor runs on both. Per-target
// code: include after foreach_target.h, inside no namespace (Highway's
// re-include toggle guard below).
//
// Highway's contrib/math functions are only valid on part of the IEEE domain
// (measured on 1.0.3: Exp(NaN) = 0, float Exp(200) = 0, Log(0) = -105,
// Log(-1) = 177, Log1p(inf) = NaN). The wrappers here restore the std::
// results at the edges, so that the functors may call them anywhere:
//
//  Exp    lanes f32/f64, <= 1 ULP in range; +inf above the overflow point,
//         NaN for NaN, 0 below the underflow point.
//  Expm1  lanes f32/f64, <= 4 ULP; -1 below, +inf above, NaN for NaN.
//  Log    lanes f32/f64, <= 4 ULP on (0, inf); -inf at 0, +inf at +inf,
//         NaN below 0 and for NaN.
//  Log1p  lanes f32/f64, <= 2 ULP on (-1, inf); -inf at -1, +inf at +inf,
//         NaN below -1 and for NaN.
//  ExpNonPositive  lanes f32/f64, <= 1 ULP for x <= 0; +0 below the
//         underflow point and at -inf, NaN for NaN (no overflow path).
//  Log1pUnit      lanes f32/f64, < 1 ULP for e in [0, 1] given
//         r = 1 / (1 + e) (f64 uses it); NaN for NaN.
//  Min/Max/Clamp/Sign propagate NaN (x86 minps/maxps would not).

#if defined(FASTLOSS_SRC_MATH_SIMD_MATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FASTLOSS_SRC_MATH_SIMD_MATH_INL_H_
#undef FASTLOSS_SRC_MATH_SIMD_MATH_INL_H_
#else
#define FASTLOSS_SRC_MATH_SIMD_MATH_INL_H_
#endif

#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

template <class D>
struct SimdMath {
  using T = hn::TFromD<D>;
  using V = hn::Vec<D>;
  using Mask = hn::Mask<D>;
  D d;

  HWY_INLINE V Set(double x) const { return hn::Set(d, static_cast<T>(x)); }
  HWY_INLINE V Zero() const { return hn::Zero(d); }
  HWY_INLINE V Add(V a, V b) const { return hn::Add(a, b); }
  HWY_INLINE V Sub(V a, V b) const { return hn::Sub(a, b); }
  HWY_INLINE V Mul(V a, V b) const { return hn::Mul(a, b); }
  HWY_INLINE V MulAdd(V a, V b, V c) const { return hn::MulAdd(a, b, c); }
  HWY_INLINE V Div(V a, V b) const { return hn::Div(a, b); }
  HWY_INLINE V Neg(V a) const { return hn::Neg(a); }
  HWY_INLINE V Abs(V a) const { return hn::Abs(a); }
  HWY_INLINE V CopySign(V magnitude, V sign) const { return hn::CopySign(magnitude, sign); }
  HWY_INLINE V Sqrt(V a) const { return hn::Sqrt(a); }
  // NaN in either argument gives NaN (a + b), whatever the target's min/max
  // instruction returns for it.
  HWY_INLINE V Min(V a, V b) const {
    return hn::IfThenElse(hn::Or(hn::IsNaN(a), hn::IsNaN(b)), hn::Add(a, b),
                          hn::Min(a, b));
  }
  HWY_INLINE V Max(V a, V b) const {
    return hn::IfThenElse(hn::Or(hn::IsNaN(a), hn::IsNaN(b)), hn::Add(a, b),
                          hn::Max(a, b));
  }
  HWY_INLINE V Sign(V x) const {
    const V zero_or_nan = hn::Mul(x, hn::Zero(d));
    const V pos = hn::IfThenElse(hn::Gt(x, hn::Zero(d)), Set(1.0), zero_or_nan);
    return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), Set(-1.0), pos);
  }

  // Arguments beyond which exp overflows; Highway's Exp is clamped below
  // its wrap-around point (float ~127) and the result saturates to +inf.
  static constexpr double kExpClamp = sizeof(T) == 4 ? 100.0 : 710.0;

  HWY_INLINE V Exp(V x) const {
    const V r = hn::Exp(d, hn::Min(x, Set(kExpClamp)));
    return hn::IfThenElse(hn::IsNaN(x), x, r);
  }
  HWY_INLINE V Expm1(V x) const {
    const V r = hn::Expm1(d, hn::Min(x, Set(kExpClamp)));
    return hn::IfThenElse(hn::IsNaN(x), x, r);
  }
  HWY_INLINE V Log(V x) const {
    const V inf = Set(std::numeric_limits<double>::infinity());
    const Mask in_domain = hn::And(hn::Gt(x, Zero()), hn::Lt(x, inf));
    V r = hn::Log(d, hn::IfThenElse(in_domain, x, Set(1.0)));
    r = hn::IfThenElse(hn::Eq(x, Zero()), hn::Neg(inf), r);
    r = hn::IfThenElse(hn::Eq(x, inf), inf, r);
    // x < 0 or NaN: NaN.
    return hn::IfThenElse(hn::Ge(x, Zero()), r,
                          Set(std::numeric_limits<double>::quiet_NaN()));
  }
  // Log1p: a vector whose lanes are all in (-1, 2^60] (every lane of the
  // losses that call it on data: msle's counts and prices, log_cosh's
  // arguments in (-1, 0]) takes the reduction of LogCorrected on u = 1 + x
  // with its exact rounding error c (Fast2Sum, the larger of 1 and |x|
  // first): no division in float, none of the edge fix-ups. Max error
  // (tests/cpp/log1p_test.cc, dense sweeps on every target) 1.6 ULP float
  // with fma, 1.9 without, 1.8 double: within Highway's 2. Any other vector
  // (one with an edge lane: -1, below, +inf, NaN, or above 2^60) takes
  // Highway's Log1p with the fix-ups, its ordinary lanes included.
  HWY_INLINE V Log1p(V x) const {
    const V one = Set(1.0);
    if (hn::AllTrue(d, hn::And(hn::Gt(x, Set(-1.0)), hn::Le(x, Set(0x1p60))))) {
      const V u = hn::Add(one, x);
      const V c = hn::IfThenElse(hn::Gt(x, one), hn::Sub(one, hn::Sub(u, x)),
                                 hn::Sub(x, hn::Sub(u, one)));
      return LogCorrected(u, c);
    }
    return Log1pEdges(x);
  }
  HWY_INLINE V Log1pEdges(V x) const {
    const V inf = Set(std::numeric_limits<double>::infinity());
    const V minus_one = Set(-1.0);
    const Mask in_domain = hn::And(hn::Gt(x, minus_one), hn::Lt(x, inf));
    V r = hn::Log1p(d, hn::IfThenElseZero(in_domain, x));
    r = hn::IfThenElse(hn::Eq(x, minus_one), hn::Neg(inf), r);
    r = hn::IfThenElse(hn::Eq(x, inf), inf, r);
    return hn::IfThenElse(hn::Ge(x, minus_one), r,
                          Set(std::numeric_limits<double>::quiet_NaN()));
  }

  // --- Specialised exp / log1p for the logistic function -------------------
  // Logistic (losses/classification-inl.h) needs e = exp(-|x|) in [0, 1] and
  // log1p(e). On these ranges neither needs Highway's overflow, pole or
  // domain fix-ups (nor Log1p's two divisions): the edge cases are handled
  // by construction, NaN propagates through the arithmetic.

  // ExpNonPositive: exp(x) for x <= 0, lanes f32/f64. -inf (and anything
  // below the underflow point) gives +0, NaN gives NaN; x > 0 is outside the
  // domain. Max error (dense sweeps in tests/cpp/logistic_math_test.cc):
  // 1 ULP for normal results; subnormal results are rounded once.
  //
  // Cody-Waite range reduction (Cephes expf / exp): q = round(x / ln 2),
  // r = x - q ln2_hi - q ln2_lo, |r| <= ln2 / 2 (q ln2_hi is exact: ln2_hi
  // has 9 (f32) / 20 (f64) significant bits, |q| needs 8 / 11). The rounding
  // uses the 1.5 * 2^mantissa "magic" addend, which leaves q in the low bits
  // of j, so 2^q is built from j's bits without a float -> int conversion.
  //  f32: exp(r) = 1 + r + r^2 P(r), P the degree-5 minimax polynomial of
  //       (exp(r) - 1 - r) / r^2 on |r| <= ln2/2 from Cephes expf.c
  //       (S. L. Moshier; relative error 1.7e-7 incl. rounding).
  //  f64: exp(r) = sum_{k<=13} r^k / k!, Taylor: the remainder is at most
  //       e^{ln2/2} (ln2/2)^14 / 14! = 5.8e-18 < 2^-57 relative.
  // Scaling: 2^q = 2^(q + s) 2^-s with s = 33 (f32) / 75 (f64), so that the
  // first factor stays normal down to the clamp (q >= -159 / -1097) and the
  // product rounds once, also where the result is subnormal.
  HWY_INLINE V ExpNonPositive(V x) const {
    constexpr bool kF32 = sizeof(T) == 4;
    using TI = hwy::MakeSigned<T>;
    const hn::RebindToSigned<D> di;
    // exp(lo) rounds to +0 (it is below half the smallest subnormal); the
    // compare is false for NaN, which passes through.
    const V lo = Set(kF32 ? -110.0 : -760.0);
    x = hn::IfThenElse(hn::Lt(x, lo), lo, x);
    const V magic = Set(kF32 ? 12582912.0 : 6755399441055744.0);  // 1.5 * 2^23 / 2^52
    const V j = hn::MulAdd(x, Set(1.44269504088896340736), magic);
    const V q = hn::Sub(j, magic);
    V r = hn::NegMulAdd(q, Set(kF32 ? 0.693359375 : 6.93145751953125E-1), x);
    r = hn::NegMulAdd(q, Set(kF32 ? -2.12194440E-4 : 1.42860682030941723212E-6), r);
    const V r2 = hn::Mul(r, r);
    V p;
    if constexpr (kF32) {
      // Estrin's scheme (three dependent steps instead of Horner's six: the
      // kernels using this are bound by their dependency chains).
      const V p01 = hn::MulAdd(Set(1.6666665459E-1), r, Set(5.0000001201E-1));
      const V p23 = hn::MulAdd(Set(8.3334519073E-3), r, Set(4.1665795894E-2));
      const V p45 = hn::MulAdd(Set(1.9875691500E-4), r, Set(1.3981999507E-3));
      p = hn::MulAdd(hn::MulAdd(p45, r2, p23), r2, p01);
    } else {
      p = Set(1.0 / 6227020800.0);                 // 1/13!
      p = hn::MulAdd(p, r, Set(1.0 / 479001600.0));  // 1/12!
      p = hn::MulAdd(p, r, Set(1.0 / 39916800.0));
      p = hn::MulAdd(p, r, Set(1.0 / 3628800.0));
      p = hn::MulAdd(p, r, Set(1.0 / 362880.0));
      p = hn::MulAdd(p, r, Set(1.0 / 40320.0));
      p = hn::MulAdd(p, r, Set(1.0 / 5040.0));
      p = hn::MulAdd(p, r, Set(1.0 / 720.0));
      p = hn::MulAdd(p, r, Set(1.0 / 120.0));
      p = hn::MulAdd(p, r, Set(1.0 / 24.0));
      p = hn::MulAdd(p, r, Set(1.0 / 6.0));
      p = hn::MulAdd(p, r, Set(0.5));
    }
    p = hn::Add(hn::MulAdd(p, r2, r), Set(1.0));
    constexpr int kMantissa = kF32 ? 23 : 52;
    constexpr int kShift = kF32 ? 33 : 75;
    // j's bits are bits(magic) + q, whose low kMantissa + 1 bits are zero:
    // the shift leaves exactly (q + bias + kShift) in the exponent field.
    const auto bits = hn::ShiftLeft<kMantissa>(
        hn::Add(hn::BitCast(di, j), hn::Set(di, static_cast<TI>((kF32 ? 127 : 1023) + kShift))));
    return hn::Mul(hn::Mul(p, hn::BitCast(d, bits)),
                   Set(kF32 ? 1.16415321826934814453125E-10 : 2.6469779601696885595885078E-23));
  }

  // Log1pUnit: log1p(e) for e in [0, 1] (NaN gives NaN), lanes f32/f64,
  // given r = 1 / (1 + e) as computed in T (Logistic needs it for the
  // sigmoid anyway; f64 uses it to scale a correction term, f32 does not
  // need it). Max error 0.85 ULP (f32, float emulation of the evaluation on a
  // 400k-point grid) / 0.8 ULP (f64, measured on AVX2);
  // tests/cpp/logistic_math_test.cc sweeps softplus built on it, <= 2 ULP
  // on every target (measured 1.53 f32, 1.57 f64). Exact e for e below
  // 2^-25 (f32) / 2^-54 (f64).
  //  f32: 1 + e = 2^k (1 + f) with k = [e >= 1/2] and f = e or e/2 - 1/2,
  //       both exact (no rounded 1 + e, no correction term): see the body.
  //  f64: u = 1 + e is rounded; c = e - (u - 1) is its exact rounding
  //       error (Fast2Sum, 1 >= e), and log1p(e) = log(u) + c / u to far
  //       below an ULP (|c| <= ulp(u) / 2). log(u): u = 2^k m with
  //       k = [u > sqrt 2], m in [sqrt(1/2), sqrt 2], f = m - 1 exact
  //       (fma), log m = log1p(f) by fdlibm's e_log.c: s = f / (2 + f),
  //       log1p(f) = f - hfsq + s (hfsq + R(s^2)), hfsq = f^2/2, R the
  //       degree-14 even minimax polynomial Lg1..Lg7 (|s| <= 0.1716, error
  //       < 2^-58.45); k ln 2 split in ln2_hi + ln2_lo (ln2_hi has 32
  //       significant bits).
  // k ln 2 + log1p(f) for f in [sqrt(1/2) - 1, sqrt 2 - 1] (float):
  // f - f^2/2 + f^3 P(f), P the degree-8 minimax polynomial from Cephes
  // logf.c (relative error 7.6e-8), by Estrin's scheme; k ln 2 split in
  // 0.693359375 - 2.12194440e-4 (Cephes). Used by LogNormal.
  HWY_INLINE V LogReducedF32(V f, V k) const {
    static constexpr double kP[9] = {3.3333331174E-1,  -2.4999993993E-1, 2.0000714765E-1,
                                     -1.6668057665E-1, 1.4249322787E-1,  -1.2420140846E-1,
                                     1.1676998740E-1,  -1.1514610310E-1, 7.0376836292E-2};
    const V z = hn::Mul(f, f);
    return LogFromReduced(f, z, Estrin(f, z, hn::Mul(z, z), kP), k);
  }

  // sum_i c[i] x^i for 8 or 9 coefficients by Estrin's scheme (four
  // dependent steps instead of Horner's eight or nine: the kernels using
  // these polynomials are bound by their dependency chains), given x^2, x^4.
  template <size_t N>
  HWY_INLINE V Estrin(V x, V x2, V x4, const double (&c)[N]) const {
    static_assert(N == 8 || N == 9, "Estrin: 8 or 9 coefficients");
    const V p01 = hn::MulAdd(Set(c[1]), x, Set(c[0]));
    const V p23 = hn::MulAdd(Set(c[3]), x, Set(c[2]));
    const V p45 = hn::MulAdd(Set(c[5]), x, Set(c[4]));
    const V p67 = hn::MulAdd(Set(c[7]), x, Set(c[6]));
    V hi = hn::MulAdd(p67, x2, p45);
    if constexpr (N == 9) hi = hn::MulAdd(Set(c[8]), x4, hi);
    return hn::MulAdd(hi, x4, hn::MulAdd(p23, x2, p01));
  }

  // k ln 2 + f - f^2/2 + f^3 p (float), z = f^2: k ln 2 split in
  // 0.693359375 - 2.12194440e-4 (Cephes), the small terms summed first.
  HWY_INLINE V LogFromReduced(V f, V z, V p, V k) const {
    // k ln2_lo - f^2/2 does not wait for p: two dependent steps after it.
    const V t = hn::NegMulAdd(Set(0.5), z, hn::Mul(k, Set(-2.12194440E-4)));
    const V y = hn::MulAdd(p, hn::Mul(f, z), t);
    return hn::MulAdd(k, Set(0.693359375), hn::Add(f, y));
  }

  // --- Logarithms inside the unit interval (clipped probabilities) ---------
  // The clipped losses take log p and log(1 - p) of p in [eps, 1 - eps]:
  // positive normal numbers, where no pole, domain or overflow fix-up of
  // Log / Log1p is needed.
  //
  // LogNormal: log(x) for x a positive normal finite number (NaN gives NaN;
  // anything else is outside the domain). Max error (dense sweeps in
  // tests/cpp/unit_log_test.cc): 1 ULP.
  //  f32: x = 2^k m with m in [sqrt(1/2), sqrt 2) taken from the bits
  //       (k = (bits(x) - bits(sqrt(1/2))) >> 23, arithmetic; m's bits are
  //       bits(x) - k << 23), then LogReducedF32(m - 1, k).
  //  f64: Highway's Log (fdlibm; <= 4 ULP documented, far less measured).
  HWY_INLINE V LogNormal(V x) const { return hn::IfThenElse(hn::IsNaN(x), x, LogNormalNoNaN(x)); }
  // The same, with a finite result for NaN.
  HWY_INLINE V LogNormalNoNaN(V x) const {
    if constexpr (sizeof(T) == 4) {
      const hn::RebindToSigned<D> di;
      // dx = bits(x) - bits(sqrt(1/2)): k = dx >> 23 (arithmetic), and m's
      // bits are bits(x) - k << 23 = (dx & 0x7fffff) + bits(sqrt(1/2)).
      const auto sqrt_half = hn::Set(di, 0x3f3504f3);
      const auto dx = hn::Sub(hn::BitCast(di, x), sqrt_half);
      const V m = hn::BitCast(d, hn::Add(hn::And(dx, hn::Set(di, 0x7fffff)), sqrt_half));
      return LogReducedF32(hn::Sub(m, Set(1.0)), hn::ConvertTo(d, hn::ShiftRight<23>(dx)));
    } else {
      return hn::Log(d, x);
    }
  }

  // Log1mUnit: log(1 - q) = log1p(-q) for q in [0, 1 - 2^-24] (float) /
  // [0, 1 - 2^-53] (double); NaN gives NaN. u = 1 - q is rounded, its error
  // c = -q - (u - 1) is exact (Fast2Sum, 1 >= q; c = 0 for q >= 1/2, where
  // 1 - q is exact), and log1p(-q) = log(u + c) (LogCorrected). Max error
  // 1 ULP (unit_log_test.cc).
  HWY_INLINE V Log1mUnit(V q) const { return LogCorrected(hn::Sub(Set(1.0), q), OneMinusError(q)); }
  // The rounding error of 1 - q (Fast2Sum, exact for q in [0, 1]).
  HWY_INLINE V OneMinusError(V q) const {
    const V one = Set(1.0);
    return hn::NegMulSub(q, one, hn::Sub(hn::Sub(one, q), one));  // -q - ((1 - q) - 1)
  }
  // log(u + c) for u in [2^-126, 2^126] (float) / a positive normal number
  // (double) and |c| <= ulp(u) / 2 its rounding error; NaN in u or c gives
  // NaN.
  //  f32: the reduction of LogNormal, u = 2^k m with m in [sqrt(1/2),
  //       sqrt 2), carries c along: f = (u + c) 2^-k - 1 = (u 2^-k - 1) +
  //       c 2^-k, two fmas with the power of two 2^-k built from k's bits.
  //       u 2^-k - 1 = m - 1 is exact, and so is the sum where c is not 0:
  //       there u = rounded(1 - q) for q < 1/2, so u + c = 1 - q and f is
  //       -q (k = 0) or 1 - 2q (k = -1, q > 1 - sqrt(1/2)), both floats
  //       (Log1p's u = 1 + x: the fma rounds f once, relative 2^-24).
  //       Then LogReducedF32 as for log(m). No reciprocal of u: c / u needs
  //       c's relative accuracy, more than the 12-bit hardware reciprocal
  //       gives (whose error differs between vendors: it passed on AMD and
  //       gave 659 ULP at q = 1e-7 on Intel).
  //  f64: log(u) + c / u (fdlibm's log; |c / u| is far below an ULP of the
  //       result's leading part, so the division's rounding does not show).
  HWY_INLINE V LogCorrected(V u, V c) const {
    if constexpr (sizeof(T) == 4) {
      const hn::RebindToSigned<D> di;
      // dx = bits(u) - bits(sqrt(1/2)): k = dx >> 23 (arithmetic), and
      // 2^-k's bits are bits(1) - k << 23 = bits(1) - (dx & ~0x7fffff):
      // a normal float for k in [-126, 126], which u in [2^-126, 2^126] gives.
      const auto dx = hn::Sub(hn::BitCast(di, u), hn::Set(di, 0x3f3504f3));
      const V scale = hn::BitCast(
          d, hn::Sub(hn::Set(di, 0x3f800000), hn::AndNot(hn::Set(di, 0x7fffff), dx)));
      // u 2^-k - 1 = m - 1 (exact; NaN u gives NaN), then + c 2^-k.
      const V f = hn::MulAdd(c, scale, hn::MulSub(u, scale, Set(1.0)));
      return LogReducedF32(f, hn::ConvertTo(d, hn::ShiftRight<23>(dx)));
    } else {
      // NaN in u reaches the result through c / u (also for c = 0), so
      // the log needs no NaN fix-up of its own.
      return hn::Add(LogNormalNoNaN(u), hn::Div(c, u));
    }
  }

  HWY_INLINE V Log1pUnit(V e, V r) const {
    const V one = Set(1.0);
    if constexpr (sizeof(T) == 4) {
      (void)r;
      // 1 + e = 2^k (1 + f) with f exact and no rounded 1 + e: k = 0, f = e
      // for e < 1/2; k = 1, f = (e - 1) / 2 = e/2 - 1/2 for e >= 1/2 (exact:
      // e/2 - 1/2 is in [-1/4, 0] with e's last bit). log1p(f) = f - f^2/2 +
      // f^3 P(f), P of degree 7 fitted on [-1/4, 1/2] (least squares at
      // Chebyshev nodes, weighted by the result's relative error, each
      // coefficient rounded to float before the next was refitted:
      // log1p relative error 5.7e-9), evaluated by Estrin's scheme, assembled as in
      // LogReducedF32. Max error 0.85 ULP (float emulation of this
      // evaluation order on a 400k-point grid of [0, 1]).
      const V half = Set(0.5);
      const Mask big = hn::Ge(e, half);
      const V f = hn::IfThenElse(big, hn::MulSub(e, half, half), e);
      const V k = hn::IfThenElseZero(big, one);
      static constexpr double kP[8] = {
          3.3333456516265869e-01,  -2.5000056624412537e-01, 1.9990487396717072e-01,
          -1.6648587584495544e-01, 1.4486183226108551e-01,  -1.3154649734497070e-01,
          1.0401850938796997e-01,  -4.4446777552366257e-02};
      const V z = hn::Mul(f, f);
      return LogFromReduced(f, z, Estrin(f, z, hn::Mul(z, z), kP), k);
    } else {
      const V u = hn::Add(one, e);
      const V c = hn::Sub(e, hn::Sub(u, one));
      const Mask big = hn::Gt(u, Set(1.41421356237309504880));
      const V k = hn::IfThenElseZero(big, one);
      const V f = hn::MulSub(u, hn::IfThenElse(big, Set(0.5), one), one);
      const V z = hn::Mul(f, f);
      const V s = hn::Div(f, hn::Add(Set(2.0), f));
      const V s2 = hn::Mul(s, s);
      const V s4 = hn::Mul(s2, s2);
      const V t1 = hn::Mul(s4, hn::MulAdd(hn::MulAdd(Set(1.531383769920937332e-01), s4,
                                                     Set(2.222219843214978396e-01)),
                                          s4, Set(3.999999999940941908e-01)));
      const V t2 = hn::Mul(
          s2, hn::MulAdd(hn::MulAdd(hn::MulAdd(Set(1.479819860511658591e-01), s4,
                                               Set(1.818357216161805012e-01)),
                                    s4, Set(2.857142874366239149e-01)),
                         s4, Set(6.666666666666735130e-01)));
      const V hfsq = hn::Mul(Set(0.5), z);
      // s (hfsq + R) + k ln2_lo + c / u: all the small terms.
      const V small = hn::MulAdd(s, hn::Add(hfsq, hn::Add(t1, t2)),
                                 hn::MulAdd(k, Set(1.90821492927058770002e-10), hn::Mul(c, r)));
      return hn::MulAdd(k, Set(6.93147180369123816490e-01), hn::Sub(f, hn::Sub(hfsq, small)));
    }
  }

  // atan: Highway's polynomial (<= 3 ULP), odd, +-pi/2 at +-inf, NaN for NaN.
  HWY_INLINE V Atan(V x) const { return hn::Atan(d, x); }

  HWY_INLINE Mask Lt(V a, V b) const { return hn::Lt(a, b); }
  HWY_INLINE Mask Le(V a, V b) const { return hn::Le(a, b); }
  HWY_INLINE Mask Gt(V a, V b) const { return hn::Gt(a, b); }
  HWY_INLINE Mask Eq(V a, V b) const { return hn::Eq(a, b); }
  HWY_INLINE Mask Or(Mask a, Mask b) const { return hn::Or(a, b); }
  // Whether every lane is set (a branch for the common case of a vector).
  HWY_INLINE bool AllTrue(Mask a) const { return hn::AllTrue(d, a); }
  HWY_INLINE Mask And(Mask a, Mask b) const { return hn::And(a, b); }
  HWY_INLINE V Select(Mask m, V a, V b) const { return hn::IfThenElse(m, a, b); }
};

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
