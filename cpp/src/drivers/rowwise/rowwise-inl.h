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

// One row of a softmax-family loss. Returns l_r (unweighted; NaN for a
// fully masked row) or sets `bad` (targets outside [0, 1]).
template <class Term, typename T, bool kLogits, bool kSparse, bool kGrad, class D>
HWY_INLINE double SoftmaxRow(D d, const losses::SoftmaxRows<Term>& L, const internal::RowArgs& a,
                             const T* x, const T* y, int64_t t, T* g, T gscale, bool& bad) {
  using V = hn::Vec<D>;
  const SimdMath<D> m{d};
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t C = a.C;
  const int64_t xs = a.x_cls, ys = a.y_cls, gs = a.g_cls;
  const T* cw = static_cast<const T*>(a.cw);
  const T inf = std::numeric_limits<T>::infinity();
  const V neg_inf = hn::Set(d, -inf);
  const int64_t full = C / N * N;
  const auto tail_mask = hn::FirstN(d, static_cast<size_t>(C - full));

  auto load = [&](const T* base, int64_t stride, int64_t c, bool tail, T fill) -> V {
    if (tail) return LoadTail(d, base + c, static_cast<size_t>(C - full), fill);
    return hn::LoadU(d, base + c * stride);
  };
  // Effective targets y'_c (0 in the lanes past the row's end).
  const T wt = kSparse ? (cw ? cw[t] : T(1)) : T(1);
  const V keep_t = hn::Set(d, static_cast<T>(L.keep * static_cast<double>(wt)));
  const V add = hn::Set(d, static_cast<T>(L.add));
  const V keep = hn::Set(d, static_cast<T>(L.keep));
  const V tv = hn::Set(d, static_cast<T>(t));
  auto target = [&](int64_t c, bool tail) -> V {
    V r;
    if constexpr (kSparse) {
      const V base = cw ? hn::Mul(load(cw, 1, c, tail, T(0)), add) : add;
      r = hn::Add(base, hn::IfThenElseZero(hn::Eq(hn::Iota(d, static_cast<T>(c)), tv), keep_t));
    } else {
      const V yv = load(y, ys, c, tail, T(0));
      r = L.add == 0.0 ? (L.keep == 1.0 ? yv : hn::Mul(keep, yv)) : hn::MulAdd(keep, yv, add);
    }
    return tail ? hn::IfThenElseZero(tail_mask, r) : r;
  };

  // Pass 1: the row's statistics; dense targets' sum and range.
  V mv = neg_inf, sv = hn::Zero(d);
  FoldedSum<D> ysum{d};
  auto bad_acc = hn::Zero(d);  // 1 in lanes with a target outside [0, 1]
  // Pass 1 reads the row from memory: its lines are requested ahead (the
  // last ones run into the next row); the later passes find it in cache.
  auto prefetch = [&](int64_t c, int64_t k) {
    if (xs == 1) internal::PrefetchAhead(x, static_cast<size_t>(c), k * N * sizeof(T));
    if constexpr (!kSparse) {
      if (ys == 1) internal::PrefetchAhead(y, static_cast<size_t>(c), k * N * sizeof(T));
    }
  };
  auto check = [&](int64_t c, bool tail) {
    if constexpr (!kSparse) {
      const V yv = load(y, ys, c, tail, T(0));
      ysum.Add(yv);
      if (a.check_y) {
        const auto out = hn::Or(hn::Lt(yv, hn::Zero(d)), hn::Gt(yv, hn::Set(d, T(1))));
        bad_acc = hn::Or(bad_acc, hn::IfThenElseZero(out, hn::Set(d, T(1))));
      }
    }
  };
  // Adds `k` vectors to the online max / sum-exp: one rescale per group.
  auto lse_add = [&](const V* v, int k) {
    V cm = v[0];
    for (int i = 1; i < k; ++i) cm = m.Max(cm, v[i]);
    const V mnew = m.Max(mv, cm);
    const V shift = hn::IfThenElse(hn::Eq(mnew, neg_inf), hn::Zero(d), mnew);
    V s = hn::Mul(sv, m.ExpNonPositive(hn::Sub(mv, shift)));
    for (int i = 0; i < k; ++i) s = hn::Add(s, m.ExpNonPositive(hn::Sub(v[i], shift)));
    sv = s;
    mv = mnew;
  };
  int64_t c = 0;
  // Rows of at most four vectors (small C) keep exp(x - max) in registers:
  // the max first, then one exp per vector, reused by the gradient (two
  // exps per vector fewer than the online pass and a recomputation).
  const bool small = kLogits && !Term::kNeedsH && N > 1 && C <= 4 * N;
  // Larger rows with a gradient buffer of their own (not aliasing the logits
  // or the targets, which pass 3 reads again) do the same through memory:
  // the max first (no exp), then exp(x - max) once per element, kept in g
  // until pass 3 turns it into the gradient. One exp per element instead of
  // the online pass's 1.25 and pass 3's recomputation.
  const bool stash = kLogits && kGrad && !Term::kNeedsH && !small && N > 1 && gs == 1 &&
                     g != x && g != y;
  V ev[4];
  if (small) {
    const int64_t nv = (C + N - 1) / N;
    V v[4];
    V cm = neg_inf;
    for (int64_t i = 0; i < nv; ++i) {
      const bool tail = i * N >= full;
      v[i] = load(x, xs, i * N, tail, -inf);
      check(i * N, tail);
      cm = m.Max(cm, v[i]);
    }
    const T mx = hn::GetLane(hn::MaxOfLanes(d, cm));
    const V shift = hn::Set(d, mx == -inf ? T(0) : mx);
    V s = hn::Zero(d);
    for (int64_t i = 0; i < nv; ++i) {
      ev[i] = m.ExpNonPositive(hn::Sub(v[i], shift));
      s = hn::Add(s, ev[i]);
    }
    mv = hn::Set(d, mx);
    sv = s;
  } else if (stash) {
    V cm[4] = {neg_inf, neg_inf, neg_inf, neg_inf};
    for (; c + 4 * N <= full; c += 4 * N) {
      prefetch(c, 4);
      for (int i = 0; i < 4; ++i) {
        cm[i] = m.Max(cm[i], load(x, xs, c + i * N, false, T(0)));
        check(c + i * N, false);
      }
    }
    for (; c < full; c += N) {
      cm[0] = m.Max(cm[0], load(x, xs, c, false, T(0)));
      check(c, false);
    }
    if (full < C) {
      cm[0] = m.Max(cm[0], load(x, xs, full, true, -inf));
      check(full, true);
    }
    // As for small rows: x86 max ignores NaN, a NaN lane reaches the sum.
    const V cmax = m.Max(m.Max(cm[0], cm[1]), m.Max(cm[2], cm[3]));
    const T mx = hn::GetLane(hn::MaxOfLanes(d, cmax));
    const V shift = hn::Set(d, mx == -inf ? T(0) : mx);
    V s[4] = {hn::Zero(d), hn::Zero(d), hn::Zero(d), hn::Zero(d)};
    int64_t j = 0;
    for (; j + 4 * N <= full; j += 4 * N) {
      for (int i = 0; i < 4; ++i) {
        const V e = m.ExpNonPositive(hn::Sub(load(x, xs, j + i * N, false, T(0)), shift));
        hn::StoreU(e, d, g + j + i * N);
        s[i] = hn::Add(s[i], e);
      }
    }
    for (; j < full; j += N) {
      const V e = m.ExpNonPositive(hn::Sub(load(x, xs, j, false, T(0)), shift));
      hn::StoreU(e, d, g + j);
      s[0] = hn::Add(s[0], e);
    }
    if (full < C) {
      const V e = m.ExpNonPositive(hn::Sub(load(x, xs, full, true, -inf), shift));
      StoreTail(d, e, g + full, static_cast<size_t>(C - full));
      s[0] = hn::Add(s[0], e);
    }
    mv = hn::Set(d, mx);
    sv = hn::Add(hn::Add(s[0], s[1]), hn::Add(s[2], s[3]));
  } else if (kLogits) {
    for (; c + 4 * N <= full; c += 4 * N) {
      prefetch(c, 4);
      const V v[4] = {load(x, xs, c, false, T(0)), load(x, xs, c + N, false, T(0)),
                      load(x, xs, c + 2 * N, false, T(0)), load(x, xs, c + 3 * N, false, T(0))};
      lse_add(v, 4);
      for (int i = 0; i < 4; ++i) check(c + i * N, false);
    }
    for (; c < full; c += N) {
      const V v[1] = {load(x, xs, c, false, T(0))};
      lse_add(v, 1);
      check(c, false);
    }
    if (full < C) {
      const V v[1] = {load(x, xs, full, true, -inf)};
      lse_add(v, 1);
      check(full, true);
    }
  } else {
    for (; c < full; c += N) {
      prefetch(c, 1);
      sv = hn::Add(sv, load(x, xs, c, false, T(0)));
      check(c, false);
    }
    if (full < C) {
      sv = hn::Add(sv, load(x, xs, full, true, T(0)));
      check(full, true);
    }
  }
  if constexpr (!kSparse) {
    if (a.check_y && !hn::AllFalse(d, hn::Ne(bad_acc, hn::Zero(d)))) {
      bad = true;
      return 0.0;
    }
  }

  // Row statistics as broadcast vectors.
  T row_max = 0, log_sum = 0, inv_sum = 0;
  if (kLogits) {
    row_max = hn::GetLane(hn::MaxOfLanes(d, mv));
    // x86 max ignores NaN: a NaN lane reaches the sum below.
    const V shift = hn::Set(d, row_max == -inf ? T(0) : row_max);
    const V scaled = small || stash ? sv : hn::Mul(sv, m.ExpNonPositive(hn::Sub(mv, shift)));
    const T sum = hn::GetLane(hn::SumOfLanes(d, scaled));
    if (row_max == -inf) {  // every class masked: NaN loss, zero gradient
      if constexpr (kGrad) {
        for (int64_t j = 0; j < C; ++j) g[j * gs] = T(0);
      }
      return std::numeric_limits<double>::quiet_NaN();
    }
    log_sum = static_cast<T>(std::log(sum));
    inv_sum = T(1) / sum;  // q from the kept exps (small rows)
  } else {
    const T sum = hn::GetLane(hn::SumOfLanes(d, sv));
    inv_sum = T(1) / sum;
  }
  const V maxv = hn::Set(d, row_max), lsv = hn::Set(d, log_sum), invv = hn::Set(d, inv_sum);
  const V lo = hn::Set(d, static_cast<T>(L.eps)), hi = hn::Set(d, static_cast<T>(1.0 - L.eps));
  // log q, q and (probabilities) the active-clip mask of class c.
  auto probs = [&](int64_t c, bool tail, V& logq, V& q, hn::Mask<D>& clipped) {
    const V xv = load(x, xs, c, tail, kLogits ? -inf : T(1));
    if (kLogits) {
      logq = hn::Sub(hn::Sub(xv, maxv), lsv);
      // logq <= 0: x <= max and log(sum) >= 0 (the max contributes 1).
      if (small) {
        q = hn::Mul(ev[c / N], invv);
      } else if (stash) {
        q = hn::Mul(load(g, 1, c, tail, T(0)), invv);
      } else {
        q = m.ExpNonPositive(logq);
      }
      clipped = hn::Lt(q, hn::Zero(d));  // never
    } else {
      const V raw = hn::Mul(xv, invv);
      clipped = hn::Or(hn::Lt(raw, lo), hn::Gt(raw, hi));
      q = losses::Clamp(m, raw, lo, hi);
      logq = m.Log(q);
    }
  };

  // sum_c D_c when it does not depend on q: -sum_c y'_c.
  double h = 0.0;
  if constexpr (!Term::kNeedsH) {
    if constexpr (kSparse) {
      h = -(L.keep * static_cast<double>(wt) + L.add * a.cw_total);
    } else {
      h = -(L.keep * ysum.Total() + L.add * static_cast<double>(C));
    }
  }
  // Sparse targets without smoothing: y' (and, with !kNeedsH, D) is 0 off
  // the target class, so the loss is the target's term alone (pass 2's
  // scalar branch) and the gradient off the target is -q_c H (pass 3).
  const bool sparse_plain = kSparse && !Term::kNeedsH && L.add == 0.0;
  const bool merged = kLogits && !Term::kNeedsH && kGrad && !sparse_plain;

  // Pass 2: the loss (and H) unless pass 3 computes it.
  double value = 0.0;
  if (!merged) {
    if (kSparse && !Term::kNeedsH && L.add == 0.0) {
      // Only the target class has y' != 0.
      const internal::ScalarMath<T> sm;
      const T xt = x[t * xs];
      T logq, q;
      if (kLogits) {
        logq = (xt - row_max) - log_sum;
        q = std::exp(logq);
      } else {
        q = losses::Clamp(sm, xt * inv_sum, static_cast<T>(L.eps), static_cast<T>(1.0 - L.eps));
        logq = std::log(q);
      }
      T dq;
      value = static_cast<double>(
          L.term.template Eval<false>(sm, static_cast<T>(L.keep * static_cast<double>(wt)),
                                      logq, q, dq));
      if (!kLogits && kGrad) {
        // H' = sum over unclipped classes of D_c: the target's, if unclipped.
        const T raw = xt * inv_sum;
        const bool clip = raw < static_cast<T>(L.eps) || raw > static_cast<T>(1.0 - L.eps);
        h = clip ? 0.0 : h;
      }
    } else {
      FoldedSum<D> lsum{d}, hsum{d};
      for (c = 0; c < C; c += N) {
        const bool tail = c >= full;
        V logq, q;
        hn::Mask<D> clipped;
        probs(c, tail, logq, q, clipped);
        V dl = hn::Zero(d);
        V l = L.term.template Eval<kGrad>(m, target(c, tail), logq, q, dl);
        if (tail) l = hn::IfThenElseZero(tail_mask, l);
        lsum.Add(l);
        if constexpr (kGrad) {
          if (Term::kNeedsH || !kLogits) {
            if (!kLogits) dl = hn::IfThenZeroElse(clipped, dl);
            if (tail) dl = hn::IfThenElseZero(tail_mask, dl);
            hsum.Add(dl);
          }
        }
      }
      value = lsum.Total();
      if (kGrad && (Term::kNeedsH || !kLogits)) h = hsum.Total();
    }
  }

  // Pass 3: the gradient (and the loss when merged).
  auto store_grad = [&](V gv, int64_t c, bool tail) {
    if (tail) {
      StoreTail(d, gv, g + c, static_cast<size_t>(C - full));
    } else if (N == 1) {
      hn::StoreU(gv, d, g + c * gs);
    } else {
      hn::StoreU(gv, d, g + c);
    }
  };
  if (kGrad && kLogits && sparse_plain) {
    // D_c - q_c H with D_c = 0 off the target: -q_c H = e_c (-H / s) for
    // the kept exps e_c = exp(x_c - max) (one product per element),
    // exp(log q_c) (-H) otherwise; scaled by gscale. The target class is
    // then overwritten with D_t - q_t H, q_t computed as its lane was.
    const internal::ScalarMath<T> sm;
    const T logq_t = (x[t * xs] - row_max) - log_sum;
    T q_t;
    if (small) {
      q_t = hn::ExtractLane(ev[t / N], static_cast<size_t>(t % N)) * inv_sum;
    } else if (stash) {
      q_t = g[t] * inv_sum;
    } else {
      q_t = hn::GetLane(m.ExpNonPositive(hn::Set(d, logq_t)));
    }
    // -H gscale (and / s) rounded to T once: finite unless the weights
    // themselves overflow T (keep * class weight * row weight / N > max).
    const double coef = -h * static_cast<double>(gscale);
    const V kq = hn::Set(d, static_cast<T>(coef));
    const V ke = hn::Set(d, static_cast<T>(coef * static_cast<double>(inv_sum)));
    for (c = 0; c < C; c += N) {
      const bool tail = c >= full;
      V gv;
      if (small) {
        gv = hn::Mul(ev[c / N], ke);
      } else if (stash) {
        gv = hn::Mul(load(g, 1, c, tail, T(0)), ke);
      } else {
        gv = hn::Mul(m.ExpNonPositive(hn::Sub(hn::Sub(load(x, xs, c, tail, -inf), maxv), lsv)), kq);
      }
      store_grad(gv, c, tail);
    }
    T dl_t = T(0);
    (void)L.term.template Eval<true>(sm, static_cast<T>(L.keep * static_cast<double>(wt)), logq_t,
                                     q_t, dl_t);
    g[t * gs] = (dl_t - q_t * static_cast<T>(h)) * gscale;
    return value;
  }
  if constexpr (kGrad) {
    const V hv = hn::Set(d, static_cast<T>(h));
    const V sc = hn::Set(d, gscale);
    FoldedSum<D> lsum{d};
    for (c = 0; c < C; c += N) {
      const bool tail = c >= full;
      V logq, q;
      hn::Mask<D> clipped;
      probs(c, tail, logq, q, clipped);
      V dl = hn::Zero(d);
      V l = L.term.template Eval<true>(m, target(c, tail), logq, q, dl);
      V gv;
      if (kLogits) {
        gv = hn::NegMulAdd(q, hv, dl);  // D - q H
      } else {
        gv = hn::Mul(hn::Sub(hn::IfThenZeroElse(clipped, hn::Div(dl, q)), hv), invv);
      }
      store_grad(hn::Mul(gv, sc), c, tail);
      if (merged) {
        if (tail) l = hn::IfThenElseZero(tail_mask, l);
        lsum.Add(l);
      }
    }
    if (merged) value = lsum.Total();
  }
  return value;
}

