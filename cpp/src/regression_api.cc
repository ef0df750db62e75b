// Public entry points of the regression family: option checks, then the
// shared elementwise driver over the family's functors.
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "fastloss/fastloss.hpp"
#include "internal/elementwise.h"
#include "losses/losses.h"

namespace fastloss {
namespace {

std::string Num(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

using internal::RunLoss;

}  // namespace

template <typename T>
double Mse(const Call<T>& call, const MseOptions&) {
  return RunLoss("mse", losses::Mse{}, call);
}

template <typename T>
double Mae(const Call<T>& call, const MaeOptions&) {
  return RunLoss("mae", losses::Mae{}, call);
}

template <typename T>
double Huber(const Call<T>& call, const HuberOptions& o) {
  if (!(o.delta > 0) || std::isinf(o.delta)) {
    throw Error("huber: delta must be a finite number > 0, got " + Num(o.delta));
  }
  return RunLoss("huber", losses::Huber{o.delta, 1.0}, call);
}

template <typename T>
double SmoothL1(const Call<T>& call, const SmoothL1Options& o) {
  if (!(o.beta >= 0) || std::isinf(o.beta)) {
    throw Error("smooth_l1: beta must be a finite number >= 0, got " + Num(o.beta));
  }
  // PyTorch's smooth L1 is Huber with delta = beta divided by beta, and L1
  // at beta = 0. Where 1 / beta overflows T (beta below ~2.9e-39 in float,
  // ~5.6e-309 in double) the quadratic zone |r| < beta holds only subnormal
  // residuals, and the loss is L1 to within beta / 2.
  if (!(1.0 / o.beta <= static_cast<double>(std::numeric_limits<T>::max()))) {
    return RunLoss("smooth_l1", losses::Mae{}, call);
  }
  return RunLoss("smooth_l1", losses::Huber{o.beta, 1.0 / o.beta}, call);
}

template <typename T>
double LogCosh(const Call<T>& call, const LogCoshOptions&) {
  return RunLoss("log_cosh", losses::LogCosh{}, call);
}

template <typename T>
double Msle(const Call<T>& call, const MsleOptions&) {
  return RunLoss("msle", losses::Msle{}, call);
}

template <typename T>
double Mape(const Call<T>& call, const MapeOptions& o) {
  if (!(o.eps > 0) || std::isinf(o.eps)) {
    throw Error("mape: eps must be a finite number > 0, got " + Num(o.eps));
  }
  return RunLoss("mape", losses::Mape{o.eps}, call);
}

template <typename T>
double PoissonNll(const Call<T>& call, const PoissonNllOptions& o) {
  if (!(o.eps >= 0) || std::isinf(o.eps)) {
    throw Error("poisson_nll: eps must be a finite number >= 0, got " + Num(o.eps));
  }
  return RunLoss("poisson_nll", losses::PoissonNll{o.log_input, o.full, o.eps}, call);
}

template <typename T>
double Quantile(const Call<T>& call, const QuantileOptions& o) {
  if (!(o.q > 0 && o.q < 1)) {
    throw Error("quantile: q must be in the open interval (0, 1), got " + Num(o.q));
  }
  return RunLoss("quantile", losses::Quantile{o.q}, call);
}

#define FASTLOSS_INSTANTIATE(Name)                                       \
  template double Name<float>(const Call<float>&, const Name##Options&); \
  template double Name<double>(const Call<double>&, const Name##Options&);
FASTLOSS_INSTANTIATE(Mse)
FASTLOSS_INSTANTIATE(Mae)
FASTLOSS_INSTANTIATE(Huber)
FASTLOSS_INSTANTIATE(SmoothL1)
FASTLOSS_INSTANTIATE(LogCosh)
FASTLOSS_INSTANTIATE(Msle)
FASTLOSS_INSTANTIATE(Mape)
FASTLOSS_INSTANTIATE(PoissonNll)
FASTLOSS_INSTANTIATE(Quantile)
#undef FASTLOSS_INSTANTIATE

}  // namespace fastloss
