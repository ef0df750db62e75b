// SIMD targets (cpp/src/runtime/targets.cc): every target compiled in and supported
// by this CPU is forced in turn (as Highway's own tests do) and every loss
// checked against the reference on it; the list, the names and the restore.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fastloss/fastloss.hpp>

#include "checks.h"
#include "reference.h"

namespace fastloss_test {
namespace {

// Puts the best target back after every test, failed or not.
class TargetFixture {
 protected:
  ~TargetFixture() { fastloss::ForceSimdTarget(""); }
};

class Targets : public ::testing::Test, public TargetFixture {};

TEST_F(Targets, ListIsNonEmptyAndDistinct) {
  const std::vector<std::string> names = fastloss::AvailableSimdTargets();
  ASSERT_FALSE(names.empty());
  const std::set<std::string> distinct(names.begin(), names.end());
  EXPECT_EQ(distinct.size(), names.size());
  for (const std::string& name : names) EXPECT_FALSE(name.empty());
}

// Without forcing, the kernels run on the best target, the first listed.
TEST_F(Targets, DefaultIsTheBest) {
  const std::vector<std::string> names = fastloss::AvailableSimdTargets();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(fastloss::SimdTarget(), names.front());
}

TEST_F(Targets, EmptyNameRestoresTheBest) {
  const std::vector<std::string> names = fastloss::AvailableSimdTargets();
  const std::string best = fastloss::SimdTarget();
  fastloss::ForceSimdTarget(names.back());
  EXPECT_EQ(fastloss::SimdTarget(), names.back());
  fastloss::ForceSimdTarget("");
  EXPECT_EQ(fastloss::SimdTarget(), best);
  EXPECT_EQ(fastloss::AvailableSimdTargets(), names) << "forcing changed the list";
}

TEST_F(Targets, UnknownNameThrows) {
  EXPECT_TRUE(ThrowsErrorMentioning([] { fastloss::ForceSimdTarget("NOT_A_TARGET"); },
                                    {"NOT_A_TARGET"}));
  // The library still computes afterwards.
  const std::vector<double> y = {1.0}, p = {3.0};
  Call<double> call;
  call.y_true = View<const double>::Contiguous(y.data(), {1});
  call.y_pred = View<const double>::Contiguous(p.data(), {1});
  EXPECT_EQ(fastloss::Mse(call), 4.0);
}

// --- Every loss on every target. ---

class EveryTarget : public ::testing::TestWithParam<std::string>, public TargetFixture {};

template <typename T>
void CheckOnTarget(const LossConfig& c) {
  for (int64_t n : {1, 7, 8, 9, 17, 33, 1000, 2100}) {
    std::vector<double> y64, p64;
    MakeData(c, n, 5, &y64, &p64);
    const std::vector<T> y = Cast<T>(y64), p = Cast<T>(p64);
    const std::vector<T> w = Cast<T>(MakeWeights(n, 5));
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      for (bool weighted : {false, true}) {
        SCOPED_TRACE(c.name + " " + DtypeName<T>() + " n=" + std::to_string(n) + " " +
                     ReductionName(r) + (weighted ? " weighted" : ""));
        StridedArray<T> grad(n), losses(n);
        Call<T> call;
        call.y_true = View<const T>::Contiguous(y.data(), {n});
        call.y_pred = View<const T>::Contiguous(p.data(), {n});
        call.weights = View<const T>::Contiguous(w.data(), {n});
        if (!(weighted)) call.weights.reset();
        call.reduction = r;
        call.losses = losses.view();
        if (!(r == Reduction::kNone)) call.losses.reset();
        if (r != Reduction::kNone) {
          EXPECT_TRUE(RunAndCheck(c, call)) << "value only";
        }
        call.grad = grad.view();
        EXPECT_TRUE(RunAndCheck(c, call));
        EXPECT_TRUE(grad.OnlyViewWritten());
      }
    }
  }
  // NaN in a vector lane and in the tail.
  std::vector<T> y(9, T(0.5)), p(9, T(1.5));
  p[2] = std::numeric_limits<T>::quiet_NaN();
  y[8] = std::numeric_limits<T>::quiet_NaN();
  StridedArray<T> grad(9);
  Call<T> call;
  call.y_true = View<const T>::Contiguous(y.data(), {9});
  call.y_pred = View<const T>::Contiguous(p.data(), {9});
  call.grad = grad.view();
  call.reduction = Reduction::kSum;
  EXPECT_TRUE(std::isnan(RunLoss(c, call))) << c.name;
  const std::vector<T> g = grad.Values();
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(std::isnan(g[i]), i == 2 || i == 8) << c.name << " grad[" << i << "]";
  }
}

TEST_P(EveryTarget, AllLossesMatchTheReference) {
  const std::string& name = GetParam();
  fastloss::ForceSimdTarget(name);
  ASSERT_EQ(fastloss::SimdTarget(), name);
  for (const LossConfig& c : AllConfigs()) {
    CheckOnTarget<float>(c);
    CheckOnTarget<double>(c);
  }
  EXPECT_EQ(fastloss::SimdTarget(), name) << "the forced target did not stay in force";
}

// Edge values whose handling differs per instruction set (min/max with NaN,
// exp/log outside their range).
TEST_P(EveryTarget, EdgeValues) {
  fastloss::ForceSimdTarget(GetParam());
  ASSERT_EQ(fastloss::SimdTarget(), GetParam());
  const double inf = std::numeric_limits<double>::infinity();
  auto one = [](auto loss, double y, double p) {
    double g = 0;
    Call<double> call;
    call.y_true = View<const double>::Contiguous(&y, {1});
    call.y_pred = View<const double>::Contiguous(&p, {1});
    call.grad = View<double>::Contiguous(&g, {1});
    const double v = loss(call);
    return std::make_pair(v, g);
  };
  auto log_cosh = [](const Call<double>& c) { return fastloss::LogCosh(c); };
  auto r = one(log_cosh, 0.0, 1e300);
  EXPECT_NEAR(r.first / 1e300, 1.0, 1e-12);
  EXPECT_EQ(r.second, 1.0);
  fastloss::PoissonNllOptions lin;
  lin.log_input = false;
  lin.eps = 0;
  auto poisson_lin = [&](const Call<double>& c) { return fastloss::PoissonNll(c, lin); };
  r = one(poisson_lin, 2.0, 0.0);
  EXPECT_EQ(r.first, inf);
  EXPECT_EQ(r.second, -inf);
  auto poisson = [](const Call<double>& c) { return fastloss::PoissonNll(c); };
  r = one(poisson, 1.0, 1000.0);
  EXPECT_EQ(r.first, inf);
  auto msle = [](const Call<double>& c) { return fastloss::Msle(c); };
  r = one(msle, 0.0, -1.0);
  EXPECT_EQ(r.first, inf);
  r = one(msle, 0.0, -2.0);
  EXPECT_TRUE(std::isnan(r.first));
  auto mape = [](const Call<double>& c) { return fastloss::Mape(c); };
  r = one(mape, std::numeric_limits<double>::quiet_NaN(), 1.0);
  EXPECT_TRUE(std::isnan(r.first) && std::isnan(r.second));
}

std::string TargetTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(Available, EveryTarget,
                         ::testing::ValuesIn(fastloss::AvailableSimdTargets()), TargetTestName);

}  // namespace
}  // namespace fastloss_test
