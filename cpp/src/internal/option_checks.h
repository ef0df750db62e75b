// What the loss builders share (losses/*-inl.h, `Build<T>(options, sink)`):
// the y_true range a loss accepts, and the option checks that depend on the
// inputs' dtype or on other options, which the options' field list
// (fastloss/options.hpp, CheckOptions) cannot express.
//
// A builder checks its cross-field options and returns
// sink(functor, y_range): the public entry point runs the functor at once
// (RunSink), ElementwiseCombination::Add keeps it, the CUDA entry launches it.
#ifndef FASTLOSS_SRC_INTERNAL_OPTION_CHECKS_H_
#define FASTLOSS_SRC_INTERNAL_OPTION_CHECKS_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "fastloss/core.hpp"
#include "fastloss/options.hpp"

namespace fastloss {
namespace internal {

// y_true values allowed (checked by the driver when `check`).
struct YRange {
  bool check = false;
  double lo = 0.0, hi = 1.0;
};
inline constexpr YRange kAnyY{};
inline constexpr YRange kUnitY{true, 0.0, 1.0};

// The decision threshold of binary scores in the inputs' dtype T: a score x
// (of type T) is positive where x > ScoreThreshold<T>(...), which holds
// exactly where x > t in real numbers, t being the probability `threshold`
// or, with logits, its logit log(t) - log1p(-t) (sigmoid(x) > threshold):
// t rounded down to T. Shared by binary_accuracy and the confusion counts.
template <typename T>
double ScoreThreshold(double threshold, bool from_logits) {
  const double t = from_logits ? std::log(threshold) - std::log1p(-threshold) : threshold;
  T v = static_cast<T>(t);
  if (static_cast<double>(v) > t) v = std::nextafter(v, -std::numeric_limits<T>::infinity());
  return static_cast<double>(v);
}

// What a row loss's builder tells the row driver besides its functor.
struct RowRules {
  bool check_y = false;                 // dense targets must lie in [0, 1]
  std::optional<int64_t> ignore_index;  // label losses: rows with this label count for nothing
  // The mean divides by the class weights of the rows' targets (PyTorch's
  // weighted cross-entropy and NLL) instead of the rows' weights.
  bool target_weighted_mean = false;
};

// Whether the options struct O has a class_weights field
// (FASTLOSS_CLASS_WEIGHTS).
struct ClassWeightsFinder {
  bool found = false;
  void ClassWeights(const char*, const char*) { found = true; }
  template <class... A> void Real(A&&...) {}
  template <class... A> void RealOrArray(A&&...) {}
  template <class... A> void Bool(A&&...) {}
  template <class... A> void Int(A&&...) {}
  template <class... A> void OptionalReal(A&&...) {}
  template <class... A> void OptionalInt(A&&...) {}
  template <class... A> void Axes(A&&...) {}
  template <class... A> void Choice(A&&...) {}
  template <class... A> void Groups(A&&...) {}
};
template <class O>
bool TakesClassWeights(const O& o) {
  ClassWeightsFinder f;
  O::Fields(o, f);
  return f.found;
}

// The checks every generated entry point runs first: the options' fields
// (CheckOptions), and class_weights given only to a loss that has them.
template <class O, class CallT>
void CheckCall(const char* name, const O& o, const CallT& call) {
  CheckOptions(name, o);
  if (call.class_weights && !TakesClassWeights(o)) {
    throw Error(std::string(name) + ": class_weights is not an argument of this loss");
  }
}

inline std::string OptionNum(double x) { return detail::FormatNumber(x); }

// eps clips probabilities to [eps, 1 - eps] in the inputs' dtype T: 1 - eps
// must stay below 1 there (float32: eps > 2^-25), or the clip would let
// log(1 - p) reach log(0).
template <typename T>
void CheckEps(const char* name, double eps) {
  if (!(eps > 0 && eps < 0.5)) {
    throw Error(std::string(name) + ": eps must be in the open interval (0, 0.5), got " +
                OptionNum(eps));
  }
  if (!(static_cast<T>(1.0 - eps) < T(1))) {
    const bool f32 = sizeof(T) == 4;
    throw Error(std::string(name) + ": eps = " + OptionNum(eps) + " is too small for " +
                (f32 ? "float32" : "float64") + " inputs: 1 - eps rounds to 1 (eps must exceed " +
                (f32 ? "2^-25 = 2.98e-08" : "2^-54 = 5.55e-17") + ")");
  }
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_INTERNAL_OPTION_CHECKS_H_
