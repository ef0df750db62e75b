// Shared by the accuracy sweeps (logistic_math_test.cc, unit_log_test.cc,
// log1p_test.cc): errors in units in the last place of T against a long
// double reference, the worst one seen, sweeps through bit patterns, and
// the fixture that runs a test on each SIMD target.
#ifndef FASTLOSS_TESTS_CPP_ULP_H_
#define FASTLOSS_TESTS_CPP_ULP_H_

#include <gtest/gtest.h>

#include <fastloss/fastloss.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fastloss_test {

// ULP of T at |ref|, at least the subnormal ULP.
template <typename T>
long double UlpAt(long double ref) {
  int ex = 0;
  std::frexp(static_cast<double>(ref), &ex);
  ex = std::max(ex, std::numeric_limits<T>::min_exponent);
  return std::ldexp(1.0L, ex - std::numeric_limits<T>::digits);
}

// |got - ref| in ULPs of T; infinite for a NaN or infinity mismatch.
template <typename T>
double UlpError(T got, long double ref) {
  const double inf = std::numeric_limits<double>::infinity();
  if (std::isnan(ref)) return std::isnan(got) ? 0.0 : inf;
  if (std::isnan(got)) return inf;
  if (std::isinf(ref) || std::isinf(got)) return static_cast<long double>(got) == ref ? 0.0 : inf;
  return static_cast<double>(std::fabs(static_cast<long double>(got) - ref) / UlpAt<T>(ref));
}

// Every `step`-th bit pattern of T from lo to hi (both of one sign; the
// patterns of negative numbers run the other way), about `count` of them,
// both ends included.
template <typename T>
std::vector<T> BitPatterns(T lo, T hi, uint64_t count) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  U a, b;
  std::memcpy(&a, &lo, sizeof(T));
  std::memcpy(&b, &hi, sizeof(T));
  if (a > b) std::swap(a, b);
  const U step = std::max<U>(1, static_cast<U>((b - a) / count));
  std::vector<T> out;
  for (U u = a; u <= b && u >= a; u += step) {
    T v;
    std::memcpy(&v, &u, sizeof(T));
    out.push_back(v);
  }
  out.push_back(lo);
  out.push_back(hi);
  return out;
}

// The largest error seen and where.
struct MaxErr {
  double ulp = 0;
  double at = 0;
  void Add(double e, double x) {
    if (!(e <= ulp)) {
      ulp = e;
      at = x;
    }
  }
};

// Parameterised by a SIMD target name, forced for the test's duration.
class OnSimdTarget : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fastloss::ForceSimdTarget(GetParam());
    ASSERT_EQ(fastloss::SimdTarget(), GetParam());
  }
  void TearDown() override { fastloss::ForceSimdTarget(""); }
};

// gtest parameter names: the target name with non-alphanumerics as '_'.
inline std::string TargetTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_ULP_H_