#if HWY_TARGET != HWY_SCALAR
// Sparse softmax rows from logits with few classes: one row per lane.
// Rows of C <= kLanesMaxC classes waste most of a vector per class pass and
// pay horizontal max/sum reductions per row; here a block of Lanes(d) rows
// is walked class by class instead (a gather of column c of the block), so
// every operation is a full vector and no reduction crosses lanes. The
// statistics and the term are those of SoftmaxRow: shift = the row's max
// (0 for a fully masked row), s = sum exp(x - shift), log q = (x - shift) -
// log s, q = exp(x - shift) / s, the gradient D - q H with H = -sum y'.
// The block's logits and then its gradient go through a stack tile of
// C x Lanes values; the gradient leaves it transposed, row by row.
constexpr int64_t kLanesMaxC = 32;


// In-register transpose of a square tile of vectors (v[i] lane j <-> v[j]
// lane i) where it is a few shuffles: 8 x 8 float (AVX2), 4 x 4 float
// (128-bit) and 4 x 4 double (AVX2). Elsewhere the tile goes through
// scalar moves.
template <class D>
constexpr bool CanTranspose() {
  using T = hn::TFromD<D>;
  constexpr size_t kN = hn::MaxLanes(D());
  return !HWY_HAVE_SCALABLE && HWY_TARGET != HWY_SCALAR &&
         ((sizeof(T) == 4 && (kN == 8 || kN == 4)) || (sizeof(T) == 8 && kN == 4));
}

