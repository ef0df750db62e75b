// Accuracy of SimdMath::Log1p (cpp/src/math/simd_math-inl.h) on every SIMD
// target this machine runs, through the public API: msle with y_true = 0 is
// log1p(p)^2 per element (log1p(0) = 0 exactly). Dense sweeps through the
// bit patterns of T over (-1, 0) and (0, 2^60] -- the fast path's domain --
// against a long double reference, and the edge lanes (-1, below -1, +inf,
// NaN, beyond 2^60) alone and mixed into vectors of ordinary lanes.
#include <gtest/gtest.h>

#include <fastloss/fastloss.hpp>

#include "ulp.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using fastloss::Call;
using fastloss::Reduction;
using fastloss::View;
using fastloss_test::MaxErr;
using fastloss_test::UlpError;

// msle(0, p) per element: log1p(p)^2.
template <typename T>
std::vector<T> Squares(const std::vector<T>& ps) {
  const int64_t n = static_cast<int64_t>(ps.size());
  std::vector<T> ys(ps.size(), T(0)), loss(ps.size());
  Call<T> call;
  call.y_true = View<const T>::Contiguous(ys.data(), {n});
  call.y_pred = View<const T>::Contiguous(ps.data(), {n});
  call.reduction = Reduction::kNone;
  call.losses = View<T>::Contiguous(loss.data(), {n});
  fastloss::Msle(call);
  return loss;
}

// Error bound, ULP of T, of log1p(p)^2: twice log1p's (<= 2 ULP, as
// Highway's Log1p) plus the square's rounding. Measured maxima: float 3.72
// with fma (AVX2, AVX3; log1p 1.6 ULP, where u = 1 + p crosses sqrt 2 and
// ln 2 - log1p(f) cancels), 4.34 without (SSE4, SSSE3, scalar); double 3.96.
constexpr double kSquareUlp = 4.5;

using Log1p = fastloss_test::OnSimdTarget;

template <typename T>
void CheckSweep(T lo, T hi, uint64_t count) {
  SCOPED_TRACE(std::string(std::is_same<T, float>::value ? "float" : "double") + " [" +
               std::to_string(lo) + ", " + std::to_string(hi) + "]");
  const std::vector<T> ps = fastloss_test::BitPatterns<T>(lo, hi, count);
  const std::vector<T> l = Squares<T>(ps);
  MaxErr err;
  for (size_t i = 0; i < ps.size(); ++i) {
    const long double r = std::log1p(static_cast<long double>(ps[i]));
    err.Add(UlpError(l[i], r * r), static_cast<double>(ps[i]));
  }
  std::printf("  log1p(p)^2 %.2f ULP (p = %g)\n", err.ulp, err.at);
  EXPECT_LE(err.ulp, kSquareUlp) << "worst at p = " << err.at;
}

TEST_P(Log1p, FloatDenseSweep) {
  CheckSweep<float>(std::nextafter(-1.0f, 0.0f), -1e-30f, 2000000);
  CheckSweep<float>(1e-30f, 0x1p60f, 2000000);
}
TEST_P(Log1p, DoubleDenseSweep) {
  CheckSweep<double>(std::nextafter(-1.0, 0.0), -1e-300, 2000000);
  CheckSweep<double>(1e-300, 0x1p60, 2000000);
}

// The edge lanes, alone and beside ordinary lanes (whole vectors take the
// fix-up path then): the std:: results, and the ordinary lanes within the
// bound (Highway's Log1p for the vector holding the edge lane: its bits may
// differ from the fast path's by an ULP or two).
TEST_P(Log1p, EdgesInMixedVectors) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  for (float edge : {-1.0f, -1.5f, -inf, inf, nan, 0x1p61f, 3e38f}) {
    std::vector<float> ps(64);
    for (size_t i = 0; i < ps.size(); ++i) ps[i] = 0.01f * static_cast<float>(i) - 0.3f;
    for (size_t at : {size_t{0}, size_t{5}, size_t{17}, size_t{63}}) {
      std::vector<float> mixed = ps;
      mixed[at] = edge;
      const std::vector<float> l = Squares<float>(mixed);
      const long double r = std::log1p(static_cast<long double>(edge));
      const long double want = r * r;
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(l[at])) << "p = " << edge;
      } else if (std::isinf(want)) {
        EXPECT_EQ(l[at], inf) << "p = " << edge;
      } else {
        EXPECT_LE(UlpError(l[at], want), kSquareUlp) << "p = " << edge;
      }
      for (size_t i = 0; i < ps.size(); ++i) {
        const long double r_i = std::log1p(static_cast<long double>(ps[i]));
        if (i != at) EXPECT_LE(UlpError(l[i], r_i * r_i), kSquareUlp) << "p = " << ps[i];
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Available, Log1p, ::testing::ValuesIn(fastloss::AvailableSimdTargets()),
                         fastloss_test::TargetTestName);

}  // namespace
