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
//  Min/Max/Clamp/Sign propagate NaN (x86 minps/maxps would not).

#if defined(FASTLOSS_SRC_INTERNAL_SIMD_MATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FASTLOSS_SRC_INTERNAL_SIMD_MATH_INL_H_
#undef FASTLOSS_SRC_INTERNAL_SIMD_MATH_INL_H_
#else
#define FASTLOSS_SRC_INTERNAL_SIMD_MATH_INL_H_
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
  HWY_INLINE V Log1p(V x) const {
    const V inf = Set(std::numeric_limits<double>::infinity());
    const V minus_one = Set(-1.0);
    const Mask in_domain = hn::And(hn::Gt(x, minus_one), hn::Lt(x, inf));
    V r = hn::Log1p(d, hn::IfThenElseZero(in_domain, x));
    r = hn::IfThenElse(hn::Eq(x, minus_one), hn::Neg(inf), r);
    r = hn::IfThenElse(hn::Eq(x, inf), inf, r);
    return hn::IfThenElse(hn::Ge(x, minus_one), r,
                          Set(std::numeric_limits<double>::quiet_NaN()));
  }

  // atan: Highway's polynomial (<= 3 ULP), odd, +-pi/2 at +-inf, NaN for NaN.
  HWY_INLINE V Atan(V x) const { return hn::Atan(d, x); }

  HWY_INLINE Mask Lt(V a, V b) const { return hn::Lt(a, b); }
  HWY_INLINE Mask Le(V a, V b) const { return hn::Le(a, b); }
  HWY_INLINE Mask Gt(V a, V b) const { return hn::Gt(a, b); }
  HWY_INLINE Mask Eq(V a, V b) const { return hn::Eq(a, b); }
  HWY_INLINE Mask Or(Mask a, Mask b) const { return hn::Or(a, b); }
  HWY_INLINE Mask And(Mask a, Mask b) const { return hn::And(a, b); }
  HWY_INLINE V Select(Mask m, V a, V b) const { return hn::IfThenElse(m, a, b); }
};

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
