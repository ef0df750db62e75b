// Accuracy of the logarithms the clipped probability losses take inside the
// unit interval: bce on probabilities computes -log(pc) (y = 1) and
// -log1p(-pc) (y = 0) for pc = clip(p, eps, 1 - eps) through SimdMath's
// LogNormal and Log1mUnit (cpp/src/math/simd_math-inl.h). Dense sweeps
// through the bit patterns of T in [eps, 1 - eps] (every binade gets the
// same number of points, both ends included) against a long double
// reference, on every SIMD target this machine runs, through the public API.
#include <gtest/gtest.h>

#include <fastloss/fastloss.hpp>

#include "ulp.h"

#include <algorithm>
#include <cctype>
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

// Every `step`-th bit pattern of T in [lo, hi], plus both ends and values
// around 1/2 and sqrt(1/2) (where the reductions switch).
template <typename T>
std::vector<T> UnitPoints(T lo, T hi, uint64_t count) {
  std::vector<T> ps = fastloss_test::BitPatterns<T>(lo, hi, count);
  for (T v : {T(0.5), std::nextafter(T(0.5), T(0)), std::nextafter(T(0.5), T(1)),
              T(0.70710678118654752), T(0.29289321881345248), T(0.75), T(0.25)}) {
    ps.push_back(v);
  }
  return ps;
}

// bce(y, p) per element on probabilities with `eps`; the loss only.
template <typename T>
std::vector<T> BceLosses(const std::vector<T>& ps, T y, double eps) {
  const int64_t n = static_cast<int64_t>(ps.size());
  std::vector<T> ys(ps.size(), y), loss(ps.size());
  Call<T> call;
  call.y_true = View<const T>::Contiguous(ys.data(), {n});
  call.y_pred = View<const T>::Contiguous(ps.data(), {n});
  call.reduction = Reduction::kNone;
  call.losses = View<T>::Contiguous(loss.data(), {n});
  fastloss::BinaryCrossEntropyOptions o;
  o.eps = eps;
  fastloss::BinaryCrossEntropy(call, o);
  return loss;
}

// Error bound, ULP of T, of -log(p) and -log1p(-p). Measured maxima: float
// 1.3 (at p = eps = 1e-7, also with std::log1p on the scalar target), double
// 1.23 (Highway's Log inside; std:: on the scalar target 1.2).
constexpr double kLogUlp = 2.0;

using UnitLog = fastloss_test::OnSimdTarget;

template <typename T>
void CheckSweep(double eps, uint64_t count) {
  SCOPED_TRACE((std::is_same<T, float>::value ? "float eps " : "double eps ") + std::to_string(eps));
  // The clip bounds as the library rounds them.
  const T lo = static_cast<T>(eps), hi = static_cast<T>(1.0 - eps);
  const std::vector<T> ps = UnitPoints<T>(lo, hi, count);
  MaxErr log_err, log1m_err;
  const std::vector<T> l1 = BceLosses<T>(ps, T(1), eps), l0 = BceLosses<T>(ps, T(0), eps);
  for (size_t i = 0; i < ps.size(); ++i) {
    const long double p = ps[i];
    log_err.Add(UlpError(l1[i], -std::log(p)), static_cast<double>(ps[i]));
    log1m_err.Add(UlpError(l0[i], -std::log1p(-p)), static_cast<double>(ps[i]));
  }
  std::printf("  -log(p) %.2f ULP (p = %g), -log1p(-p) %.2f ULP (p = %g)\n", log_err.ulp,
              log_err.at, log1m_err.ulp, log1m_err.at);
  EXPECT_LE(log_err.ulp, kLogUlp) << "-log(p), worst at p = " << log_err.at;
  EXPECT_LE(log1m_err.ulp, kLogUlp) << "-log1p(-p), worst at p = " << log1m_err.at;
}

TEST_P(UnitLog, FloatDenseSweep) {
  CheckSweep<float>(1e-7, 2000000);
  CheckSweep<float>(0.25, 200000);
}
TEST_P(UnitLog, DoubleDenseSweep) {
  CheckSweep<double>(1e-7, 2000000);
  CheckSweep<double>(1e-15, 2000000);
}

// Clipping, NaN and the values the clip produces, exactly.
TEST_P(UnitLog, Edges) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> ps = {0.0f, 1.0f, -3.0f, 7.0f, nan, 0.5f};
  const std::vector<float> l1 = BceLosses<float>(ps, 1.0f, 1e-7), l0 = BceLosses<float>(ps, 0.0f, 1e-7);
  const long double lo = 1e-7f, hi = 1.0f - 1e-7f;
  EXPECT_LE(UlpError(l1[0], -std::log(lo)), kLogUlp);
  EXPECT_LE(UlpError(l1[1], -std::log(hi)), kLogUlp);
  EXPECT_LE(UlpError(l0[0], -std::log1p(-lo)), kLogUlp);
  EXPECT_LE(UlpError(l0[1], -std::log1p(-hi)), kLogUlp);
  EXPECT_EQ(l1[2], l1[0]);
  EXPECT_EQ(l1[3], l1[1]);
  EXPECT_TRUE(std::isnan(l1[4]));
  EXPECT_TRUE(std::isnan(l0[4]));
  EXPECT_EQ(l1[5], l0[5]);
  EXPECT_LE(UlpError(l1[5], std::log(2.0L)), kLogUlp);
}

INSTANTIATE_TEST_SUITE_P(Available, UnitLog,
                         ::testing::ValuesIn(fastloss::AvailableSimdTargets()),
                         fastloss_test::TargetTestName);

}  // namespace
