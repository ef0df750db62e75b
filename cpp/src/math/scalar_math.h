// The "math interface" for plain scalars: float, double, and (under nvcc)
// device scalars. The loss functors are written against this interface and
// against SimdMath (simd_math-inl.h), which has the same member functions for
// Highway vectors; see losses/common-inl.h.
//
// Conventions shared with SimdMath:
//  - V is the value type, Mask the result of comparisons;
//  - comparisons with NaN are false, so Select(Lt(x, c), a, b) picks b for NaN;
//  - Min/Max/Clamp propagate NaN (unlike x86 minps/maxps);
//  - Exp/Expm1/Log/Log1p are valid on their whole IEEE domain (inf, NaN,
//    negative arguments give what std:: gives).
#ifndef FASTLOSS_SRC_MATH_SCALAR_MATH_H_
#define FASTLOSS_SRC_MATH_SCALAR_MATH_H_

#include <cmath>

#include "internal/base.h"

namespace fastloss {
namespace internal {

template <typename T>
struct ScalarMath {
  using V = T;
  using Mask = bool;

  FASTLOSS_HD V Set(double x) const { return static_cast<T>(x); }
  FASTLOSS_HD V Zero() const { return T(0); }
  FASTLOSS_HD V Add(V a, V b) const { return a + b; }
  FASTLOSS_HD V Sub(V a, V b) const { return a - b; }
  FASTLOSS_HD V Mul(V a, V b) const { return a * b; }
  // a * b + c, two roundings (the build turns off contraction:
  // -ffp-contract=off, nvcc -fmad=false); SimdMath's fuses it where the
  // target has FMA.
  FASTLOSS_HD V MulAdd(V a, V b, V c) const { return a * b + c; }
  FASTLOSS_HD V Div(V a, V b) const { return a / b; }
  FASTLOSS_HD V Neg(V a) const { return -a; }
  FASTLOSS_HD V Abs(V a) const { return std::fabs(a); }
  // |magnitude| with the sign bit of `sign`.
  FASTLOSS_HD V CopySign(V magnitude, V sign) const { return std::copysign(magnitude, sign); }
  FASTLOSS_HD V Sqrt(V a) const { return std::sqrt(a); }
  // NaN-propagating min/max.
  FASTLOSS_HD V Min(V a, V b) const { return (a != a || a < b) ? a : b; }
  FASTLOSS_HD V Max(V a, V b) const { return (a != a || a > b) ? a : b; }
  // sign(x): -1, 0 or +1; NaN for NaN.
  FASTLOSS_HD V Sign(V x) const {
    return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x * T(0));
  }
  FASTLOSS_HD V Exp(V x) const { return std::exp(x); }
  FASTLOSS_HD V Expm1(V x) const { return std::expm1(x); }
  FASTLOSS_HD V Log(V x) const { return std::log(x); }
  FASTLOSS_HD V Log1p(V x) const { return std::log1p(x); }
  FASTLOSS_HD V Atan(V x) const { return std::atan(x); }
  // The specialised forms of SimdMath (see simd_math-inl.h): exp(x) for
  // x <= 0, and log1p(e) for e in [0, 1] given r = 1 / (1 + e) (which only
  // the SIMD version uses). Here the plain std:: functions.
  FASTLOSS_HD V ExpNonPositive(V x) const { return std::exp(x); }
  FASTLOSS_HD V Log1pUnit(V e, V /*r*/) const { return std::log1p(e); }
  // log(x) for positive normal x; log(1 - q) for q in [0, 1); the rounding
  // error of 1 - q; log(u + c) for u > 0 and c its rounding error.
  FASTLOSS_HD V LogNormal(V x) const { return std::log(x); }
  FASTLOSS_HD V Log1mUnit(V q) const { return std::log1p(-q); }
  FASTLOSS_HD V OneMinusError(V q) const { return -q - ((T(1) - q) - T(1)); }
  FASTLOSS_HD V LogCorrected(V u, V c) const { return std::log(u) + c / u; }

  FASTLOSS_HD Mask Lt(V a, V b) const { return a < b; }
  FASTLOSS_HD Mask Le(V a, V b) const { return a <= b; }
  FASTLOSS_HD Mask Gt(V a, V b) const { return a > b; }
  FASTLOSS_HD Mask Eq(V a, V b) const { return a == b; }
  FASTLOSS_HD Mask Or(Mask a, Mask b) const { return a || b; }
  FASTLOSS_HD bool AllTrue(Mask a) const { return a; }
  FASTLOSS_HD Mask And(Mask a, Mask b) const { return a && b; }
  FASTLOSS_HD V Select(Mask m, V a, V b) const { return m ? a : b; }
};

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_MATH_SCALAR_MATH_H_
