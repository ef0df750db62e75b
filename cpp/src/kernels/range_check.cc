// The y_true range check of the elementwise driver (drivers/elementwise/elementwise.cc): the
// first element outside [lo, hi], on the SIMD target in force. It runs on
// each chunk just before the kernel reads the chunk again from cache, so it
// is a sizeable part of the cheap losses' time: compares or-ed into a mask
// per vector, no early exit (the position is searched for only when the
// chunk has a bad value).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/range_check.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <stdint.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <typename T>
int64_t FirstOutsideImpl(const T* HWY_RESTRICT y, int64_t n, T lo, T hi) {
  const hn::ScalableTag<T> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vlo = hn::Set(d, lo), vhi = hn::Set(d, hi);
  auto out = [&](hn::Vec<decltype(d)> v) { return hn::Or(hn::Lt(v, vlo), hn::Gt(v, vhi)); };
  auto bad0 = hn::FirstN(d, 0), bad1 = hn::FirstN(d, 0);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    bad0 = hn::Or(bad0, hn::Or(out(hn::LoadU(d, y + i)), out(hn::LoadU(d, y + i + N))));
    bad1 = hn::Or(bad1, hn::Or(out(hn::LoadU(d, y + i + 2 * N)), out(hn::LoadU(d, y + i + 3 * N))));
  }
  for (; i + N <= n; i += N) bad0 = hn::Or(bad0, out(hn::LoadU(d, y + i)));
  bool bad = !hn::AllFalse(d, hn::Or(bad0, bad1));
  for (; i < n; ++i) bad |= y[i] < lo || y[i] > hi;
  if (!bad) return -1;
  for (int64_t j = 0; j < n; ++j) {
    if (y[j] < lo || y[j] > hi) return j;
  }
  return -1;
}

int64_t FirstOutsideF32(const float* y, int64_t n, float lo, float hi) {
  return FirstOutsideImpl(y, n, lo, hi);
}
int64_t FirstOutsideF64(const double* y, int64_t n, double lo, double hi) {
  return FirstOutsideImpl(y, n, lo, hi);
}

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "drivers/kernels.h"

namespace fastloss {

HWY_EXPORT(FirstOutsideF32);
HWY_EXPORT(FirstOutsideF64);

namespace internal {
template <>
int64_t FirstOutside<float>(const float* y, int64_t n, float lo, float hi) {
  return HWY_DYNAMIC_DISPATCH(FirstOutsideF32)(y, n, lo, hi);
}
template <>
int64_t FirstOutside<double>(const double* y, int64_t n, double lo, double hi) {
  return HWY_DYNAMIC_DISPATCH(FirstOutsideF64)(y, n, lo, hi);
}
}  // namespace internal

}  // namespace fastloss
#endif  // HWY_ONCE