template <class D>
HWY_INLINE void TransposeSquare(D d, hn::Vec<D>* v) {
  using T = hn::TFromD<D>;
  constexpr size_t kN = hn::MaxLanes(D());
  const hn::Repartition<uint64_t, D> d64;
  auto lo64 = [&](hn::Vec<D> a, hn::Vec<D> b) {
    return hn::BitCast(d, hn::InterleaveLower(d64, hn::BitCast(d64, a), hn::BitCast(d64, b)));
  };
  auto hi64 = [&](hn::Vec<D> a, hn::Vec<D> b) {
    return hn::BitCast(d, hn::InterleaveUpper(d64, hn::BitCast(d64, a), hn::BitCast(d64, b)));
  };
  if constexpr (sizeof(T) == 8) {  // 4 x 4 double: unpack, then 128-bit halves
    const auto t0 = hn::InterleaveLower(d, v[0], v[1]), t1 = hn::InterleaveUpper(d, v[0], v[1]);
    const auto t2 = hn::InterleaveLower(d, v[2], v[3]), t3 = hn::InterleaveUpper(d, v[2], v[3]);
    v[0] = hn::ConcatLowerLower(d, t2, t0);
    v[1] = hn::ConcatLowerLower(d, t3, t1);
    v[2] = hn::ConcatUpperUpper(d, t2, t0);
    v[3] = hn::ConcatUpperUpper(d, t3, t1);
  } else if constexpr (kN == 4) {  // 4 x 4 float in one 128-bit block
    const auto t0 = hn::InterleaveLower(d, v[0], v[1]), t1 = hn::InterleaveUpper(d, v[0], v[1]);
    const auto t2 = hn::InterleaveLower(d, v[2], v[3]), t3 = hn::InterleaveUpper(d, v[2], v[3]);
    v[0] = lo64(t0, t2);
    v[1] = hi64(t0, t2);
    v[2] = lo64(t1, t3);
    v[3] = hi64(t1, t3);
  } else {  // 8 x 8 float: per 128-bit block as above, then the halves
    hn::Vec<D> u[8];
    for (int k = 0; k < 8; k += 4) {
      const auto t0 = hn::InterleaveLower(d, v[k], v[k + 1]);
      const auto t1 = hn::InterleaveUpper(d, v[k], v[k + 1]);
      const auto t2 = hn::InterleaveLower(d, v[k + 2], v[k + 3]);
      const auto t3 = hn::InterleaveUpper(d, v[k + 2], v[k + 3]);
      u[k] = lo64(t0, t2);
      u[k + 1] = hi64(t0, t2);
      u[k + 2] = lo64(t1, t3);
      u[k + 3] = hi64(t1, t3);
    }
    for (int j = 0; j < 4; ++j) {
      v[j] = hn::ConcatLowerLower(d, u[4 + j], u[j]);
      v[4 + j] = hn::ConcatUpperUpper(d, u[4 + j], u[j]);
    }
  }
}

