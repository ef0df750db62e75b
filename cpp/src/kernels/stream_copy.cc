// Streaming copies (drivers/elementwise/elementwise.cc): outputs too large for
// the cache whose start is not aligned for the kernels' streaming stores are
// written to a staging buffer in cache, then copied out here: the whole
// vectors of the destination with non-temporal stores of the target's full
// width (the destination lines are not read first), the parts at either end
// with ordinary stores, so that neighbouring ranges written by other threads
// are untouched. The caller fences the stores (StreamFence) once it has
// written its range: a fence per call cost a 1e5-segment gradient 2x.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/stream_copy.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <stdint.h>
#include <string.h>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <typename T>
void StreamCopyImpl(T* HWY_RESTRICT dst, const T* HWY_RESTRICT src, int64_t n) {
  const hn::ScalableTag<T> d;
  const size_t N = hn::Lanes(d);
  const size_t bytes = N * sizeof(T);
  const uintptr_t a = reinterpret_cast<uintptr_t>(dst);
  size_t count = static_cast<size_t>(n);
  if (a % sizeof(T) != 0 || count < 2 * N) {
    memcpy(dst, src, count * sizeof(T));
    return;
  }
  const size_t head = ((bytes - a % bytes) % bytes) / sizeof(T);
  memcpy(dst, src, head * sizeof(T));
  size_t i = head;
  for (; i + N <= count; i += N) hn::Stream(hn::LoadU(d, src + i), d, dst + i);
  memcpy(dst + i, src + i, (count - i) * sizeof(T));
}

void StreamCopyF32(float* dst, const float* src, int64_t n) { StreamCopyImpl(dst, src, n); }
void StreamCopyF64(double* dst, const double* src, int64_t n) { StreamCopyImpl(dst, src, n); }

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "drivers/kernels.h"

namespace fastloss {

HWY_EXPORT(StreamCopyF32);
HWY_EXPORT(StreamCopyF64);

namespace internal {
template <>
void StreamCopy<float>(float* dst, const float* src, int64_t n) {
  HWY_DYNAMIC_DISPATCH(StreamCopyF32)(dst, src, n);
}
template <>
void StreamCopy<double>(double* dst, const double* src, int64_t n) {
  HWY_DYNAMIC_DISPATCH(StreamCopyF64)(dst, src, n);
}
}  // namespace internal

}  // namespace fastloss
#endif  // HWY_ONCE
