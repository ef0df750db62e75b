// Part of drivers/rowwise/rowwise-inl.h (per-target code, included there
// inside namespace fastloss::HWY_NAMESPACE; no guard of its own): one row of
// a softmax-family loss (SoftmaxRow), row by row.
// NOLINT(build/header_guard)

// One softmax row's state and its passes (see rowwise-inl.h): the
// constructor derives the row's constants, then Run calls
//   Pass1           the row's max and sum of exps (one of the four walks
//                   MaxExpSmall, MaxExpStash, MaxExpOnline, SumProbs) and,
//                   for dense targets, sum(y') and their range check;
//   RowStatistics   log(sum), 1 / sum; a fully masked row ends here;
//   TargetLoss or LossPass   pass 2, unless pass 3 gives the loss;
//   TargetGradPass or GradPass   pass 3.
// Every member function is HWY_INLINE: each instantiation stays one function
// body, as a single function was, and the compiler keeps the members in
// registers (scalar replacement of the struct). For that the struct has no
// array member: an element read at a variable index (a small row's kept
// exps, ev[c / N]) would keep GCC from scalarizing the struct, so those
// vectors are an array of the caller's (SoftmaxRow). No lambdas either: when
// these steps were lambdas, GCC 12 emitted none of pass 1's prefetches (no
// prefetch instruction in any SoftmaxRun instantiation).
template <class Term, typename T, bool kLogits, bool kSparse, bool kGrad, class D>
struct SoftmaxRowPasses {
  using V = hn::Vec<D>;
  using Mask = hn::Mask<D>;

  // The row and its options.
  D d;
  SimdMath<D> m;
  const losses::SoftmaxRows<Term>& L;
  const internal::RowArgs& a;
  const T* x;
  const T* y;
  int64_t t;
  T* g;
  T gscale;
  V* ev;  // exp(x - max) of a small row's (at most 4) vectors

  // Constants of the row.
  int64_t N, C, xs, ys, gs, full;
  const T* cw;
  T inf;
  V neg_inf;
  Mask tail_mask;
  // Effective targets y'_c: the target's class weight (sparse; 1 otherwise)
  // and keep * wt, add, keep and the label as vectors.
  T wt;
  V keep_t, add, keep, tv;
  // Rows of at most four vectors (small C) keep exp(x - max) in registers:
  // the max first, then one exp per vector, reused by the gradient (two
  // exps per vector fewer than the online pass and a recomputation).
  bool small;
  // Larger rows with a gradient buffer of their own (not aliasing the logits
  // or the targets, which pass 3 reads again) do the same through memory:
  // the max first (no exp), then exp(x - max) once per element, kept in g
  // until pass 3 turns it into the gradient. One exp per element instead of
  // the online pass's 1.25 and pass 3's recomputation.
  bool stash;

  // Pass 1: max and sum of exp(x - max) in lanes (sum of x for
  // probabilities); dense targets' sum; 1 in lanes with a target outside
  // [0, 1].
  V mv = neg_inf, sv = hn::Zero(d);
  FoldedSum<D> ysum{d};
  V bad_acc = hn::Zero(d);

  // Row statistics (scalars and broadcast), and H = sum_c D_c.
  T row_max = 0, log_sum = 0, inv_sum = 0;
  V maxv = hn::Zero(d), lsv = hn::Zero(d), invv = hn::Zero(d);
  V lo = hn::Zero(d), hi = hn::Zero(d);
  double h = 0.0;