// A block's rows (row i at p + i * row, C contiguous classes) to or from
// the tile (class c at tile + c * N). With CanTranspose and C >= N: row
// vectors of N classes transposed in registers, the last chunk overlapping
// the one before it (its classes are written twice with the same values).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void RowsToTile(D d, const T* p, int64_t row, int64_t C, T* HWY_RESTRICT tile) {
  constexpr size_t kN = hn::MaxLanes(D());
  if constexpr (CanTranspose<D>()) {
    for (int64_t c0 = 0; c0 < C; c0 += kN) {
      const int64_t c = std::min<int64_t>(c0, C - static_cast<int64_t>(kN));
      hn::Vec<D> v[kN];
      for (size_t i = 0; i < kN; ++i) v[i] = hn::LoadU(d, p + static_cast<int64_t>(i) * row + c);
      TransposeSquare(d, v);
      for (size_t j = 0; j < kN; ++j) hn::Store(v[j], d, tile + (c + static_cast<int64_t>(j)) * kN);
    }
  }
}
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void TileToRows(D d, const T* HWY_RESTRICT tile, int64_t C, T* p, int64_t row) {
  constexpr size_t kN = hn::MaxLanes(D());
  if constexpr (CanTranspose<D>()) {
    for (int64_t c0 = 0; c0 < C; c0 += kN) {
      const int64_t c = std::min<int64_t>(c0, C - static_cast<int64_t>(kN));
      hn::Vec<D> v[kN];
      for (size_t j = 0; j < kN; ++j) v[j] = hn::Load(d, tile + (c + static_cast<int64_t>(j)) * kN);
      TransposeSquare(d, v);
      for (size_t i = 0; i < kN; ++i) hn::StoreU(v[i], d, p + static_cast<int64_t>(i) * row + c);
    }
  }
}

