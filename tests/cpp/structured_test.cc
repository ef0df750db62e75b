// The structured losses (segmentation, detection, metric learning, ranking,
// adversarial, fused combinations: cpp/src/kernels/structured*.cc, drivers/groups/,
// drivers/ranking/, api/combination.cc) against a double-precision reference written
// here, plainly, from the formulas of notes/STRUCTURED_SPEC.md (nothing is
// shared with the library's functors): float and double, every reduction,
// weights broadcast to the losses' shape, strided / transposed / reversed
// operands, the group driver's two paths (groups of up to 16384 elements and
// larger ones), empty inputs, the errors (raised before any output is
// written), NaN propagation, determinism across thread counts, and every
// SIMD target this CPU supports for a representative subset.
//
// The references themselves are checked against central finite differences
// (StructuredReference.GradientsMatchFiniteDifferences).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <fastloss/fastloss.hpp>

#include "checks.h"
#include "reference.h"

namespace fastloss_test {
namespace {

using fastloss::BoxIouKind;
using fastloss::MultiCall;
using fastloss::PairNormalization;
using fastloss::ScoreCall;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;

// ============================================================================
// Helpers.
// ============================================================================

// Relative allowance, applied to the magnitudes of the terms a result is
// made of (see Ref::ml / Ref::mdl).
template <typename T>
double Rt() {
  return std::is_same<T, float>::value ? 1e-4 : 1e-10;
}

std::vector<int64_t> CStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t stride = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    s[k] = stride;
    stride *= std::max<int64_t>(shape[k], 1);
  }
  return s;
}

int64_t Prod(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::string ShapeStr(const std::vector<int64_t>& shape) {
  std::ostringstream o;
  o << "(";
  for (size_t k = 0; k < shape.size(); ++k) o << (k ? "," : "") << shape[k];
  o << ")";
  return o.str();
}

template <typename T>
View<const T> CView(const std::vector<T>& v, const std::vector<int64_t>& shape) {
  return MakeView<const T>(v.data(), shape, CStrides(shape));
}
template <typename T>
View<T> MView(std::vector<T>& v, const std::vector<int64_t>& shape) {
  return MakeView<T>(v.data(), shape, CStrides(shape));
}

template <typename T>
std::vector<double> RoundTo(const std::vector<double>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<double>(static_cast<T>(v[i]));
  return out;
}

double Sp(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::fabs(z))); }
double Sig(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}
double Sgn(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

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

// Memory layouts of the operands.
enum class Layout { kContiguous, kEveryOther, kTransposed, kReversed };

const char* LayoutName(Layout l) {
  switch (l) {
    case Layout::kContiguous: return "contiguous";
    case Layout::kEveryOther: return "every_other";
    case Layout::kTransposed: return "transposed";
    case Layout::kReversed: return "reversed";
  }
  return "?";
}

std::vector<int64_t> StridesFor(const std::vector<int64_t>& shape, Layout l) {
  std::vector<int64_t> s = CStrides(shape);
  switch (l) {
    case Layout::kContiguous: break;
    case Layout::kEveryOther:
      for (int64_t& x : s) x *= 2;
      break;
    case Layout::kTransposed: {  // Fortran order: the first axis is the fastest
      int64_t stride = 1;
      for (size_t k = 0; k < shape.size(); ++k) {
        s[k] = stride;
        stride *= std::max<int64_t>(shape[k], 1);
      }
      break;
    }
    case Layout::kReversed:
      for (int64_t& x : s) x = -x;
      break;
  }
  return s;
}

template <typename T>
using Arr = std::unique_ptr<StridedArray<T>>;

template <typename T>
Arr<T> NewArr(const std::vector<int64_t>& shape, Layout l) {
  return std::make_unique<StridedArray<T>>(shape, StridesFor(shape, l));
}
template <typename T>
Arr<T> Input(const std::vector<int64_t>& shape, Layout l, const std::vector<double>& values) {
  Arr<T> a = NewArr<T>(shape, l);
  a->Fill(Cast<T>(values));
  return a;
}

// Puts the best SIMD target back after every test, failed or not.
class TargetGuard {
 protected:
  ~TargetGuard() { fastloss::ForceSimdTarget(""); }
};

// For every element (C order) of `shape`, the index (C order) of its group in
// the kept (not reduced) axes; *lshape receives the kept axes' shape.
std::vector<int64_t> GroupOf(const std::vector<int64_t>& shape, const std::vector<bool>& reduced,
                             std::vector<int64_t>* lshape) {
  const size_t rank = shape.size();
  lshape->clear();
  for (size_t k = 0; k < rank; ++k) {
    if (!reduced[k]) lshape->push_back(shape[k]);
  }
  std::vector<int64_t> gstride(rank, 0);
  int64_t s = 1;
  for (size_t k = rank; k-- > 0;) {
    if (!reduced[k]) {
      gstride[k] = s;
      s *= shape[k];
    }
  }
  const int64_t n = Prod(shape);
  std::vector<int64_t> gof(static_cast<size_t>(n)), idx(rank, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t g = 0;
    for (size_t k = 0; k < rank; ++k) g += idx[k] * gstride[k];
    gof[static_cast<size_t>(i)] = g;
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return gof;
}

// Rows along the last axis.
std::vector<bool> LastAxis(size_t rank) {
  std::vector<bool> r(rank, false);
  if (rank) r[rank - 1] = true;
  return r;
}

// ============================================================================
// The reference result of one unweighted, unreduced evaluation, and its
// reduction.
// ============================================================================

struct Ref {
  std::vector<int64_t> lshape;   // the losses' shape
  std::vector<double> l, ml;     // per loss (C order); ml: magnitude of its terms
  int ngrad = 0;
  std::vector<double> dl[3], mdl[3];  // per element of differentiable input k (C order)
  std::vector<int64_t> gof;           // loss index of each input element
};

double SumL(const Ref& r) {
  double s = 0;
  for (double v : r.l) s += v;
  return s;
}

struct Want {
  Reduction r = Reduction::kMean;
  double value = 0, value_tol = 0;
  std::vector<double> losses, losses_tol;
  std::vector<double> grad[3], grad_tol[3];
};

// sum = sum(w l), mean = sum(w l) / sum(w), none = w l; gradients of the
// value (of the sum of the losses for none). w: per loss, or nullptr.
template <typename T>
Want Finish(const Ref& ref, const std::vector<double>* w, Reduction r, double rtol) {
  Want e;
  e.r = r;
  const size_t n = ref.l.size();
  ExactSum swl, smag, sw;
  e.losses.resize(n);
  e.losses_tol.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double wi = w ? (*w)[i] : 1.0;
    e.losses[i] = wi * ref.l[i];
    e.losses_tol[i] = rtol * (std::fabs(wi * ref.l[i]) + std::fabs(wi) * ref.ml[i]) + Floor<T>();
    swl.Add(wi * ref.l[i]);
    smag.Add(std::fabs(wi) * ref.ml[i]);
    sw.Add(wi);
  }
  double scale = 1.0;
  if (r == Reduction::kMean) {
    scale = 1.0 / sw.Get();
    e.value = swl.Get() / sw.Get();
    e.value_tol = rtol * (std::fabs(e.value) + smag.Get() / std::fabs(sw.Get())) + Floor<T>();
  } else if (r == Reduction::kSum) {
    e.value = swl.Get();
    e.value_tol = rtol * (std::fabs(e.value) + smag.Get()) + Floor<T>();
  }
  for (int k = 0; k < ref.ngrad; ++k) {
    const size_t m = ref.dl[k].size();
    e.grad[k].resize(m);
    e.grad_tol[k].resize(m);
    for (size_t i = 0; i < m; ++i) {
      const double wi = w ? (*w)[static_cast<size_t>(ref.gof[i])] : 1.0;
      e.grad[k][i] = wi * ref.dl[k][i] * scale;
      e.grad_tol[k][i] =
          rtol * (std::fabs(e.grad[k][i]) + std::fabs(wi) * ref.mdl[k][i] * std::fabs(scale)) +
          Floor<T>();
    }
  }
  return e;
}

// The value (0 for none), the gradients given (nullptr: skipped) and, for
// none, the losses.
template <typename T>
::testing::AssertionResult Matches(const Want& e, double value,
                                   std::initializer_list<const View<T>*> grads,
                                   const View<T>* losses) {
  std::ostringstream msg;
  bool failed = false;
  if (e.r == Reduction::kNone) {
    if (value != 0.0) {
      failed = true;
      msg << "\n  reduction none returned " << value << ", expected 0";
    }
  } else if (!Close(value, e.value, e.value_tol)) {
    failed = true;
    msg << "\n  value: got " << value << ", expected " << e.value << ", allowed " << e.value_tol
        << " (diff " << value - e.value << ")";
  }
  int k = 0;
  for (const View<T>* g : grads) {
    if (g) {
      const std::string what = "grad" + std::to_string(k);
      ::testing::AssertionResult r = ViewMatches(what.c_str(), *g, e.grad[k], e.grad_tol[k]);
      if (!r) {
        failed = true;
        msg << "\n  " << r.message();
      }
    }
    ++k;
  }
  if (e.r == Reduction::kNone && losses) {
    ::testing::AssertionResult r = ViewMatches("losses", *losses, e.losses, e.losses_tol);
    if (!r) {
      failed = true;
      msg << "\n  " << r.message();
    }
  }
  if (!failed) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << msg.str();
}

// One evaluation's layout, reduction and weighting.
struct Opts {
  Layout layout = Layout::kContiguous;
  Reduction r = Reduction::kMean;
  bool weighted = false;
  uint64_t seed = 1;
  bool partial_grads = false;  // multi-input losses: skip the second gradient
};

std::string OptsName(const Opts& o) {
  return std::string(LayoutName(o.layout)) + " " + ReductionName(o.r) +
         (o.weighted ? " weighted" : "") + (o.partial_grads ? " partial_grads" : "") +
         " seed " + std::to_string(o.seed);
}

std::vector<Opts> Sweep(bool quick) {
  std::vector<Opts> out;
  if (quick) {
    out.push_back({Layout::kContiguous, Reduction::kMean, true, 11, false});
    out.push_back({Layout::kEveryOther, Reduction::kNone, true, 12, false});
    out.push_back({Layout::kTransposed, Reduction::kSum, false, 13, true});
    return out;
  }
  uint64_t seed = 100;
  for (Layout l : {Layout::kContiguous, Layout::kEveryOther, Layout::kTransposed, Layout::kReversed}) {
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      for (bool w : {false, true}) {
        out.push_back({l, r, w, ++seed, seed % 5 == 0});
      }
    }
  }
  return out;
}

// Weights over the losses' shape: the losses' shape without its first axis
// (broadcast) when it has two or more, else the whole shape; in [0.1, 2),
// with a few exact zeros.
template <typename T>
struct Weights {
  Arr<T> arr;
  std::vector<double> full;  // broadcast to the losses' shape, C order
};

template <typename T>
void MakeWeights(const std::vector<int64_t>& lshape, const Opts& o, Weights<T>* w) {
  std::vector<int64_t> wshape = lshape;
  if (wshape.size() >= 2) wshape.erase(wshape.begin());
  Rng rng(o.seed * 977u + 5u);
  std::vector<double> v(static_cast<size_t>(Prod(wshape)));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = (i > 0 && v.size() >= 4 && rng.P(0.15)) ? 0.0 : rng.U(0.1, 2.0);
  }
  v = RoundTo<T>(v);
  w->arr = Input<T>(wshape, o.layout, v);
  w->full = Gather(w->arr->cview(), lshape.data(), static_cast<int>(lshape.size()));
}

// Runs a Call-based loss (one gradient, wrt y_pred) and checks it.
template <typename T, class RunF>
void CheckCall(const std::vector<int64_t>& shape, const std::vector<double>& y,
               const std::vector<double>& x, const Ref& ref, const Opts& o, RunF run) {
  SCOPED_TRACE(OptsName(o));
  Arr<T> ya = Input<T>(shape, o.layout, y), xa = Input<T>(shape, o.layout, x);
  Arr<T> ga = NewArr<T>(shape, o.layout);
  Arr<T> la = NewArr<T>(ref.lshape, o.layout);
  Weights<T> w;
  Call<T> call;
  call.y_true = ya->cview();
  call.y_pred = xa->cview();
  call.reduction = o.r;
  call.grad = ga->view();
  if (o.r == Reduction::kNone) {
    call.losses = la->view();
  }
  if (o.weighted) {
    MakeWeights<T>(ref.lshape, o, &w);
    call.weights = w.arr->cview();
  }
  const Want e = Finish<T>(ref, o.weighted ? &w.full : nullptr, o.r, Rt<T>());
  const double v = run(call);
  EXPECT_TRUE(Matches<T>(e, v, {&ga->view()}, &la->view()));
  EXPECT_TRUE(ga->OnlyViewWritten());
  EXPECT_TRUE(o.r == Reduction::kNone ? la->OnlyViewWritten() : la->Untouched());
}

// Runs a MultiCall-based loss and checks it. `ins` are the inputs (all of
// `shape`), `target` (may be empty) of `tshape`.
template <typename T, class RunF>
void CheckMulti(const std::vector<int64_t>& shape, const std::vector<std::vector<double>>& ins,
                const std::vector<int64_t>& tshape, const std::vector<double>& target,
                const Ref& ref, const Opts& o, RunF run) {
  SCOPED_TRACE(OptsName(o));
  std::vector<Arr<T>> ia, ga;
  MultiCall<T> call;
  for (size_t k = 0; k < ins.size(); ++k) {
    ia.push_back(Input<T>(shape, o.layout, ins[k]));
    call.inputs[k] = ia.back()->cview();
  }
  for (int k = 0; k < ref.ngrad; ++k) {
    ga.push_back(NewArr<T>(shape, o.layout));
    const bool want = !(o.partial_grads && k == 1);
    call.grads[k] = ga.back()->view();
    if (!want) call.grads[k].reset();
  }
  Arr<T> ta;
  if (!target.empty()) {
    ta = Input<T>(tshape, o.layout, target);
    call.target = ta->cview();
  }
  Arr<T> la = NewArr<T>(ref.lshape, o.layout);
  Weights<T> w;
  call.reduction = o.r;
  if (o.r == Reduction::kNone) {
    call.losses = la->view();
  }
  if (o.weighted) {
    MakeWeights<T>(ref.lshape, o, &w);
    call.weights = w.arr->cview();
  }
  const Want e = Finish<T>(ref, o.weighted ? &w.full : nullptr, o.r, Rt<T>());
  const double v = run(call);
  const View<T>* g[3] = {nullptr, nullptr, nullptr};
  for (int k = 0; k < ref.ngrad; ++k) {
    if (call.grads[k].has_value()) g[k] = &ga[static_cast<size_t>(k)]->view();
  }
  EXPECT_TRUE(Matches<T>(e, v, {g[0], g[1], g[2]}, &la->view()));
  for (int k = 0; k < ref.ngrad; ++k) {
    EXPECT_TRUE(call.grads[k].has_value() ? ga[static_cast<size_t>(k)]->OnlyViewWritten()
                                  : ga[static_cast<size_t>(k)]->Untouched())
        << "grad " << k;
  }
  EXPECT_TRUE(o.r == Reduction::kNone ? la->OnlyViewWritten() : la->Untouched());
}

// ============================================================================
// A. Segmentation: dice, jaccard, tversky, focal tversky.
// ============================================================================

enum class OvKind { kDice, kJaccard, kTversky, kFocal };

struct OvConfig {
  OvKind kind = OvKind::kDice;
  std::string name;
  fastloss::FocalTverskyOptions o;  // every option of the family
};

std::vector<OvConfig> OvConfigs() {
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
void OverlapLoss(const OvConfig& c, double I, double Sy, double Sp, double* l, double* dI,
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

std::vector<bool> OverlapReduced(const fastloss::OverlapOptions& o, size_t rank) {
  std::vector<bool> red(rank, o.all_axes);
  if (!o.all_axes) {
    for (int a : o.axes) red[static_cast<size_t>(a < 0 ? a + static_cast<int>(rank) : a)] = true;
  }
  return red;
}

Ref RefOverlap(const OvConfig& c, const std::vector<double>& y, const std::vector<double>& x,
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

void OverlapData(bool logits, int64_t n, uint64_t seed, std::vector<double>* y,
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

std::vector<AxesCase> OverlapAxes() {
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

// ============================================================================
// B. Detection: box IoU losses. Forward-mode dual numbers with torch's
// autograd conventions (a min/max tie passes half to each side).
// ============================================================================

// d: the derivatives; md: the magnitude of the terms they are sums of (for
// the allowance where terms cancel, e.g. identical boxes).
struct Dual {
  double v = 0;
  double d[4] = {0, 0, 0, 0};
  double md[4] = {0, 0, 0, 0};
};
Dual Cst(double v) {
  Dual r;
  r.v = v;
  return r;
}
Dual Var(double v, int k) {
  Dual r;
  r.v = v;
  r.d[k] = 1;
  r.md[k] = 1;
  return r;
}
Dual operator+(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v + b.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = a.d[k] + b.d[k];
    r.md[k] = a.md[k] + b.md[k];
  }
  return r;
}
Dual operator-(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v - b.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = a.d[k] - b.d[k];
    r.md[k] = a.md[k] + b.md[k];
  }
  return r;
}
Dual operator*(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v * b.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = a.d[k] * b.v + a.v * b.d[k];
    r.md[k] = a.md[k] * std::fabs(b.v) + std::fabs(a.v) * b.md[k];
  }
  return r;
}
Dual operator/(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v / b.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = (a.d[k] * b.v - a.v * b.d[k]) / (b.v * b.v);
    r.md[k] = (a.md[k] * std::fabs(b.v) + std::fabs(a.v) * b.md[k]) / (b.v * b.v);
  }
  return r;
}
Dual Tie(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = 0.5 * (a.d[k] + b.d[k]);
    r.md[k] = 0.5 * (a.md[k] + b.md[k]);
  }
  return r;
}
Dual DMax(const Dual& a, const Dual& b) {
  if (a.v > b.v) return a;
  if (b.v > a.v) return b;
  return Tie(a, b);
}
Dual DMin(const Dual& a, const Dual& b) {
  if (a.v < b.v) return a;
  if (b.v < a.v) return b;
  return Tie(a, b);
}
Dual DAtan(const Dual& a) {
  Dual r;
  r.v = std::atan(a.v);
  for (int k = 0; k < 4; ++k) {
    r.d[k] = a.d[k] / (1.0 + a.v * a.v);
    r.md[k] = a.md[k] / (1.0 + a.v * a.v);
  }
  return r;
}

