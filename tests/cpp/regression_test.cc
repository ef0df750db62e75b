// The nine regression losses (cpp/src/kernels/regression.cc, api/elementwise.cc)
// against the double reference of reference.h: every configuration of
// AllConfigs(), float and double, sizes around the SIMD widths and the
// reduction block, every reduction and every output mode (value only, value
// and gradient, per-element losses, gradient only, both); then the edge
// values the spec names (NaN, huge residuals, infinities).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fastloss/fastloss.hpp>

#include "checks.h"
#include "reference.h"

namespace fastloss_test {
namespace {

constexpr int64_t kSizes[] = {1, 7, 8, 9, 31, 33, 1000, 5000};
constexpr uint64_t kSeeds[] = {1, 2, 3};
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

template <typename T>
View<const T> Vec(const std::vector<T>& x) {
  return View<const T>::Contiguous(x.data(), {static_cast<int64_t>(x.size())});
}

// Every reduction and output mode of one loss on one data set, each against
// the reference; the modes must also agree with each other to a few ulp.
template <typename T>
void CheckAllModes(const LossConfig& c, int64_t n, uint64_t seed, bool weighted) {
  SCOPED_TRACE(c.name + " " + DtypeName<T>() + " n=" + std::to_string(n) +
               " seed=" + std::to_string(seed) + (weighted ? " weighted" : ""));
  std::vector<double> y64, p64;
  MakeData(c, n, seed, &y64, &p64);
  const std::vector<T> y = Cast<T>(y64), p = Cast<T>(p64);
  const std::vector<T> w = Cast<T>(MakeWeights(n, seed));
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    SCOPED_TRACE(std::string("reduction ") + ReductionName(r));
    Call<T> call;
    call.y_true = Vec(y);
    call.y_pred = Vec(p);
    call.reduction = r;
    if (weighted) {
      call.weights = Vec(w);
    }
    StridedArray<T> grad(n), losses(n);
    if (r != Reduction::kNone) {
      // Value only; a losses view is ignored outside kNone.
      call.losses = losses.view();
      double value_only = 0;
      EXPECT_TRUE(RunAndCheck(c, call, &value_only)) << "value only";
      EXPECT_TRUE(losses.Untouched()) << "losses written with a reduction";
      // Value and gradient in one call.
      call.grad = grad.view();
      double fused = 0;
      EXPECT_TRUE(RunAndCheck(c, call, &fused)) << "value and grad";
      EXPECT_TRUE(grad.OnlyViewWritten());
      EXPECT_TRUE(WithinUlps<T>(fused, value_only, 8))
          << "fused " << fused << " vs value only " << value_only;
    } else {
      // Losses only.
      call.losses = losses.view();
      EXPECT_TRUE(RunAndCheck(c, call)) << "losses only";
      const std::vector<T> losses_only = losses.Values();
      // Gradient only.
      call.losses.reset();
      call.grad = grad.view();
      EXPECT_TRUE(RunAndCheck(c, call)) << "grad only";
      const std::vector<T> grad_only = grad.Values();
      // Both.
      call.losses = losses.view();
      EXPECT_TRUE(RunAndCheck(c, call)) << "losses and grad";
      EXPECT_TRUE(grad.OnlyViewWritten());
      EXPECT_TRUE(losses.OnlyViewWritten());
      const std::vector<T> losses_both = losses.Values(), grad_both = grad.Values();
      int64_t differ = 0;
      for (size_t i = 0; i < losses_both.size(); ++i) {
        differ += !WithinUlps<T>(losses_both[i], losses_only[i], 8);
        differ += !WithinUlps<T>(grad_both[i], grad_only[i], 8);
      }
      EXPECT_EQ(differ, 0) << "losses/grad differ between the single and fused modes";
    }
  }
}

class RegressionTest : public ::testing::TestWithParam<LossConfig> {};

TEST_P(RegressionTest, Float) {
  for (bool weighted : {false, true}) {
    for (int64_t n : kSizes) {
      for (uint64_t seed : kSeeds) CheckAllModes<float>(GetParam(), n, seed, weighted);
    }
  }
}

TEST_P(RegressionTest, Double) {
  for (bool weighted : {false, true}) {
    for (int64_t n : kSizes) {
      for (uint64_t seed : kSeeds) CheckAllModes<double>(GetParam(), n, seed, weighted);
    }
  }
}

// NaN in y_pred or y_true gives NaN loss and gradient at that element (in a
// full vector and in the one-lane tail), NaN values for mean and sum, and
// leaves every other element alone.
template <typename T>
void CheckNaN(const LossConfig& c, int64_t n, const std::vector<int64_t>& nan_in_p,
              const std::vector<int64_t>& nan_in_y) {
  SCOPED_TRACE(c.name + " " + DtypeName<T>() + " n=" + std::to_string(n));
  std::vector<double> y64, p64;
  MakeData(c, n, 7, &y64, &p64);
  for (int64_t i : nan_in_p) p64[static_cast<size_t>(i)] = kNaN;
  for (int64_t i : nan_in_y) y64[static_cast<size_t>(i)] = kNaN;
  const std::vector<T> y = Cast<T>(y64), p = Cast<T>(p64);
  std::vector<bool> is_nan(static_cast<size_t>(n), false);
  for (int64_t i : nan_in_p) is_nan[static_cast<size_t>(i)] = true;
  for (int64_t i : nan_in_y) is_nan[static_cast<size_t>(i)] = true;

  Call<T> call;
  call.y_true = Vec(y);
  call.y_pred = Vec(p);
  StridedArray<T> grad(n), losses(n);
  call.grad = grad.view();
  call.losses = losses.view();
  call.reduction = Reduction::kNone;
  EXPECT_TRUE(RunAndCheck(c, call));
  const std::vector<T> g = grad.Values(), l = losses.Values();
  for (size_t i = 0; i < is_nan.size(); ++i) {
    EXPECT_EQ(std::isnan(g[i]), is_nan[i]) << "grad[" << i << "] = " << g[i];
    EXPECT_EQ(std::isnan(l[i]), is_nan[i]) << "losses[" << i << "] = " << l[i];
  }
  for (Reduction r : {Reduction::kMean, Reduction::kSum}) {
    call.reduction = r;
    const double v = RunLoss(c, call);
    EXPECT_TRUE(std::isnan(v)) << ReductionName(r) << " = " << v;
    const std::vector<T> gr = grad.Values();
    for (size_t i = 0; i < is_nan.size(); ++i) {
      EXPECT_EQ(std::isnan(gr[i]), is_nan[i]) << ReductionName(r) << " grad[" << i << "]";
    }
  }
}

TEST_P(RegressionTest, NaNPropagates) {
  CheckNaN<float>(GetParam(), 9, {0}, {8});
  CheckNaN<double>(GetParam(), 9, {0}, {8});
  CheckNaN<float>(GetParam(), 33, {5, 32}, {17});
  CheckNaN<double>(GetParam(), 33, {5, 32}, {17});
  CheckNaN<float>(GetParam(), 1, {0}, {});
  CheckNaN<double>(GetParam(), 1, {}, {0});
}

// NaN weights give a NaN mean and sum.
TEST_P(RegressionTest, NaNWeightPropagates) {
  const LossConfig& c = GetParam();
  std::vector<double> y, p;
  MakeData(c, 20, 3, &y, &p);
  std::vector<double> w(20, 1.0);
  w[13] = kNaN;
  for (Reduction r : {Reduction::kMean, Reduction::kSum}) {
    Call<double> call;
    call.y_true = Vec(y);
    call.y_pred = Vec(p);
    call.weights = Vec(w);
    call.reduction = r;
    EXPECT_TRUE(std::isnan(RunLoss(c, call))) << ReductionName(r);
  }
}

std::string ConfigName(const ::testing::TestParamInfo<LossConfig>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(AllLosses, RegressionTest, ::testing::ValuesIn(AllConfigs()),
                         ConfigName);

// --- Edge values, one element at a time. ---

struct One {
  double value;
  double grad;
};

// One element, reduction mean (value l, gradient dl/dp).
template <typename T, class F>
One EvalOne(F&& loss, double y, double p) {
  const T yt = static_cast<T>(y), pt = static_cast<T>(p);
  T g = static_cast<T>(-1234.5);
  Call<T> call;
  call.y_true = View<const T>::Contiguous(&yt, {1});
  call.y_pred = View<const T>::Contiguous(&pt, {1});
  call.grad = View<T>::Contiguous(&g, {1});
  const double v = loss(call);
  return {v, static_cast<double>(g)};
}

TEST(LogCosh, FiniteForHugeResidualsDouble) {
  auto f = [](const Call<double>& c) { return fastloss::LogCosh(c); };
  for (double p : {1e300, -1e300, 1e308, 750.0, -750.0, 1e20}) {
    const One r = EvalOne<double>(f, 0.0, p);
    EXPECT_TRUE(std::isfinite(r.value)) << "p=" << p << ": " << r.value;
    EXPECT_NEAR(r.value / (std::fabs(p) - std::log(2.0)), 1.0, 1e-12) << "p=" << p;
    EXPECT_EQ(r.grad, p > 0 ? 1.0 : -1.0) << "p=" << p;
  }
  // |r| = 2e300 from two finite inputs.
  const One r = EvalOne<double>(f, 1e300, -1e300);
  EXPECT_TRUE(std::isfinite(r.value));
  EXPECT_NEAR(r.value / 2e300, 1.0, 1e-12);
  EXPECT_EQ(r.grad, -1.0);
}

TEST(LogCosh, FiniteForHugeResidualsFloat) {
  auto f = [](const Call<float>& c) { return fastloss::LogCosh(c); };
  for (double p : {3e38, -3e38, 1e30, 90.0, -90.0}) {
    const One r = EvalOne<float>(f, 0.0, p);
    EXPECT_TRUE(std::isfinite(r.value)) << "p=" << p << ": " << r.value;
    const double ref = std::fabs(static_cast<double>(static_cast<float>(p))) - std::log(2.0);
    EXPECT_NEAR(r.value / ref, 1.0, 2e-5) << "p=" << p;
    EXPECT_EQ(r.grad, p > 0 ? 1.0 : -1.0) << "p=" << p;
  }
}

// log(cosh(+-inf)) = +inf and tanh(+-inf) = +-1, as NumPy gives.
TEST(LogCosh, InfiniteResidual) {
  auto fd = [](const Call<double>& c) { return fastloss::LogCosh(c); };
  auto ff = [](const Call<float>& c) { return fastloss::LogCosh(c); };
  for (double p : {kInf, -kInf}) {
    const One d = EvalOne<double>(fd, 0.0, p);
    EXPECT_EQ(d.value, kInf) << "double p=" << p;
    EXPECT_EQ(d.grad, p > 0 ? 1.0 : -1.0) << "double p=" << p;
    const One f = EvalOne<float>(ff, 0.0, p);
    EXPECT_EQ(f.value, kInf) << "float p=" << p;
    EXPECT_EQ(f.grad, p > 0 ? 1.0 : -1.0) << "float p=" << p;
  }
}

// Tiny residuals: log cosh r ~ r^2 / 2 and tanh r ~ r keep their relative
// precision (no cancellation in 1 - tanh^2 or cosh - 1).
TEST(LogCosh, TinyResiduals) {
  auto fd = [](const Call<double>& c) { return fastloss::LogCosh(c); };
  auto ff = [](const Call<float>& c) { return fastloss::LogCosh(c); };
  auto log_cosh = [](double r) { return std::log1p(2.0 * std::pow(std::sinh(0.5 * r), 2)); };
  for (double r : {1e-5, -3e-8, 1e-150}) {
    const One d = EvalOne<double>(fd, 0.0, r);
    EXPECT_NEAR(d.value / log_cosh(r), 1.0, 1e-10) << r;
    EXPECT_NEAR(d.grad / std::tanh(r), 1.0, 1e-12) << r;
  }
  for (double r : {1e-3, -3e-5, 1e-15}) {
    const double rf = static_cast<float>(r);
    const One f = EvalOne<float>(ff, 0.0, r);
    EXPECT_NEAR(f.value / log_cosh(rf), 1.0, 2e-5) << r;
    EXPECT_NEAR(f.grad / std::tanh(rf), 1.0, 2e-5) << r;
  }
}

// log_input = false, eps = 0: p = 0 with y > 0 is -y log 0 = +inf, gradient
// 1 - y / 0 = -inf.
TEST(PoissonNll, ZeroRateIsInfinite) {
  fastloss::PoissonNllOptions o;
  o.log_input = false;
  o.eps = 0.0;
  auto fd = [&](const Call<double>& c) { return fastloss::PoissonNll(c, o); };
  auto ff = [&](const Call<float>& c) { return fastloss::PoissonNll(c, o); };
  for (double y : {2.0, 0.5}) {
    const One d = EvalOne<double>(fd, y, 0.0);
    EXPECT_EQ(d.value, kInf) << y;
    EXPECT_EQ(d.grad, -kInf) << y;
    const One f = EvalOne<float>(ff, y, 0.0);
    EXPECT_EQ(f.value, kInf) << y;
    EXPECT_EQ(f.grad, -kInf) << y;
  }
  // Default eps keeps it finite: -y log(1e-8).
  const One d = EvalOne<double>([](const Call<double>& c) {
    fastloss::PoissonNllOptions lin;
    lin.log_input = false;
    return fastloss::PoissonNll(c, lin);
  }, 2.0, 0.0);
  EXPECT_NEAR(d.value, -2.0 * std::log(1e-8), 1e-10);
  EXPECT_NEAR(d.grad, 1.0 - 2.0 / 1e-8, 1e-2);
}

// exp(p) overflows to +inf, never NaN, and underflows to 0.
TEST(PoissonNll, ExpOverflowIsInfinite) {
  auto fd = [](const Call<double>& c) { return fastloss::PoissonNll(c); };
  auto ff = [](const Call<float>& c) { return fastloss::PoissonNll(c); };
  for (double p : {1000.0, 1e10}) {
    const One d = EvalOne<double>(fd, 3.0, p);
    EXPECT_EQ(d.value, kInf) << p;
    EXPECT_EQ(d.grad, kInf) << p;
  }
  for (double p : {100.0, 200.0, 1e10}) {
    const One f = EvalOne<float>(ff, 3.0, p);
    EXPECT_EQ(f.value, kInf) << p;
    EXPECT_EQ(f.grad, kInf) << p;
  }
  // exp(p) underflows: l = -y p, dl = -y.
  const One d = EvalOne<double>(fd, 3.0, -1000.0);
  EXPECT_DOUBLE_EQ(d.value, 3000.0);
  EXPECT_DOUBLE_EQ(d.grad, -3.0);
  const One f = EvalOne<float>(ff, 3.0, -200.0);
  EXPECT_FLOAT_EQ(static_cast<float>(f.value), 600.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(f.grad), -3.0f);
}

// Stirling's term applies only where y > 1.
TEST(PoissonNll, FullAddsStirlingAboveOne) {
  fastloss::PoissonNllOptions full;
  full.full = true;
  auto f = [&](const Call<double>& c) { return fastloss::PoissonNll(c, full); };
  const double p = 0.3;
  for (double y : {0.0, 0.5, 1.0}) {
    EXPECT_NEAR(EvalOne<double>(f, y, p).value, std::exp(p) - y * p, 1e-14) << y;
  }
  const double y = 4.0, kPi = 3.14159265358979323846;
  EXPECT_NEAR(EvalOne<double>(f, y, p).value,
              std::exp(p) - y * p + y * std::log(y) - y + 0.5 * std::log(2 * kPi * y), 1e-13);
}

// log1p at and below -1: l = +inf at p = -1 (gradient -inf), NaN below.
TEST(Msle, DomainEdges) {
  auto fd = [](const Call<double>& c) { return fastloss::Msle(c); };
  auto ff = [](const Call<float>& c) { return fastloss::Msle(c); };
  const One d = EvalOne<double>(fd, 0.5, -1.0);
  EXPECT_EQ(d.value, kInf);
  EXPECT_EQ(d.grad, -kInf);
  const One f = EvalOne<float>(ff, 0.5, -1.0);
  EXPECT_EQ(f.value, kInf);
  EXPECT_EQ(f.grad, -kInf);
  for (double p : {-1.5, -1e10}) {
    const One dn = EvalOne<double>(fd, 0.5, p);
    EXPECT_TRUE(std::isnan(dn.value) && std::isnan(dn.grad)) << p;
    const One fn = EvalOne<float>(ff, 0.5, p);
    EXPECT_TRUE(std::isnan(fn.value) && std::isnan(fn.grad)) << p;
  }
  // y_true = -1: log1p(y) = -inf, so l = +inf and the gradient +inf.
  const One dy = EvalOne<double>(fd, -1.0, 0.0);
  EXPECT_EQ(dy.value, kInf);
  EXPECT_EQ(dy.grad, kInf);
}

// The kinks: exact values at r = 0 and at |r| = delta / beta.
TEST(Kinks, ExactValues) {
  auto mae = [](const Call<double>& c) { return fastloss::Mae(c); };
  EXPECT_EQ(EvalOne<double>(mae, 1.5, 1.5).grad, 0.0);
  EXPECT_EQ(EvalOne<double>(mae, 1.5, 1.5).value, 0.0);

  fastloss::HuberOptions h{0.5};
  auto huber = [&](const Call<double>& c) { return fastloss::Huber(c, h); };
  EXPECT_EQ(EvalOne<double>(huber, 0.0, 0.5).value, 0.125);
  EXPECT_EQ(EvalOne<double>(huber, 0.0, 0.5).grad, 0.5);
  EXPECT_EQ(EvalOne<double>(huber, 0.0, -2.5).value, 0.5 * (2.5 - 0.25));
  EXPECT_EQ(EvalOne<double>(huber, 0.0, -2.5).grad, -0.5);

  fastloss::SmoothL1Options s{0.5};
  auto smooth = [&](const Call<double>& c) { return fastloss::SmoothL1(c, s); };
  EXPECT_EQ(EvalOne<double>(smooth, 0.0, 0.5).value, 0.25);
  EXPECT_EQ(EvalOne<double>(smooth, 0.0, 0.5).grad, 1.0);
  EXPECT_EQ(EvalOne<double>(smooth, 0.0, 0.25).value, 0.0625);
  EXPECT_EQ(EvalOne<double>(smooth, 0.0, 0.25).grad, 0.5);
  EXPECT_EQ(EvalOne<double>(smooth, 1.0, 1.0).grad, 0.0);

  fastloss::SmoothL1Options l1{0.0};
  auto smooth0 = [&](const Call<double>& c) { return fastloss::SmoothL1(c, l1); };
  EXPECT_EQ(EvalOne<double>(smooth0, 0.0, -3.0).value, 3.0);
  EXPECT_EQ(EvalOne<double>(smooth0, 0.0, -3.0).grad, -1.0);
  EXPECT_EQ(EvalOne<double>(smooth0, 2.0, 2.0).grad, 0.0);

  fastloss::QuantileOptions q{0.25};
  auto quant = [&](const Call<double>& c) { return fastloss::Quantile(c, q); };
  EXPECT_EQ(EvalOne<double>(quant, 1.0, 0.0).value, 0.25);   // under-prediction
  EXPECT_EQ(EvalOne<double>(quant, 1.0, 0.0).grad, -0.25);
  EXPECT_EQ(EvalOne<double>(quant, 0.0, 1.0).value, 0.75);   // over-prediction
  EXPECT_EQ(EvalOne<double>(quant, 0.0, 1.0).grad, 0.75);
  EXPECT_EQ(EvalOne<double>(quant, 2.0, 2.0).value, 0.0);
  EXPECT_EQ(EvalOne<double>(quant, 2.0, 2.0).grad, 0.0);

  auto mape = [](const Call<double>& c) { return fastloss::Mape(c); };
  const double eps = 2.220446049250313e-16;
  EXPECT_DOUBLE_EQ(EvalOne<double>(mape, 0.0, 1.0).value, 1.0 / eps);
  EXPECT_DOUBLE_EQ(EvalOne<double>(mape, 0.0, -1.0).grad, -1.0 / eps);
  EXPECT_EQ(EvalOne<double>(mape, 0.0, 0.0).value, 0.0);
  EXPECT_DOUBLE_EQ(EvalOne<double>(mape, -4.0, -3.0).value, 0.25);
  EXPECT_DOUBLE_EQ(EvalOne<double>(mape, -4.0, -3.0).grad, 0.25);
}

// smooth_l1 with a beta too small for 1 / beta to be finite in T: still
// |r| - beta / 2 (|r| within rounding) and sign(r), and 0 at r = 0.
TEST(SmoothL1, TinyBetaIsL1) {
  fastloss::SmoothL1Options sd{1e-310};
  auto fd = [&](const Call<double>& c) { return fastloss::SmoothL1(c, sd); };
  EXPECT_EQ(EvalOne<double>(fd, 0.0, 1.0).value, 1.0);
  EXPECT_EQ(EvalOne<double>(fd, 0.0, 1.0).grad, 1.0);
  EXPECT_EQ(EvalOne<double>(fd, 0.0, -2.0).grad, -1.0);
  EXPECT_EQ(EvalOne<double>(fd, 1.0, 1.0).value, 0.0);
  EXPECT_EQ(EvalOne<double>(fd, 1.0, 1.0).grad, 0.0);

  fastloss::SmoothL1Options sf{1e-40};
  auto ff = [&](const Call<float>& c) { return fastloss::SmoothL1(c, sf); };
  EXPECT_EQ(EvalOne<float>(ff, 0.0, 1.0).value, 1.0);
  EXPECT_EQ(EvalOne<float>(ff, 0.0, 1.0).grad, 1.0);
  EXPECT_EQ(EvalOne<float>(ff, 1.0, 1.0).value, 0.0);
  EXPECT_EQ(EvalOne<float>(ff, 1.0, 1.0).grad, 0.0);
}

// mape with an eps too small for 1 / eps to be finite in T: still
// |r| / max(|y|, eps), so 0 at r = 0 and finite where |r| / eps is.
TEST(Mape, TinyEps) {
  fastloss::MapeOptions od{1e-310};
  auto fd = [&](const Call<double>& c) { return fastloss::Mape(c, od); };
  EXPECT_EQ(EvalOne<double>(fd, 0.0, 0.0).value, 0.0);
  EXPECT_EQ(EvalOne<double>(fd, 0.0, 0.0).grad, 0.0);
  EXPECT_NEAR(EvalOne<double>(fd, 0.0, 1e-300).value / 1e10, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(EvalOne<double>(fd, 2.0, 1.0).value, 0.5);

  fastloss::MapeOptions of{1e-40};
  auto ff = [&](const Call<float>& c) { return fastloss::Mape(c, of); };
  EXPECT_EQ(EvalOne<float>(ff, 0.0, 0.0).value, 0.0);
  EXPECT_EQ(EvalOne<float>(ff, 0.0, 0.0).grad, 0.0);
  EXPECT_NEAR(EvalOne<float>(ff, 0.0, 1e-20).value / 1e20, 1.0, 2e-5);
  EXPECT_FLOAT_EQ(static_cast<float>(EvalOne<float>(ff, 2.0, 1.0).value), 0.5f);
}

// The value is returned in double but computed in T: a float call's value is
// the float reference's, within float tolerance, also for a large sum.
TEST(Accumulation, LongFloatSumStaysAccurate) {
  const int64_t n = 200000;
  std::vector<float> y(static_cast<size_t>(n), 0.0f), p(static_cast<size_t>(n), 0.1f);
  Call<float> call;
  call.y_true = Vec(y);
  call.y_pred = Vec(p);
  call.reduction = Reduction::kSum;
  const double r = static_cast<double>(0.1f);
  EXPECT_NEAR(fastloss::Mse(call) / (n * r * r), 1.0, 2e-6);
  call.reduction = Reduction::kMean;
  EXPECT_NEAR(fastloss::Mse(call) / (r * r), 1.0, 2e-6);
}

}  // namespace
}  // namespace fastloss_test