// Blocks transposed into the tile per round: the class vectors are then
// read long after the stores that wrote them (a vector load of eight
// just-stored scalars cannot be forwarded and stalls), and computed in pairs.
constexpr int64_t kLanesBlocks = 4;

// Per-lane row data of a block: label (-1 when ignored), y'_t's keep * w_t,
// H, the sample weight s and the gradient's scale.
template <typename T, size_t kMaxN>
struct LaneRows {
  HWY_ALIGN T lab[kMaxN], kt[kMaxN], h[kMaxN], s[kMaxN], gs[kMaxN];
  bool ignored[kMaxN];
};

// kB blocks at once (independent dependency chains for the out-of-order
// core: the max, the sum and the loss are each a chain along the classes).
// Block b's logits are class c at xt[b * tile + c * Lanes ...], overwritten
// with its gradient (scaled; zero in dead lanes). l[b] gets the lanes'
// unweighted losses (NaN for a fully masked row; ignored lanes hold a value
// to be discarded).
template <int kB, class Term, typename T, bool kGrad, class D, size_t kMaxN>
HWY_INLINE void SoftmaxLanesBlocks(D d, const losses::SoftmaxRows<Term>& L,
                                   const internal::RowArgs& a, const LaneRows<T, kMaxN>* lr,
                                   T* HWY_RESTRICT xt, int64_t tile, hn::Vec<D>* l) {
  static_assert(!Term::kNeedsH, "H = -sum y' is known per row");
  using V = hn::Vec<D>;
  const SimdMath<D> m{d};
  const size_t N = hn::Lanes(d);
  const int64_t C = a.C;
  const T* cw = static_cast<const T*>(a.cw);
  const V neg_inf = hn::Set(d, -std::numeric_limits<T>::infinity());

  HWY_ALIGN T et[kB * kLanesMaxC * kMaxN];  // exp(x - shift)
  V mx[kB], shift[kB], s[kB];
  for (int b = 0; b < kB; ++b) {
    // hn::Max may drop a NaN, which then reaches the sum through its exp.
    mx[b] = neg_inf;
    s[b] = hn::Zero(d);
  }
  for (int64_t c = 0; c < C; ++c) {
    for (int b = 0; b < kB; ++b) mx[b] = hn::Max(mx[b], hn::Load(d, xt + b * tile + c * N));
  }
  for (int b = 0; b < kB; ++b) shift[b] = hn::IfThenZeroElse(hn::Eq(mx[b], neg_inf), mx[b]);
  for (int64_t c = 0; c < C; ++c) {
    for (int b = 0; b < kB; ++b) {
      const V e = m.ExpNonPositive(hn::Sub(hn::Load(d, xt + b * tile + c * N), shift[b]));
      hn::Store(e, d, et + (b * C + c) * N);
      s[b] = hn::Add(s[b], e);
    }
  }
  const V add = hn::Set(d, static_cast<T>(L.add));
  V logs[kB], inv[kB], labv[kB], ktv[kB], hv[kB], gs[kB], lsum[kB];
  hn::Mask<D> masked[kB], dead[kB];
  for (int b = 0; b < kB; ++b) {
    masked[b] = hn::Eq(mx[b], neg_inf);  // every class -inf
    // s >= 1 (the max contributes 1) unless the row is masked or NaN.
    logs[b] = m.Log(s[b]);
    inv[b] = hn::Div(hn::Set(d, T(1)), s[b]);
    labv[b] = hn::Load(d, lr[b].lab);
    ktv[b] = hn::Load(d, lr[b].kt);
    hv[b] = hn::Load(d, lr[b].h);
    gs[b] = hn::Load(d, lr[b].gs);
    // No gradient for fully masked rows and ignored ones (label -1), whose
    // logits may be NaN.
    dead[b] = hn::Or(masked[b], hn::Lt(labv[b], hn::Zero(d)));
    lsum[b] = hn::Zero(d);
  }
  for (int64_t c = 0; c < C; ++c) {
    const V base = cw ? hn::Mul(hn::Set(d, cw[c]), add) : add;
    const V cv = hn::Set(d, static_cast<T>(c));
    for (int b = 0; b < kB; ++b) {
      T* x = xt + b * tile + c * N;
      const V logq = hn::Sub(hn::Sub(hn::Load(d, x), shift[b]), logs[b]);
      const V q = hn::Mul(hn::Load(d, et + (b * C + c) * N), inv[b]);
      const V y = hn::Add(base, hn::IfThenElseZero(hn::Eq(cv, labv[b]), ktv[b]));
      V dl = hn::Zero(d);
      lsum[b] = hn::Add(lsum[b], L.term.template Eval<kGrad>(m, y, logq, q, dl));
      if constexpr (kGrad) {
        const V gv = hn::Mul(hn::NegMulAdd(q, hv[b], dl), gs[b]);  // (D - q H) * scale
        hn::Store(hn::IfThenZeroElse(dead[b], gv), d, x);
      }
    }
  }
  for (int b = 0; b < kB; ++b) {
    l[b] = hn::IfThenElse(masked[b], hn::Set(d, std::numeric_limits<T>::quiet_NaN()), lsum[b]);
  }
}