// torchvision's loss of box p against box t; gradient wrt p in .d. With
// `frozen_alpha`, CIoU's alpha takes that value (for finite differences).
Dual BoxLossDual(BoxIouKind kind, double eps, const double* t, const double* p,
                 const double* frozen_alpha = nullptr, double* alpha_out = nullptr) {
  const Dual x1 = Var(p[0], 0), y1 = Var(p[1], 1), x2 = Var(p[2], 2), y2 = Var(p[3], 3);
  const Dual gx1 = Cst(t[0]), gy1 = Cst(t[1]), gx2 = Cst(t[2]), gy2 = Cst(t[3]);
  const Dual xk1 = DMax(x1, gx1), yk1 = DMax(y1, gy1), xk2 = DMin(x2, gx2), yk2 = DMin(y2, gy2);
  const Dual inter = (xk2.v > xk1.v && yk2.v > yk1.v) ? (xk2 - xk1) * (yk2 - yk1) : Cst(0);
  const Dual uni = (x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - inter;
  const Dual iou = inter / (uni + Cst(eps));
  Dual loss = Cst(1) - iou;
  if (kind == BoxIouKind::kIou) return loss;
  const Dual xc1 = DMin(x1, gx1), yc1 = DMin(y1, gy1), xc2 = DMax(x2, gx2), yc2 = DMax(y2, gy2);
  if (kind == BoxIouKind::kGiou) {
    const Dual area_c = (xc2 - xc1) * (yc2 - yc1);
    return loss + (area_c - uni) / (area_c + Cst(eps));
  }
  const Dual diag = (xc2 - xc1) * (xc2 - xc1) + (yc2 - yc1) * (yc2 - yc1) + Cst(eps);
  const Dual half = Cst(0.5);
  const Dual dx = (x1 + x2) * half - (gx1 + gx2) * half;
  const Dual dy = (y1 + y2) * half - (gy1 + gy2) * half;
  loss = loss + (dx * dx + dy * dy) / diag;
  if (kind == BoxIouKind::kDiou) return loss;
  const Dual w = x2 - x1, h = y2 - y1, wg = gx2 - gx1, hg = gy2 - gy1;
  auto safe = [&](const Dual& hh) {
    return std::fabs(hh.v) < eps ? Cst(hh.v < 0 ? -eps : eps) : hh;
  };
  const Dual diff = DAtan(wg / safe(hg)) - DAtan(w / safe(h));
  const Dual v = Cst(4.0 / (kPi * kPi)) * diff * diff;
  const double alpha = frozen_alpha ? *frozen_alpha : v.v / (1.0 - iou.v + v.v + eps);
  if (alpha_out) *alpha_out = alpha;
  return loss + Cst(alpha) * v;
}

const char* BoxKindName(BoxIouKind k) {
  switch (k) {
    case BoxIouKind::kIou: return "iou";
    case BoxIouKind::kGiou: return "giou";
    case BoxIouKind::kDiou: return "diou";
    case BoxIouKind::kCiou: return "ciou";
  }
  return "?";
}

Ref RefBoxes(const fastloss::BoxIouOptions& o, const std::vector<double>& t,
             const std::vector<double>& p, const std::vector<int64_t>& shape) {
  Ref ref;
  ref.lshape.assign(shape.begin(), shape.end() - 1);
  const size_t nb = static_cast<size_t>(Prod(ref.lshape));
  ref.l.resize(nb);
  ref.ml.resize(nb);
  ref.ngrad = 1;
  ref.dl[0].resize(4 * nb);
  ref.mdl[0].resize(4 * nb);
  ref.gof.resize(4 * nb);
  for (size_t b = 0; b < nb; ++b) {
    const Dual d = BoxLossDual(o.kind, o.eps, &t[4 * b], &p[4 * b]);
    ref.l[b] = d.v;
    ref.ml[b] = 4.0 + std::fabs(d.v);
    double sum = 0;
    for (int k = 0; k < 4; ++k) sum += std::fabs(d.d[k]);
    for (int k = 0; k < 4; ++k) {
      ref.dl[0][4 * b + static_cast<size_t>(k)] = d.d[k];
      ref.mdl[0][4 * b + static_cast<size_t>(k)] = sum + d.md[k];
      ref.gof[4 * b + static_cast<size_t>(k)] = static_cast<int64_t>(b);
    }
  }
  return ref;
}

double Q8(double v) { return std::round(v * 8.0) / 8.0; }

// Boxes on a grid of 1/8 (exact in float, so ties are ties in both types):
// overlapping, disjoint, identical, sharing coordinates, touching, nested.
void BoxData(int64_t nb, uint64_t seed, std::vector<double>* t, std::vector<double>* p) {
  Rng rng(seed);
  t->resize(static_cast<size_t>(4 * nb));
  p->resize(static_cast<size_t>(4 * nb));
  for (size_t b = 0; b < static_cast<size_t>(nb); ++b) {
    const double tx = Q8(rng.U(0, 8)), ty = Q8(rng.U(0, 8));
    const double T4[4] = {tx, ty, tx + Q8(rng.U(0.5, 4)), ty + Q8(rng.U(0.5, 4))};
    double P4[4];
    const double u = rng.U(0, 1);
    auto perturbed = [&]() {
      const double px = Q8(tx + rng.N()), py = Q8(ty + rng.N());
      const double pw = std::max(0.25, Q8(T4[2] - T4[0] + 0.7 * rng.N()));
      const double ph = std::max(0.25, Q8(T4[3] - T4[1] + 0.7 * rng.N()));
      P4[0] = px;
      P4[1] = py;
      P4[2] = px + pw;
      P4[3] = py + ph;
    };
    if (u < 0.45) {
      perturbed();
    } else if (u < 0.6) {  // disjoint
      P4[0] = T4[2] + Q8(rng.U(0.25, 3));
      P4[1] = Q8(ty + rng.N());
      P4[2] = P4[0] + Q8(rng.U(0.5, 3));
      P4[3] = P4[1] + Q8(rng.U(0.5, 3));
    } else if (u < 0.7) {  // identical
      std::copy(T4, T4 + 4, P4);
    } else if (u < 0.85) {  // sharing one or two coordinates
      perturbed();
      const int k1 = static_cast<int>(rng.I(0, 4));
      P4[k1] = T4[k1];
      if (rng.P(0.5)) {
        const int k2 = static_cast<int>(rng.I(0, 4));
        P4[k2] = T4[k2];
      }
      if (P4[2] <= P4[0]) P4[2] = P4[0] + 0.25;
      if (P4[3] <= P4[1]) P4[3] = P4[1] + 0.25;
    } else if (u < 0.93) {  // touching along x: empty intersection
      P4[0] = T4[2];
      P4[1] = Q8(ty + 0.5 * rng.N());
      P4[2] = T4[2] + Q8(rng.U(0.5, 3));
      P4[3] = P4[1] + Q8(rng.U(0.5, 3));
    } else {  // containing
      P4[0] = tx - 0.5;
      P4[1] = ty - 0.25;
      P4[2] = T4[2] + 0.75;
      P4[3] = T4[3] + 0.5;
    }
    for (int k = 0; k < 4; ++k) {
      (*t)[4 * b + static_cast<size_t>(k)] = T4[k];
      (*p)[4 * b + static_cast<size_t>(k)] = P4[k];
    }
  }
}

template <typename T>
void BoxCase(const fastloss::BoxIouOptions& bo, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE(std::string(BoxKindName(bo.kind)) + " eps " + std::to_string(bo.eps) + " " +
               ShapeStr(shape) + " " + DtypeName<T>());
  std::vector<double> t, p;
  BoxData(Prod(shape) / 4, o.seed * 7u + static_cast<uint64_t>(bo.kind), &t, &p);
  t = RoundTo<T>(t);
  p = RoundTo<T>(p);
  const Ref ref = RefBoxes(bo, t, p, shape);
  CheckCall<T>(shape, t, p, ref, o, [&](const Call<T>& call) { return fastloss::BoxIou(call, bo); });
}

std::vector<fastloss::BoxIouOptions> BoxConfigs() {
  std::vector<fastloss::BoxIouOptions> out;
  for (BoxIouKind k : {BoxIouKind::kIou, BoxIouKind::kGiou, BoxIouKind::kDiou, BoxIouKind::kCiou}) {
    fastloss::BoxIouOptions o;
    o.kind = k;
    out.push_back(o);
    o.eps = 0.01;
    out.push_back(o);
  }
  return out;
}

template <typename T>
void SweepBoxes(bool quick) {
  for (const fastloss::BoxIouOptions& bo : BoxConfigs()) {
    if (quick && bo.eps != 1e-7) continue;
    for (const Opts& o : Sweep(quick)) {
      BoxCase<T>(bo, {53, 4}, o);
      if (!quick) {
        BoxCase<T>(bo, {3, 5, 4}, o);
        BoxCase<T>(bo, {4}, o);
      }
    }
  }
}

// ============================================================================
// C. Metric learning.
// ============================================================================

// --- cosine_similarity ---
Ref RefCosineSim(int axis, double eps, const std::vector<double>& y, const std::vector<double>& p,
                 const std::vector<int64_t>& shape) {
  const int rank = static_cast<int>(shape.size());
  std::vector<bool> red(static_cast<size_t>(rank), false);
  red[static_cast<size_t>(axis < 0 ? axis + rank : axis)] = true;
  Ref ref;
  ref.gof = GroupOf(shape, red, &ref.lshape);
  const size_t ng = static_cast<size_t>(Prod(ref.lshape)), n = y.size();
  std::vector<double> dot(ng, 0.0), yy(ng, 0.0), pp(ng, 0.0), c0(ng), c1(ng);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    dot[g] += y[i] * p[i];
    yy[g] += y[i] * y[i];
    pp[g] += p[i] * p[i];
  }
  ref.l.resize(ng);
  ref.ml.assign(ng, 2.0);
  for (size_t g = 0; g < ng; ++g) {
    const double ny = std::sqrt(yy[g]), np = std::sqrt(pp[g]);
    const double nyc = std::max(ny, eps), npc = std::max(np, eps);
    const double cos = dot[g] / (nyc * npc);
    ref.l[g] = 1.0 - std::min(1.0, std::max(-1.0, cos));
    c0[g] = -1.0 / (nyc * npc);
    c1[g] = np >= eps ? cos / (np * np) : 0.0;
  }
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    ref.dl[0][i] = c0[g] * y[i] + c1[g] * p[i];
    ref.mdl[0][i] = std::fabs(c0[g] * y[i]) + std::fabs(c1[g] * p[i]);
  }
  return ref;
}

template <typename T>
void CosineSimCase(int axis, double eps, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("cosine_similarity axis " + std::to_string(axis) + " eps " + std::to_string(eps) +
               " " + ShapeStr(shape) + " " + DtypeName<T>());
  const int64_t n = Prod(shape);
  Rng rng(o.seed * 13u + static_cast<uint64_t>(axis + 5));
  std::vector<double> y(static_cast<size_t>(n)), p(static_cast<size_t>(n));
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = rng.N();
    p[i] = rng.N();
  }
  // Special rows: y zero, p zero, both zero, p = 2 y (cos 1), p = -y, tiny p.
  std::vector<int64_t> lshape;
  const int rank = static_cast<int>(shape.size());
  std::vector<bool> red(shape.size(), false);
  red[static_cast<size_t>(axis < 0 ? axis + rank : axis)] = true;
  const std::vector<int64_t> gof = GroupOf(shape, red, &lshape);
  for (size_t i = 0; i < y.size(); ++i) {
    switch (gof[i]) {
      case 0: y[i] = 0; break;
      case 1: p[i] = 0; break;
      case 2: y[i] = p[i] = 0; break;
      case 3: p[i] = 2.0 * y[i]; break;
      case 4: p[i] = -y[i]; break;
      case 5: p[i] *= 0.01; break;
      default: break;
    }
  }
  y = RoundTo<T>(y);
  p = RoundTo<T>(p);
  const Ref ref = RefCosineSim(axis, eps, y, p, shape);
  fastloss::CosineSimilarityOptions co;
  co.axis = axis;
  co.eps = eps;
  CheckCall<T>(shape, y, p, ref, o,
               [&](const Call<T>& call) { return fastloss::CosineSimilarity(call, co); });
}

template <typename T>
void SweepCosineSim(bool quick) {
  const std::vector<int64_t> shape = {4, 3, 9};
  for (int axis : {-1, 0, 1, 2, -3}) {
    if (quick && axis != 1 && axis != -1) continue;
    for (double eps : {1e-8, 0.05}) {
      if (quick && eps != 1e-8) continue;
      for (const Opts& o : Sweep(quick)) CosineSimCase<T>(axis, eps, shape, o);
    }
  }
  if (!quick) {
    for (const Opts& o : Sweep(true)) CosineSimCase<T>(0, 1e-8, {37}, o);
  }
}

// --- cosine_embedding ---
Ref RefCosineEmbedding(double margin, const std::vector<double>& x1, const std::vector<double>& x2,
                       const std::vector<double>& y, const std::vector<int64_t>& shape) {
  Ref ref;
  ref.gof = GroupOf(shape, LastAxis(shape.size()), &ref.lshape);
  const size_t ng = static_cast<size_t>(Prod(ref.lshape)), n = x1.size();
  std::vector<double> s12(ng, 0.0), s11(ng, 0.0), s22(ng, 0.0), den(ng), cs(ng), sg(ng), m1(ng),
      m2(ng);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    s12[g] += x1[i] * x2[i];
    s11[g] += x1[i] * x1[i];
    s22[g] += x2[i] * x2[i];
  }
  ref.l.resize(ng);
  ref.ml.assign(ng, 2.0 + std::fabs(margin));
  for (size_t g = 0; g < ng; ++g) {
    m1[g] = s11[g] + 1e-12;
    m2[g] = s22[g] + 1e-12;
    den[g] = std::sqrt(m1[g] * m2[g]);
    cs[g] = s12[g] / den[g];
    if (y[g] == 1.0) {
      ref.l[g] = 1.0 - cs[g];
      sg[g] = -1.0;
    } else {
      const double z = cs[g] - margin;
      ref.l[g] = std::max(0.0, z);
      sg[g] = z > 0 ? 1.0 : 0.0;
    }
  }
  ref.ngrad = 2;
  for (int k = 0; k < 2; ++k) {
    ref.dl[k].resize(n);
    ref.mdl[k].resize(n);
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    ref.dl[0][i] = sg[g] * (x2[i] / den[g] - cs[g] * x1[i] / m1[g]);
    ref.dl[1][i] = sg[g] * (x1[i] / den[g] - cs[g] * x2[i] / m2[g]);
    ref.mdl[0][i] = std::fabs(sg[g]) * (std::fabs(x2[i]) / den[g] + std::fabs(cs[g] * x1[i]) / m1[g]);
    ref.mdl[1][i] = std::fabs(sg[g]) * (std::fabs(x1[i]) / den[g] + std::fabs(cs[g] * x2[i]) / m2[g]);
  }
  return ref;
}

template <typename T>
void CosineEmbeddingCase(double margin, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("cosine_embedding margin " + std::to_string(margin) + " " + ShapeStr(shape) + " " +
               DtypeName<T>());
  const int64_t n = Prod(shape);
  Rng rng(o.seed * 17u + 3u);
  std::vector<double> x1(static_cast<size_t>(n)), x2(static_cast<size_t>(n));
  std::vector<int64_t> lshape;
  const std::vector<int64_t> gof = GroupOf(shape, LastAxis(shape.size()), &lshape);
  for (size_t i = 0; i < x1.size(); ++i) {
    x1[i] = rng.N();
    x2[i] = 0.6 * x1[i] + 0.8 * rng.N();
    if (gof[i] == 1 && lshape.size() && lshape[0] > 3) x1[i] = 0;         // a zero row
    if (gof[i] == 2 && lshape.size() && lshape[0] > 3) x1[i] = x2[i] = 0;  // both zero
    if (gof[i] == 3 && lshape.size() && lshape[0] > 3) x2[i] = -x1[i];
  }
  std::vector<double> y(static_cast<size_t>(Prod(lshape)));
  for (double& v : y) v = rng.P(0.5) ? 1.0 : -1.0;
  x1 = RoundTo<T>(x1);
  x2 = RoundTo<T>(x2);
  const Ref ref = RefCosineEmbedding(margin, x1, x2, y, shape);
  fastloss::CosineEmbeddingOptions co;
  co.margin = margin;
  CheckMulti<T>(shape, {x1, x2}, lshape, y, ref, o,
                [&](const MultiCall<T>& c) { return fastloss::CosineEmbedding(c, co); });
}

