// The elementwise losses' option checks and functor construction, written
// once for the two places that need them: the public entry points (which run
// the functor at once) and ElementwiseCombination::Add (which keeps it for a
// fused run). Each Build<T>(options, sink) checks the options (an Error naming
// the option) and returns sink(name, functor, y_range).
#ifndef FASTLOSS_SRC_INTERNAL_BUILDERS_H_
#define FASTLOSS_SRC_INTERNAL_BUILDERS_H_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>

#include "fastloss/fastloss.hpp"
#include "internal/elementwise.h"
#include "losses/losses.h"

namespace fastloss {
namespace internal {

// y_true values allowed (checked by the driver when `check`).
struct YRange {
  bool check = false;
  double lo = 0.0, hi = 1.0;
};
inline constexpr YRange kAnyY{};
inline constexpr YRange kUnitY{true, 0.0, 1.0};

inline std::string OptionNum(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", x);
  return buf;
}
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
inline void CheckSmoothing(const char* name, double ls) {
  if (!(ls >= 0 && ls < 1)) {
    throw Error(std::string(name) + ": label_smoothing must be in [0, 1), got " + OptionNum(ls));
  }
}
inline void CheckGamma(const char* name, double gamma) {
  if (!(gamma >= 0) || std::isinf(gamma)) {
    throw Error(std::string(name) + ": gamma must be a finite number >= 0, got " +
                OptionNum(gamma));
  }
}
inline void CheckAlpha(const char* name, bool has_alpha, double alpha) {
  if (has_alpha && !(alpha >= 0 && alpha <= 1)) {
    throw Error(std::string(name) + ": alpha must be in [0, 1] (or None), got " +
                OptionNum(alpha));
  }
}
inline void CheckFiniteAtLeast(const char* name, const char* opt, double v, double lo,
                               bool strict) {
  const bool ok = std::isfinite(v) && (strict ? v > lo : v >= lo);
  if (!ok) {
    throw Error(std::string(name) + ": " + opt + " must be a finite number " +
                (strict ? "> " : ">= ") + OptionNum(lo) + ", got " + OptionNum(v));
  }
}
inline losses::Smoothing BinarySmoothing(double ls) { return {1.0 - ls, 0.5 * ls}; }

// Runs the functor at once on `call` (the public entry points).
template <typename T>
struct RunSink {
  const Call<T>& call;
  const View<const T>* aux = nullptr;
  const char* aux_name = "aux";
  template <class F>
  double operator()(const char* name, const F& f, YRange r) const {
    ElementwiseExtras<T> e;
    e.check_y = r.check;
    e.y_lo = r.lo;
    e.y_hi = r.hi;
    e.aux = aux;
    e.aux_name = aux_name;
    return RunLoss(name, f, call, e);
  }
};

// --- Regression --------------------------------------------------------------
template <typename T, class S>
double Build(const MseOptions&, S&& sink) { return sink("mse", losses::Mse{}, kAnyY); }
template <typename T, class S>
double Build(const MaeOptions&, S&& sink) { return sink("mae", losses::Mae{}, kAnyY); }
template <typename T, class S>
double Build(const HuberOptions& o, S&& sink) {
  CheckFiniteAtLeast("huber", "delta", o.delta, 0.0, true);
  return sink("huber", losses::Huber{o.delta, 1.0}, kAnyY);
}
template <typename T, class S>
double Build(const SmoothL1Options& o, S&& sink) {
  CheckFiniteAtLeast("smooth_l1", "beta", o.beta, 0.0, false);
  // PyTorch's smooth L1 is Huber with delta = beta divided by beta, and L1
  // at beta = 0. Where 1 / beta overflows T (beta below ~2.9e-39 in float,
  // ~5.6e-309 in double) the quadratic zone |r| < beta holds only subnormal
  // residuals, and the loss is L1 to within beta / 2.
  if (!(1.0 / o.beta <= static_cast<double>(std::numeric_limits<T>::max()))) {
    return sink("smooth_l1", losses::Mae{}, kAnyY);
  }
  return sink("smooth_l1", losses::Huber{o.beta, 1.0 / o.beta}, kAnyY);
}
template <typename T, class S>
double Build(const LogCoshOptions&, S&& sink) { return sink("log_cosh", losses::LogCosh{}, kAnyY); }
template <typename T, class S>
double Build(const MsleOptions&, S&& sink) { return sink("msle", losses::Msle{}, kAnyY); }
template <typename T, class S>
double Build(const MapeOptions& o, S&& sink) {
  CheckFiniteAtLeast("mape", "eps", o.eps, 0.0, true);
  return sink("mape", losses::Mape{o.eps}, kAnyY);
}
template <typename T, class S>
double Build(const PoissonNllOptions& o, S&& sink) {
  CheckFiniteAtLeast("poisson_nll", "eps", o.eps, 0.0, false);
  return sink("poisson_nll", losses::PoissonNll{o.log_input, o.full, o.eps}, kAnyY);
}
template <typename T, class S>
double Build(const QuantileOptions& o, S&& sink) {
  if (!(o.q > 0 && o.q < 1)) {
    throw Error("quantile: q must be in the open interval (0, 1), got " + OptionNum(o.q));
  }
  return sink("quantile", losses::Quantile{o.q}, kAnyY);
}

// --- Binary classification -----------------------------------------------------
// `pos_weight_array`: BCE's per-element pos_weight (the sink provides it as
// the aux operand); the options' scalar pos_weight otherwise.
template <typename T, class S>
double Build(const BinaryCrossEntropyOptions& o, S&& sink, bool pos_weight_array = false) {
  const char* name = "binary_cross_entropy";
  if (!o.from_logits) CheckEps<T>(name, o.eps);
  CheckSmoothing(name, o.label_smoothing);
  if (!pos_weight_array) CheckFiniteAtLeast(name, "pos_weight", o.pos_weight, 0.0, true);
  const losses::Smoothing s = BinarySmoothing(o.label_smoothing);
  if (o.from_logits) {
    if (pos_weight_array) return sink(name, losses::BceLogitsPw{s, 1.0}, kUnitY);
    return sink(name, losses::BceLogits{s, o.pos_weight}, kUnitY);
  }
  if (pos_weight_array) return sink(name, losses::BceProbsPw{s, 1.0, o.eps}, kUnitY);
  return sink(name, losses::BceProbs{s, o.pos_weight, o.eps}, kUnitY);
}
template <typename T, class S>
double Build(const BinaryFocalOptions& o, S&& sink) {
  const char* name = "binary_focal";
  if (!o.from_logits) CheckEps<T>(name, o.eps);
  CheckSmoothing(name, o.label_smoothing);
  CheckGamma(name, o.gamma);
  CheckAlpha(name, o.has_alpha, o.alpha);
  const losses::FocalModulation focal{o.alpha, o.has_alpha, o.gamma};
  const losses::Smoothing s = BinarySmoothing(o.label_smoothing);
  if (o.from_logits) return sink(name, losses::BinaryFocalLogits{s, focal}, kUnitY);
  return sink(name, losses::BinaryFocalProbs{s, focal, o.eps}, kUnitY);
}
template <typename T, class S>
double Build(const HingeOptions&, S&& sink) { return sink("hinge", losses::Hinge{}, kAnyY); }
template <typename T, class S>
double Build(const SquaredHingeOptions&, S&& sink) {
  return sink("squared_hinge", losses::SquaredHinge{}, kAnyY);
}
template <typename T, class S>
double Build(const SoftMarginOptions&, S&& sink) {
  return sink("soft_margin", losses::SoftMargin{}, kAnyY);
}

// --- Metric learning (elementwise) ------------------------------------------------
template <typename T, class S>
double Build(const ContrastiveOptions& o, S&& sink) {
  CheckFiniteAtLeast("contrastive", "margin", o.margin, 0.0, false);
  losses::Contrastive f;
  f.f.margin = o.margin;
  return sink("contrastive", f, kUnitY);
}

// --- Segmentation: the overlap losses (multi-sum + finalize driver) -----------
// BuildOverlap(name, options, score, rank, sink) checks the options and the
// axes against y_pred's rank and returns sink(name, functor, reduced), the
// functor one of losses::Overlap<kSquared, kLogits>, `reduced` the bit mask
// of the reduced axes.
inline uint64_t OverlapAxesMask(const char* name, const OverlapOptions& o, int rank) {
  if (o.all_axes) return rank >= 64 ? ~uint64_t{0} : ((uint64_t{1} << rank) - 1);
  uint64_t mask = 0;
  for (int a : o.axes) {
    if (a < -rank || a >= rank) {
      throw Error(std::string(name) + ": axis " + std::to_string(a) +
                  " is out of range for y_pred with " + std::to_string(rank) + " dimension" +
                  (rank == 1 ? "" : "s"));
    }
    const int k = a < 0 ? a + rank : a;
    if ((mask >> k) & 1) {
      throw Error(std::string(name) + ": axis " + std::to_string(a) + " is repeated");
    }
    mask |= uint64_t{1} << k;
  }
  return mask;
}
template <class S>
double BuildOverlap(const char* name, const OverlapOptions& o, const losses::OverlapScore& score,
                    int rank, S&& sink) {
  CheckFiniteAtLeast(name, "smooth", o.smooth, 0.0, false);
  const uint64_t mask = OverlapAxesMask(name, o, rank);
  if (o.squared) {
    if (o.from_logits) return sink(name, losses::OverlapSquaredLogits{score}, mask);
    return sink(name, losses::OverlapSquared{score}, mask);
  }
  if (o.from_logits) return sink(name, losses::OverlapLogits{score}, mask);
  return sink(name, losses::OverlapPlain{score}, mask);
}
// The scores of the four overlap losses (options checked).
inline losses::OverlapScore DiceScore(const DiceOptions& o) {
  return {2.0, 0.0, 1.0, 1.0, o.smooth, 1.0};
}
inline losses::OverlapScore JaccardScore(const JaccardOptions& o) {
  return {1.0, -1.0, 1.0, 1.0, o.smooth, 1.0};
}
inline losses::OverlapScore TverskyScore(const char* name, const TverskyOptions& o,
                                         double gamma) {
  CheckFiniteAtLeast(name, "alpha", o.alpha, 0.0, false);
  CheckFiniteAtLeast(name, "beta", o.beta, 0.0, false);
  return {1.0, 1.0 - o.alpha - o.beta, o.alpha, o.beta, o.smooth, gamma};
}
inline losses::OverlapScore FocalTverskyScore(const FocalTverskyOptions& o) {
  CheckFiniteAtLeast("focal_tversky", "gamma", o.gamma, 0.0, true);
  return TverskyScore("focal_tversky", o, o.gamma);
}

// --- Detection: box losses (box driver) ------------------------------------------
// Checks eps and returns sink("box_iou", functor) with the functor of o.kind.
template <class S>
double BuildBox(const BoxIouOptions& o, S&& sink) {
  CheckFiniteAtLeast("box_iou", "eps", o.eps, 0.0, false);
  switch (o.kind) {
    case BoxIouKind::kIou: return sink("box_iou", losses::BoxIou{o.eps});
    case BoxIouKind::kGiou: return sink("box_iou", losses::BoxGiou{o.eps});
    case BoxIouKind::kDiou: return sink("box_iou", losses::BoxDiou{o.eps});
    case BoxIouKind::kCiou: return sink("box_iou", losses::BoxCiou{o.eps});
  }
  throw Error("box_iou: unknown kind");
}

// --- Adversarial losses: the elementwise functor of each score array ------------
// gan_discriminator: softplus(-real) + softplus(fake).
inline losses::ScaledSoftplus GanRealLoss() { return {-1.0, 1.0}; }
inline losses::ScaledSoftplus GanFakeLoss() { return {1.0, 1.0}; }
// gan_generator: softplus(-fake) (non-saturating), or log(1 - sigmoid(fake)) =
// -softplus(fake) (saturating).
inline losses::ScaledSoftplus GanGeneratorLoss(bool saturating) {
  return saturating ? losses::ScaledSoftplus{1.0, -1.0} : losses::ScaledSoftplus{-1.0, 1.0};
}
// wasserstein_critic: R(fake) - R(real); wasserstein_generator: -R(fake).
inline losses::Linear WassersteinRealLoss() { return {-1.0}; }
inline losses::Linear WassersteinFakeLoss() { return {1.0}; }
inline losses::Linear WassersteinGeneratorLoss() { return {-1.0}; }

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_INTERNAL_BUILDERS_H_
