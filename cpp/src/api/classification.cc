// Public entry points of the classification family: option checks, then the
// shared drivers (elementwise for the binary losses, row-wise for the rest).
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "fastloss/fastloss.hpp"
#include "internal/builders.h"
#include "drivers/elementwise/elementwise.h"
#include "drivers/rowwise/rowwise.h"
#include "math/scalar_math.h"
#include "losses/losses.h"

namespace fastloss {
namespace {

using internal::RowProblem;

using internal::CheckEps;

// --- Row losses without a SIMD kernel: plain scalar code over the same
// functors (ScalarMath), run by the row driver. ---

template <typename T>
struct RowPointers {
  const T* x;
  const T* y;
  T* g;
  T s;
};

template <typename T>
RowPointers<T> Row(const internal::RowArgs& a, int64_t r) {
  RowPointers<T> p;
  p.x = static_cast<const T*>(a.x) + r * a.x_row;
  p.y = a.y ? static_cast<const T*>(a.y) + r * a.y_row : nullptr;
  p.g = a.grad ? static_cast<T*>(a.grad) + r * a.g_row : nullptr;
  p.s = a.rw ? static_cast<const T*>(a.rw)[r * a.rw_row] : T(1);
  return p;
}

template <typename T>
void StoreRowLoss(const internal::RowArgs& a, int64_t r, double wl) {
  if (a.losses) static_cast<T*>(a.losses)[r * a.loss_row] = static_cast<T>(wl);
}

template <typename T>
double CategoricalHingeRows(const void* f, const internal::RowArgs& a) {
  const losses::CategoricalHingeTerm& term = *static_cast<const losses::CategoricalHingeTerm*>(f);
  const internal::ScalarMath<T> m;
  double total = 0.0;
  for (int64_t r = 0; r < a.rows; ++r) {
    const RowPointers<T> p = Row<T>(a, r);
    T pos = 0, neg = -std::numeric_limits<T>::infinity();
    int64_t k = 0;
    bool nan = false;
    for (int64_t c = 0; c < a.C; ++c) {
      const T y = p.y[c * a.y_cls], x = p.x[c * a.x_cls];
      pos = m.Add(pos, term.Pos(m, y, x));
      const T nv = term.Neg(m, y, x);
      if (nv != nv) nan = true;
      if (nv > neg) {
        neg = nv;
        k = c;
      }
    }
    const T l = nan ? std::numeric_limits<T>::quiet_NaN() : term.Value(m, pos, neg);
    if (p.g) {
      const T sc = static_cast<T>(static_cast<double>(p.s) * a.grad_scale);
      const bool active = !(l <= T(0));  // NaN: the gradient is NaN too
      for (int64_t c = 0; c < a.C; ++c) {
        const T y = p.y[c * a.y_cls];
        T gv = active ? term.Grad(m, y, c == k) : T(0);
        if (l != l) gv = l;
        p.g[c * a.g_cls] = gv * sc;
      }
    }
    const double wl = static_cast<double>(p.s) * static_cast<double>(l);
    StoreRowLoss<T>(a, r, wl);
    total += wl;
  }
  return total;
}

template <typename T>
double NllRows(const void* f, const internal::RowArgs& a) {
  const losses::NllTerm& term = *static_cast<const losses::NllTerm*>(f);
  const internal::ScalarMath<T> m;
  const T* cw = static_cast<const T*>(a.cw);
  double total = 0.0;
  for (int64_t r = 0; r < a.rows; ++r) {
    const RowPointers<T> p = Row<T>(a, r);
    const int64_t t = a.labels[r * a.label_row];
    const bool ignored = a.has_ignore && t == a.ignore_index;
    // x_t is read before the gradient row is cleared: out may be y_pred.
    T g = 0;
    const T l = ignored ? T(0) : term.Eval<true>(m, cw ? cw[t] : T(1), p.x[t * a.x_cls], g);
    if (p.g) {
      for (int64_t c = 0; c < a.C; ++c) p.g[c * a.g_cls] = T(0);
    }
    if (ignored) {
      StoreRowLoss<T>(a, r, 0.0);
      continue;
    }
    if (p.g) {
      p.g[t * a.g_cls] = static_cast<T>(static_cast<double>(g) * static_cast<double>(p.s) *
                                        a.grad_scale);
    }
    const double wl = static_cast<double>(p.s) * static_cast<double>(l);
    StoreRowLoss<T>(a, r, wl);
    total += wl;
  }
  return total;
}

template <typename T>
RowProblem<T> Dense(const char* name, const Call<T>& call, int axis) {
  RowProblem<T> pr;
  pr.name = name;
  pr.axis = axis;
  pr.y_pred = call.y_pred;
  pr.y_true = &call.y_true;
  pr.weights = call.weights ? &*call.weights : nullptr;
  pr.reduction = call.reduction;
  pr.grad = call.grad ? const_cast<View<T>*>(&*call.grad) : nullptr;
  pr.losses = call.losses ? const_cast<View<T>*>(&*call.losses) : nullptr;
  return pr;
}

template <typename T>
RowProblem<T> Labels(const char* name, const LabelCall<T>& call, int axis) {
  RowProblem<T> pr;
  pr.name = name;
  pr.axis = axis;
  pr.y_pred = call.y_pred;
  pr.labels = &call.labels;
  pr.weights = call.weights ? &*call.weights : nullptr;
  pr.class_weights = call.class_weights ? &*call.class_weights : nullptr;
  pr.reduction = call.reduction;
  pr.grad = call.grad ? const_cast<View<T>*>(&*call.grad) : nullptr;
  pr.losses = call.losses ? const_cast<View<T>*>(&*call.losses) : nullptr;
  return pr;
}

// y' = keep * y + add for dense targets; keep * w_t [c == t] + add * w_c for labels.
template <class Term>
losses::SoftmaxRows<Term> Softmax(const Term& term, bool from_logits, double ls, double eps,
                                  int64_t C) {
  losses::SoftmaxRows<Term> r;
  r.term = term;
  r.from_logits = from_logits;
  r.keep = 1.0 - ls;
  r.add = ls / static_cast<double>(C);
  r.eps = eps;
  return r;
}

template <typename V>
int64_t Classes(const V& y_pred, int axis) {
  // Only used once the driver has validated axis; a bad axis here gives 1
  // and the driver reports it.
  const int a = axis < 0 ? axis + y_pred.rank : axis;
  return a >= 0 && a < y_pred.rank && y_pred.shape[a] > 0 ? y_pred.shape[a] : 1;
}

}  // namespace

// The BCE overload with a per-element pos_weight array (the registry's
// entry points are generated in api/elementwise.cc).
template <typename T>
double BinaryCrossEntropy(const Call<T>& call, const View<const T>& pos_weight,
                          const BinaryCrossEntropyOptions& o) {
  const char* name = "binary_cross_entropy";
  CheckOptions(name, o);
  return losses::Build<T>(o, internal::RunSink<T>{name, call, &pos_weight, "pos_weight"}, true);
}

template <typename T>
double CategoricalCrossEntropy(const Call<T>& call, const CategoricalCrossEntropyOptions& o) {
  const char* name = "categorical_cross_entropy";
  CheckOptions(name, o);
  if (!o.from_logits) CheckEps<T>(name, o.eps);
  RowProblem<T> pr = Dense(name, call, o.axis);
  pr.check_y = true;
  return internal::RunRowLoss(
      pr, Softmax(losses::CceTerm{}, o.from_logits, o.label_smoothing, o.eps,
                  Classes(call.y_pred, o.axis)));
}

template <typename T>
double SparseCategoricalCrossEntropy(const LabelCall<T>& call,
                                     const SparseCategoricalCrossEntropyOptions& o) {
  const char* name = "sparse_categorical_cross_entropy";
  CheckOptions(name, o);
  if (!o.from_logits) CheckEps<T>(name, o.eps);
  RowProblem<T> pr = Labels(name, call, o.axis);
  pr.has_ignore = o.ignore_index.has_value();
  pr.ignore_index = o.ignore_index.value_or(0);
  pr.target_weighted_mean = true;
  return internal::RunRowLoss(
      pr, Softmax(losses::CceTerm{}, o.from_logits, o.label_smoothing, o.eps,
                  Classes(call.y_pred, o.axis)));
}

template <typename T>
double CategoricalFocal(const Call<T>& call, const CategoricalFocalOptions& o) {
  const char* name = "categorical_focal";
  CheckOptions(name, o);
  if (!o.from_logits) CheckEps<T>(name, o.eps);
  RowProblem<T> pr = Dense(name, call, o.axis);
  pr.check_y = true;
  const losses::FocalTerm term{o.alpha.value_or(1.0), o.gamma};
  return internal::RunRowLoss(pr, Softmax(term, o.from_logits, o.label_smoothing, o.eps,
                                          Classes(call.y_pred, o.axis)));
}

template <typename T>
double CategoricalHinge(const Call<T>& call, const CategoricalHingeOptions& o) {
  CheckOptions("categorical_hinge", o);
  static const losses::CategoricalHingeTerm term{};
  return internal::RunRows(Dense("categorical_hinge", call, o.axis), &term, 2,
                           &CategoricalHingeRows<T>);
}

template <typename T>
double MultiMargin(const LabelCall<T>& call, const MultiMarginOptions& o) {
  const char* name = "multi_margin";
  CheckOptions(name, o);
  if (o.p != 1 && o.p != 2) {
    throw Error(std::string(name) + ": p must be 1 or 2, got " + std::to_string(o.p));
  }
  const losses::MultiMarginTerm term{o.p, o.margin};
  // SIMD rows (drivers/rowwise/rowwise-inl.h, TargetSumKernelImpl).
  return internal::RunRows(Labels(name, call, o.axis), &term, 2,
                           internal::RowKernelFor<losses::MultiMarginTerm, T>());
}

template <typename T>
double Nll(const LabelCall<T>& call, const NllOptions& o) {
  CheckOptions("nll", o);
  RowProblem<T> pr = Labels("nll", call, o.axis);
  pr.has_ignore = o.ignore_index.has_value();
  pr.ignore_index = o.ignore_index.value_or(0);
  pr.target_weighted_mean = true;
  static const losses::NllTerm term{};
  return internal::RunRows(pr, &term, 1, &NllRows<T>);
}

template <typename T>
double KlDivergence(const Call<T>& call, const KlDivergenceOptions& o) {
  CheckOptions("kl_divergence", o);
  return internal::RunRowLoss(Dense("kl_divergence", call, o.axis),
                              losses::KlDivergence{o.log_input, o.log_target});
}

template <typename T>
double JensenShannon(const Call<T>& call, const JensenShannonOptions& o) {
  CheckOptions("jensen_shannon", o);
  return internal::RunRowLoss(Dense("jensen_shannon", call, o.axis),
                              losses::JensenShannon{o.beta, o.log_input});
}

#define FASTLOSS_INSTANTIATE(Name, CallT)                                   \
  template double Name<float>(const CallT<float>&, const Name##Options&);   \
  template double Name<double>(const CallT<double>&, const Name##Options&);
FASTLOSS_INSTANTIATE(CategoricalCrossEntropy, Call)
FASTLOSS_INSTANTIATE(SparseCategoricalCrossEntropy, LabelCall)
FASTLOSS_INSTANTIATE(CategoricalFocal, Call)
FASTLOSS_INSTANTIATE(CategoricalHinge, Call)
FASTLOSS_INSTANTIATE(MultiMargin, LabelCall)
FASTLOSS_INSTANTIATE(Nll, LabelCall)
FASTLOSS_INSTANTIATE(KlDivergence, Call)
FASTLOSS_INSTANTIATE(JensenShannon, Call)
#undef FASTLOSS_INSTANTIATE
template double BinaryCrossEntropy<float>(const Call<float>&, const View<const float>&,
                                          const BinaryCrossEntropyOptions&);
template double BinaryCrossEntropy<double>(const Call<double>&, const View<const double>&,
                                           const BinaryCrossEntropyOptions&);

}  // namespace fastloss