// --- triplet_margin ---
struct Dist {
  double d = 0;
  std::vector<double> dd;  // d d / d t_i, t = a - b (+ eps)
};

Dist PDist(const fastloss::TripletMarginOptions& o, const double* a, const double* b, size_t D,
           double eps) {
  Dist r;
  r.dd.resize(D);
  std::vector<double> t(D);
  for (size_t i = 0; i < D; ++i) t[i] = a[i] - b[i] + eps;
  if (o.squared) {
    for (size_t i = 0; i < D; ++i) {
      r.d += t[i] * t[i];
      r.dd[i] = 2.0 * t[i];
    }
    return r;
  }
  double S = 0;
  for (size_t i = 0; i < D; ++i) S += std::pow(std::fabs(t[i]), o.p);
  r.d = std::pow(S, 1.0 / o.p);
  for (size_t i = 0; i < D; ++i) {
    r.dd[i] = (S > 0 && t[i] != 0)
                  ? std::pow(std::fabs(t[i]), o.p - 1.0) * Sgn(t[i]) * std::pow(S, 1.0 / o.p - 1.0)
                  : 0.0;
  }
  return r;
}

Ref RefTriplet(const fastloss::TripletMarginOptions& o, const std::vector<double>& a,
               const std::vector<double>& p, const std::vector<double>& ng,
               const std::vector<int64_t>& shape) {
  Ref ref;
  ref.gof = GroupOf(shape, LastAxis(shape.size()), &ref.lshape);
  const size_t rows = static_cast<size_t>(Prod(ref.lshape)), n = a.size();
  const size_t D = static_cast<size_t>(shape.back());
  const double eps = o.squared ? 0.0 : o.eps;
  ref.l.resize(rows);
  ref.ml.resize(rows);
  ref.ngrad = 3;
  for (int k = 0; k < 3; ++k) {
    ref.dl[k].assign(n, 0.0);
    ref.mdl[k].assign(n, 0.0);
  }
  for (size_t r = 0; r < rows; ++r) {
    const size_t off = r * D;
    const Dist ap = PDist(o, &a[off], &p[off], D, eps);
    const Dist an = PDist(o, &a[off], &ng[off], D, eps);
    Dist pn;
    double wan = 1, wpn = 0, dneg = an.d;
    if (o.swap) {
      pn = PDist(o, &p[off], &ng[off], D, eps);
      if (pn.d < an.d) {
        wan = 0;
        wpn = 1;
        dneg = pn.d;
      } else if (pn.d == an.d) {
        wan = wpn = 0.5;
      }
    } else {
      pn.dd.assign(D, 0.0);
    }
    const double z = ap.d - dneg + o.margin;
    const double act = z > 0 ? 1.0 : 0.0;
    ref.l[r] = std::max(z, 0.0);
    ref.ml[r] = ap.d + dneg + o.margin;
    for (size_t i = 0; i < D; ++i) {
      ref.dl[0][off + i] = act * (ap.dd[i] - wan * an.dd[i]);
      ref.dl[1][off + i] = act * (-ap.dd[i] - wpn * pn.dd[i]);
      ref.dl[2][off + i] = act * (wan * an.dd[i] + wpn * pn.dd[i]);
      const double m = act * (std::fabs(ap.dd[i]) + std::fabs(an.dd[i]) + std::fabs(pn.dd[i]));
      for (int k = 0; k < 3; ++k) ref.mdl[k][off + i] = m;
    }
  }
  return ref;
}

struct TripletConfig {
  std::string name;
  fastloss::TripletMarginOptions o;
};

std::vector<TripletConfig> TripletConfigs() {
  std::vector<TripletConfig> all;
  auto add = [&](const char* name) -> fastloss::TripletMarginOptions& {
    all.push_back({name, {}});
    return all.back().o;
  };
  add("p2");
  add("p1").p = 1.0;
  add("p3").p = 3.0;
  add("p1p5").p = 1.5;
  add("p0p5").p = 0.5;
  add("p2_swap").swap = true;
  {
    auto& o = add("p1_swap");
    o.p = 1.0;
    o.swap = true;
  }
  {
    auto& o = add("p3_swap_margin0p5");
    o.p = 3.0;
    o.swap = true;
    o.margin = 0.5;
  }
  add("squared").squared = true;
  {
    auto& o = add("squared_swap_margin2");
    o.squared = true;
    o.swap = true;
    o.margin = 2.0;
  }
  {
    auto& o = add("p2_eps0_margin0");
    o.eps = 0.0;
    o.margin = 0.0;
  }
  add("p2_eps0p1").eps = 0.1;
  return all;
}

template <typename T>
void TripletCase(const TripletConfig& c, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("triplet_margin " + c.name + " " + ShapeStr(shape) + " " + DtypeName<T>());
  const int64_t n = Prod(shape);
  Rng rng(o.seed * 19u + 7u);
  std::vector<double> a(static_cast<size_t>(n)), p(a.size()), ng(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = rng.N();
    p[i] = a[i] + 0.5 * rng.N();
    ng[i] = a[i] + 0.8 * rng.N();
  }
  a = RoundTo<T>(a);
  p = RoundTo<T>(p);
  ng = RoundTo<T>(ng);
  const Ref ref = RefTriplet(c.o, a, p, ng, shape);
  CheckMulti<T>(shape, {a, p, ng}, {}, {}, ref, o,
                [&](const MultiCall<T>& call) { return fastloss::TripletMargin(call, c.o); });
}

// --- contrastive (on distances) and contrastive_pairs ---
Ref RefContrastive(double margin, const std::vector<double>& y, const std::vector<double>& d,
                   const std::vector<int64_t>& shape) {
  Ref ref;
  ref.lshape = shape;
  const size_t n = y.size();
  ref.l.resize(n);
  ref.ml.resize(n);
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  ref.gof.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double h = std::max(0.0, margin - d[i]);
    ref.l[i] = y[i] * d[i] * d[i] + (1.0 - y[i]) * h * h;
    ref.dl[0][i] = 2.0 * y[i] * d[i] - 2.0 * (1.0 - y[i]) * h;
    const double big = std::fabs(d[i]) + margin;
    ref.ml[i] = big * big;
    ref.mdl[0][i] = 2.0 * big;
    ref.gof[i] = static_cast<int64_t>(i);
  }
  return ref;
}

template <typename T>
void ContrastiveCase(double margin, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("contrastive margin " + std::to_string(margin) + " " + ShapeStr(shape) + " " +
               DtypeName<T>());
  Rng rng(o.seed * 23u + 1u);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<double> y(n), d(n);
  for (size_t i = 0; i < n; ++i) {
    const double u = rng.U(0, 1);
    y[i] = u < 0.4 ? 0.0 : (u < 0.8 ? 1.0 : rng.U(0, 1));
    const double v = rng.U(0, 1);
    d[i] = v < 0.05 ? 0.0 : (v < 0.1 ? margin : rng.U(0, 2));
  }
  y = RoundTo<T>(y);
  d = RoundTo<T>(d);
  const Ref ref = RefContrastive(margin, y, d, shape);
  fastloss::ContrastiveOptions co;
  co.margin = margin;
  CheckCall<T>(shape, y, d, ref, o,
               [&](const Call<T>& call) { return fastloss::Contrastive(call, co); });
}

Ref RefContrastivePairs(double margin, double eps, const std::vector<double>& x1,
                        const std::vector<double>& x2, const std::vector<double>& y,
                        const std::vector<int64_t>& shape) {
  Ref ref;
  ref.gof = GroupOf(shape, LastAxis(shape.size()), &ref.lshape);
  const size_t rows = static_cast<size_t>(Prod(ref.lshape)), n = x1.size();
  const size_t D = static_cast<size_t>(shape.back());
  ref.l.resize(rows);
  ref.ml.resize(rows);
  ref.ngrad = 2;
  for (int k = 0; k < 2; ++k) {
    ref.dl[k].assign(n, 0.0);
    ref.mdl[k].assign(n, 0.0);
  }
  for (size_t r = 0; r < rows; ++r) {
    const size_t off = r * D;
    double S = 0;
    for (size_t i = 0; i < D; ++i) {
      const double t = x1[off + i] - x2[off + i] + eps;
      S += t * t;
    }
    const double d = std::sqrt(S), h = std::max(0.0, margin - d), yr = y[r];
    ref.l[r] = yr * S + (1.0 - yr) * h * h;
    ref.ml[r] = std::fabs(ref.l[r]) + (d + margin) * (d + margin);
    const double dl_dd = 2.0 * yr * d - 2.0 * (1.0 - yr) * h;
    const double mag = 2.0 * std::fabs(yr) * d + 2.0 * std::fabs(1.0 - yr) * (h + d);
    for (size_t i = 0; i < D; ++i) {
      const double t = x1[off + i] - x2[off + i] + eps;
      const double g = d > 0 ? dl_dd * t / d : 0.0;
      const double m = d > 0 ? mag * std::fabs(t) / d : 0.0;
      ref.dl[0][off + i] = g;
      ref.dl[1][off + i] = -g;
      ref.mdl[0][off + i] = ref.mdl[1][off + i] = m;
    }
  }
  return ref;
}

template <typename T>
void ContrastivePairsCase(double margin, double eps, const std::vector<int64_t>& shape,
                          const Opts& o) {
  SCOPED_TRACE("contrastive_pairs margin " + std::to_string(margin) + " eps " +
               std::to_string(eps) + " " + ShapeStr(shape) + " " + DtypeName<T>());
  Rng rng(o.seed * 29u + 2u);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<int64_t> lshape;
  const std::vector<int64_t> gof = GroupOf(shape, LastAxis(shape.size()), &lshape);
  std::vector<double> rs(static_cast<size_t>(Prod(lshape)));
  for (double& s : rs) s = rng.U(0.02, 0.6);
  std::vector<double> x1(n), x2(n);
  for (size_t i = 0; i < n; ++i) {
    x1[i] = rng.N();
    x2[i] = x1[i] + rs[static_cast<size_t>(gof[i])] * rng.N();
  }
  std::vector<double> y(rs.size());
  for (double& v : y) {
    const double u = rng.U(0, 1);
    v = u < 0.4 ? 0.0 : (u < 0.8 ? 1.0 : rng.U(0, 1));
  }
  x1 = RoundTo<T>(x1);
  x2 = RoundTo<T>(x2);
  y = RoundTo<T>(y);
  const Ref ref = RefContrastivePairs(margin, eps, x1, x2, y, shape);
  fastloss::ContrastiveOptions co;
  co.margin = margin;
  co.eps = eps;
  CheckMulti<T>(shape, {x1, x2}, lshape, y, ref, o,
                [&](const MultiCall<T>& c) { return fastloss::ContrastivePairs(c, co); });
}

// --- margin_ranking ---
Ref RefMarginRanking(double margin, const std::vector<double>& x1, const std::vector<double>& x2,
                     const std::vector<double>& y, const std::vector<int64_t>& shape) {
  Ref ref;
  ref.lshape = shape;
  const size_t n = x1.size();
  ref.l.resize(n);
  ref.ml.resize(n);
  ref.ngrad = 2;
  for (int k = 0; k < 2; ++k) {
    ref.dl[k].resize(n);
    ref.mdl[k].resize(n);
  }
  ref.gof.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double z = -y[i] * (x1[i] - x2[i]) + margin;
    ref.l[i] = std::max(0.0, z);
    ref.ml[i] = std::fabs(y[i]) * (std::fabs(x1[i]) + std::fabs(x2[i])) + margin;
    ref.dl[0][i] = z > 0 ? -y[i] : 0.0;
    ref.dl[1][i] = -ref.dl[0][i];
    ref.mdl[0][i] = ref.mdl[1][i] = std::fabs(y[i]);
    ref.gof[i] = static_cast<int64_t>(i);
  }
  return ref;
}

template <typename T>
void MarginRankingCase(double margin, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("margin_ranking margin " + std::to_string(margin) + " " + ShapeStr(shape) + " " +
               DtypeName<T>());
  Rng rng(o.seed * 31u + 4u);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<double> x1(n), x2(n), y(n);
  for (size_t i = 0; i < n; ++i) {
    x1[i] = rng.N();
    x2[i] = rng.N();
    y[i] = rng.P(0.5) ? 1.0 : -1.0;
  }
  x1 = RoundTo<T>(x1);
  x2 = RoundTo<T>(x2);
  const Ref ref = RefMarginRanking(margin, x1, x2, y, shape);
  fastloss::MarginRankingOptions mo;
  mo.margin = margin;
  CheckMulti<T>(shape, {x1, x2}, shape, y, ref, o,
                [&](const MultiCall<T>& c) { return fastloss::MarginRanking(c, mo); });
}

template <typename T>
void SweepMetric(bool quick) {
  for (const Opts& o : Sweep(quick)) {
    for (double margin : {0.0, 0.25, -0.5}) {
      if (quick && margin != 0.25) continue;
      CosineEmbeddingCase<T>(margin, {11, 6}, o);
      if (!quick) CosineEmbeddingCase<T>(margin, {6}, o);
    }
    const std::vector<TripletConfig> tc = TripletConfigs();
    for (size_t i = 0; i < tc.size(); ++i) {
      if (quick && i != 0 && i != 1 && i != 7) continue;
      TripletCase<T>(tc[i], {13, 10}, o);
      if (!quick && i % 3 == 0) TripletCase<T>(tc[i], {2, 3, 5}, o);
    }
    for (double margin : {1.0, 0.5, 0.0}) {
      if (quick && margin != 1.0) continue;
      ContrastiveCase<T>(margin, {6, 7}, o);
    }
    for (double margin : {1.0, 2.0}) {
      for (double eps : {1e-6, 0.0}) {
        if (quick && (margin != 1.0 || eps != 1e-6)) continue;
        ContrastivePairsCase<T>(margin, eps, {12, 7}, o);
      }
    }
    for (double margin : {0.0, 0.5}) {
      if (quick && margin != 0.5) continue;
      MarginRankingCase<T>(margin, {6, 7}, o);
    }
  }
}

// ============================================================================
// D. Ranking: pairwise_ranking against the O(n^2) loop.
// ============================================================================

struct PairRef {
  double sum = 0, abs_sum = 0, all_pairs = 0, ordered = 0;
  std::vector<double> grad, count;  // d sum / d s_i, number of active pairs of i
};

PairRef RefPairwise(double margin, const std::vector<double>& rel, const std::vector<double>& s,
                    const std::vector<int64_t>* groups) {
  PairRef r;
  const size_t n = s.size();
  r.grad.assign(n, 0.0);
  r.count.assign(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const bool same = !groups || (*groups)[i] == (*groups)[j];
      if (!same) continue;
      if (i < j) r.all_pairs += 1;
      if (!(rel[i] > rel[j])) continue;
      r.ordered += 1;
      const double z = margin - (s[i] - s[j]);
      if (z > 0) {
        r.sum += z;
        r.abs_sum += margin + std::fabs(s[i]) + std::fabs(s[j]);
        r.grad[i] -= 1;
        r.grad[j] += 1;
        r.count[i] += 1;
        r.count[j] += 1;
      }
    }
  }
  return r;
}

template <typename T>
void PairwiseCase(const std::vector<int64_t>& shape, Layout lay, bool with_groups,
                  PairNormalization norm, Reduction red, double margin, uint64_t seed,
                  bool continuous = false) {
  SCOPED_TRACE(std::string("pairwise_ranking ") + ShapeStr(shape) + " " + LayoutName(lay) +
               (with_groups ? " groups" : "") +
               (norm == PairNormalization::kAllPairs ? " all_pairs" : " ordered_pairs") + " " +
               ReductionName(red) + " margin " + std::to_string(margin) + " " + DtypeName<T>());
  Rng rng(seed);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<double> rel(n), s(n);
  std::vector<int64_t> g(n);
  for (size_t i = 0; i < n; ++i) {
    rel[i] = static_cast<double>(rng.I(0, 4));  // ties in relevance
    // Halves: ties in the scores and pairs exactly at the hinge.
    s[i] = continuous ? 2.0 * rng.N() : 0.5 * static_cast<double>(rng.I(-6, 7));
    g[i] = rng.I(0, 4) * 7 - 3;  // unsorted, negative ids too
  }
  s = RoundTo<T>(s);
  const PairRef pr = RefPairwise(margin, rel, s, with_groups ? &g : nullptr);
  Arr<T> ra = Input<T>(shape, lay, rel), sa = Input<T>(shape, lay, s), ga = NewArr<T>(shape, lay);
  auto gbuf = std::make_unique<StridedArray<int64_t>>(shape, StridesFor(shape, lay));
  gbuf->Fill(g);
  const View<const int64_t> gv = gbuf->cview();
  Call<T> call;
  call.y_true = ra->cview();
  call.y_pred = sa->cview();
  call.reduction = red;
  call.grad = ga->view();
  fastloss::PairwiseRankingOptions po;
  po.margin = margin;
  po.normalization = norm;
  const double v = fastloss::PairwiseRanking(call, with_groups ? &gv : nullptr, po);
  double den = 1.0;
  if (red == Reduction::kMean) den = norm == PairNormalization::kAllPairs ? pr.all_pairs : pr.ordered;
  const double rt = Rt<T>();
  const double expect = pr.sum / den;
  EXPECT_TRUE(Close(v, expect, rt * pr.abs_sum / std::fabs(den) + Floor<T>()))
      << "value " << v << " expected " << expect << " (sum " << pr.sum << ", all pairs "
      << pr.all_pairs << ", ordered " << pr.ordered << ")";
  std::vector<double> eg(n), tol(n);
  for (size_t i = 0; i < n; ++i) {
    eg[i] = pr.grad[i] / den;
    tol[i] = rt * (std::fabs(eg[i]) + pr.count[i] / std::fabs(den)) + Floor<T>();
  }
  EXPECT_TRUE(ViewMatches("grad", ga->view(), eg, tol));
  EXPECT_TRUE(ga->OnlyViewWritten());
}

