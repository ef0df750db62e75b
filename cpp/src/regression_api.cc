// Public entry points of the regression family: option checks, then the
// shared elementwise driver over the family's functors.
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "fastloss/fastloss.hpp"
#include "internal/builders.h"
#include "internal/elementwise.h"
#include "losses/losses.h"

namespace fastloss {
template <typename T>
double Mse(const Call<T>& call, const MseOptions& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
}

template <typename T>
double Mae(const Call<T>& call, const MaeOptions& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
}

template <typename T>
double Huber(const Call<T>& call, const HuberOptions& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
}

template <typename T>
double SmoothL1(const Call<T>& call, const SmoothL1Options& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
}

template <typename T>
double LogCosh(const Call<T>& call, const LogCoshOptions& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
}

template <typename T>
double Msle(const Call<T>& call, const MsleOptions& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
}

template <typename T>
double Mape(const Call<T>& call, const MapeOptions& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
}

template <typename T>
double PoissonNll(const Call<T>& call, const PoissonNllOptions& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
}

template <typename T>
double Quantile(const Call<T>& call, const QuantileOptions& o) {
  return internal::Build<T>(o, internal::RunSink<T>{call});
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
