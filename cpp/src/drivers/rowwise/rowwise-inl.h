// The row-wise SIMD kernels: softmax-family losses (cross-entropy, focal) and
// element terms summed along the class axis (KL, JSD), written once over the
// loss functors of losses/classification-inl.h. Per-target code (Highway
// re-include toggle guard); kernels/classification_rows.cc instantiates it.
//
// A row's classes are walked with full vectors when every operand's class
// stride is 1 (the tail through a masked vector, so small C costs one or two
// vectors per pass), and one lane at a time with any strides otherwise (a
// middle class axis). Nothing is allocated: a row is re-read from cache by
// each pass instead of keeping per-row temporaries.
//
// Softmax rows from logits, per row:
//   pass 1: online max and sum of exp(x - max), in groups of four vectors
//           (one exp per element plus one rescale per group); dense targets
//           also give sum(y') here and are range-checked. With a gradient
//           to write (cross-entropy), the max first and then exp(x - max)
//           kept in registers (rows of <= 4 vectors) or in the gradient
//           buffer, which pass 3 reads back instead of recomputing it;
//   pass 2: (focal only, or probabilities) the row's loss and H = sum_c D_c;
//   pass 3: the gradient D_j - q_j H (and the loss, when H was known).
// log q = (x - max) - log(sum), so a row [1e8, 1e8] gives log 2, masked
// (-inf) logits give q = 0 exactly, and a fully masked row gives NaN with a
// zero gradient.

#if defined(FASTLOSS_SRC_DRIVERS_ROWWISE_ROWWISE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FASTLOSS_SRC_DRIVERS_ROWWISE_ROWWISE_INL_H_
#undef FASTLOSS_SRC_DRIVERS_ROWWISE_ROWWISE_INL_H_
#else
#define FASTLOSS_SRC_DRIVERS_ROWWISE_ROWWISE_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "hwy/highway.h"
#include "drivers/kernels.h"
#include "math/prefetch.h"
#include "math/scalar_math.h"
#include "math/simd_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {

// Vectors of T summed in lanes before being folded into a float64 total.
constexpr int64_t kRowFold = 16;

// The partial last vector of a row: n < Lanes(d) elements. Highway 1.0.3's
// MaskedLoad / BlendedStore on SSE2..SSE4 touch the whole vector (an
// aligned full load; a read-modify-write store), so past the row's end they
// would read or write out of bounds: there these go through a stack buffer
// and touch exactly n elements. On AVX2 and AVX-512 they are the fault-
// suppressing vmaskmov / masked moves, which touch only the first n.
#undef FASTLOSS_SAFE_MASKED_MOVES
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define FASTLOSS_SAFE_MASKED_MOVES 1
#else
#define FASTLOSS_SAFE_MASKED_MOVES 0
#endif
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE hn::Vec<D> LoadTail(D d, const T* p, size_t n, T fill) {
#if FASTLOSS_SAFE_MASKED_MOVES
  const auto m = hn::FirstN(d, n);
  return hn::IfThenElse(m, hn::MaskedLoad(m, d, p), hn::Set(d, fill));
#else
  HWY_ALIGN T buf[hn::MaxLanes(D())];
  for (size_t i = 0; i < hn::Lanes(d); ++i) buf[i] = i < n ? p[i] : fill;
  return hn::Load(d, buf);
#endif
}
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void StoreTail(D d, hn::Vec<D> v, T* p, size_t n) {
#if FASTLOSS_SAFE_MASKED_MOVES
  hn::BlendedStore(v, hn::FirstN(d, n), d, p);
#else
  HWY_ALIGN T buf[hn::MaxLanes(D())];
  hn::Store(v, d, buf);
  for (size_t i = 0; i < n; ++i) p[i] = buf[i];
#endif
}

// A float64 sum of vectors: lanes add at most kRowFold vectors in T.
template <class D>
struct FoldedSum {
  D d;
  hn::Vec<D> acc = hn::Zero(d);
  int64_t count = 0;
  double total = 0.0;
  HWY_INLINE void Add(hn::Vec<D> v) {
    acc = hn::Add(acc, v);
    if (++count == kRowFold) Flush();
  }
  HWY_INLINE void Flush() {
    total += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, acc)));
    acc = hn::Zero(d);
    count = 0;
  }
  HWY_INLINE double Total() {
    Flush();
    return total;
  }
};

// The softmax family (losses::SoftmaxRows<Term>): row by row, and one row
// per lane for sparse rows with few classes.
#include "drivers/rowwise/softmax_row-inl.h"  // NOLINT(build/include)
#include "drivers/rowwise/softmax_lanes-inl.h"  // NOLINT(build/include)