  HWY_INLINE SoftmaxRowPasses(D d_, const losses::SoftmaxRows<Term>& L_,
                              const internal::RowArgs& a_, const T* x_, const T* y_, int64_t t_,
                              T* g_, T gscale_, V* ev_)
      : d(d_),
        m{d_},
        L(L_),
        a(a_),
        x(x_),
        y(y_),
        t(t_),
        g(g_),
        gscale(gscale_),
        ev(ev_),
        N(static_cast<int64_t>(hn::Lanes(d_))),
        C(a_.C),
        xs(a_.x_cls),
        ys(a_.y_cls),
        gs(a_.g_cls),
        full(C / N * N),
        cw(static_cast<const T*>(a_.cw)),
        inf(std::numeric_limits<T>::infinity()),
        neg_inf(hn::Set(d_, -inf)),
        tail_mask(hn::FirstN(d_, static_cast<size_t>(C - full))),
        wt(kSparse ? (cw ? cw[t_] : T(1)) : T(1)),
        keep_t(hn::Set(d_, static_cast<T>(L_.keep * static_cast<double>(wt)))),
        add(hn::Set(d_, static_cast<T>(L_.add))),
        keep(hn::Set(d_, static_cast<T>(L_.keep))),
        tv(hn::Set(d_, static_cast<T>(t_))),
        small(kLogits && !Term::kNeedsH && N > 1 && C <= 4 * N),
        stash(kLogits && kGrad && !Term::kNeedsH && !small && N > 1 && gs == 1 && g_ != x_ &&
              g_ != y_) {}

  // The vector of classes [c, c + N) of `base` (class stride `stride`); the
  // tail's lanes past the row's end hold `fill`.
  HWY_INLINE V Load(const T* base, int64_t stride, int64_t c, bool tail, T fill) const {
    if (tail) return LoadTail(d, base + c, static_cast<size_t>(C - full), fill);
    return hn::LoadU(d, base + c * stride);
  }

  // Effective targets y'_c (0 in the lanes past the row's end).
  HWY_INLINE V Target(int64_t c, bool tail) const {
    V r;
    if constexpr (kSparse) {
      const V base = cw ? hn::Mul(Load(cw, 1, c, tail, T(0)), add) : add;
      r = hn::Add(base, hn::IfThenElseZero(hn::Eq(hn::Iota(d, static_cast<T>(c)), tv), keep_t));
    } else {
      const V yv = Load(y, ys, c, tail, T(0));
      r = L.add == 0.0 ? (L.keep == 1.0 ? yv : hn::Mul(keep, yv)) : hn::MulAdd(keep, yv, add);
    }
    return tail ? hn::IfThenElseZero(tail_mask, r) : r;
  }

  // Pass 1 reads the row from memory: its lines are requested ahead (the
  // last ones run into the next row); the later passes find it in cache.
  HWY_INLINE void Prefetch(int64_t c, int64_t k) const {
    if (xs == 1) internal::PrefetchAhead(x, static_cast<size_t>(c), k * N * sizeof(T));
    if constexpr (!kSparse) {
      if (ys == 1) internal::PrefetchAhead(y, static_cast<size_t>(c), k * N * sizeof(T));
    }
  }

  // Dense targets of classes [c, c + N): into ysum, and range-checked.
  HWY_INLINE void Check(int64_t c, bool tail) {
    if constexpr (!kSparse) {
      const V yv = Load(y, ys, c, tail, T(0));
      ysum.Add(yv);
      if (a.check_y) {
        const auto out = hn::Or(hn::Lt(yv, hn::Zero(d)), hn::Gt(yv, hn::Set(d, T(1))));
        bad_acc = hn::Or(bad_acc, hn::IfThenElseZero(out, hn::Set(d, T(1))));
      }
    }
  }

  // Adds `k` vectors to the online max / sum-exp: one rescale per group.
  HWY_INLINE void LseAdd(const V* v, int k) {
    V cm = v[0];
    for (int i = 1; i < k; ++i) cm = m.Max(cm, v[i]);
    const V mnew = m.Max(mv, cm);
    const V shift = hn::IfThenElse(hn::Eq(mnew, neg_inf), hn::Zero(d), mnew);
    V s = hn::Mul(sv, m.ExpNonPositive(hn::Sub(mv, shift)));
    for (int i = 0; i < k; ++i) s = hn::Add(s, m.ExpNonPositive(hn::Sub(v[i], shift)));
    sv = s;
    mv = mnew;
  }

