// Shared by the classification tests (binary_test.cc, classification_test.cc):
// small helpers, the random source, the comparison of a call's outputs
// with an Expected, the SIMD-target guard.
#ifndef FASTLOSS_TESTS_CPP_CLASSIFICATION_HELPERS_H_
#define FASTLOSS_TESTS_CPP_CLASSIFICATION_HELPERS_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <fastloss/fastloss.hpp>

#include "checks.h"
#include "reference.h"

namespace fastloss_test {


using fastloss::LabelCall;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// --- Small helpers. -----------------------------------------------------------

// Relative allowance against the double reference evaluated on the inputs
// rounded to T (applied to the magnitudes of the terms, see Ref* below).
template <typename T>
double ClsRtol() {
  return std::is_same<T, float>::value ? 2e-5 : 1e-11;
}

// The clip bounds eps and 1 - eps as the library sees them in T.
template <typename T>
double LoClip(double eps) {
  return static_cast<double>(static_cast<T>(eps));
}
template <typename T>
double HiClip(double eps) {
  return static_cast<double>(static_cast<T>(1.0 - eps));
}

inline std::vector<int64_t> ContiguousStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t stride = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    s[k] = stride;
    stride *= shape[k];
  }
  return s;
}

inline int64_t Prod(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

template <typename T>
View<const T> CView(const std::vector<T>& v, const std::vector<int64_t>& shape) {
  return MakeView<const T>(v.data(), shape, ContiguousStrides(shape));
}

template <typename T>
std::vector<double> ToDouble(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Rounds each value to T and back.
template <typename T>
std::vector<double> RoundTo(const std::vector<double>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<double>(static_cast<T>(v[i]));
  return out;
}

// softplus and the logistic function, in double, exact at +-inf.
inline double Sp(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::fabs(z))); }
inline double Sig(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}
// c * v, 0 when c == 0 (a term with a zero coefficient is absent).
inline double Coef(double c, double v) { return c == 0 ? 0.0 : c * v; }

inline std::string SafeName(std::string s) {
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed * 0x9E3779B97F4A7C15ull + 12345u) {}
  double U(double lo, double hi) { return lo + (hi - lo) * unit_(g_); }
  double N() { return normal_(g_); }
  bool P(double prob) { return unit_(g_) < prob; }
  int64_t I(int64_t lo, int64_t hi_exclusive) {
    return lo + static_cast<int64_t>(unit_(g_) * static_cast<double>(hi_exclusive - lo)) %
                    (hi_exclusive - lo);
  }

 private:
  std::mt19937_64 g_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
  std::normal_distribution<double> normal_{0.0, 1.0};
};

// The outputs of a call against an Expected (checks.h): the value for kMean /
// kSum (0 for kNone), the gradient when grad is set, the losses when kNone and
// losses is set. CallT is a Call<T> or a LabelCall<T>.
template <class CallT>
::testing::AssertionResult MatchesExpected(const Expected& e, const CallT& call, double value) {
  std::ostringstream msg;
  bool failed = false;
  if (e.reduction == Reduction::kNone) {
    if (value != 0.0) {
      failed = true;
      msg << "\n  reduction none returned " << value << ", expected 0";
    }
  } else if (!Close(value, e.value, e.value_tol)) {
    failed = true;
    msg << "\n  value: got " << value << ", expected " << e.value << ", allowed " << e.value_tol
        << " (diff " << value - e.value << ")";
  }
  if (call.grad.has_value()) {
    ::testing::AssertionResult r = ViewMatches("grad", *call.grad, e.grad, e.grad_tol);
    if (!r) {
      failed = true;
      msg << "\n  " << r.message();
    }
  }
  if (e.reduction == Reduction::kNone && call.losses.has_value()) {
    ::testing::AssertionResult r = ViewMatches("losses", *call.losses, e.losses, e.losses_tol);
    if (!r) {
      failed = true;
      msg << "\n  " << r.message();
    }
  }
  if (!failed) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << msg.str();
}

// Puts the best SIMD target back after every test, failed or not.
class TargetGuard {
 protected:
  ~TargetGuard() { fastloss::ForceSimdTarget(""); }
};

inline std::vector<std::string> Targets() { return fastloss::AvailableSimdTargets(); }


}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_CLASSIFICATION_HELPERS_H_
