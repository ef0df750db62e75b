// Scans of one row of class scores shared by the metric kernels (the top-k
// row kernel, drivers/rowwise/scalar_rows.cc, and the confusion counts,
// api/confusion.cc): NumPy's first-maximum argmax and the stable rank of a
// class, each with the row's NaN test. Contiguous rows run the dispatched
// SIMD scans of kernels/row_scan.cc; strided ones a scalar loop.
#ifndef FASTLOSS_SRC_DRIVERS_ROWWISE_ROW_SCAN_H_
#define FASTLOSS_SRC_DRIVERS_ROWWISE_ROW_SCAN_H_

#include <cstdint>

namespace fastloss {
namespace internal {

// Dispatched (kernels/row_scan.cc), for rows of stride 1.
template <typename T>
int64_t FirstMaxContiguous(const T* x, int64_t n, bool* nan);
template <typename T>
int64_t StableRankContiguous(const T* x, int64_t n, int64_t t, bool* nan);

// The first c in [0, n) with x_c == max_c x_c (n >= 1); *nan: the row has a
// NaN (the index is then 0).
template <typename T>
inline int64_t FirstMax(const T* x, int64_t n, int64_t stride, bool* nan) {
  if (stride == 1) return FirstMaxContiguous(x, n, nan);
  T m = x[0];
  bool any_nan = false;
  int64_t best = 0;
  for (int64_t c = 0; c < n; ++c) {
    const T v = x[c * stride];
    any_nan |= v != v;
    if (v > m) {
      m = v;
      best = c;
    }
  }
  *nan = any_nan;
  return any_nan ? 0 : best;
}

// rank = #{c : x_c > x_t} + #{c < t : x_c == x_t}: class t's place in a
// stable descending sort of the row; *nan: the row has a NaN.
template <typename T>
inline int64_t StableRank(const T* x, int64_t n, int64_t stride, int64_t t, bool* nan) {
  if (stride == 1) return StableRankContiguous(x, n, t, nan);
  const T xt = x[t * stride];
  int64_t rank = 0;
  bool any_nan = false;
  for (int64_t c = 0; c < n; ++c) {
    const T v = x[c * stride];
    any_nan |= v != v;
    rank += (v > xt) || (c < t && v == xt);
  }
  *nan = any_nan;
  return rank;
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_DRIVERS_ROWWISE_ROW_SCAN_H_