template <typename T>
void SweepPairwise(bool quick) {
  uint64_t seed = 500;
  for (Layout lay : {Layout::kContiguous, Layout::kEveryOther, Layout::kTransposed}) {
    for (bool groups : {false, true}) {
      for (PairNormalization norm : {PairNormalization::kAllPairs, PairNormalization::kOrderedPairs}) {
        for (Reduction r : {Reduction::kMean, Reduction::kSum}) {
          for (double margin : {1.0, 0.0, 0.75}) {
            ++seed;
            if (quick && seed % 4 != 0) continue;
            PairwiseCase<T>({9, 14}, lay, groups, norm, r, margin, seed);
          }
        }
      }
    }
  }
}

// ============================================================================
// E. Adversarial losses and penalties.
// ============================================================================

enum class ScoreLoss { kGanReal, kGanFake, kGanGen, kGanGenSat, kNeg, kPos };

// Per-element loss of one score array: softplus(-x) (real / generator),
// softplus(x) (fake), -softplus(x) (saturating generator), -x, x.
Ref RefScores(ScoreLoss k, const std::vector<double>& x, const std::vector<int64_t>& shape) {
  Ref ref;
  ref.lshape = shape;
  const size_t n = x.size();
  ref.l.resize(n);
  ref.ml.resize(n);
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  ref.gof.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double l = 0, d = 0;
    switch (k) {
      case ScoreLoss::kGanReal:
      case ScoreLoss::kGanGen:
        l = Sp(-x[i]);
        d = -Sig(-x[i]);
        break;
      case ScoreLoss::kGanFake:
        l = Sp(x[i]);
        d = Sig(x[i]);
        break;
      case ScoreLoss::kGanGenSat:
        l = -Sp(x[i]);
        d = -Sig(x[i]);
        break;
      case ScoreLoss::kNeg:
        l = -x[i];
        d = -1;
        break;
      case ScoreLoss::kPos:
        l = x[i];
        d = 1;
        break;
    }
    ref.l[i] = l;
    ref.ml[i] = std::fabs(l);
    ref.dl[0][i] = d;
    ref.mdl[0][i] = std::fabs(d);
    ref.gof[i] = static_cast<int64_t>(i);
  }
  return ref;
}

// One ScoreCall with its buffers.
template <typename T>
struct ScoreSetup {
  Arr<T> x, g, l;
  Weights<T> w;
  ScoreCall<T> call;
  Want want;
};

template <typename T>
void MakeScoreSetup(const std::vector<int64_t>& shape, const std::vector<double>& x, const Ref& ref,
                    const Opts& o, ScoreSetup<T>* s) {
  s->x = Input<T>(shape, o.layout, x);
  s->g = NewArr<T>(shape, o.layout);
  s->l = NewArr<T>(ref.lshape, o.layout);
  s->call.scores = s->x->cview();
  s->call.grad = s->g->view();
  if (o.r == Reduction::kNone) {
    s->call.losses = s->l->view();
  }
  if (o.weighted) {
    MakeWeights<T>(ref.lshape, o, &s->w);
    s->call.weights = s->w.arr->cview();
  }
  s->want = Finish<T>(ref, o.weighted ? &s->w.full : nullptr, o.r, Rt<T>());
}

std::vector<double> Logits(size_t n, Rng& rng) {
  std::vector<double> x(n);
  for (double& v : x) v = rng.P(0.1) ? (rng.P(0.5) ? -1 : 1) * rng.U(20, 40) : 3.0 * rng.N();
  return x;
}

template <typename T>
void CheckTwoArrayLoss(bool gan, const Opts& o) {
  SCOPED_TRACE(std::string(gan ? "gan_discriminator " : "wasserstein_critic ") + DtypeName<T>() +
               " " + OptsName(o));
  Rng rng(o.seed * 37u + (gan ? 1u : 2u));
  const std::vector<int64_t> rshape = {6, 5}, fshape = {7};
  const std::vector<double> xr = RoundTo<T>(Logits(30, rng)), xf = RoundTo<T>(Logits(7, rng));
  const Ref rr = RefScores(gan ? ScoreLoss::kGanReal : ScoreLoss::kNeg, xr, rshape);
  const Ref rf = RefScores(gan ? ScoreLoss::kGanFake : ScoreLoss::kPos, xf, fshape);
  ScoreSetup<T> real, fake;
  MakeScoreSetup<T>(rshape, xr, rr, o, &real);
  Opts of = o;
  of.seed += 1000;
  MakeScoreSetup<T>(fshape, xf, rf, of, &fake);
  const double v = gan ? fastloss::GanDiscriminator(real.call, fake.call, o.r)
                       : fastloss::WassersteinCritic(real.call, fake.call, o.r);
  if (o.r == Reduction::kNone) {
    EXPECT_EQ(v, 0.0);
  } else {
    const double e = real.want.value + fake.want.value;
    EXPECT_TRUE(Close(v, e, real.want.value_tol + fake.want.value_tol))
        << "value " << v << " expected " << e;
  }
  if (o.r == Reduction::kNone) {
    EXPECT_TRUE(Matches<T>(real.want, 0.0, {&real.g->view()}, &real.l->view())) << "real";
    EXPECT_TRUE(Matches<T>(fake.want, 0.0, {&fake.g->view()}, &fake.l->view())) << "fake";
    EXPECT_TRUE(real.l->OnlyViewWritten());
    EXPECT_TRUE(fake.l->OnlyViewWritten());
  } else {
    EXPECT_TRUE(ViewMatches("real grad", real.g->view(), real.want.grad[0], real.want.grad_tol[0]));
    EXPECT_TRUE(ViewMatches("fake grad", fake.g->view(), fake.want.grad[0], fake.want.grad_tol[0]));
    EXPECT_TRUE(real.l->Untouched());
    EXPECT_TRUE(fake.l->Untouched());
  }
  EXPECT_TRUE(real.g->OnlyViewWritten());
  EXPECT_TRUE(fake.g->OnlyViewWritten());
}

template <typename T>
void CheckOneArrayLoss(ScoreLoss k, const Opts& o) {
  SCOPED_TRACE(std::string("score loss ") + std::to_string(static_cast<int>(k)) + " " +
               DtypeName<T>() + " " + OptsName(o));
  Rng rng(o.seed * 41u + static_cast<uint64_t>(k));
  const std::vector<int64_t> shape = {3, 4, 5};
  const std::vector<double> x = RoundTo<T>(Logits(60, rng));
  const Ref ref = RefScores(k, x, shape);
  ScoreSetup<T> s;
  MakeScoreSetup<T>(shape, x, ref, o, &s);
  double v = kNaN;
  switch (k) {
    case ScoreLoss::kGanGen: v = fastloss::GanGenerator(s.call, o.r); break;
    case ScoreLoss::kGanGenSat: v = fastloss::GanGenerator(s.call, o.r, true); break;
    case ScoreLoss::kNeg: v = fastloss::WassersteinGenerator(s.call, o.r); break;
    default: FAIL() << "not a one-array loss";
  }
  EXPECT_TRUE(Matches<T>(s.want, v, {&s.g->view()}, &s.l->view()));
  EXPECT_TRUE(s.g->OnlyViewWritten());
  EXPECT_TRUE(o.r == Reduction::kNone ? s.l->OnlyViewWritten() : s.l->Untouched());
}

// gradient_penalty: rows along axis 0, l = (|g_i| - target)^2.
Ref RefGradientPenalty(double target, const std::vector<double>& g, const std::vector<int64_t>& shape) {
  std::vector<bool> red(shape.size(), true);
  red[0] = false;
  Ref ref;
  ref.gof = GroupOf(shape, red, &ref.lshape);
  const size_t ns = static_cast<size_t>(shape[0]), n = g.size();
  std::vector<double> S(ns, 0.0);
  for (size_t i = 0; i < n; ++i) S[static_cast<size_t>(ref.gof[i])] += g[i] * g[i];
  ref.l.resize(ns);
  ref.ml.resize(ns);
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  for (size_t s = 0; s < ns; ++s) {
    const double nn = std::sqrt(S[s]);
    ref.l[s] = (nn - target) * (nn - target);
    ref.ml[s] = (nn + std::fabs(target)) * (nn + std::fabs(target));
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t s = static_cast<size_t>(ref.gof[i]);
    const double nn = std::sqrt(S[s]);
    ref.dl[0][i] = nn > 0 ? 2.0 * (nn - target) * g[i] / nn : 0.0;
    ref.mdl[0][i] = nn > 0 ? 2.0 * (nn + std::fabs(target)) * std::fabs(g[i]) / nn : 0.0;
  }
  return ref;
}

template <typename T>
void GradientPenaltyCase(double target, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("gradient_penalty target " + std::to_string(target) + " " + ShapeStr(shape) + " " +
               DtypeName<T>() + " " + OptsName(o));
  Rng rng(o.seed * 43u + 9u);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<double> g(n);
  const int64_t per = n / static_cast<size_t>(shape[0]);
  for (size_t i = 0; i < n; ++i) {
    g[i] = i / static_cast<size_t>(per) == 1 ? 0.0 : 0.4 * rng.N();  // sample 1 is all zero
  }
  g = RoundTo<T>(g);
  const Ref ref = RefGradientPenalty(target, g, shape);
  ScoreSetup<T> s;
  MakeScoreSetup<T>(shape, g, ref, o, &s);
  const double v = fastloss::GradientPenalty(s.call, o.r, target);
  EXPECT_TRUE(Matches<T>(s.want, v, {&s.g->view()}, &s.l->view()));
  EXPECT_TRUE(s.g->OnlyViewWritten());
  EXPECT_TRUE(o.r == Reduction::kNone ? s.l->OnlyViewWritten() : s.l->Untouched());
}

template <typename T>
void SweepAdversarial(bool quick) {
  for (const Opts& o : Sweep(quick)) {
    CheckTwoArrayLoss<T>(true, o);
    CheckTwoArrayLoss<T>(false, o);
    for (ScoreLoss k : {ScoreLoss::kGanGen, ScoreLoss::kGanGenSat, ScoreLoss::kNeg}) {
      CheckOneArrayLoss<T>(k, o);
    }
    for (double target : {1.0, 0.5, 0.0}) {
      if (quick && target != 1.0) continue;
      GradientPenaltyCase<T>(target, {6, 3, 5}, o);
      if (!quick) GradientPenaltyCase<T>(target, {9}, o);
    }
  }
}

template <typename T>
void CheckL2Penalty(Layout lay, double lam) {
  SCOPED_TRACE(std::string("l2_penalty ") + LayoutName(lay) + " lam " + std::to_string(lam) + " " +
               DtypeName<T>());
  Rng rng(static_cast<uint64_t>(lam * 1000) + 77u);
  const std::vector<int64_t> shape = {5, 7};
  std::vector<double> w(35);
  for (double& v : w) v = rng.N();
  w = RoundTo<T>(w);
  Arr<T> wa = Input<T>(shape, lay, w), ga = NewArr<T>(shape, lay);
  double sum = 0, mag = 0;
  std::vector<double> eg(35), tol(35);
  for (size_t i = 0; i < 35; ++i) {
    sum += w[i] * w[i];
    eg[i] = 2.0 * lam * w[i];
    tol[i] = Rt<T>() * std::fabs(eg[i]) + Floor<T>();
  }
  mag = lam * sum;
  const View<T> gv = ga->view();
  const double v = fastloss::L2Penalty(wa->cview(), lam, &gv);
  EXPECT_TRUE(Close(v, lam * sum, Rt<T>() * mag + Floor<T>())) << v << " vs " << lam * sum;
  EXPECT_TRUE(ViewMatches("grad", ga->view(), eg, tol));
  EXPECT_TRUE(ga->OnlyViewWritten());
  // Without a gradient.
  const double v2 = fastloss::L2Penalty(wa->cview(), lam);
  EXPECT_TRUE(SameBits(v, v2)) << v << " vs " << v2;
}

// ============================================================================
// F. Fused combinations.
// ============================================================================

// Regression-type data: residuals of all sizes, exact ties, |r| > 2.
void CombinationData(size_t n, uint64_t seed, std::vector<double>* y, std::vector<double>* p) {
  Rng rng(seed);
  y->resize(n);
  p->resize(n);
  for (size_t i = 0; i < n; ++i) {
    (*y)[i] = 2.0 * rng.N();
    (*p)[i] = (*y)[i] + (rng.P(0.1) ? 0.0 : 2.0 * rng.N());
  }
}

struct Out {
  double value = 0;
  std::vector<double> grad, losses;
};

// Runs f on (y, p) with a weights view (or none), gradient and losses
// buffers of `lay`, and returns what it wrote.
template <typename T, class F>
Out RunPlain(F f, const std::vector<int64_t>& shape, const std::vector<double>& y,
             const std::vector<double>& p, const View<const T>* w, Reduction r, Layout lay,
             Expected* ref_out = nullptr, const LossConfig* ref_config = nullptr) {
  Arr<T> ya = Input<T>(shape, lay, y), pa = Input<T>(shape, lay, p);
  Arr<T> ga = NewArr<T>(shape, lay), la = NewArr<T>(shape, lay);
  Call<T> call;
  call.y_true = ya->cview();
  call.y_pred = pa->cview();
  call.reduction = r;
  call.grad = ga->view();
  call.losses = la->view();
  if (!(r == Reduction::kNone)) call.losses.reset();
  if (w) {
    call.weights = *w;
  }
  if (ref_out) *ref_out = Reference(*ref_config, call, 1e-14);
  Out o;
  o.value = f(call);
  std::vector<T> g = ga->Values(), l = la->Values();
  o.grad.assign(g.begin(), g.end());
  o.losses.assign(l.begin(), l.end());
  EXPECT_TRUE(ga->OnlyViewWritten());
  EXPECT_TRUE(r == Reduction::kNone ? la->OnlyViewWritten() : la->Untouched());
  return o;
}

