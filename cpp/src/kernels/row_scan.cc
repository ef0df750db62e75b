// The metric kernels' row scans on contiguous rows (drivers/rowwise/row_scan.h),
// on the SIMD target in force: the first maximum (NumPy's argmax) and the
// stable rank of a class, each with the row's NaN test. A maximum and
// integer counts do not depend on the order of the lanes: the results are
// exact and the same on every target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/row_scan.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <stdint.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lanes of v that are NaN: not Eq(v, v) (Highway 1.0's Ne is an ordered
// compare on some targets, false for NaN).
template <class D, class V>
HWY_INLINE auto IsNan(D, V v) {
  return hn::Not(hn::Eq(v, v));
}

template <typename T>
int64_t FirstMaxImpl(const T* HWY_RESTRICT x, int64_t n, bool* nan) {
  const hn::ScalableTag<T> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  T m = x[0];
  bool any_nan = false;
  int64_t c = 0;
  if (n >= N) {
    auto vmax = hn::LoadU(d, x), vmax1 = vmax;
    auto bad = IsNan(d, vmax), bad1 = bad;
    for (c = N; c + 2 * N <= n; c += 2 * N) {
      const auto a = hn::LoadU(d, x + c), b = hn::LoadU(d, x + c + N);
      bad = hn::Or(bad, IsNan(d, a));
      bad1 = hn::Or(bad1, IsNan(d, b));
      vmax = hn::Max(vmax, a);
      vmax1 = hn::Max(vmax1, b);
    }
    for (; c + N <= n; c += N) {
      const auto a = hn::LoadU(d, x + c);
      bad = hn::Or(bad, IsNan(d, a));
      vmax = hn::Max(vmax, a);
    }
    any_nan = !hn::AllFalse(d, hn::Or(bad, bad1));
    m = hn::GetLane(hn::MaxOfLanes(d, hn::Max(vmax, vmax1)));
  }
  for (; c < n; ++c) {
    any_nan |= x[c] != x[c];
    m = x[c] > m ? x[c] : m;
  }
  *nan = any_nan;
  if (any_nan) return 0;
  const auto vm = hn::Set(d, m);
  for (c = 0; c + N <= n; c += N) {
    const intptr_t k = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + c), vm));
    if (k >= 0) return c + k;
  }
  for (; c < n; ++c) {
    if (x[c] == m) return c;
  }
  return 0;
}

// #{c in [lo, hi) : x_c > xt} (or >= with kTies); NaN lanes or-ed into *nan.
template <bool kTies, typename T>
int64_t CountAbove(const T* HWY_RESTRICT x, int64_t lo, int64_t hi, T xt, bool* nan) {
  const hn::ScalableTag<T> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vt = hn::Set(d, xt);
  auto bad = hn::FirstN(d, 0);
  int64_t count = 0, c = lo;
  for (; c + N <= hi; c += N) {
    const auto v = hn::LoadU(d, x + c);
    bad = hn::Or(bad, IsNan(d, v));
    count += static_cast<int64_t>(hn::CountTrue(d, kTies ? hn::Ge(v, vt) : hn::Gt(v, vt)));
  }
  bool any = !hn::AllFalse(d, bad);
  for (; c < hi; ++c) {
    any |= x[c] != x[c];
    count += kTies ? (x[c] >= xt) : (x[c] > xt);
  }
  *nan = *nan || any;
  return count;
}

template <typename T>
int64_t StableRankImpl(const T* HWY_RESTRICT x, int64_t n, int64_t t, bool* nan) {
  const T xt = x[t];
  bool any = xt != xt;
  const int64_t rank = CountAbove<true>(x, 0, t, xt, &any) + CountAbove<false>(x, t + 1, n, xt, &any);
  *nan = any;
  return rank;
}

int64_t FirstMaxF32(const float* x, int64_t n, bool* nan) { return FirstMaxImpl(x, n, nan); }
int64_t FirstMaxF64(const double* x, int64_t n, bool* nan) { return FirstMaxImpl(x, n, nan); }
int64_t StableRankF32(const float* x, int64_t n, int64_t t, bool* nan) {
  return StableRankImpl(x, n, t, nan);
}
int64_t StableRankF64(const double* x, int64_t n, int64_t t, bool* nan) {
  return StableRankImpl(x, n, t, nan);
}

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "drivers/rowwise/row_scan.h"

namespace fastloss {

HWY_EXPORT(FirstMaxF32);
HWY_EXPORT(FirstMaxF64);
HWY_EXPORT(StableRankF32);
HWY_EXPORT(StableRankF64);

namespace internal {
template <>
int64_t FirstMaxContiguous<float>(const float* x, int64_t n, bool* nan) {
  return HWY_DYNAMIC_DISPATCH(FirstMaxF32)(x, n, nan);
}
template <>
int64_t FirstMaxContiguous<double>(const double* x, int64_t n, bool* nan) {
  return HWY_DYNAMIC_DISPATCH(FirstMaxF64)(x, n, nan);
}
template <>
int64_t StableRankContiguous<float>(const float* x, int64_t n, int64_t t, bool* nan) {
  return HWY_DYNAMIC_DISPATCH(StableRankF32)(x, n, t, nan);
}
template <>
int64_t StableRankContiguous<double>(const double* x, int64_t n, int64_t t, bool* nan) {
  return HWY_DYNAMIC_DISPATCH(StableRankF64)(x, n, t, nan);
}
}  // namespace internal

}  // namespace fastloss
#endif  // HWY_ONCE