// Element terms summed along the class axis (KL, JSD, multilabel soft
// margin): one pass per row. With class weights (a.cw) each class's term and
// gradient are scaled by its weight.
template <class Loss, typename T, bool kGrad, class D>
HWY_INLINE double ElementSumRow(D d, const Loss& loss, const internal::RowArgs& a,
                                const T* x, const T* y, T* g, T gscale) {
  using V = hn::Vec<D>;
  const SimdMath<D> m{d};
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t C = a.C, full = C / N * N;
  const auto tail_mask = hn::FirstN(d, static_cast<size_t>(C - full));
  const V sc = hn::Set(d, gscale);
  // Rows are read once: their lines are requested ahead (a row's last ones
  // run into the next row).
  const bool contiguous = a.x_cls == 1 && a.y_cls == 1;
  FoldedSum<D> lsum{d};
  for (int64_t c = 0; c < C; c += N) {
    const bool tail = c >= full;
    V xv, yv;
    if (tail) {
      // Lanes past the end hold (1, 1): a finite term, masked out below.
      xv = LoadTail(d, x + c, static_cast<size_t>(C - full), T(1));
      yv = LoadTail(d, y + c, static_cast<size_t>(C - full), T(1));
    } else {
      if (contiguous) {
        internal::PrefetchAhead(x, static_cast<size_t>(c), N * sizeof(T));
        internal::PrefetchAhead(y, static_cast<size_t>(c), N * sizeof(T));
      }
      xv = hn::LoadU(d, x + c * a.x_cls);
      yv = hn::LoadU(d, y + c * a.y_cls);
    }
    V gv = hn::Zero(d);
    V l = loss.template Eval<kGrad>(m, yv, xv, gv);
    if (a.cw) {
      const T* cw = static_cast<const T*>(a.cw);
      const V wv = tail ? LoadTail(d, cw + c, static_cast<size_t>(C - full), T(0))
                        : hn::LoadU(d, cw + c);
      l = hn::Mul(l, wv);
      if constexpr (kGrad) gv = hn::Mul(gv, wv);
    }
    if (tail) l = hn::IfThenElseZero(tail_mask, l);
    lsum.Add(l);
    if constexpr (kGrad) {
      gv = hn::Mul(gv, sc);
      if (tail) {
        StoreTail(d, gv, g + c, static_cast<size_t>(C - full));
      } else {
        hn::StoreU(gv, d, g + c * a.g_cls);
      }
    }
  }
  return lsum.Total();
}

template <class Loss, typename T, bool kGrad>
double ElementSumRun(const Loss& loss, const internal::RowArgs& a) {
  const T* X = static_cast<const T*>(a.x);
  const T* Y = static_cast<const T*>(a.y);
  const T* RW = static_cast<const T*>(a.rw);
  T* G = static_cast<T*>(a.grad);
  T* out = static_cast<T*>(a.losses);
  const bool vec = a.x_cls == 1 && a.y_cls == 1 && (!kGrad || a.g_cls == 1);
  const hn::ScalableTag<T> d;
  const hn::CappedTag<T, 1> d1;
  // Functors with kClassMean: the row's loss is the mean over its classes.
  const double scale = internal::ClassMean<Loss>::value ? 1.0 / static_cast<double>(a.C) : 1.0;
  double total = 0.0;
  for (int64_t r = 0; r < a.rows; ++r) {
    const T s = RW ? RW[r * a.rw_row] : T(1);
    const T gscale = static_cast<T>(static_cast<double>(s) * a.grad_scale * scale);
    const T* xr = X + r * a.x_row;
    const T* yr = Y + r * a.y_row;
    T* g = kGrad ? G + r * a.g_row : nullptr;
    const double l = vec ? ElementSumRow<Loss, T, kGrad>(d, loss, a, xr, yr, g, gscale)
                         : ElementSumRow<Loss, T, kGrad>(d1, loss, a, xr, yr, g, gscale);
    const double wl = static_cast<double>(s) * (l * scale);
    if (out) out[r * a.loss_row] = static_cast<T>(wl);
    total += wl;
  }
  return total;
}

template <class Loss, typename T>
double ElementSumRowKernel(const void* functor, const internal::RowArgs& a) {
  static_assert(std::is_trivially_copyable<Loss>::value, "plain data");
  Loss loss;
  std::memcpy(static_cast<void*>(&loss), functor, sizeof(Loss));
  if (a.grad) return ElementSumRun<Loss, T, true>(loss, a);
  return ElementSumRun<Loss, T, false>(loss, a);
}