template <typename T>
void CheckCombination(Layout lay, Reduction r, bool weighted, uint64_t seed) {
  SCOPED_TRACE(std::string("0.5 mse + 0.3 mae + 0.2 huber(2) ") + LayoutName(lay) + " " +
               ReductionName(r) + (weighted ? " weighted" : "") + " " + DtypeName<T>());
  const std::vector<int64_t> shape = {7, 37};
  std::vector<double> y, p;
  CombinationData(259, seed, &y, &p);
  y = RoundTo<T>(y);
  p = RoundTo<T>(p);
  std::vector<T> wbuf(37);
  Rng rng(seed + 1);
  for (T& v : wbuf) v = static_cast<T>(rng.P(0.1) ? 0.0 : rng.U(0.1, 2));
  const View<const T> wv = CView(wbuf, {37});
  const View<const T>* w = weighted ? &wv : nullptr;
  fastloss::ElementwiseCombination c;
  fastloss::HuberOptions h2;
  h2.delta = 2.0;
  c.Add(0.5, fastloss::MseOptions{}).Add(0.3, fastloss::MaeOptions{}).Add(0.2, h2);
  EXPECT_EQ(c.size(), 3);
  const Out comb = RunPlain<T>([&](const Call<T>& call) { return fastloss::Combined(call, c); },
                               shape, y, p, w, r, lay);
  LossConfig cm, ca, ch;
  cm.id = LossId::kMse;
  ca.id = LossId::kMae;
  ch.id = LossId::kHuber;
  ch.huber = h2;
  Expected em, ea, eh;
  const Out om = RunPlain<T>([](const Call<T>& call) { return fastloss::Mse(call); }, shape, y, p, w,
                             r, lay, &em, &cm);
  const Out oa = RunPlain<T>([](const Call<T>& call) { return fastloss::Mae(call); }, shape, y, p, w,
                             r, lay, &ea, &ca);
  const Out oh = RunPlain<T>([&](const Call<T>& call) { return fastloss::Huber(call, h2); }, shape,
                             y, p, w, r, lay, &eh, &ch);
  // Against the sum of the separate calls: a few ulps of T.
  const double ulp = std::numeric_limits<T>::epsilon();
  const double sv = 0.5 * om.value + 0.3 * oa.value + 0.2 * oh.value;
  const double mv = 0.5 * std::fabs(om.value) + 0.3 * std::fabs(oa.value) + 0.2 * std::fabs(oh.value);
  EXPECT_TRUE(Close(comb.value, sv, 16 * ulp * mv + Floor<T>()))
      << "value " << comb.value << " vs separate " << sv;
  // Against the double reference.
  if (r != Reduction::kNone) {
    const double ev = 0.5 * em.value + 0.3 * ea.value + 0.2 * eh.value;
    const double tol = Rt<T>() * (std::fabs(ev) + mv);
    EXPECT_TRUE(Close(comb.value, ev, tol)) << "value " << comb.value << " vs reference " << ev;
  } else {
    EXPECT_EQ(comb.value, 0.0);
  }
  int bad_g = 0, bad_l = 0;
  for (size_t i = 0; i < comb.grad.size(); ++i) {
    const double sg = 0.5 * om.grad[i] + 0.3 * oa.grad[i] + 0.2 * oh.grad[i];
    const double mg =
        0.5 * std::fabs(om.grad[i]) + 0.3 * std::fabs(oa.grad[i]) + 0.2 * std::fabs(oh.grad[i]);
    const double eg = 0.5 * em.grad[i] + 0.3 * ea.grad[i] + 0.2 * eh.grad[i];
    if (!Close(comb.grad[i], sg, 8 * ulp * mg + Floor<T>()) ||
        !Close(comb.grad[i], eg, Rt<T>() * mg + Floor<T>())) {
      if (bad_g++ < 5) {
        ADD_FAILURE() << "grad[" << i << "] " << comb.grad[i] << " vs separate " << sg
                      << " vs reference " << eg;
      }
    }
    if (r == Reduction::kNone) {
      const double sl = 0.5 * om.losses[i] + 0.3 * oa.losses[i] + 0.2 * oh.losses[i];
      const double ml = 0.5 * std::fabs(om.losses[i]) + 0.3 * std::fabs(oa.losses[i]) +
                        0.2 * std::fabs(oh.losses[i]);
      const double el = 0.5 * em.losses[i] + 0.3 * ea.losses[i] + 0.2 * eh.losses[i];
      if (!Close(comb.losses[i], sl, 8 * ulp * ml + Floor<T>()) ||
          !Close(comb.losses[i], el, Rt<T>() * ml + Floor<T>())) {
        if (bad_l++ < 5) {
          ADD_FAILURE() << "losses[" << i << "] " << comb.losses[i] << " vs separate " << sl
                        << " vs reference " << el;
        }
      }
    }
  }
  EXPECT_EQ(bad_g, 0);
  EXPECT_EQ(bad_l, 0);
}

// Classification and contrastive terms with a negative coefficient, against
// the separate calls.
template <typename T>
void CheckCombinationOtherTerms(Reduction r, bool weighted) {
  SCOPED_TRACE(std::string("bce(logits) + 0.5 contrastive(1.5) - 0.1 mse ") + ReductionName(r) +
               (weighted ? " weighted" : "") + " " + DtypeName<T>());
  const std::vector<int64_t> shape = {5, 41};
  Rng rng(99);
  std::vector<double> y(205), p(205);
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = rng.P(0.4) ? 0.0 : (rng.P(0.6) ? 1.0 : rng.U(0, 1));
    p[i] = rng.U(0, 2.5);
  }
  y = RoundTo<T>(y);
  p = RoundTo<T>(p);
  std::vector<T> wbuf(5);
  for (T& v : wbuf) v = static_cast<T>(rng.U(0.2, 2));
  const View<const T> wv = CView(wbuf, {5, 1});
  const View<const T>* w = weighted ? &wv : nullptr;
  fastloss::BinaryCrossEntropyOptions b;
  b.from_logits = true;
  fastloss::ContrastiveOptions co;
  co.margin = 1.5;
  fastloss::ElementwiseCombination c;
  c.Add(1.0, b).Add(0.5, co).Add(-0.1, fastloss::MseOptions{});
  const fastloss::ElementwiseCombination copy = c;  // copies are independent and usable
  EXPECT_EQ(copy.size(), 3);
  const Out comb = RunPlain<T>([&](const Call<T>& call) { return fastloss::Combined(call, copy); },
                               shape, y, p, w, r, Layout::kEveryOther);
  const Out o1 = RunPlain<T>([&](const Call<T>& call) { return fastloss::BinaryCrossEntropy(call, b); },
                             shape, y, p, w, r, Layout::kContiguous);
  const Out o2 = RunPlain<T>([&](const Call<T>& call) { return fastloss::Contrastive(call, co); },
                             shape, y, p, w, r, Layout::kContiguous);
  const Out o3 = RunPlain<T>([](const Call<T>& call) { return fastloss::Mse(call); }, shape, y, p, w,
                             r, Layout::kContiguous);
  const double ulp = std::numeric_limits<T>::epsilon();
  const double sv = o1.value + 0.5 * o2.value - 0.1 * o3.value;
  const double mv = std::fabs(o1.value) + 0.5 * std::fabs(o2.value) + 0.1 * std::fabs(o3.value);
  EXPECT_TRUE(Close(comb.value, sv, 16 * ulp * mv + Floor<T>())) << comb.value << " vs " << sv;
  int bad = 0;
  for (size_t i = 0; i < comb.grad.size(); ++i) {
    const double sg = o1.grad[i] + 0.5 * o2.grad[i] - 0.1 * o3.grad[i];
    const double mg = std::fabs(o1.grad[i]) + 0.5 * std::fabs(o2.grad[i]) + 0.1 * std::fabs(o3.grad[i]);
    if (!Close(comb.grad[i], sg, 8 * ulp * mg + Floor<T>()) && bad++ < 5) {
      ADD_FAILURE() << "grad[" << i << "] " << comb.grad[i] << " vs " << sg;
    }
    if (r == Reduction::kNone) {
      const double sl = o1.losses[i] + 0.5 * o2.losses[i] - 0.1 * o3.losses[i];
      const double ml =
          std::fabs(o1.losses[i]) + 0.5 * std::fabs(o2.losses[i]) + 0.1 * std::fabs(o3.losses[i]);
      if (!Close(comb.losses[i], sl, 8 * ulp * ml + Floor<T>()) && bad++ < 5) {
        ADD_FAILURE() << "losses[" << i << "] " << comb.losses[i] << " vs " << sl;
      }
    }
  }
  EXPECT_EQ(bad, 0);
}


// ============================================================================
// The references against central finite differences (double, no library).
// ============================================================================

// d(sum of the losses)/d(input first + k)[i] of ref_fn against ref.dl[k][i].
template <class F>
::testing::AssertionResult FdCheck(F ref_fn, std::vector<std::vector<double>> in, size_t first,
                                   double h = 1e-6, double tol = 2e-6) {
  const Ref base = ref_fn(in);
  int bad = 0;
  std::ostringstream msg;
  for (int k = 0; k < base.ngrad; ++k) {
    std::vector<double>& v = in[first + static_cast<size_t>(k)];
    for (size_t i = 0; i < v.size(); ++i) {
      const double x0 = v[i];
      v[i] = x0 + h;
      const double lp = SumL(ref_fn(in));
      v[i] = x0 - h;
      const double lm = SumL(ref_fn(in));
      v[i] = x0;
      const double fd = (lp - lm) / (2 * h);
      const double an = base.dl[k][i];
      if (!(std::fabs(fd - an) <= tol * (1.0 + std::fabs(fd)))) {
        if (bad++ < 5) msg << "\n  input " << first + k << "[" << i << "]: fd " << fd << ", ref " << an;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " mismatches" << msg.str();
}

TEST(StructuredReference, GradientsMatchFiniteDifferences) {
  Rng rng(2024);
  auto normal = [&](size_t n, double s) {
    std::vector<double> v(n);
    for (double& x : v) x = s * rng.N();
    return v;
  };
  // Overlap family, rows of (3, 6) and the whole array.
  for (OvConfig c : OvConfigs()) {
    for (bool all : {false, true}) {
      SCOPED_TRACE(c.name + (all ? " all axes" : " axis 1"));
      c.o.all_axes = all;
      c.o.axes = {1};
      const std::vector<int64_t> shape = {3, 6};
      std::vector<double> y(18), x(18);
      for (size_t i = 0; i < 18; ++i) {
        y[i] = rng.P(0.5) ? rng.U(0, 1) : (rng.P(0.5) ? 1.0 : 0.0);
        x[i] = c.o.from_logits ? 2.0 * rng.N() : rng.U(0.05, 0.95);
      }
      EXPECT_TRUE(FdCheck(
          [&](const std::vector<std::vector<double>>& in) { return RefOverlap(c, in[0], in[1], shape); },
          {y, x}, 1));
    }
  }
  // Boxes, without ties (CIoU's alpha held at its value, as the spec says).
  for (BoxIouKind kind : {BoxIouKind::kIou, BoxIouKind::kGiou, BoxIouKind::kDiou, BoxIouKind::kCiou}) {
    SCOPED_TRACE(BoxKindName(kind));
    for (int b = 0; b < 20; ++b) {
      const double tx = rng.U(0, 5), ty = rng.U(0, 5);
      const double t[4] = {tx, ty, tx + rng.U(0.5, 3), ty + rng.U(0.5, 3)};
      const double px = tx + 0.8 * rng.N() + 0.0123, py = ty + 0.8 * rng.N() - 0.0077;
      double p[4] = {px, py, px + rng.U(0.5, 3), py + rng.U(0.5, 3)};
      if (b % 5 == 4) {  // disjoint
        p[0] += 10;
        p[2] += 10;
      }
      double alpha = 0;
      const Dual d = BoxLossDual(kind, 1e-7, t, p, nullptr, &alpha);
      for (int k = 0; k < 4; ++k) {
        const double h = 1e-6, x0 = p[k];
        p[k] = x0 + h;
        const double lp = BoxLossDual(kind, 1e-7, t, p, &alpha).v;
        p[k] = x0 - h;
        const double lm = BoxLossDual(kind, 1e-7, t, p, &alpha).v;
        p[k] = x0;
        const double fd = (lp - lm) / (2 * h);
        EXPECT_NEAR(d.d[k], fd, 2e-6 * (1 + std::fabs(fd))) << "box " << b << " coord " << k;
      }
    }
  }
  // cosine_similarity along axis 0, with a clamped (tiny) row for eps 0.5.
  for (double eps : {1e-8, 0.5}) {
    SCOPED_TRACE("cosine_similarity eps " + std::to_string(eps));
    const std::vector<int64_t> shape = {4, 3};
    std::vector<double> y = normal(12, 1.0), p = normal(12, 1.0);
    for (size_t i = 1; i < 12; i += 3) p[i] *= 0.05;
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) { return RefCosineSim(0, eps, in[0], in[1], shape); },
        {y, p}, 1));
  }
  {
    SCOPED_TRACE("cosine_embedding");
    const std::vector<int64_t> shape = {6, 4};
    const std::vector<double> y = {1, -1, -1, 1, -1, -1};
    std::vector<double> x1 = normal(24, 1.0), x2 = normal(24, 1.0);
    for (size_t i = 0; i < 24; ++i) x2[i] += 0.7 * x1[i];
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) {
          return RefCosineEmbedding(0.1, in[0], in[1], y, shape);
        },
        {x1, x2}, 0));
  }
  for (const TripletConfig& c : TripletConfigs()) {
    SCOPED_TRACE("triplet " + c.name);
    const std::vector<int64_t> shape = {5, 4};
    std::vector<double> a = normal(20, 1.0), p(20), n(20);
    for (size_t i = 0; i < 20; ++i) {
      p[i] = a[i] + 0.5 * rng.N();
      n[i] = a[i] + 0.8 * rng.N();
    }
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) { return RefTriplet(c.o, in[0], in[1], in[2], shape); },
        {a, p, n}, 0));
  }
  {
    SCOPED_TRACE("contrastive_pairs");
    const std::vector<int64_t> shape = {6, 3};
    const std::vector<double> y = {0, 1, 0.3, 0, 1, 0.7};
    std::vector<double> x1 = normal(18, 1.0), x2(18);
    for (size_t i = 0; i < 18; ++i) x2[i] = x1[i] + 0.4 * rng.N();
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) {
          return RefContrastivePairs(1.0, 1e-6, in[0], in[1], y, shape);
        },
        {x1, x2}, 0));
  }
  {
    SCOPED_TRACE("gradient_penalty");
    const std::vector<int64_t> shape = {3, 2, 2};
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) { return RefGradientPenalty(0.5, in[0], shape); },
        {normal(12, 0.5)}, 0));
  }
}

// ============================================================================
// Tests: segmentation.
// ============================================================================

TEST(StructuredOverlap, MatchesReference) {
  SweepOverlap<float>(false);
  SweepOverlap<double>(false);
}

// The Dice gradient over a batch of single-channel images: axes {1, 2, 3} of
// (4, 1, 16, 16), one score per image.
template <typename T>
void CheckDiceImages() {
  for (const char* which : {"dice", "dice_logits", "dice_squared"}) {
    for (const OvConfig& c : OvConfigs()) {
      if (c.name != which) continue;
      for (const Opts& o : {Opts{Layout::kContiguous, Reduction::kMean, false, 1, false},
                            Opts{Layout::kContiguous, Reduction::kNone, true, 2, false},
                            Opts{Layout::kEveryOther, Reduction::kSum, true, 3, false},
                            Opts{Layout::kTransposed, Reduction::kMean, true, 4, false}}) {
        OverlapCase<T>(c, {"axes_1_2_3", false, {1, 2, 3}}, {4, 1, 16, 16}, o);
      }
    }
  }
}

TEST(StructuredOverlap, DiceGradientOverImages) {
  CheckDiceImages<float>();
  CheckDiceImages<double>();
}

// Groups of more than 16384 elements (the driver splits them in chunks) next
// to many small groups.
template <typename T>
void CheckLargeGroups(bool quick) {
  const std::vector<AxesCase> axes = {{"axes_1", false, {1}}, {"all", true, {}}, {"axes_0", false, {0}}};
  for (const OvConfig& c : OvConfigs()) {
    if (c.name != "dice" && c.name != "jaccard_logits" && c.name != "focal_tversky_a0p7_b0p3") continue;
    if (quick && c.name != "dice") continue;
    for (const AxesCase& ax : axes) {
      for (const Opts& o : {Opts{Layout::kContiguous, Reduction::kMean, false, 21, false},
                            Opts{Layout::kEveryOther, Reduction::kNone, true, 22, false}}) {
        OverlapCase<T>(c, ax, {2, 40000}, o);
      }
    }
  }
  // Gradient penalty over samples of 30000 elements.
  GradientPenaltyCase<T>(1.0, {2, 150, 200}, Opts{Layout::kContiguous, Reduction::kMean, true, 23, false});
  GradientPenaltyCase<T>(0.5, {2, 150, 200}, Opts{Layout::kTransposed, Reduction::kNone, false, 24, false});
  // Cosine similarity along a long, strided axis.
  CosineSimCase<T>(0, 1e-8, {20000, 2}, Opts{Layout::kContiguous, Reduction::kSum, false, 25, false});
}

TEST(StructuredOverlap, LargeGroupsUseTheChunkedPath) {
  CheckLargeGroups<float>(false);
  CheckLargeGroups<double>(false);
}

template <typename T>
void CheckPerfectScores() {
  SCOPED_TRACE(DtypeName<T>());
  // Binary masks predicted exactly: TI = 1 exactly, loss 0 and gradient 0
  // (focal with gamma < 1 would otherwise be inf * 0).
  const std::vector<int64_t> shape = {2, 8};
  std::vector<T> y = {1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0};
  std::vector<T> g(16, T(7)), l(2, T(7));
  Call<T> call;
  call.y_true = CView(y, shape);
  call.y_pred = CView(y, shape);
  call.grad = MView(g, shape);
  call.losses = MView(l, {2});
  call.reduction = Reduction::kNone;
  fastloss::FocalTverskyOptions o;
  o.all_axes = false;
  o.axes = {1};
  EXPECT_EQ(fastloss::FocalTversky(call, o), 0.0);
  for (T v : l) EXPECT_EQ(v, T(0));
  for (T v : g) EXPECT_EQ(v, T(0));
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  EXPECT_EQ(fastloss::Dice(call, d), 0.0);
  for (T v : l) EXPECT_EQ(v, T(0));
  // All-zero masks and predictions: loss 0 with smooth > 0, NaN with 0.
  std::vector<T> z(16, T(0));
  call.y_true = CView(z, shape);
  call.y_pred = CView(z, shape);
  fastloss::JaccardOptions j;
  j.all_axes = false;
  j.axes = {-1};
  fastloss::Jaccard(call, j);
  for (T v : l) EXPECT_EQ(v, T(0));
  for (T v : g) EXPECT_TRUE(std::isfinite(static_cast<double>(v)));
  j.smooth = 0;
  fastloss::Jaccard(call, j);
  for (T v : l) EXPECT_TRUE(std::isnan(static_cast<double>(v))) << v;
}

TEST(StructuredOverlap, PerfectAndEmptyMasks) {
  CheckPerfectScores<float>();
  CheckPerfectScores<double>();
}

// ============================================================================
// Tests: detection.
// ============================================================================

TEST(StructuredBoxes, MatchesReference) {
  SweepBoxes<float>(false);
  SweepBoxes<double>(false);
}

