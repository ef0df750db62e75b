// Shared by the structured-loss tests (segmentation_test.cc, detection_test.cc,
// metric_test.cc, ranking_test.cc, adversarial_test.cc, combination_test.cc,
// structured_test.cc) and the per-family references (*_reference.h): small
// helpers, the random source, operand layouts, the SIMD-target guard; the
// reference result of one evaluation (Ref), its weighting and reduction
// (Finish), the comparison of a call's outputs with it (Matches), and the
// sweep of layouts / reductions / weights that runs a Call- or MultiCall-based
// loss against a Ref (CheckCall, CheckMulti). The references are written
// plainly from the formulas of notes/STRUCTURED_SPEC.md: nothing is shared with
// the library's functors.
#ifndef FASTLOSS_TESTS_CPP_STRUCTURED_HELPERS_H_
#define FASTLOSS_TESTS_CPP_STRUCTURED_HELPERS_H_

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

inline std::vector<int64_t> CStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t stride = 1;
  for (size_t k = shape.size(); k-- > 0;) {
    s[k] = stride;
    stride *= std::max<int64_t>(shape[k], 1);
  }
  return s;
}

inline int64_t Prod(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

inline std::string ShapeStr(const std::vector<int64_t>& shape) {
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

inline double Sp(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::fabs(z))); }
inline double Sig(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}
inline double Sgn(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

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

inline const char* LayoutName(Layout l) {
  switch (l) {
    case Layout::kContiguous: return "contiguous";
    case Layout::kEveryOther: return "every_other";
    case Layout::kTransposed: return "transposed";
    case Layout::kReversed: return "reversed";
  }
  return "?";
}

inline std::vector<int64_t> StridesFor(const std::vector<int64_t>& shape, Layout l) {
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
inline std::vector<int64_t> GroupOf(const std::vector<int64_t>& shape,
                                    const std::vector<bool>& reduced,
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
inline std::vector<bool> LastAxis(size_t rank) {
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

inline double SumL(const Ref& r) {
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

inline std::string OptsName(const Opts& o) {
  return std::string(LayoutName(o.layout)) + " " + ReductionName(o.r) +
         (o.weighted ? " weighted" : "") + (o.partial_grads ? " partial_grads" : "") +
         " seed " + std::to_string(o.seed);
}

inline std::vector<Opts> Sweep(bool quick) {
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

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_STRUCTURED_HELPERS_H_