// The sparse softmax rows [0, ...) of a run in blocks of Lanes(d) rows
// (SoftmaxLanesBlocks); returns the first row not done and adds the blocks'
// sum_r s_r l_r to `total`.
template <class Term, typename T, bool kGrad, class D>
HWY_INLINE int64_t SoftmaxLanesRun(D d, const losses::SoftmaxRows<Term>& L,
                                   const internal::RowArgs& a, double& total) {
  constexpr size_t kMaxN = hn::MaxLanes(D());
  constexpr int kPair = 2;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), C = a.C, tile = C * N;
  const T* X = static_cast<const T*>(a.x);
  const T* RW = static_cast<const T*>(a.rw);
  const T* cw = static_cast<const T*>(a.cw);
  T* G = static_cast<T*>(a.grad);
  T* out = static_cast<T*>(a.losses);
  // Plain rows (no sample or class weights, nothing ignored, no per-row
  // output): constant row data, and the losses summed in float64 lanes.
  const bool plain = !RW && !cw && !a.has_ignore && !out;
  const hn::Repartition<double, D> dd;  // half the lanes (float) or all (double)
  auto acc_lo = hn::Zero(dd), acc_hi = hn::Zero(dd);
  LaneRows<T, kMaxN> lr[kLanesBlocks];
  if (plain) {
    for (int64_t b = 0; b < kLanesBlocks; ++b) {
      for (int64_t i = 0; i < N; ++i) {
        lr[b].kt[i] = static_cast<T>(L.keep);
        lr[b].h[i] = static_cast<T>(-(L.keep + L.add * a.cw_total));
        lr[b].gs[i] = static_cast<T>(a.grad_scale);
      }
    }
  }
  HWY_ALIGN T xt[kLanesBlocks * kLanesMaxC * kMaxN];
  const bool shuffle = CanTranspose<D>() && C >= N;
  int64_t r = 0;
  while (r + N <= a.rows) {
    // Blocks of this round: kLanesBlocks (pairs of two), or what is left.
    const int64_t nb = std::min(kLanesBlocks, (a.rows - r) / N);
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t rb = r + b * N;
      if (shuffle) {
        RowsToTile(d, X + rb * a.x_row, a.x_row, C, xt + b * tile);
      } else {
        for (int64_t i = 0; i < N; ++i) {
          const T* xr = X + (rb + i) * a.x_row;
          for (int64_t c = 0; c < C; ++c) xt[b * tile + c * N + i] = xr[c];
        }
      }
      LaneRows<T, kMaxN>& rows = lr[b];
      if (plain) {
        for (int64_t i = 0; i < N; ++i) {
          rows.lab[i] = static_cast<T>(a.labels[(rb + i) * a.label_row]);
        }
      } else {
        for (int64_t i = 0; i < N; ++i) {
          const int64_t t = a.labels[(rb + i) * a.label_row];
          const bool ign = a.has_ignore && t == a.ignore_index;
          const double wt = ign ? 0.0 : (cw ? static_cast<double>(cw[t]) : 1.0);
          rows.ignored[i] = ign;
          rows.lab[i] = ign ? T(-1) : static_cast<T>(t);
          rows.kt[i] = static_cast<T>(L.keep * wt);
          rows.h[i] = static_cast<T>(-(L.keep * wt + L.add * a.cw_total));
          rows.s[i] = RW ? RW[(rb + i) * a.rw_row] : T(1);
          rows.gs[i] = ign ? T(0) : static_cast<T>(static_cast<double>(rows.s[i]) * a.grad_scale);
        }
      }
    }
    hn::Vec<D> l[kLanesBlocks];
    int64_t b = 0;
    for (; b + kPair <= nb; b += kPair) {
      SoftmaxLanesBlocks<kPair, Term, T, kGrad>(d, L, a, lr + b, xt + b * tile, tile, l + b);
    }
    for (; b < nb; ++b) {
      SoftmaxLanesBlocks<1, Term, T, kGrad>(d, L, a, lr + b, xt + b * tile, tile, l + b);
    }
    for (b = 0; b < nb; ++b) {
      const int64_t rb = r + b * N;
      T* xb = xt + b * tile;
      if constexpr (kGrad) {
        if (shuffle) {
          TileToRows(d, xb, C, G + rb * a.g_row, a.g_row);
        } else {
          for (int64_t i = 0; i < N; ++i) {
            T* g = G + (rb + i) * a.g_row;
            for (int64_t c = 0; c < C; ++c) g[c] = xb[c * N + i];
          }
        }
      }
      if (plain) {
        if constexpr (sizeof(T) == 4) {
          acc_lo = hn::Add(acc_lo, hn::PromoteTo(dd, hn::LowerHalf(l[b])));
          acc_hi = hn::Add(acc_hi, hn::PromoteTo(dd, hn::UpperHalf(hn::Half<D>(), l[b])));
        } else {
          acc_lo = hn::Add(acc_lo, hn::BitCast(dd, l[b]));
        }
        continue;
      }
      HWY_ALIGN T lv[kMaxN];
      hn::Store(l[b], d, lv);
      for (int64_t i = 0; i < N; ++i) {
        if (lr[b].ignored[i]) {
          if (out) out[(rb + i) * a.loss_row] = T(0);
          continue;
        }
        const double wl = static_cast<double>(lr[b].s[i]) * static_cast<double>(lv[i]);
        if (out) out[(rb + i) * a.loss_row] = static_cast<T>(wl);
        total += wl;
      }
    }
    r += nb * N;
  }
  if (plain) total += hn::GetLane(hn::SumOfLanes(dd, hn::Add(acc_lo, acc_hi)));
  return r;
}