template <typename T>
void CheckDegenerateBoxes() {
  SCOPED_TRACE(DtypeName<T>());
  const std::vector<std::vector<double>> cases = {
      {0, 0, 2, 2, 1, 1, 1, 1},  {0, 0, 2, 2, 1, 0, 1, 2},  {0, 0, 2, 2, 0, 1, 2, 1},
      {0, 0, 2, 2, 0, 0, 0, 0},  {0, 0, 2, 2, 2, 2, 0, 0},  {0, 0, 0, 0, 0, 0, 0, 0},
      {1, 1, 1, 1, 1, 1, 1, 1},  {0, 0, 0, 0, 0, 0, 2, 2},  {0, 0, 2, 0, 0, 0, 2, 0},
      {0, 0, 2, 2, 3, 3, 3, 5},  {0, 0, 2, 2, 1, 1, 3, 1},  {0, 0, 2, 2, 0, 0, 2, -1e-9},
      {0, 0, 2, 2, 0.5, 3, 1.5, 3}, {2, 2, 0, 0, 2, 2, 0, 0}, {0, 0, 2, 2, -1, -1, -1, 1}};
  const int64_t nb = static_cast<int64_t>(cases.size());
  std::vector<double> t, p;
  for (const std::vector<double>& c : cases) {
    t.insert(t.end(), c.begin(), c.begin() + 4);
    p.insert(p.end(), c.begin() + 4, c.end());
  }
  t = RoundTo<T>(t);
  p = RoundTo<T>(p);
  const std::vector<T> tt = Cast<T>(t), pp = Cast<T>(p);
  for (BoxIouKind kind : {BoxIouKind::kIou, BoxIouKind::kGiou, BoxIouKind::kDiou, BoxIouKind::kCiou}) {
    SCOPED_TRACE(BoxKindName(kind));
    fastloss::BoxIouOptions bo;
    bo.kind = kind;
    std::vector<T> g(static_cast<size_t>(4 * nb)), l(static_cast<size_t>(nb));
    Call<T> call;
    call.y_true = CView(tt, {nb, 4});
    call.y_pred = CView(pp, {nb, 4});
    call.grad = MView(g, {nb, 4});
    call.losses = MView(l, {nb});
    call.reduction = Reduction::kNone;
    fastloss::BoxIou(call, bo);
    const Ref ref = RefBoxes(bo, t, p, {nb, 4});
    for (int64_t b = 0; b < nb; ++b) {
      const size_t sb = static_cast<size_t>(b);
      EXPECT_TRUE(std::isfinite(static_cast<double>(l[sb]))) << "box " << b << ": " << l[sb];
      EXPECT_NEAR(static_cast<double>(l[sb]), ref.l[sb], Rt<T>() * (4 + std::fabs(ref.l[sb])))
          << "box " << b;
      for (size_t k = 0; k < 4; ++k) {
        const double gv = static_cast<double>(g[4 * sb + k]);
        EXPECT_TRUE(std::isfinite(gv)) << "box " << b << " grad " << k << ": " << gv;
      }
    }
    // The mean is finite too.
    call.reduction = Reduction::kMean;
    EXPECT_TRUE(std::isfinite(fastloss::BoxIou(call, bo)));
  }
}

TEST(StructuredBoxes, DegenerateBoxesAreFinite) {
  CheckDegenerateBoxes<float>();
  CheckDegenerateBoxes<double>();
}

// ============================================================================
// Tests: metric learning.
// ============================================================================

TEST(StructuredCosine, MatchesReference) {
  SweepCosineSim<float>(false);
  SweepCosineSim<double>(false);
}

template <typename T>
void CheckZeroVectors() {
  SCOPED_TRACE(DtypeName<T>());
  // Rows: both zero, y zero, p zero, one nonzero element each.
  const std::vector<T> y = {0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 5};
  const std::vector<T> p = {0, 0, 0, 4, 5, 6, 0, 0, 0, 7, 0, 0};
  std::vector<T> g(12), l(4);
  Call<T> call;
  call.y_true = CView(y, {4, 3});
  call.y_pred = CView(p, {4, 3});
  call.grad = MView(g, {4, 3});
  call.losses = MView(l, {4});
  call.reduction = Reduction::kNone;
  fastloss::CosineSimilarity(call);
  for (T v : l) EXPECT_EQ(v, T(1));
  for (T v : g) EXPECT_TRUE(std::isfinite(static_cast<double>(v))) << v;
  // Both zero: gradient 0. y zero: gradient 0 (y / ... = 0, cos = 0).
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(g[i], T(0));
  // cosine_embedding with zero rows: finite too (PyTorch's EPSILON).
  std::vector<T> g1(12), g2(12), le(4);
  const std::vector<T> ye = {1, -1, 1, -1};
  MultiCall<T> mc;
  mc.inputs[0] = CView(y, {4, 3});
  mc.inputs[1] = CView(p, {4, 3});
  mc.target = CView(ye, {4});
  mc.grads[0] = MView(g1, {4, 3});
  mc.grads[1] = MView(g2, {4, 3});
  mc.losses = MView(le, {4});
  mc.reduction = Reduction::kNone;
  fastloss::CosineEmbedding(mc);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_TRUE(std::isfinite(static_cast<double>(g1[i])) && std::isfinite(static_cast<double>(g2[i])));
  }
  EXPECT_EQ(le[0], T(1));
  EXPECT_EQ(le[1], T(0));
}

TEST(StructuredCosine, ZeroVectorsAreFinite) {
  CheckZeroVectors<float>();
  CheckZeroVectors<double>();
}

TEST(StructuredMetric, MatchesReference) {
  SweepMetric<float>(false);
  SweepMetric<double>(false);
}

// Identical rows with eps = 0: d = 0, the distance has no derivative there;
// PyTorch's norm backward gives 0, and no NaN may come out of finite input.
template <typename T>
void CheckZeroDistances() {
  SCOPED_TRACE(DtypeName<T>());
  const std::vector<T> x = {1, 2, 3, 4, 5, 6};
  const std::vector<T> y = {0, 1};
  std::vector<T> g1(6, T(7)), g2(6, T(7)), l(2, T(7));
  MultiCall<T> mc;
  mc.inputs[0] = CView(x, {2, 3});
  mc.inputs[1] = CView(x, {2, 3});
  mc.target = CView(y, {2});
  mc.grads[0] = MView(g1, {2, 3});
  mc.grads[1] = MView(g2, {2, 3});
  mc.losses = MView(l, {2});
  mc.reduction = Reduction::kNone;
  fastloss::ContrastiveOptions co;
  co.eps = 0;
  fastloss::ContrastivePairs(mc, co);
  EXPECT_EQ(l[0], T(1));  // y = 0: max(0, 1 - 0)^2
  EXPECT_EQ(l[1], T(0));  // y = 1: 0^2
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(std::isfinite(static_cast<double>(g1[i]))) << "contrastive_pairs g1[" << i << "] = " << g1[i];
    EXPECT_TRUE(std::isfinite(static_cast<double>(g2[i]))) << "contrastive_pairs g2[" << i << "] = " << g2[i];
  }
  // Triplet with eps = 0 and anchor == positive: d(a, p) = 0, gradient finite.
  MultiCall<T> tc;
  const std::vector<T> n = {0, 0, 0, 9, 9, 9};
  std::vector<T> h0(6), h1(6), h2(6);
  tc.inputs[0] = CView(x, {2, 3});
  tc.inputs[1] = CView(x, {2, 3});
  tc.inputs[2] = CView(n, {2, 3});
  tc.grads[0] = MView(h0, {2, 3});
  tc.grads[1] = MView(h1, {2, 3});
  tc.grads[2] = MView(h2, {2, 3});
  tc.reduction = Reduction::kSum;
  fastloss::TripletMarginOptions to;
  to.eps = 0;
  to.margin = 10;
  const double v = fastloss::TripletMargin(tc, to);
  EXPECT_TRUE(std::isfinite(v));
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(std::isfinite(static_cast<double>(h0[i])) && std::isfinite(static_cast<double>(h1[i])) &&
                std::isfinite(static_cast<double>(h2[i])));
  }
}

TEST(StructuredMetric, ZeroDistancesGiveFiniteGradients) {
  CheckZeroDistances<float>();
  CheckZeroDistances<double>();
}

// ============================================================================
// Tests: ranking.
// ============================================================================

TEST(StructuredRanking, PairwiseMatchesQuadraticLoop) {
  SweepPairwise<float>(false);
  SweepPairwise<double>(false);
  // Larger: 2500 items in groups, continuous and tied scores.
  for (bool cont : {true, false}) {
    PairwiseCase<float>({2500}, Layout::kContiguous, true, PairNormalization::kAllPairs,
                        Reduction::kMean, 1.0, 77, cont);
    PairwiseCase<double>({50, 50}, Layout::kReversed, true, PairNormalization::kOrderedPairs,
                         Reduction::kMean, 0.5, 78, cont);
    PairwiseCase<double>({2500}, Layout::kEveryOther, false, PairNormalization::kAllPairs,
                         Reduction::kSum, 2.0, 79, cont);
  }
}

template <typename T>
void CheckPairwiseEdges() {
  SCOPED_TRACE(DtypeName<T>());
  auto run = [](const std::vector<double>& rel, const std::vector<double>& s, Reduction r,
                PairNormalization norm, std::vector<T>* g) {
    const std::vector<T> rt = Cast<T>(rel), st = Cast<T>(s);
    g->assign(s.size(), T(9));
    const int64_t n = static_cast<int64_t>(s.size());
    Call<T> call;
    call.y_true = CView(rt, {n});
    call.y_pred = CView(st, {n});
    call.grad = MView(*g, {n});
    call.reduction = r;
    fastloss::PairwiseRankingOptions o;
    o.normalization = norm;
    return fastloss::PairwiseRanking(call, nullptr, o);
  };
  std::vector<T> g;
  // One item: no pairs at all. Mean NaN, sum 0, zero gradient.
  EXPECT_TRUE(std::isnan(run({1}, {0.5}, Reduction::kMean, PairNormalization::kAllPairs, &g)));
  EXPECT_EQ(g[0], T(0));
  EXPECT_EQ(run({1}, {0.5}, Reduction::kSum, PairNormalization::kAllPairs, &g), 0.0);
  // All relevances tied: 3 pairs, none ordered.
  EXPECT_EQ(run({2, 2, 2}, {0, 1, 2}, Reduction::kMean, PairNormalization::kAllPairs, &g), 0.0);
  EXPECT_TRUE(std::isnan(run({2, 2, 2}, {0, 1, 2}, Reduction::kMean, PairNormalization::kOrderedPairs, &g)));
  for (T v : g) EXPECT_EQ(v, T(0));
  // A pair exactly at the hinge: 1 - (2 - 1) = 0, no loss, no gradient.
  EXPECT_EQ(run({1, 0}, {2, 1}, Reduction::kSum, PairNormalization::kAllPairs, &g), 0.0);
  EXPECT_EQ(g[0], T(0));
  EXPECT_EQ(g[1], T(0));
  // Reversed order: 1 - (1 - 2) = 2, gradient (-1, +1); mean over 1 pair.
  EXPECT_EQ(run({1, 0}, {1, 2}, Reduction::kMean, PairNormalization::kAllPairs, &g), 2.0);
  EXPECT_EQ(g[0], T(-1));
  EXPECT_EQ(g[1], T(1));
  // Empty: mean NaN, sum 0.
  EXPECT_TRUE(std::isnan(run({}, {}, Reduction::kMean, PairNormalization::kAllPairs, &g)));
  EXPECT_EQ(run({}, {}, Reduction::kSum, PairNormalization::kAllPairs, &g), 0.0);
}

TEST(StructuredRanking, PairwiseEdges) {
  CheckPairwiseEdges<float>();
  CheckPairwiseEdges<double>();
}

// ============================================================================
// Tests: adversarial and penalties.
// ============================================================================

TEST(StructuredAdversarial, MatchesReference) {
  SweepAdversarial<float>(false);
  SweepAdversarial<double>(false);
}

TEST(StructuredAdversarial, L2Penalty) {
  for (Layout lay : {Layout::kContiguous, Layout::kEveryOther, Layout::kTransposed, Layout::kReversed}) {
    for (double lam : {0.0, 0.01, 2.0}) {
      CheckL2Penalty<float>(lay, lam);
      CheckL2Penalty<double>(lay, lam);
    }
  }
}

// ============================================================================
// Tests: combinations.
// ============================================================================

TEST(StructuredCombination, EqualsTheSumOfSeparateCalls) {
  uint64_t seed = 900;
  for (Layout lay : {Layout::kContiguous, Layout::kEveryOther, Layout::kTransposed}) {
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      for (bool w : {false, true}) {
        CheckCombination<float>(lay, r, w, ++seed);
        CheckCombination<double>(lay, r, w, ++seed);
      }
    }
  }
}

TEST(StructuredCombination, ClassificationAndContrastiveTerms) {
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    for (bool w : {false, true}) {
      CheckCombinationOtherTerms<float>(r, w);
      CheckCombinationOtherTerms<double>(r, w);
    }
  }
}

TEST(StructuredCombination, Errors) {
  fastloss::ElementwiseCombination c;
  fastloss::HuberOptions h;
  h.delta = 0;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { c.Add(1.0, h); }, {"delta"}));
  fastloss::QuantileOptions q;
  q.q = 1.5;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { c.Add(1.0, q); }, {"q"}));
  fastloss::ContrastiveOptions co;
  co.margin = -1;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { c.Add(1.0, co); }, {"margin"}));
  EXPECT_EQ(c.size(), 0);
  // A target outside [0, 1] for a BCE term: an Error before any output.
  c.Add(1.0, fastloss::MseOptions{}).Add(1.0, fastloss::BinaryCrossEntropyOptions{});
  const std::vector<double> y = {0.5, 1.5}, p = {0.5, 0.5};
  StridedArray<double> g(2);
  Call<double> call;
  call.y_true = CView(y, {2});
  call.y_pred = CView(p, {2});
  call.grad = g.view();
  EXPECT_THROW(fastloss::Combined(call, c), fastloss::Error);
  EXPECT_TRUE(g.Untouched());
}

// ============================================================================
// Tests: empty inputs, NaN.
// ============================================================================

template <typename T>
struct EmptyIo {
  std::vector<int64_t> shape;
  Call<T> Make(Reduction r) const {
    Call<T> c;
    c.y_true = MakeView<const T>(nullptr, shape, CStrides(shape));
    c.y_pred = c.y_true;
    c.grad = MakeView<T>(nullptr, shape, CStrides(shape));
    c.reduction = r;
    return c;
  }
};

template <typename T>
void CheckEmpty() {
  SCOPED_TRACE(DtypeName<T>());
  // f(r) -> value; mean NaN, sum 0.
  auto both = [](const char* what, const std::function<double(Reduction)>& f) {
    SCOPED_TRACE(what);
    double m = 0, s = 1;
    EXPECT_NO_THROW(m = f(Reduction::kMean));
    EXPECT_NO_THROW(s = f(Reduction::kSum));
    EXPECT_TRUE(std::isnan(m)) << m;
    EXPECT_EQ(s, 0.0);
  };
  const EmptyIo<T> e05{{0, 5}}, e04{{0, 4}}, e0{{0}};
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  both("dice", [&](Reduction r) { return fastloss::Dice(e05.Make(r), d); });
  both("focal_tversky", [&](Reduction r) {
    fastloss::FocalTverskyOptions o;
    o.all_axes = false;
    o.axes = {-1};
    return fastloss::FocalTversky(e05.Make(r), o);
  });
  both("box_iou", [&](Reduction r) { return fastloss::BoxIou(e04.Make(r)); });
  both("cosine_similarity", [&](Reduction r) { return fastloss::CosineSimilarity(e05.Make(r)); });
  both("contrastive", [&](Reduction r) { return fastloss::Contrastive(e0.Make(r)); });
  both("combined", [&](Reduction r) {
    fastloss::ElementwiseCombination c;
    c.Add(0.5, fastloss::MseOptions{}).Add(0.5, fastloss::MaeOptions{});
    return fastloss::Combined(e0.Make(r), c);
  });
  both("pairwise_ranking", [&](Reduction r) { return fastloss::PairwiseRanking(e0.Make(r), nullptr); });
  auto multi = [](int inputs, bool target, const std::vector<int64_t>& shape,
                  const std::vector<int64_t>& tshape, Reduction r) {
    MultiCall<T> mc;
    for (int k = 0; k < inputs; ++k) {
      mc.inputs[k] = MakeView<const T>(nullptr, shape, CStrides(shape));
      mc.grads[k] = MakeView<T>(nullptr, shape, CStrides(shape));
    }
    if (target) mc.target = MakeView<const T>(nullptr, tshape, CStrides(tshape));
    mc.reduction = r;
    return mc;
  };
  both("cosine_embedding", [&](Reduction r) { return fastloss::CosineEmbedding(multi(2, true, {0, 3}, {0}, r)); });
  both("triplet_margin", [&](Reduction r) { return fastloss::TripletMargin(multi(3, false, {0, 3}, {}, r)); });
  both("contrastive_pairs", [&](Reduction r) { return fastloss::ContrastivePairs(multi(2, true, {0, 3}, {0}, r)); });
  both("margin_ranking", [&](Reduction r) { return fastloss::MarginRanking(multi(2, true, {0}, {0}, r)); });
  auto score = [](const std::vector<int64_t>& shape) {
    ScoreCall<T> s;
    s.scores = MakeView<const T>(nullptr, shape, CStrides(shape));
    s.grad = MakeView<T>(nullptr, shape, CStrides(shape));
    return s;
  };
  both("gan_discriminator", [&](Reduction r) { return fastloss::GanDiscriminator(score({0}), score({0, 2}), r); });
  both("gan_generator", [&](Reduction r) { return fastloss::GanGenerator(score({0}), r); });
  both("wasserstein_critic", [&](Reduction r) { return fastloss::WassersteinCritic(score({0}), score({0}), r); });
  both("wasserstein_generator", [&](Reduction r) { return fastloss::WassersteinGenerator(score({0}), r); });
  both("gradient_penalty", [&](Reduction r) { return fastloss::GradientPenalty(score({0, 3}), r); });
  EXPECT_EQ(fastloss::L2Penalty(MakeView<const T>(nullptr, {0}, {1}), 0.5), 0.0);

  // Empty regions inside non-empty outputs: an empty sum is a region of its
  // own (dice: 0 with smooth > 0; cosine: 1; penalty: target^2; triplet: margin).
  const EmptyIo<T> e30{{3, 0}};
  EXPECT_EQ(fastloss::Dice(e30.Make(Reduction::kMean), d), 0.0);
  fastloss::DiceOptions d0 = d;
  d0.smooth = 0;
  EXPECT_TRUE(std::isnan(fastloss::Dice(e30.Make(Reduction::kMean), d0)));
  EXPECT_EQ(fastloss::Dice(e0.Make(Reduction::kMean)), 0.0);  // all axes of (0,): one score
  EXPECT_EQ(fastloss::CosineSimilarity(e30.Make(Reduction::kSum)), 3.0);
  EXPECT_EQ(fastloss::GradientPenalty(score({3, 0}), Reduction::kSum, 2.0), 12.0);
  EXPECT_EQ(fastloss::TripletMargin(multi(3, false, {3, 0}, {}, Reduction::kMean)), 1.0);
}