// --- Sums relative to the target (multi_margin) ------------------------------
// l_r = w_t / C * sum_{c != t} Term(x_t, x_c), Term's derivative g_c in x_c:
// dl/dx_c = w_t / C * g_c, dl/dx_t = -(sum of those). The target's own lane
// is masked out, not subtracted, so a NaN or infinite term there is absent
// as the definition says. Sums in T lanes folded into float64 (FoldedSum).
template <class Term, typename T, bool kGrad, class D>
HWY_INLINE double TargetSumRow(D d, const Term& term, const internal::RowArgs& a, const T* x,
                               int64_t t, T* g, T gscale) {
  using V = hn::Vec<D>;
  const hn::RebindToSigned<D> di;
  using TI = hn::TFromD<decltype(di)>;
  const SimdMath<D> m{d};
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t C = a.C, full = C / N * N;
  const auto tail_mask = hn::FirstN(d, static_cast<size_t>(C - full));
  // x_t is read before any gradient is written: out may be y_pred.
  const T xt = x[t * a.x_cls];
  const V xtv = hn::Set(d, xt), sc = hn::Set(d, gscale);
  const auto tv = hn::Set(di, static_cast<TI>(t));
  FoldedSum<D> lsum{d}, gsum{d};
  for (int64_t c = 0; c < C; c += N) {
    const bool tail = c >= full;
    auto keep = hn::RebindMask(d, hn::Ne(hn::Iota(di, static_cast<TI>(c)), tv));
    V xv;
    if (tail) {
      // Lanes past the end hold x_t (a finite term), masked out.
      xv = LoadTail(d, x + c, static_cast<size_t>(C - full), xt);
      keep = hn::And(keep, tail_mask);
    } else {
      if (a.x_cls == 1) internal::PrefetchAhead(x, static_cast<size_t>(c), N * sizeof(T));
      xv = hn::LoadU(d, x + c * a.x_cls);
    }
    V gv = hn::Zero(d);
    lsum.Add(hn::IfThenElseZero(keep, term.template Eval<kGrad>(m, xtv, xv, gv)));
    if constexpr (kGrad) {
      gv = hn::IfThenElseZero(keep, gv);
      gsum.Add(gv);
      gv = hn::Mul(gv, sc);
      if (tail) {
        StoreTail(d, gv, g + c, static_cast<size_t>(C - full));
      } else {
        hn::StoreU(gv, d, g + c * a.g_cls);
      }
    }
  }
  if constexpr (kGrad) g[t * a.g_cls] = static_cast<T>(-gsum.Total() * static_cast<double>(gscale));
  return lsum.Total();
}

template <class Term, typename T, bool kGrad>
double TargetSumRun(const Term& term, const internal::RowArgs& a) {
  const T* X = static_cast<const T*>(a.x);
  const T* RW = static_cast<const T*>(a.rw);
  const T* CW = static_cast<const T*>(a.cw);
  T* G = static_cast<T*>(a.grad);
  T* out = static_cast<T*>(a.losses);
  const bool vec = a.x_cls == 1 && (!kGrad || a.g_cls == 1);
  const hn::ScalableTag<T> d;
  const hn::CappedTag<T, 1> d1;
  const double inv_c = 1.0 / static_cast<double>(a.C);
  double total = 0.0;
  for (int64_t r = 0; r < a.rows; ++r) {
    const double s = RW ? static_cast<double>(RW[r * a.rw_row]) : 1.0;
    const int64_t t = a.labels[r * a.label_row];
    const double wt = CW ? static_cast<double>(CW[t]) : 1.0;
    const T gscale = static_cast<T>(s * a.grad_scale * wt * inv_c);
    const T* xr = X + r * a.x_row;
    T* g = kGrad ? G + r * a.g_row : nullptr;
    const double sum = vec ? TargetSumRow<Term, T, kGrad>(d, term, a, xr, t, g, gscale)
                           : TargetSumRow<Term, T, kGrad>(d1, term, a, xr, t, g, gscale);
    const double wl = s * (wt * sum * inv_c);
    if (out) out[r * a.loss_row] = static_cast<T>(wl);
    total += wl;
  }
  return total;
}

template <class Term, typename T>
double TargetSumRowKernel(const void* functor, const internal::RowArgs& a) {
  static_assert(std::is_trivially_copyable<Term>::value, "plain data");
  Term term;
  std::memcpy(static_cast<void*>(&term), functor, sizeof(Term));
  if (a.grad) return TargetSumRun<Term, T, true>(term, a);
  return TargetSumRun<Term, T, false>(term, a);
}

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle

// Per-target row kernels NameF32 / NameF64 for losses::Name, with Impl one of
// SoftmaxRowKernel<Rows>, ElementSumRowKernel<Loss> or TargetSumRowKernel<Term>
// (a template taking T
// last). Use inside HWY_NAMESPACE of a family file.
#ifndef FASTLOSS_ROW_KERNELS
#define FASTLOSS_ROW_KERNELS(Name, Impl)                                         \
  double Name##RowF32(const void* f, const ::fastloss::internal::RowArgs& a) {   \
    return Impl, float>(f, a);                                                   \
  }                                                                              \
  double Name##RowF64(const void* f, const ::fastloss::internal::RowArgs& a) {   \
    return Impl, double>(f, a);                                                  \
  }

#define FASTLOSS_ROW_EXPORT(Name)                                                \
  HWY_EXPORT(Name##RowF32);                                                      \
  HWY_EXPORT(Name##RowF64);                                                      \
  template <>                                                                    \
  internal::RowKernel internal::RowKernelFor<losses::Name, float>() {            \
    internal::ChooseTarget();                                                    \
    return &HWY_DYNAMIC_DISPATCH(Name##RowF32);                                  \
  }                                                                              \
  template <>                                                                    \
  internal::RowKernel internal::RowKernelFor<losses::Name, double>() {           \
    internal::ChooseTarget();                                                    \
    return &HWY_DYNAMIC_DISPATCH(Name##RowF64);                                  \
  }
#endif
