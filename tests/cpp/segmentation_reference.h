// The overlap losses (dice, jaccard, tversky, focal tversky; the group driver,
// drivers/groups/): the double reference written from notes/STRUCTURED_SPEC.md
// and the sweep that checks the library against it. Used by
// segmentation_test.cc and structured_test.cc (finite differences, large
// groups, SIMD targets).
#ifndef FASTLOSS_TESTS_CPP_SEGMENTATION_REFERENCE_H_
#define FASTLOSS_TESTS_CPP_SEGMENTATION_REFERENCE_H_

#include "structured_helpers.h"

namespace fastloss_test {

// ============================================================================
// Segmentation: dice, jaccard, tversky, focal tversky.
// ============================================================================

enum class OvKind { kDice, kJaccard, kTversky, kFocal };

struct OvConfig {
  OvKind kind = OvKind::kDice;
  std::string name;
  fastloss::FocalTverskyOptions o;  // every option of the family
};

inline std::vector<OvConfig> OvConfigs() {
  std::vector<OvConfig> all;
  auto add = [&](OvKind k, const char* name) -> OvConfig& {
    OvConfig c;
    c.kind = k;
    c.name = name;
    all.push_back(c);
    return all.back();
  };
  add(OvKind::kDice, "dice");
  add(OvKind::kDice, "dice_squared").o.squared = true;
  add(OvKind::kDice, "dice_logits").o.from_logits = true;
  {
    OvConfig& c = add(OvKind::kDice, "dice_squared_logits_smooth1");
    c.o.squared = c.o.from_logits = true;
    c.o.smooth = 1.0;
  }
  add(OvKind::kJaccard, "jaccard");
  add(OvKind::kJaccard, "jaccard_logits").o.from_logits = true;
  add(OvKind::kJaccard, "jaccard_squared").o.squared = true;
  {
    OvConfig& c = add(OvKind::kTversky, "tversky_a0p3_b0p7");
    c.o.alpha = 0.3;
    c.o.beta = 0.7;
  }
  {
    OvConfig& c = add(OvKind::kTversky, "tversky_squared_logits_a0p8_b0p1");
    c.o.alpha = 0.8;
    c.o.beta = 0.1;
    c.o.squared = c.o.from_logits = true;
  }
  add(OvKind::kTversky, "tversky_default");
  {
    OvConfig& c = add(OvKind::kFocal, "focal_tversky_a0p7_b0p3");
    c.o.alpha = 0.7;
    c.o.beta = 0.3;
  }
  {
    OvConfig& c = add(OvKind::kFocal, "focal_tversky_logits_g2_smooth0p5");
    c.o.from_logits = true;
    c.o.gamma = 2.0;
    c.o.smooth = 0.5;
  }
  add(OvKind::kFocal, "focal_tversky_default");
  return all;
}

template <typename T>
double RunOverlap(const OvConfig& c, const Call<T>& call) {
  const fastloss::OverlapOptions& base = c.o;
  switch (c.kind) {
    case OvKind::kDice: {
      fastloss::DiceOptions d;
      static_cast<fastloss::OverlapOptions&>(d) = base;
      return fastloss::Dice(call, d);
    }
    case OvKind::kJaccard: {
      fastloss::JaccardOptions j;
      static_cast<fastloss::OverlapOptions&>(j) = base;
      return fastloss::Jaccard(call, j);
    }
    case OvKind::kTversky: {
      fastloss::TverskyOptions t;
      static_cast<fastloss::OverlapOptions&>(t) = base;
      t.alpha = c.o.alpha;
      t.beta = c.o.beta;
      return fastloss::Tversky(call, t);
    }
    case OvKind::kFocal: return fastloss::FocalTversky(call, c.o);
  }
  return kNaN;
}

// The loss of one region from its sums, and dl/dI, dl/dSp (spec formulas).
inline void OverlapLoss(const OvConfig& c, double I, double Sy, double Sp, double* l, double* dI,
                        double* dSp) {
  const double s = c.o.smooth;
  switch (c.kind) {
    case OvKind::kDice: {
      const double N = 2.0 * I + s, D = Sy + Sp + s;
      *l = 1.0 - N / D;
      *dI = -2.0 / D;
      *dSp = N / (D * D);
      return;
    }
    case OvKind::kJaccard: {
      const double U = Sy + Sp - I;
      const double us = U + s;
      *l = 1.0 - (I + s) / us;
      *dI = -(us + I + s) / (us * us);
      *dSp = (I + s) / (us * us);
      return;
    }
    case OvKind::kTversky:
    case OvKind::kFocal: {
      const double a = c.o.alpha, b = c.o.beta;
      const double FP = Sp - I, FN = Sy - I;
      const double D = I + a * FP + b * FN + s;
      const double TI = (I + s) / D;
      const double dti_dI = (D - (I + s) * (1.0 - a - b)) / (D * D);
      const double dti_dSp = -(I + s) * a / (D * D);
      const double u = 1.0 - TI;
      if (c.kind == OvKind::kTversky) {
        *l = u;
        *dI = -dti_dI;
        *dSp = -dti_dSp;
        return;
      }
      const double g = c.o.gamma;
      *l = std::pow(u, g);
      const double f = u == 0.0 ? 0.0 : g * std::pow(u, g - 1.0);
      *dI = -f * dti_dI;
      *dSp = -f * dti_dSp;
      return;
    }
  }
}

inline std::vector<bool> OverlapReduced(const fastloss::OverlapOptions& o, size_t rank) {
  std::vector<bool> red(rank, o.all_axes);
  if (!o.all_axes) {
    for (int a : o.axes) red[static_cast<size_t>(a < 0 ? a + static_cast<int>(rank) : a)] = true;
  }
  return red;
}

inline Ref RefOverlap(const OvConfig& c, const std::vector<double>& y, const std::vector<double>& x,
                      const std::vector<int64_t>& shape) {
  const fastloss::FocalTverskyOptions& o = c.o;
  Ref ref;
  ref.gof = GroupOf(shape, OverlapReduced(o, shape.size()), &ref.lshape);
  const size_t ng = static_cast<size_t>(Prod(ref.lshape)), n = y.size();
  std::vector<double> I(ng, 0.0), Sy(ng, 0.0), Sp(ng, 0.0), p(n);
  for (size_t i = 0; i < n; ++i) {
    p[i] = o.from_logits ? Sig(x[i]) : x[i];
    const size_t g = static_cast<size_t>(ref.gof[i]);
    I[g] += y[i] * p[i];
    Sy[g] += o.squared ? y[i] * y[i] : y[i];
    Sp[g] += o.squared ? p[i] * p[i] : p[i];
  }
  ref.l.resize(ng);
  ref.ml.resize(ng);
  std::vector<double> dI(ng), dSp(ng);
  for (size_t g = 0; g < ng; ++g) {
    OverlapLoss(c, I[g], Sy[g], Sp[g], &ref.l[g], &dI[g], &dSp[g]);
    ref.ml[g] = 2.0 + std::fabs(ref.l[g]);
  }
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    const double dsp = o.squared ? 2.0 * p[i] : 1.0;
    const double chain = o.from_logits ? p[i] * (1.0 - p[i]) : 1.0;
    ref.dl[0][i] = (dI[g] * y[i] + dSp[g] * dsp) * chain;
    ref.mdl[0][i] = (std::fabs(dI[g] * y[i]) + std::fabs(dSp[g] * dsp)) * chain;
  }
  return ref;
}