TEST(StructuredEmpty, SumIsZeroMeanIsNaN) {
  CheckEmpty<float>();
  CheckEmpty<double>();
}

template <typename T>
void CheckNaN() {
  SCOPED_TRACE(DtypeName<T>());
  std::vector<T> y(8, T(0.5)), p(8, T(0.25)), g(8), l(2);
  p[1] = static_cast<T>(kNaN);
  Call<T> call;
  call.y_true = CView(y, {2, 4});
  call.y_pred = CView(p, {2, 4});
  call.grad = MView(g, {2, 4});
  call.losses = MView(l, {2});
  call.reduction = Reduction::kNone;
  auto row0_nan_row1_finite = [&](const char* what) {
    EXPECT_TRUE(std::isnan(static_cast<double>(l[0]))) << what << ": " << l[0];
    EXPECT_TRUE(std::isfinite(static_cast<double>(l[1]))) << what << ": " << l[1];
  };
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  fastloss::Dice(call, d);
  row0_nan_row1_finite("dice");
  fastloss::CosineSimilarity(call);
  row0_nan_row1_finite("cosine_similarity");
  fastloss::BoxIouOptions bo;
  bo.kind = BoxIouKind::kCiou;
  {
    std::vector<T> t = {0, 0, 2, 2, 0, 0, 2, 2}, b = {0, static_cast<T>(kNaN), 1, 1, 0, 0, 1, 1};
    call.y_true = CView(t, {2, 4});
    call.y_pred = CView(b, {2, 4});
    fastloss::BoxIou(call, bo);
    row0_nan_row1_finite("box_iou");
    call.reduction = Reduction::kMean;
    EXPECT_TRUE(std::isnan(fastloss::BoxIou(call, bo)));
    call.reduction = Reduction::kNone;
  }
  MultiCall<T> mc;
  mc.inputs[0] = CView(p, {2, 4});
  mc.inputs[1] = CView(y, {2, 4});
  mc.inputs[2] = CView(y, {2, 4});
  mc.losses = MView(l, {2});
  mc.reduction = Reduction::kNone;
  fastloss::TripletMargin(mc);
  row0_nan_row1_finite("triplet_margin");
  mc.reduction = Reduction::kMean;
  EXPECT_TRUE(std::isnan(fastloss::TripletMargin(mc)));
  // The generic-p path (exp / log) too, with and without swap.
  for (double pp : {3.0, 1.5}) {
    for (bool swap : {false, true}) {
      SCOPED_TRACE("triplet_margin p " + std::to_string(pp) + (swap ? " swap" : ""));
      fastloss::TripletMarginOptions to;
      to.p = pp;
      to.swap = swap;
      mc.reduction = Reduction::kNone;
      fastloss::TripletMargin(mc, to);
      row0_nan_row1_finite("triplet_margin generic p");
      mc.reduction = Reduction::kSum;
      EXPECT_TRUE(std::isnan(fastloss::TripletMargin(mc, to)));
    }
  }
  ScoreCall<T> s;
  s.scores = CView(p, {2, 4});
  s.losses = MView(l, {2});
  fastloss::GradientPenalty(s, Reduction::kNone);
  row0_nan_row1_finite("gradient_penalty");
  EXPECT_TRUE(std::isnan(fastloss::GanGenerator(s, Reduction::kMean)));
  Call<T> flat;
  flat.y_true = CView(y, {8});
  flat.y_pred = CView(p, {8});
  flat.reduction = Reduction::kSum;
  EXPECT_TRUE(std::isnan(fastloss::PairwiseRanking(flat, nullptr)));
  EXPECT_TRUE(std::isnan(fastloss::Contrastive(flat)));
  fastloss::ElementwiseCombination c;
  c.Add(1.0, fastloss::MseOptions{}).Add(2.0, fastloss::HuberOptions{});
  EXPECT_TRUE(std::isnan(fastloss::Combined(flat, c)));
}

TEST(StructuredNaN, Propagates) {
  CheckNaN<float>();
  CheckNaN<double>();
}

// ============================================================================
// Tests: errors (fastloss::Error naming the argument, before any output).
// ============================================================================

TEST(StructuredErrors, Segmentation) {
  const std::vector<double> y(6, 0.5), p(6, 0.25), y8(8, 0.5), w4(4, 1.0);
  StridedArray<double> g({2, 3}, {3, 1}), l({3}, {1}), gbad({3, 2}, {2, 1});
  Call<double> call;
  call.y_true = CView(y, {2, 3});
  call.y_pred = CView(p, {2, 3});
  call.grad = g.view();
  auto dice = [&](const Call<double>& c, std::vector<int> axes, double smooth = 1e-6) {
    fastloss::DiceOptions d;
    d.all_axes = false;
    d.axes = std::move(axes);
    d.smooth = smooth;
    return fastloss::Dice(c, d);
  };
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {1}, -1.0); }, {"smooth"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {1}, kNaN); }, {"smooth"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {2}); }, {"axis"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {-3}); }, {"axis"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {1, -1}); }, {"axis"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {0, 0}); }, {"axis"}));
  {
    fastloss::JaccardOptions j;
    j.smooth = -0.5;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Jaccard(call, j); }, {"smooth"}));
    fastloss::TverskyOptions t;
    t.alpha = -0.1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Tversky(call, t); }, {"alpha"}));
    t.alpha = 0.5;
    t.beta = -1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Tversky(call, t); }, {"beta"}));
    for (double gamma : {0.0, -1.0, kInf}) {
      fastloss::FocalTverskyOptions f;
      f.gamma = gamma;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::FocalTversky(call, f); }, {"gamma"}));
    }
  }
  // Shapes.
  {
    Call<double> c = call;
    c.y_true = CView(y8, {2, 4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(c, {1}); }, {"y_true"}));
    c = call;
    c.grad = gbad.view();
    EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(c, {1}); }, {"grad"}));
    c = call;
    c.weights = CView(w4, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(c, {1}); }, {"weights"}));
    c = call;
    c.reduction = Reduction::kNone;
    c.losses = l.view();  // (3,) but the scores are (2,)
    EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(c, {1}); }, {"losses"}));
    c = call;
    c.reduction = Reduction::kNone;
    c.grad.reset();
    EXPECT_THROW(dice(c, {1}), fastloss::Error);
  }
  EXPECT_TRUE(g.Untouched());
  EXPECT_TRUE(l.Untouched());
}

TEST(StructuredErrors, Boxes) {
  const std::vector<double> b12(12, 1.0), b9(9, 1.0), b16(16, 1.0), w(5, 1.0);
  StridedArray<double> g({3, 4}, {4, 1});
  Call<double> call;
  call.y_true = CView(b12, {3, 4});
  call.y_pred = CView(b12, {3, 4});
  call.grad = g.view();
  Call<double> c = call;
  c.y_true = CView(b9, {3, 3});
  c.y_pred = CView(b9, {3, 3});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(c); }, {"boxes_pred"}));
  c = call;
  c.y_true = CView(b16, {4, 4});
  EXPECT_THROW(fastloss::BoxIou(c), fastloss::Error);
  c = call;
  c.y_true = CView(b12, {});
  c.y_pred = CView(b12, {});
  EXPECT_THROW(fastloss::BoxIou(c), fastloss::Error);
  fastloss::BoxIouOptions o;
  o.eps = -1;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(call, o); }, {"eps"}));
  o.eps = 1e-7;
  o.kind = static_cast<BoxIouKind>(17);
  EXPECT_THROW(fastloss::BoxIou(call, o), fastloss::Error);
  c = call;
  c.weights = CView(w, {5});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(c); }, {"weights"}));
  EXPECT_TRUE(g.Untouched());
}

TEST(StructuredErrors, MetricLearning) {
  const std::vector<double> x(12, 0.5), x2(12, 0.25), x15(15, 0.1), yr = {1, -1, 1, 1};
  StridedArray<double> g0({4, 3}, {3, 1}), g1({4, 3}, {3, 1}), g2({4, 3}, {3, 1});
  // cosine_similarity
  {
    Call<double> call;
    call.y_true = CView(x, {4, 3});
    call.y_pred = CView(x2, {4, 3});
    call.grad = g0.view();
    for (int axis : {2, -3, 5}) {
      fastloss::CosineSimilarityOptions o;
      o.axis = axis;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineSimilarity(call, o); }, {"axis"}));
    }
    fastloss::CosineSimilarityOptions o;
    o.eps = -1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineSimilarity(call, o); }, {"eps"}));
    Call<double> c = call;
    c.y_true = CView(x15, {5, 3});
    EXPECT_THROW(fastloss::CosineSimilarity(c), fastloss::Error);
    c = call;
    c.y_true = CView(x, {});
    c.y_pred = CView(x2, {});
    c.grad = MakeView<double>(g0.view().data, {}, {});
    EXPECT_THROW(fastloss::CosineSimilarity(c), fastloss::Error);
  }
  MultiCall<double> mc;
  mc.inputs[0] = CView(x, {4, 3});
  mc.inputs[1] = CView(x2, {4, 3});
  mc.inputs[2] = CView(x2, {4, 3});
  mc.target = CView(yr, {4});
  mc.grads[0] = g0.view();
  mc.grads[1] = g1.view();
  mc.grads[2] = g2.view();
  // cosine_embedding: y not +-1 (anywhere), margin outside [-1, 1], shapes.
  for (double bad : {0.0, 0.5, 2.0, -1.5}) {
    std::vector<double> yb = yr;
    yb[3] = bad;
    MultiCall<double> c = mc;
    c.target = CView(yb, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineEmbedding(c); }, {"y"})) << bad;
  }
  for (double m : {1.5, -1.5, kNaN}) {
    fastloss::CosineEmbeddingOptions o;
    o.margin = m;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineEmbedding(mc, o); }, {"margin"}));
  }
  {
    MultiCall<double> c = mc;
    c.target = CView(yr, {2, 2});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineEmbedding(c); }, {"y"}));
    c = mc;
    c.inputs[1] = CView(x15, {5, 3});
    EXPECT_THROW(fastloss::CosineEmbedding(c), fastloss::Error);
    c = mc;
    c.inputs[0] = CView(x, {});
    c.inputs[1] = CView(x2, {});
    c.target = CView(yr, {});
    c.grads[0].reset();
    c.grads[1].reset();
    EXPECT_THROW(fastloss::CosineEmbedding(c), fastloss::Error);
  }
  // triplet_margin
  {
    MultiCall<double> t = mc;
    fastloss::TripletMarginOptions o;
    o.margin = -0.1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::TripletMargin(t, o); }, {"margin"}));
    for (double p : {0.0, -1.0, kNaN}) {
      o = {};
      o.p = p;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::TripletMargin(t, o); }, {"p"})) << p;
    }
    o = {};
    o.eps = -1e-6;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::TripletMargin(t, o); }, {"eps"}));
    o = {};
    o.squared = true;
    o.p = 1.0;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::TripletMargin(t, o); }, {"p"}));
    MultiCall<double> c = t;
    c.inputs[2] = CView(x15, {5, 3});
    EXPECT_THROW(fastloss::TripletMargin(c), fastloss::Error);
  }
  // contrastive (on distances) and contrastive_pairs
  {
    const std::vector<double> yc = {0, 1, 1.5, 0}, d = {0.5, 0.5, 0.5, 0.5};
    StridedArray<double> gc(4);
    Call<double> c;
    c.y_true = CView(yc, {4});
    c.y_pred = CView(d, {4});
    c.grad = gc.view();
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Contrastive(c); }, {"y_true"}));
    const std::vector<double> yneg = {0, -0.5, 1, 0};
    c.y_true = CView(yneg, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Contrastive(c); }, {"y_true"}));
    c.y_true = CView(d, {4});
    fastloss::ContrastiveOptions o;
    o.margin = -1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Contrastive(c, o); }, {"margin"}));
    c.y_true = CView(x, {12});
    EXPECT_THROW(fastloss::Contrastive(c), fastloss::Error);
    EXPECT_TRUE(gc.Untouched());
    MultiCall<double> cp = mc;
    cp.target = CView(yc, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::ContrastivePairs(cp); }, {"y_true"}));
    cp.target = CView(d, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::ContrastivePairs(cp, o); }, {"margin"}));
    o.margin = 1;
    o.eps = -1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::ContrastivePairs(cp, o); }, {"eps"}));
    cp.target = CView(x, {12});
    EXPECT_THROW(fastloss::ContrastivePairs(cp), fastloss::Error);
  }
  // margin_ranking
  {
    MultiCall<double> c = mc;
    c.target = CView(x, {4, 3});
    fastloss::MarginRankingOptions o;
    o.margin = -0.5;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::MarginRanking(c, o); }, {"margin"}));
    MultiCall<double> d = c;
    d.target = CView(yr, {4});
    EXPECT_THROW(fastloss::MarginRanking(d), fastloss::Error);
    d = c;
    d.inputs[1] = CView(x15, {5, 3});
    EXPECT_THROW(fastloss::MarginRanking(d), fastloss::Error);
  }
  EXPECT_TRUE(g0.Untouched());
  EXPECT_TRUE(g1.Untouched());
  EXPECT_TRUE(g2.Untouched());
}

TEST(StructuredErrors, RankingAndAdversarial) {
  const std::vector<double> r = {1, 0, 2, 1, 0, 2}, s = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
  const std::vector<int64_t> gid = {0, 0, 1, 1, 1, 1}, gid5 = {0, 0, 1, 1, 1};
  StridedArray<double> g(6);
  Call<double> call;
  call.y_true = CView(r, {6});
  call.y_pred = CView(s, {6});
  call.grad = g.view();
  const View<const int64_t> gv = CView(gid, {6}), gv5 = CView(gid5, {5}), gv23 = CView(gid, {2, 3});
  fastloss::PairwiseRankingOptions po;
  po.margin = -1;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PairwiseRanking(call, &gv, po); }, {"margin"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PairwiseRanking(call, &gv5); }, {"groups"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PairwiseRanking(call, &gv23); }, {"groups"}));
  {
    Call<double> c = call;
    c.reduction = Reduction::kNone;
    EXPECT_THROW(fastloss::PairwiseRanking(c, &gv), fastloss::Error);
    c = call;
    c.weights = CView(s, {6});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PairwiseRanking(c, &gv); }, {"weights"}));
    c = call;
    c.y_true = CView(r, {2, 3});
    EXPECT_THROW(fastloss::PairwiseRanking(c, nullptr), fastloss::Error);
  }
  EXPECT_TRUE(g.Untouched());
  // Scores.
  ScoreCall<double> sc;
  sc.scores = CView(s, {2, 3});
  StridedArray<double> sg({2, 3}, {3, 1}), sl({2}, {1});
  sc.grad = sg.view();
  {
    ScoreCall<double> b = sc;
    b.weights = CView(s, {2});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GanGenerator(b, Reduction::kMean); }, {"weights"}));
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::WassersteinGenerator(b, Reduction::kSum); }, {"weights"}));
    b = sc;
    b.losses = sl.view();
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GanGenerator(b, Reduction::kNone); }, {"losses"}));
    b = sc;
    b.grad.reset();
    EXPECT_THROW(fastloss::GanGenerator(b, Reduction::kNone), fastloss::Error);
  }
  // gradient_penalty: rank 0, target not finite, weights not of (N,).
  {
    ScoreCall<double> b = sc;
    b.scores = CView(s, {});
    b.grad = MakeView<double>(sg.view().data, {}, {});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GradientPenalty(b, Reduction::kMean); }, {"gradients"}));
    for (double t : {kNaN, kInf}) {
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GradientPenalty(sc, Reduction::kMean, t); }, {"target"}));
    }
    b = sc;
    b.weights = CView(s, {3});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GradientPenalty(b, Reduction::kMean); }, {"weights"}));
  }
  EXPECT_TRUE(sg.Untouched());
  // l2_penalty
  StridedArray<double> lg(5);
  const View<double> lgv = lg.view();
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::L2Penalty(CView(s, {6}), -1.0); }, {"lam"}));
  EXPECT_THROW(fastloss::L2Penalty(CView(s, {6}), 1.0, &lgv), fastloss::Error);
  EXPECT_TRUE(lg.Untouched());
}

