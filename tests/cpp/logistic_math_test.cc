// Accuracy of the logistic function's parts (softplus, sigmoid) as the binary
// losses compute them: the SIMD kernels build them from the specialised
// ExpNonPositive / Log1pUnit (cpp/src/math/simd_math-inl.h), whose
// polynomials these dense sweeps check against a long double reference, on
// every SIMD target this machine runs, through the public API:
//   bce(y = 0, x): loss softplus(x),  gradient  sigmoid(x),
//   bce(y = 1, x): loss softplus(-x), gradient -sigmoid(-x).
// The sweeps step through the bit patterns of T from 0 to past the point
// where exp(-|x|) underflows (both signs), so every binade gets the same
// number of points; errors are in units in the last place of T at the
// reference (with the subnormal ULP as the floor).
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

long double SoftplusRef(long double x) {
  if (std::isinf(x)) return x > 0 ? x : 0.0L;
  return std::max(x, 0.0L) + std::log1p(std::exp(-std::fabs(x)));
}
long double SigmoidRef(long double x) {
  if (std::isnan(x)) return x;
  return x >= 0 ? 1.0L / (1.0L + std::exp(-x)) : std::exp(x) / (1.0L + std::exp(x));
}

// x >= 0 values: every `step`-th bit pattern of T below `hi`, plus edges;
// the sweep uses x and -x.
template <typename T>
std::vector<T> SweepPoints(T hi, uint64_t count) {
  std::vector<T> xs = fastloss_test::BitPatterns<T>(T(0), hi, count);
  const T inf = std::numeric_limits<T>::infinity();
  for (T v : {T(0.5), T(1), T(17), T(80), T(88), T(100), T(104), T(700), T(745), T(1e4),
              std::numeric_limits<T>::max(), inf, std::numeric_limits<T>::quiet_NaN()}) {
    xs.push_back(v);
  }
  const size_t n = xs.size();
  for (size_t i = 0; i < n; ++i) xs.push_back(-xs[i]);
  return xs;
}

// Runs bce(y, x) with reduction none and checks the per-element losses and
// gradients against the reference. Returns the largest errors seen.
template <typename T>
void SweepBce(const std::vector<T>& xs, T y, MaxErr& loss_err, MaxErr& grad_err) {
  const int64_t n = static_cast<int64_t>(xs.size());
  std::vector<T> ys(xs.size(), y), loss(xs.size()), grad(xs.size());
  Call<T> call;
  call.y_true = View<const T>::Contiguous(ys.data(), {n});
  call.y_pred = View<const T>::Contiguous(xs.data(), {n});
  call.reduction = Reduction::kNone;
  call.losses = View<T>::Contiguous(loss.data(), {n});
  call.grad = View<T>::Contiguous(grad.data(), {n});
  fastloss::BinaryCrossEntropyOptions o;
  o.from_logits = true;
  fastloss::BinaryCrossEntropy(call, o);
  for (size_t i = 0; i < xs.size(); ++i) {
    const long double x = xs[i];
    // y = 0: softplus(x), sigmoid(x); y = 1: softplus(-x), -sigmoid(-x).
    const long double l = y == T(0) ? SoftplusRef(x) : SoftplusRef(-x);
    const long double g = y == T(0) ? SigmoidRef(x) : -SigmoidRef(-x);
    loss_err.Add(UlpError(loss[i], l), static_cast<double>(xs[i]));
    grad_err.Add(UlpError(grad[i], g), static_cast<double>(xs[i]));
  }
}

// Error bounds (ULP of T): softplus = max(+-x, 0) + log1p(e) with log1p
// below 1 ULP and e = exp(-|x|) below 1 ULP (measured 1.6); sigmoid(-|x|)
// = e / (1 + e) as e * (1 / (1 + e)), three roundings on top of e's error
// (measured 2.8, the same as with Highway's Exp before).
constexpr double kSoftplusUlp = 2.0;
constexpr double kSigmoidUlp = 3.0;

using LogisticMath = fastloss_test::OnSimdTarget;

template <typename T>
void CheckSweep(T hi, uint64_t count) {
  SCOPED_TRACE((std::is_same<T, float>::value ? "float" : "double"));
  const std::vector<T> xs = SweepPoints<T>(hi, count);
  for (T y : {T(0), T(1)}) {
    SCOPED_TRACE("y = " + std::to_string(static_cast<int>(y)));
    MaxErr loss_err, grad_err;
    SweepBce<T>(xs, y, loss_err, grad_err);
    std::printf("  y = %d: softplus %.2f ULP (x = %g), sigmoid %.2f ULP (x = %g)\n",
                static_cast<int>(y), loss_err.ulp, loss_err.at, grad_err.ulp, grad_err.at);
    EXPECT_LE(loss_err.ulp, kSoftplusUlp) << "softplus, worst at x = " << loss_err.at;
    EXPECT_LE(grad_err.ulp, kSigmoidUlp) << "sigmoid, worst at x = " << grad_err.at;
  }
}

// Past the underflow of exp(-|x|): float 104, double 746.
TEST_P(LogisticMath, FloatDenseSweep) { CheckSweep<float>(110.0f, 2000000); }
TEST_P(LogisticMath, DoubleDenseSweep) { CheckSweep<double>(760.0, 2000000); }

// The documented values: softplus(-17) in float keeps its relative accuracy
// (4.14e-8), sigmoid(-80) = 1.8e-35 (normal in float), +-inf exact, NaN.
TEST_P(LogisticMath, DocumentedEdges) {
  const std::vector<float> xs = {17.0f, 80.0f, 1e4f, -1e4f};
  std::vector<float> ys = {1, 1, 1, 0}, loss(4), grad(4);
  Call<float> call;
  call.y_true = View<const float>::Contiguous(ys.data(), {4});
  call.y_pred = View<const float>::Contiguous(xs.data(), {4});
  call.reduction = Reduction::kNone;
  call.losses = View<float>::Contiguous(loss.data(), {4});
  call.grad = View<float>::Contiguous(grad.data(), {4});
  fastloss::BinaryCrossEntropyOptions o;
  o.from_logits = true;
  fastloss::BinaryCrossEntropy(call, o);
  EXPECT_NEAR(loss[0], 4.1399377e-8, 4.1399377e-8 * 2.4e-7);
  EXPECT_NEAR(grad[1], -1.8048513e-35, 1.8048513e-35 * 3.6e-7);
  EXPECT_EQ(loss[2], 0.0f);
  EXPECT_EQ(grad[2], -0.0f);
  EXPECT_EQ(loss[3], 0.0f);
  EXPECT_EQ(grad[3], 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Available, LogisticMath,
                         ::testing::ValuesIn(fastloss::AvailableSimdTargets()),
                         fastloss_test::TargetTestName);

}  // namespace
