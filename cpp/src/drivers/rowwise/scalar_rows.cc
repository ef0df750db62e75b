// Row kernels without SIMD code: plain scalar loops over the same functors
// (ScalarMath), for the row functors listed in FASTLOSS_SCALAR_ROW_FUNCTORS
// (losses/classification-inl.h). Run by the row driver like the SIMD ones.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "drivers/kernels.h"
#include "drivers/rowwise/row_scan.h"
#include "losses/losses.h"
#include "math/scalar_math.h"

namespace fastloss {
namespace internal {
namespace {

template <typename T>
struct RowPointers {
  const T* x;
  const T* y;
  T* g;
  T s;
};

template <typename T>
RowPointers<T> Row(const RowArgs& a, int64_t r) {
  RowPointers<T> p;
  p.x = static_cast<const T*>(a.x) + r * a.x_row;
  p.y = a.y ? static_cast<const T*>(a.y) + r * a.y_row : nullptr;
  p.g = a.grad ? static_cast<T*>(a.grad) + r * a.g_row : nullptr;
  p.s = a.rw ? static_cast<const T*>(a.rw)[r * a.rw_row] : T(1);
  return p;
}

template <typename T>
void StoreRowLoss(const RowArgs& a, int64_t r, double wl) {
  if (a.losses) static_cast<T*>(a.losses)[r * a.loss_row] = static_cast<T>(wl);
}

// Keras' categorical hinge (CategoricalHingeTerm: Pos, Neg, Value, Grad):
// one pass for pos, neg and the first class k attaining neg, one for the
// gradient.
template <class Term, typename T>
double CategoricalHingeRows(const void* f, const RowArgs& a) {
  const Term& term = *static_cast<const Term*>(f);
  const ScalarMath<T> m;
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

// Terms of the target's entry alone (labels): l = Term(w_t, x_t) with w_t the
// target's class weight (1 without), gradient dl/dx_t at the target and 0
// elsewhere; rows with the ignored label contribute nothing.
template <class Term, typename T>
double TargetOnlyRows(const void* f, const RowArgs& a) {
  const Term& term = *static_cast<const Term*>(f);
  const ScalarMath<T> m;
  const T* cw = static_cast<const T*>(a.cw);
  double total = 0.0;
  // A contiguous gradient block that does not overlap y_pred is cleared in
  // one fill, not row by row (a few classes: the per-row loop was the cost).
  const T* x0 = static_cast<const T*>(a.x);
  T* g0 = static_cast<T*>(a.grad);
  const int64_t n = a.rows * a.C;
  const bool one_fill = g0 && a.g_cls == 1 && a.g_row == a.C && a.x_row >= 0 && a.x_cls >= 0 &&
                        (x0 + (a.rows > 0 ? (a.rows - 1) * a.x_row + (a.C - 1) * a.x_cls : 0) <
                             g0 ||
                         g0 + n <= x0);
  if (one_fill) std::fill(g0, g0 + n, T(0));
  for (int64_t r = 0; r < a.rows; ++r) {
    const RowPointers<T> p = Row<T>(a, r);
    const int64_t t = a.labels[r * a.label_row];
    const bool ignored = a.has_ignore && t == a.ignore_index;
    // x_t is read before the gradient row is cleared: out may be y_pred.
    T g = 0;
    const T l = ignored ? T(0) : term.template Eval<true>(m, cw ? cw[t] : T(1), p.x[t * a.x_cls], g);
    if (p.g && !one_fill) {
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

// Top-k hits (TopKTerm): the target class t is the row's label, or the first
// maximum of its dense target row; one pass over the scores counts the
// classes ranked before t (a stable descending sort). A NaN in the row gives
// NaN. The gradient row, if asked for, is 0 (metrics have none).
template <class Term, typename T>
double TopKRows(const void* f, const RowArgs& a) {
  const Term& term = *static_cast<const Term*>(f);
  double total = 0.0;
  for (int64_t r = 0; r < a.rows; ++r) {
    const RowPointers<T> p = Row<T>(a, r);
    bool nan = false;
    int64_t t = 0;
    if (a.labels) {
      t = a.labels[r * a.label_row];
    } else {
      t = FirstMax(p.y, a.C, a.y_cls, &nan);
    }
    const bool ignored = a.labels && a.has_ignore && t == a.ignore_index;
    int64_t rank = 0;
    if (!ignored) {
      bool x_nan = false;
      rank = StableRank(p.x, a.C, a.x_cls, t, &x_nan);
      nan = nan || x_nan;
    }
    // The row is read before its gradient is cleared: out may be y_pred.
    if (p.g) {
      for (int64_t c = 0; c < a.C; ++c) p.g[c * a.g_cls] = T(0);
    }
    if (ignored) {
      StoreRowLoss<T>(a, r, 0.0);
      continue;
    }
    const T l = nan ? std::numeric_limits<T>::quiet_NaN() : T(rank < term.k ? 1 : 0);
    const double wl = static_cast<double>(p.s) * static_cast<double>(l);
    StoreRowLoss<T>(a, r, wl);
    total += wl;
  }
  return total;
}

}  // namespace

#define FASTLOSS_SCALAR_ROW_EXPORT(Name, Kind)                  \
  template <>                                                   \
  RowKernel RowKernelFor<losses::Name, float>() {               \
    return &Kind##Rows<losses::Name, float>;                    \
  }                                                             \
  template <>                                                   \
  RowKernel RowKernelFor<losses::Name, double>() {              \
    return &Kind##Rows<losses::Name, double>;                   \
  }
FASTLOSS_SCALAR_ROW_FUNCTORS(FASTLOSS_SCALAR_ROW_EXPORT)
#undef FASTLOSS_SCALAR_ROW_EXPORT

}  // namespace internal
}  // namespace fastloss