// The header's promise: errors are raised before any output is written, also
// by the losses that run in two steps (the two score arrays of the
// discriminator / critic, the second gradient of margin_ranking).
TEST(StructuredErrors, NothingWrittenBeforeALaterArgumentFails) {
  const std::vector<double> s = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
  StridedArray<double> rg({2, 3}, {3, 1}), fg({3}, {1});
  ScoreCall<double> real, fake;
  real.scores = CView(s, {2, 3});
  real.grad = rg.view();
  fake.scores = CView(s, {3});
  fake.grad = fg.view();
  fake.weights = CView(s, {2});  // does not broadcast to (3,)
  EXPECT_THROW(fastloss::GanDiscriminator(real, fake, Reduction::kMean), fastloss::Error);
  EXPECT_TRUE(rg.Untouched()) << "gan_discriminator wrote real's gradient before failing on fake";
  EXPECT_THROW(fastloss::WassersteinCritic(real, fake, Reduction::kMean), fastloss::Error);
  EXPECT_TRUE(rg.Untouched()) << "wasserstein_critic wrote real's gradient before failing on fake";
  // margin_ranking with a second gradient of the wrong shape.
  StridedArray<double> g0({6}, {1}), g1({5}, {1});
  const std::vector<double> y = {1, -1, 1, -1, 1, -1};
  MultiCall<double> mc;
  mc.inputs[0] = CView(s, {6});
  mc.inputs[1] = CView(y, {6});
  mc.target = CView(y, {6});
  mc.grads[0] = g0.view();
  mc.grads[1] = g1.view();
  EXPECT_THROW(fastloss::MarginRanking(mc), fastloss::Error);
  EXPECT_TRUE(g0.Untouched()) << "margin_ranking wrote grads[0] before failing on grads[1]";
  EXPECT_TRUE(g1.Untouched());
}

// ============================================================================
// Tests: determinism across thread counts.
// ============================================================================

struct Snap {
  double value = 0;
  std::vector<std::vector<unsigned char>> bytes;
};

template <typename T>
std::vector<unsigned char> Bytes(const std::vector<T>& v) {
  std::vector<unsigned char> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

void ExpectSameForThreadCounts(const std::string& name, const std::function<Snap()>& run) {
  SCOPED_TRACE(name);
  fastloss::SetNumThreads(1);
  const Snap a = run();
  fastloss::SetNumThreads(4);
  const Snap b = run();
  EXPECT_TRUE(SameBits(a.value, b.value)) << a.value << " vs " << b.value;
  EXPECT_FALSE(std::isnan(a.value));
  ASSERT_EQ(a.bytes.size(), b.bytes.size());
  for (size_t k = 0; k < a.bytes.size(); ++k) {
    EXPECT_TRUE(a.bytes[k] == b.bytes[k]) << "output " << k << " differs between 1 and 4 threads";
  }
}

template <typename T>
std::vector<T> RandomT(size_t n, uint64_t seed, double lo, double hi) {
  Rng rng(seed);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(rng.U(lo, hi));
  return v;
}

template <typename T>
void CheckThreads() {
  SCOPED_TRACE(DtypeName<T>());
  for (Reduction r : {Reduction::kMean, Reduction::kNone}) {
    SCOPED_TRACE(ReductionName(r));
    // Dice over images, and over groups beyond the chunk size.
    for (const std::vector<int64_t>& shape : {std::vector<int64_t>{8, 1, 128, 128},
                                              std::vector<int64_t>{2, 40000}}) {
      const size_t n = static_cast<size_t>(Prod(shape));
      const std::vector<T> y = RandomT<T>(n, 1, 0, 1), p = RandomT<T>(n, 2, -3, 3);
      const std::vector<T> w = RandomT<T>(static_cast<size_t>(shape[0]), 3, 0.1, 2);
      for (bool logits : {false, true}) {
        ExpectSameForThreadCounts("dice " + ShapeStr(shape) + (logits ? " logits" : ""), [&] {
          std::vector<T> g(n), l(static_cast<size_t>(shape[0]));
          Call<T> c;
          c.y_true = CView(y, shape);
          c.y_pred = CView(p, shape);
          c.weights = CView(w, {shape[0]});
          c.grad = MView(g, shape);
          c.losses = MView(l, {shape[0]});
          if (!(r == Reduction::kNone)) c.losses.reset();
          c.reduction = r;
          fastloss::DiceOptions o;
          o.from_logits = logits;
          o.all_axes = false;
          for (int k = 1; k < static_cast<int>(shape.size()); ++k) o.axes.push_back(k);
          Snap s;
          s.value = fastloss::Dice(c, o);
          s.bytes = {Bytes(g), Bytes(l)};
          return s;
        });
      }
      ExpectSameForThreadCounts("focal_tversky all axes " + ShapeStr(shape), [&] {
        std::vector<T> g(n), l(1);
        Call<T> c;
        c.y_true = CView(y, shape);
        c.y_pred = CView(y, shape);
        c.grad = MView(g, shape);
        c.losses = MView(l, {});
        if (!(r == Reduction::kNone)) c.losses.reset();
        c.reduction = r;
        Snap s;
        s.value = fastloss::FocalTversky(c, {});
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
    }
    // Row losses.
    {
      const int64_t N = 8192, D = 24;
      const size_t n = static_cast<size_t>(N * D);
      const std::vector<T> a = RandomT<T>(n, 4, -1, 1), b = RandomT<T>(n, 5, -1, 1),
                           c3 = RandomT<T>(n, 6, -1, 1), w = RandomT<T>(static_cast<size_t>(N), 7, 0, 2);
      std::vector<T> ypm(static_cast<size_t>(N)), y01 = RandomT<T>(static_cast<size_t>(N), 8, 0, 1);
      for (size_t i = 0; i < ypm.size(); ++i) ypm[i] = (i * 7919) % 3 ? T(1) : T(-1);
      auto multi = [&](int which) {
        std::vector<T> g0(n), g1(n), g2(n), l(static_cast<size_t>(N));
        MultiCall<T> m;
        m.inputs[0] = CView(a, {N, D});
        m.inputs[1] = CView(b, {N, D});
        m.inputs[2] = CView(c3, {N, D});
        m.weights = CView(w, {N});
        m.grads[0] = MView(g0, {N, D});
        m.grads[1] = MView(g1, {N, D});
        m.grads[2] = MView(g2, {N, D});
        if (which != 0) m.grads[2].reset();
        m.losses = MView(l, {N});
        if (!(r == Reduction::kNone)) m.losses.reset();
        m.reduction = r;
        Snap s;
        if (which == 0) {
          fastloss::TripletMarginOptions o;
          o.p = 3;
          o.swap = true;
          s.value = fastloss::TripletMargin(m, o);
        } else if (which == 1) {
          m.target = CView(ypm, {N});
          s.value = fastloss::CosineEmbedding(m);
        } else {
          m.target = CView(y01, {N});
          s.value = fastloss::ContrastivePairs(m);
        }
        s.bytes = {Bytes(g0), Bytes(g1), Bytes(g2), Bytes(l)};
        return s;
      };
      ExpectSameForThreadCounts("triplet p3 swap", [&] { return multi(0); });
      ExpectSameForThreadCounts("cosine_embedding", [&] { return multi(1); });
      ExpectSameForThreadCounts("contrastive_pairs", [&] { return multi(2); });
      for (int axis : {-1, 0}) {
        ExpectSameForThreadCounts("cosine_similarity axis " + std::to_string(axis), [&] {
          std::vector<T> g(n), l(static_cast<size_t>(axis == 0 ? D : N));
          Call<T> c;
          c.y_true = CView(a, {N, D});
          c.y_pred = CView(b, {N, D});
          c.grad = MView(g, {N, D});
          c.losses = MView(l, {static_cast<int64_t>(l.size())});
          if (!(r == Reduction::kNone)) c.losses.reset();
          c.reduction = r;
          fastloss::CosineSimilarityOptions o;
          o.axis = axis;
          Snap s;
          s.value = fastloss::CosineSimilarity(c, o);
          s.bytes = {Bytes(g), Bytes(l)};
          return s;
        });
      }
      ExpectSameForThreadCounts("gradient_penalty", [&] {
        std::vector<T> g(n), l(8);
        ScoreCall<T> sc;
        sc.scores = CView(a, {8, N * D / 8});
        sc.grad = MView(g, {8, N * D / 8});
        sc.losses = MView(l, {8});
        if (!(r == Reduction::kNone)) sc.losses.reset();
        Snap s;
        s.value = fastloss::GradientPenalty(sc, r);
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
    }
    // Elementwise-driver losses.
    {
      const size_t n = 300000;
      const int64_t ni = static_cast<int64_t>(n);
      const std::vector<T> y01 = RandomT<T>(n, 9, 0, 1), d = RandomT<T>(n, 10, -3, 3),
                           x2 = RandomT<T>(n, 11, -3, 3), w = RandomT<T>(n, 12, 0, 2);
      std::vector<T> boxes_t(n), boxes_p(n);
      for (size_t i = 0; i < n; i += 4) {
        boxes_t[i] = d[i];
        boxes_t[i + 1] = d[i + 1];
        boxes_t[i + 2] = d[i] + std::fabs(d[i + 2]);
        boxes_t[i + 3] = d[i + 1] + std::fabs(d[i + 3]);
        boxes_p[i] = x2[i];
        boxes_p[i + 1] = x2[i + 1];
        boxes_p[i + 2] = x2[i] + std::fabs(x2[i + 2]);
        boxes_p[i + 3] = x2[i + 1] + std::fabs(x2[i + 3]);
      }
      auto call = [&](const std::vector<T>& yy, const std::vector<T>& pp, std::vector<T>& g,
                      std::vector<T>& l, const std::vector<int64_t>& shape, bool weighted) {
        Call<T> c;
        c.y_true = CView(yy, shape);
        c.y_pred = CView(pp, shape);
        c.grad = MView(g, shape);
        std::vector<int64_t> ls = shape;
        if (shape.size() == 2) ls = {shape[0]};
        c.losses = MView(l, ls);
        if (!(r == Reduction::kNone)) c.losses.reset();
        c.reduction = r;
        if (weighted) {
          c.weights = CView(w, ls);
        }
        return c;
      };
      ExpectSameForThreadCounts("box_iou ciou", [&] {
        std::vector<T> g(n), l(n / 4);
        fastloss::BoxIouOptions o;
        o.kind = BoxIouKind::kCiou;
        Snap s;
        s.value = fastloss::BoxIou(call(boxes_t, boxes_p, g, l, {ni / 4, 4}, true), o);
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
      ExpectSameForThreadCounts("contrastive", [&] {
        std::vector<T> g(n), l(n);
        Snap s;
        s.value = fastloss::Contrastive(call(y01, d, g, l, {ni}, true));
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
      ExpectSameForThreadCounts("combined", [&] {
        std::vector<T> g(n), l(n);
        fastloss::ElementwiseCombination c;
        fastloss::HuberOptions h;
        h.delta = 2;
        c.Add(0.5, fastloss::MseOptions{}).Add(0.3, fastloss::MaeOptions{}).Add(0.2, h);
        Snap s;
        s.value = fastloss::Combined(call(d, x2, g, l, {ni}, true), c);
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
      ExpectSameForThreadCounts("margin_ranking", [&] {
        std::vector<T> g0(n), g1(n), l(n);
        std::vector<T> ypm(n);
        for (size_t i = 0; i < n; ++i) ypm[i] = i % 3 ? T(1) : T(-1);
        MultiCall<T> m;
        m.inputs[0] = CView(d, {ni});
        m.inputs[1] = CView(x2, {ni});
        m.target = CView(ypm, {ni});
        m.grads[0] = MView(g0, {ni});
        m.grads[1] = MView(g1, {ni});
        m.losses = MView(l, {ni});
        if (!(r == Reduction::kNone)) m.losses.reset();
        m.reduction = r;
        fastloss::MarginRankingOptions o;
        o.margin = 0.5;
        Snap s;
        s.value = fastloss::MarginRanking(m, o);
        s.bytes = {Bytes(g0), Bytes(g1), Bytes(l)};
        return s;
      });
      ExpectSameForThreadCounts("gan_discriminator", [&] {
        std::vector<T> g0(n), g1(n / 2), l0(n), l1(n / 2);
        ScoreCall<T> real, fake;
        real.scores = CView(d, {ni});
        real.grad = MView(g0, {ni});
        real.losses = MView(l0, {ni});
        if (!(r == Reduction::kNone)) real.losses.reset();
        fake.scores = MakeView<const T>(x2.data(), {ni / 2}, {2});
        fake.grad = MView(g1, {ni / 2});
        fake.losses = MView(l1, {ni / 2});
        if (!(r == Reduction::kNone)) fake.losses.reset();
        Snap s;
        s.value = fastloss::GanDiscriminator(real, fake, r);
        s.bytes = {Bytes(g0), Bytes(g1), Bytes(l0), Bytes(l1)};
        return s;
      });
      if (r == Reduction::kMean) {
        ExpectSameForThreadCounts("l2_penalty", [&] {
          std::vector<T> g(n);
          const View<T> gv = MView(g, {ni});
          Snap s;
          s.value = fastloss::L2Penalty(CView(d, {ni}), 0.01, &gv);
          s.bytes = {Bytes(g)};
          return s;
        });
        std::vector<T> rel(n), sc(n);
        std::vector<int64_t> gid(n);
        for (size_t i = 0; i < n; ++i) {
          rel[i] = static_cast<T>((i * 2654435761u) % 5);
          sc[i] = d[i];
          gid[i] = static_cast<int64_t>((i * 40503u) % 100);
        }
        ExpectSameForThreadCounts("pairwise_ranking", [&] {
          std::vector<T> g(n);
          Call<T> c;
          c.y_true = CView(rel, {ni});
          c.y_pred = CView(sc, {ni});
          c.grad = MView(g, {ni});
          const View<const int64_t> gv = CView(gid, {ni});
          Snap s;
          s.value = fastloss::PairwiseRanking(c, &gv);
          s.bytes = {Bytes(g)};
          return s;
        });
      }
    }
  }
}

TEST(StructuredThreads, BitIdenticalForAnyThreadCount) {
  const int saved = fastloss::GetNumThreads();
  CheckThreads<float>();
  CheckThreads<double>();
  fastloss::SetNumThreads(saved);
}

// ============================================================================
// Every SIMD target this CPU supports, on a representative subset.
// ============================================================================

class StructuredTargets : public ::testing::TestWithParam<std::string>, public TargetGuard {};

TEST_P(StructuredTargets, RepresentativeLosses) {
  fastloss::ForceSimdTarget(GetParam());
  ASSERT_EQ(fastloss::SimdTarget(), GetParam());
  SweepOverlap<float>(true);
  SweepOverlap<double>(true);
  CheckLargeGroups<float>(true);
  SweepBoxes<float>(true);
  SweepBoxes<double>(true);
  SweepCosineSim<float>(true);
  SweepMetric<float>(true);
  SweepMetric<double>(true);
  SweepPairwise<double>(true);
  SweepAdversarial<float>(true);
  CheckCombination<float>(Layout::kEveryOther, Reduction::kNone, true, 4242);
  CheckCombination<double>(Layout::kContiguous, Reduction::kMean, true, 4243);
}

INSTANTIATE_TEST_SUITE_P(Available, StructuredTargets,
                         ::testing::ValuesIn(fastloss::AvailableSimdTargets()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

// 'none' losses written over an input the gradient pass still has to read
// (one score per element, axes = {}) are refused, even as the same view.
TEST(GroupDriver, LossesMayNotAliasAnInput) {
  std::vector<float> y{1, 0, 1, 0}, p{0.2f, 0.4f, 0.6f, 0.8f}, g(4);
  fastloss::Call<float> c;
  c.y_true = fastloss::View<const float>::Contiguous(y.data(), {4});
  c.y_pred = fastloss::View<const float>::Contiguous(p.data(), {4});
  c.reduction = fastloss::Reduction::kNone;
  c.losses = fastloss::View<float>::Contiguous(p.data(), {4});
  c.grad = fastloss::View<float>::Contiguous(g.data(), {4});
  fastloss::DiceOptions o;
  o.all_axes = false;
  try {
    fastloss::Dice(c, o);
    FAIL() << "no error";
  } catch (const fastloss::Error& e) {
    EXPECT_NE(std::string(e.what()).find("losses overlaps y_pred"), std::string::npos) << e.what();
  }
  EXPECT_EQ(p[0], 0.2f);  // nothing written
}

}  // namespace
}  // namespace fastloss_test