#endif  // HWY_TARGET != HWY_SCALAR

// Runs the rows of one run: per-row weights, ignored labels, outputs.
template <class Term, typename T, bool kLogits, bool kSparse, bool kGrad>
double SoftmaxRun(const losses::SoftmaxRows<Term>& L, const internal::RowArgs& a) {
  const T* X = static_cast<const T*>(a.x);
  const T* Y = static_cast<const T*>(a.y);
  const T* RW = static_cast<const T*>(a.rw);
  T* G = static_cast<T*>(a.grad);
  T* out = static_cast<T*>(a.losses);
  const bool vec = a.x_cls == 1 && (kSparse || a.y_cls == 1) && (!kGrad || a.g_cls == 1);
  const hn::ScalableTag<T> d;
  const hn::CappedTag<T, 1> d1;
  double total = 0.0;
  int64_t r = 0;
#if HWY_TARGET != HWY_SCALAR
  if constexpr (kLogits && kSparse && !Term::kNeedsH) {
    if (vec && hn::Lanes(d) > 1 && a.C <= kLanesMaxC) r = SoftmaxLanesRun<Term, T, kGrad>(d, L, a, total);
  }
#endif
  for (; r < a.rows; ++r) {
    const T s = RW ? RW[r * a.rw_row] : T(1);
    T* g = kGrad ? G + r * a.g_row : nullptr;
    int64_t t = 0;
    if constexpr (kSparse) {
      t = a.labels[r * a.label_row];
      if (a.has_ignore && t == a.ignore_index) {
        if constexpr (kGrad) {
          for (int64_t j = 0; j < a.C; ++j) g[j * a.g_cls] = T(0);
        }
        if (out) out[r * a.loss_row] = T(0);
        continue;
      }
    }
    const T gscale = static_cast<T>(static_cast<double>(s) * a.grad_scale);
    bool bad = false;
    const T* xr = X + r * a.x_row;
    const T* yr = kSparse ? nullptr : Y + r * a.y_row;
    const double l =
        vec ? SoftmaxRow<Term, T, kLogits, kSparse, kGrad>(d, L, a, xr, yr, t, g, gscale, bad)
            : SoftmaxRow<Term, T, kLogits, kSparse, kGrad>(d1, L, a, xr, yr, t, g, gscale, bad);
    if (bad) {
      *a.bad_row = r;
      return total;
    }
    const double wl = static_cast<double>(s) * l;
    if (out) out[r * a.loss_row] = static_cast<T>(wl);
    total += wl;
  }
  return total;
}