  // Pass 1 of a small row: the max, then exp(x - max) kept in ev.
  HWY_INLINE void MaxExpSmall() {
    const int64_t nv = (C + N - 1) / N;
    V v[4];
    V cm = neg_inf;
    for (int64_t i = 0; i < nv; ++i) {
      const bool tail = i * N >= full;
      v[i] = Load(x, xs, i * N, tail, -inf);
      Check(i * N, tail);
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
  }

  // Pass 1 with the stash: the max in four chains, then exp(x - max) into g.
  HWY_INLINE void MaxExpStash() {
    V cm[4] = {neg_inf, neg_inf, neg_inf, neg_inf};
    int64_t c = 0;
    for (; c + 4 * N <= full; c += 4 * N) {
      Prefetch(c, 4);
      for (int i = 0; i < 4; ++i) {
        cm[i] = m.Max(cm[i], Load(x, xs, c + i * N, false, T(0)));
        Check(c + i * N, false);
      }
    }
    for (; c < full; c += N) {
      cm[0] = m.Max(cm[0], Load(x, xs, c, false, T(0)));
      Check(c, false);
    }
    if (full < C) {
      cm[0] = m.Max(cm[0], Load(x, xs, full, true, -inf));
      Check(full, true);
    }
    // As for small rows: x86 max ignores NaN, a NaN lane reaches the sum.
    const V cmax = m.Max(m.Max(cm[0], cm[1]), m.Max(cm[2], cm[3]));
    const T mx = hn::GetLane(hn::MaxOfLanes(d, cmax));
    const V shift = hn::Set(d, mx == -inf ? T(0) : mx);
    V s[4] = {hn::Zero(d), hn::Zero(d), hn::Zero(d), hn::Zero(d)};
    int64_t j = 0;
    for (; j + 4 * N <= full; j += 4 * N) {
      for (int i = 0; i < 4; ++i) {
        const V e = m.ExpNonPositive(hn::Sub(Load(x, xs, j + i * N, false, T(0)), shift));
        hn::StoreU(e, d, g + j + i * N);
        s[i] = hn::Add(s[i], e);
      }
    }
    for (; j < full; j += N) {
      const V e = m.ExpNonPositive(hn::Sub(Load(x, xs, j, false, T(0)), shift));
      hn::StoreU(e, d, g + j);
      s[0] = hn::Add(s[0], e);
    }
    if (full < C) {
      const V e = m.ExpNonPositive(hn::Sub(Load(x, xs, full, true, -inf), shift));
      StoreTail(d, e, g + full, static_cast<size_t>(C - full));
      s[0] = hn::Add(s[0], e);
    }
    mv = hn::Set(d, mx);
    sv = hn::Add(hn::Add(s[0], s[1]), hn::Add(s[2], s[3]));
  }

  // Pass 1 from logits otherwise: the online max and sum of exps.
  HWY_INLINE void MaxExpOnline() {
    int64_t c = 0;
    for (; c + 4 * N <= full; c += 4 * N) {
      Prefetch(c, 4);
      const V v[4] = {Load(x, xs, c, false, T(0)), Load(x, xs, c + N, false, T(0)),
                      Load(x, xs, c + 2 * N, false, T(0)), Load(x, xs, c + 3 * N, false, T(0))};
      LseAdd(v, 4);
      for (int i = 0; i < 4; ++i) Check(c + i * N, false);
    }
    for (; c < full; c += N) {
      const V v[1] = {Load(x, xs, c, false, T(0))};
      LseAdd(v, 1);
      Check(c, false);
    }
    if (full < C) {
      const V v[1] = {Load(x, xs, full, true, -inf)};
      LseAdd(v, 1);
      Check(full, true);
    }
  }

  // Pass 1 from probabilities: their sum.
  HWY_INLINE void SumProbs() {
    int64_t c = 0;
    for (; c < full; c += N) {
      Prefetch(c, 1);
      sv = hn::Add(sv, Load(x, xs, c, false, T(0)));
      Check(c, false);
    }
    if (full < C) {
      sv = hn::Add(sv, Load(x, xs, full, true, T(0)));
      Check(full, true);
    }
  }

  // Pass 1: the row's statistics; dense targets' sum and range. False when
  // a target lies outside [0, 1].
  HWY_INLINE bool Pass1() {
    if (small) {
      MaxExpSmall();
    } else if (stash) {
      MaxExpStash();
    } else if (kLogits) {
      MaxExpOnline();
    } else {
      SumProbs();
    }
    if constexpr (!kSparse) {
      if (a.check_y && !hn::AllFalse(d, hn::Ne(bad_acc, hn::Zero(d)))) return false;
    }
    return true;
  }

  // Row statistics as broadcast vectors. False for a fully masked row (its
  // gradient is then zero; its loss NaN).
  HWY_INLINE bool RowStatistics() {
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
        return false;
      }
      log_sum = static_cast<T>(std::log(sum));
      inv_sum = T(1) / sum;  // q from the kept exps (small rows)
    } else {
      const T sum = hn::GetLane(hn::SumOfLanes(d, sv));
      inv_sum = T(1) / sum;
    }
    maxv = hn::Set(d, row_max);
    lsv = hn::Set(d, log_sum);
    invv = hn::Set(d, inv_sum);
    lo = hn::Set(d, static_cast<T>(L.eps));
    hi = hn::Set(d, static_cast<T>(1.0 - L.eps));
    // sum_c D_c when it does not depend on q: -sum_c y'_c.
    if constexpr (!Term::kNeedsH) {
      if constexpr (kSparse) {
        h = -(L.keep * static_cast<double>(wt) + L.add * a.cw_total);
      } else {
        h = -(L.keep * ysum.Total() + L.add * static_cast<double>(C));
      }
    }
    return true;
  }

  // log q, q and (probabilities) the active-clip mask of class c.
  HWY_INLINE void Probs(int64_t c, bool tail, V& logq, V& q, Mask& clipped) const {
    const V xv = Load(x, xs, c, tail, kLogits ? -inf : T(1));
    if (kLogits) {
      logq = hn::Sub(hn::Sub(xv, maxv), lsv);
      // logq <= 0: x <= max and log(sum) >= 0 (the max contributes 1).
      if (small) {
        q = hn::Mul(ev[c / N], invv);
      } else if (stash) {
        q = hn::Mul(Load(g, 1, c, tail, T(0)), invv);
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
  }

  // Pass 2 of sparse targets without smoothing: only the target class has
  // y' != 0, so the loss is its term alone.
  HWY_INLINE double TargetLoss() {
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
    const double value = static_cast<double>(L.term.template Eval<false>(
        sm, static_cast<T>(L.keep * static_cast<double>(wt)), logq, q, dq));
    if (!kLogits && kGrad) {
      // H' = sum over unclipped classes of D_c: the target's, if unclipped.
      const T raw = xt * inv_sum;
      const bool clip = raw < static_cast<T>(L.eps) || raw > static_cast<T>(1.0 - L.eps);
      h = clip ? 0.0 : h;
    }
    return value;
  }

  // Pass 2 otherwise: the loss summed over the classes (and H when it
  // depends on q, or for probabilities, over the unclipped classes).
  HWY_INLINE double LossPass() {
    FoldedSum<D> lsum{d}, hsum{d};
    for (int64_t c = 0; c < C; c += N) {
      const bool tail = c >= full;
      V logq, q;
      Mask clipped;
      Probs(c, tail, logq, q, clipped);
      V dl = hn::Zero(d);
      V l = L.term.template Eval<kGrad>(m, Target(c, tail), logq, q, dl);
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
    const double value = lsum.Total();
    if (kGrad && (Term::kNeedsH || !kLogits)) h = hsum.Total();
    return value;
  }

  HWY_INLINE void StoreGrad(V gv, int64_t c, bool tail) const {
    if (tail) {
      StoreTail(d, gv, g + c, static_cast<size_t>(C - full));
    } else if (N == 1) {
      hn::StoreU(gv, d, g + c * gs);
    } else {
      hn::StoreU(gv, d, g + c);
    }
  }

  // Pass 3 of sparse targets without smoothing, from logits: D_c - q_c H
  // with D_c = 0 off the target: -q_c H = e_c (-H / s) for the kept exps
  // e_c = exp(x_c - max) (one product per element), exp(log q_c) (-H)
  // otherwise; scaled by gscale. The target class is then overwritten with
  // D_t - q_t H, q_t computed as its lane was.
  HWY_INLINE void TargetGradPass() {
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
    for (int64_t c = 0; c < C; c += N) {
      const bool tail = c >= full;
      V gv;
      if (small) {
        gv = hn::Mul(ev[c / N], ke);
      } else if (stash) {
        gv = hn::Mul(Load(g, 1, c, tail, T(0)), ke);
      } else {
        gv = hn::Mul(m.ExpNonPositive(hn::Sub(hn::Sub(Load(x, xs, c, tail, -inf), maxv), lsv)), kq);
      }
      StoreGrad(gv, c, tail);
    }
    T dl_t = T(0);
    (void)L.term.template Eval<true>(sm, static_cast<T>(L.keep * static_cast<double>(wt)), logq_t,
                                     q_t, dl_t);
    g[t * gs] = (dl_t - q_t * static_cast<T>(h)) * gscale;
  }

  // Pass 3 otherwise: the gradient; with `merged`, the loss too (returned;
  // 0 otherwise).
  HWY_INLINE double GradPass(bool merged) {
    const V hv = hn::Set(d, static_cast<T>(h));
    const V sc = hn::Set(d, gscale);
    FoldedSum<D> lsum{d};
    for (int64_t c = 0; c < C; c += N) {
      const bool tail = c >= full;
      V logq, q;
      Mask clipped;
      Probs(c, tail, logq, q, clipped);
      V dl = hn::Zero(d);
      V l = L.term.template Eval<true>(m, Target(c, tail), logq, q, dl);
      V gv;
      if (kLogits) {
        gv = hn::NegMulAdd(q, hv, dl);  // D - q H
      } else {
        gv = hn::Mul(hn::Sub(hn::IfThenZeroElse(clipped, hn::Div(dl, q)), hv), invv);
      }
      StoreGrad(hn::Mul(gv, sc), c, tail);
      if (merged) {
        if (tail) l = hn::IfThenElseZero(tail_mask, l);
        lsum.Add(l);
      }
    }
    return merged ? lsum.Total() : 0.0;
  }

  // The row: l_r (unweighted; NaN for a fully masked row), or `bad` set
  // (targets outside [0, 1]).
  HWY_INLINE double Run(bool& bad) {
    if (!Pass1()) {
      bad = true;
      return 0.0;
    }
    if (!RowStatistics()) return std::numeric_limits<double>::quiet_NaN();
    // Sparse targets without smoothing: y' (and, with !kNeedsH, D) is 0 off
    // the target class, so the loss is the target's term alone (pass 2's
    // scalar branch) and the gradient off the target is -q_c H (pass 3).
    const bool sparse_plain = kSparse && !Term::kNeedsH && L.add == 0.0;
    const bool merged = kLogits && !Term::kNeedsH && kGrad && !sparse_plain;
    double value = 0.0;
    if (!merged) value = sparse_plain ? TargetLoss() : LossPass();
    if (kGrad && kLogits && sparse_plain) {
      TargetGradPass();
      return value;
    }
    if constexpr (kGrad) {
      const double merged_value = GradPass(merged);
      if (merged) value = merged_value;
    }
    return value;
  }
};

// One row of a softmax-family loss. Returns l_r (unweighted; NaN for a
// fully masked row) or sets `bad` (targets outside [0, 1]).
template <class Term, typename T, bool kLogits, bool kSparse, bool kGrad, class D>
HWY_INLINE double SoftmaxRow(D d, const losses::SoftmaxRows<Term>& L, const internal::RowArgs& a,
                             const T* x, const T* y, int64_t t, T* g, T gscale, bool& bad) {
  hn::Vec<D> ev[4];  // SoftmaxRowPasses::ev
  SoftmaxRowPasses<Term, T, kLogits, kSparse, kGrad, D> row(d, L, a, x, y, t, g, gscale, ev);
  return row.Run(bad);
}
