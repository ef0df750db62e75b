// Double-precision reference for the fastloss regression losses, and the
// configurations and input data the C++ tests run them on. The C++ mirror of
// fastloss.reference (python/fastloss/reference/) and the data half of tests/python/checks.py.
//
// Every loss here is written the plain way, straight from the formula table of
// notes/API_SPEC.md, with std:: math in double; nothing is shared with the
// library's functors. RefLoss(config, y, p) gives the per-element loss l and
// dl/dp; RefMagnitude gives the size of the terms that make them up, for the
// absolute part of the error allowance where terms cancel (msle's
// log1p(p) - log1p(y), Poisson's exp(p) - y p, ...).
#ifndef FASTLOSS_TESTS_CPP_REFERENCE_H_
#define FASTLOSS_TESTS_CPP_REFERENCE_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <fastloss/fastloss.hpp>

namespace fastloss_test {

enum class LossId { kMse, kMae, kHuber, kSmoothL1, kLogCosh, kMsle, kMape, kPoissonNll, kQuantile };

// One loss with one set of options. `name` is unique and a valid GoogleTest
// parameter name.
struct LossConfig {
  LossId id = LossId::kMse;
  std::string name;
  fastloss::HuberOptions huber;
  fastloss::SmoothL1Options smooth_l1;
  fastloss::MapeOptions mape;
  fastloss::PoissonNllOptions poisson;
  fastloss::QuantileOptions quantile;
};

inline void PrintTo(const LossConfig& c, std::ostream* os) { *os << c.name; }

// Every loss with its defaults, plus the option values that switch branches
// (beta == 0, eps == 0, log_input / full) or move kinks (as checks.CONFIGS).
inline std::vector<LossConfig> AllConfigs() {
  std::vector<LossConfig> all;
  auto add = [&](LossId id, const char* name) -> LossConfig& {
    LossConfig c;
    c.id = id;
    c.name = name;
    all.push_back(c);
    return all.back();
  };
  add(LossId::kMse, "mse");
  add(LossId::kMae, "mae");
  add(LossId::kHuber, "huber");
  add(LossId::kHuber, "huber_delta0p5").huber.delta = 0.5;
  add(LossId::kHuber, "huber_delta2p5").huber.delta = 2.5;
  add(LossId::kSmoothL1, "smooth_l1");
  add(LossId::kSmoothL1, "smooth_l1_beta0p5").smooth_l1.beta = 0.5;
  add(LossId::kSmoothL1, "smooth_l1_beta0").smooth_l1.beta = 0.0;
  add(LossId::kLogCosh, "log_cosh");
  add(LossId::kMsle, "msle");
  add(LossId::kMape, "mape");
  add(LossId::kMape, "mape_eps0p5").mape.eps = 0.5;
  add(LossId::kPoissonNll, "poisson_nll");
  add(LossId::kPoissonNll, "poisson_nll_full").poisson.full = true;
  add(LossId::kPoissonNll, "poisson_nll_linear").poisson.log_input = false;
  {
    LossConfig& c = add(LossId::kPoissonNll, "poisson_nll_linear_full");
    c.poisson.log_input = false;
    c.poisson.full = true;
  }
  {
    LossConfig& c = add(LossId::kPoissonNll, "poisson_nll_linear_eps0");
    c.poisson.log_input = false;
    c.poisson.eps = 0.0;
  }
  add(LossId::kQuantile, "quantile");
  add(LossId::kQuantile, "quantile_q0p1").quantile.q = 0.1;
  add(LossId::kQuantile, "quantile_q0p9").quantile.q = 0.9;
  return all;
}

// The first configuration of each of the nine losses (their defaults).
inline std::vector<LossConfig> DefaultConfigs() {
  std::vector<LossConfig> out;
  for (const LossConfig& c : AllConfigs()) {
    bool seen = false;
    for (const LossConfig& o : out) seen = seen || o.id == c.id;
    if (!seen) out.push_back(c);
  }
  return out;
}

inline bool IsTranscendental(LossId id) {
  return id == LossId::kLogCosh || id == LossId::kMsle || id == LossId::kPoissonNll;
}

// Calls the library's function for c.id with c's options.
template <typename T>
double RunLoss(const LossConfig& c, const fastloss::Call<T>& call) {
  switch (c.id) {
    case LossId::kMse: return fastloss::Mse(call);
    case LossId::kMae: return fastloss::Mae(call);
    case LossId::kHuber: return fastloss::Huber(call, c.huber);
    case LossId::kSmoothL1: return fastloss::SmoothL1(call, c.smooth_l1);
    case LossId::kLogCosh: return fastloss::LogCosh(call);
    case LossId::kMsle: return fastloss::Msle(call);
    case LossId::kMape: return fastloss::Mape(call, c.mape);
    case LossId::kPoissonNll: return fastloss::PoissonNll(call, c.poisson);
    case LossId::kQuantile: return fastloss::Quantile(call, c.quantile);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// Per-element loss and derivative with respect to p.
struct LossAndDeriv {
  double l;
  double dl;
};

// sign(x): -1, 0 or +1; NaN for NaN (as np.sign).
inline double RefSign(double x) {
  if (std::isnan(x)) return x;
  return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0);
}

inline double RefStirling(double y) {
  const double kPi = 3.14159265358979323846;
  return y > 1 ? y * std::log(y) - y + 0.5 * std::log(2.0 * kPi * y) : 0.0;
}

inline LossAndDeriv RefLoss(const LossConfig& c, double y, double p) {
  const double r = p - y;
  const double a = std::fabs(r);
  switch (c.id) {
    case LossId::kMse:
      return {r * r, 2.0 * r};
    case LossId::kMae:
      return {a, RefSign(r)};
    case LossId::kHuber: {
      const double d = c.huber.delta;
      const double l = a <= d ? 0.5 * r * r : d * (a - 0.5 * d);
      const double dl = r > d ? d : (r < -d ? -d : r);  // keeps NaN
      return {std::isnan(r) ? r : l, dl};
    }
    case LossId::kSmoothL1: {
      const double b = c.smooth_l1.beta;
      if (b == 0) return {a, RefSign(r)};
      if (std::isnan(r)) return {r, r};
      if (a < b) return {0.5 * r * r / b, r / b};
      return {a - 0.5 * b, RefSign(r)};
    }
    case LossId::kLogCosh: {
      // log(cosh r) overflows cosh beyond |r| ~ 710 and loses every digit for
      // tiny r. Small |r|: cosh r - 1 = 2 sinh(r/2)^2. Large |r|:
      // |r| + log1p(exp(-2|r|)) - log 2, no cancellation since it is >= 0.43.
      const double l = a < 1.0 ? std::log1p(2.0 * std::pow(std::sinh(0.5 * r), 2))
                               : a + std::log1p(std::exp(-2.0 * a)) - std::log(2.0);
      return {l, std::tanh(r)};
    }
    case LossId::kMsle: {
      const double d = std::log1p(p) - std::log1p(y);
      return {d * d, 2.0 * d / (1.0 + p)};
    }
    case LossId::kMape: {
      const double den = std::isnan(y) ? y : std::fmax(std::fabs(y), c.mape.eps);
      return {a / den, RefSign(r) / den};
    }
    case LossId::kPoissonNll: {
      const fastloss::PoissonNllOptions& o = c.poisson;
      double l, dl;
      if (o.log_input) {
        l = std::exp(p) - y * p;
        dl = std::exp(p) - y;
      } else {
        l = p - y * std::log(p + o.eps);
        dl = 1.0 - y / (p + o.eps);
      }
      if (o.full) l += RefStirling(y);
      return {l, dl};
    }
    case LossId::kQuantile: {
      const double q = c.quantile.q;
      const double e = y - p;
      const double l = std::isnan(e) ? e : std::fmax(q * e, (q - 1.0) * e);
      const double dl = std::isnan(e) ? e : (e > 0 ? -q : (e < 0 ? 1.0 - q : 0.0));
      return {l, dl};
    }
  }
  return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
}

// Size of the terms that make up (l, dl): a kernel evaluates each term with
// a relative error of a few ulp, so where terms cancel the error of the
// result is a few ulp of the largest term, not of the result. Losses without
// cancellation return (|l|, |dl|).
inline LossAndDeriv RefMagnitude(const LossConfig& c, double y, double p) {
  const LossAndDeriv ld = RefLoss(c, y, p);
  double ml = std::fabs(ld.l), mdl = std::fabs(ld.dl);
  switch (c.id) {
    case LossId::kLogCosh:
      // |r| + log1p(...) - log 2 for large |r|; tiny absolute floor for the
      // tanh^2 form near 0.
      ml += 0.01;
      break;
    case LossId::kMsle: {
      const double a = std::fabs(std::log1p(p)), b = std::fabs(std::log1p(y));
      ml += 2.0 * std::sqrt(ml) * (a + b);
      mdl += 2.0 * (a + b) / std::fabs(1.0 + p);
      break;
    }
    case LossId::kPoissonNll: {
      const fastloss::PoissonNllOptions& o = c.poisson;
      if (o.log_input) {
        ml += std::exp(p) + std::fabs(y * p);
        mdl += std::exp(p) + std::fabs(y);
      } else {
        ml += std::fabs(p) + std::fabs(y * std::log(p + o.eps));
        mdl += 1.0 + std::fabs(y / (p + o.eps));
      }
      if (o.full && y > 1) {
        const double kPi = 3.14159265358979323846;
        ml += std::fabs(y * std::log(y)) + std::fabs(y) +
              std::fabs(0.5 * std::log(2.0 * kPi * y));
      }
      break;
    }
    default:
      break;
  }
  return {ml, mdl};
}

// --- Input data. ---

// Random (y_true, y_pred) of n elements inside the loss's domain (as
// checks.make_data): exact ties (p == y) for the losses with a kink at r = 0,
// large residuals for log_cosh, exact zeros of y_true for mape (odd seeds),
// counts and non-integer targets for poisson_nll.
inline void MakeData(const LossConfig& c, int64_t n, uint64_t seed, std::vector<double>* y,
                     std::vector<double>* p) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(n) * 1000003ull +
                      static_cast<uint64_t>(c.id));
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto unif = [&](double lo, double hi) { return lo + (hi - lo) * unit(rng); };
  y->assign(static_cast<size_t>(n), 0.0);
  p->assign(static_cast<size_t>(n), 0.0);
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    double& yi = (*y)[i];
    double& pi = (*p)[i];
    switch (c.id) {
      case LossId::kMse:
      case LossId::kMae:
      case LossId::kHuber:
      case LossId::kSmoothL1:
      case LossId::kQuantile:
      case LossId::kLogCosh:
        yi = 2.0 * normal(rng);
        pi = yi + 2.0 * normal(rng);
        if (c.id == LossId::kLogCosh && unit(rng) < 0.1) {
          pi = yi + (normal(rng) < 0 ? -1.0 : 1.0) * unif(20.0, 400.0);
        }
        if (unit(rng) < 0.1) pi = yi;
        break;
      case LossId::kMsle:
        yi = std::expm1(unif(-2.0, 2.5));
        pi = std::expm1(unif(-2.0, 2.5));
        break;
      case LossId::kMape:
        yi = 3.0 * normal(rng);
        if (std::fabs(yi) < 0.1) yi += std::copysign(0.1, yi);
        if (seed % 2 && unit(rng) < 0.1) yi = 0.0;
        pi = yi + 2.0 * normal(rng);
        if (unit(rng) < 0.05) pi = yi;
        break;
      case LossId::kPoissonNll: {
        double rate;
        if (c.poisson.log_input) {
          pi = 1.5 * normal(rng);
          rate = std::exp(pi);
        } else {
          pi = std::exp(normal(rng));
          rate = pi;
        }
        std::poisson_distribution<int64_t> counts(rate);
        yi = unit(rng) < 0.5 ? static_cast<double>(counts(rng)) : unif(0.0, 5.0);
        break;
      }
    }
  }
}

// Random weights in [0, 2), about a tenth of them exactly 0.
inline std::vector<double> MakeWeights(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed * 7919u + static_cast<uint64_t>(n) + 17u);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> w(static_cast<size_t>(n));
  for (double& x : w) x = unit(rng) < 0.1 ? 0.0 : 2.0 * unit(rng);
  return w;
}

template <typename T>
std::vector<T> Cast(const std::vector<double>& x) {
  return std::vector<T>(x.begin(), x.end());
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_REFERENCE_H_