template <class Term, typename T>
double SoftmaxKernelImpl(const void* functor, const internal::RowArgs& a) {
  losses::SoftmaxRows<Term> L;
  static_assert(std::is_trivially_copyable<losses::SoftmaxRows<Term>>::value, "plain data");
  std::memcpy(static_cast<void*>(&L), functor, sizeof(L));
  L.keep = 1.0 - L.label_smoothing;
  L.add = L.label_smoothing / static_cast<double>(a.C);
  const bool grad = a.grad != nullptr, sparse = a.labels != nullptr;
#define FASTLOSS_SOFTMAX_MODE(LOGITS, SPARSE, GRAD)                             \
  if (L.from_logits == LOGITS && sparse == SPARSE && grad == GRAD) {            \
    return SoftmaxRun<Term, T, LOGITS, SPARSE, GRAD>(L, a);                     \
  }
  FASTLOSS_SOFTMAX_MODE(true, false, false)
  FASTLOSS_SOFTMAX_MODE(true, false, true)
  FASTLOSS_SOFTMAX_MODE(false, false, false)
  FASTLOSS_SOFTMAX_MODE(false, false, true)
  if constexpr (!Term::kNeedsH) {
    FASTLOSS_SOFTMAX_MODE(true, true, false)
    FASTLOSS_SOFTMAX_MODE(true, true, true)
    FASTLOSS_SOFTMAX_MODE(false, true, false)
    FASTLOSS_SOFTMAX_MODE(false, true, true)
  }
#undef FASTLOSS_SOFTMAX_MODE
  return 0.0;
}

// The softmax kernel of a SoftmaxRows<Term> functor.
template <class Rows, typename T>
double SoftmaxRowKernel(const void* functor, const internal::RowArgs& a) {
  return SoftmaxKernelImpl<typename Rows::TermType, T>(functor, a);
}

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
    return &HWY_DYNAMIC_DISPATCH(Name##RowF32);                                  \
  }                                                                              \
  template <>                                                                    \
  internal::RowKernel internal::RowKernelFor<losses::Name, double>() {           \
    return &HWY_DYNAMIC_DISPATCH(Name##RowF64);                                  \
  }
#endif