inline void OverlapData(bool logits, int64_t n, uint64_t seed, std::vector<double>* y,
                        std::vector<double>* x) {
  Rng rng(seed);
  y->resize(static_cast<size_t>(n));
  x->resize(static_cast<size_t>(n));
  for (size_t i = 0; i < y->size(); ++i) {
    const double u = rng.U(0, 1);
    (*y)[i] = u < 0.4 ? 0.0 : (u < 0.8 ? 1.0 : rng.U(0, 1));
    if (logits) {
      (*x)[i] = 2.0 * rng.N();
    } else {
      const double v = rng.U(0, 1);
      (*x)[i] = v < 0.05 ? 0.0 : (v < 0.1 ? 1.0 : rng.U(0, 1));
    }
  }
}

struct AxesCase {
  const char* name;
  bool all;
  std::vector<int> axes;
};

inline std::vector<AxesCase> OverlapAxes() {
  return {{"all", true, {}},
          {"axes_1_2_3", false, {1, 2, 3}},
          {"axes_m1", false, {-1}},
          {"axes_0_2", false, {0, 2}},
          {"axes_3_m3", false, {3, -3}},
          {"axes_none", false, {}}};
}

template <typename T>
void OverlapCase(OvConfig c, const AxesCase& ax, const std::vector<int64_t>& shape,
                 const Opts& o) {
  SCOPED_TRACE(c.name + " " + ax.name + " " + ShapeStr(shape) + " " + DtypeName<T>());
  c.o.all_axes = ax.all;
  c.o.axes = ax.axes;
  std::vector<double> y, x;
  OverlapData(c.o.from_logits, Prod(shape), o.seed * 3u + static_cast<uint64_t>(c.kind), &y, &x);
  y = RoundTo<T>(y);
  x = RoundTo<T>(x);
  const Ref ref = RefOverlap(c, y, x, shape);
  CheckCall<T>(shape, y, x, ref, o, [&](const Call<T>& call) { return RunOverlap(c, call); });
}

template <typename T>
void SweepOverlap(bool quick) {
  const std::vector<int64_t> shape = {3, 2, 5, 7};
  const std::vector<OvConfig> configs = OvConfigs();
  for (size_t ci = 0; ci < configs.size(); ++ci) {
    if (quick && ci % 3 != 0) continue;
    for (const AxesCase& ax : OverlapAxes()) {
      for (const Opts& o : Sweep(quick)) OverlapCase<T>(configs[ci], ax, shape, o);
    }
  }
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_SEGMENTATION_REFERENCE_H_
