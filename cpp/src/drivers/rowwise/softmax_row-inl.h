// Part of drivers/rowwise/rowwise-inl.h (per-target code, included there
// inside namespace fastloss::HWY_NAMESPACE; no guard of its own): one row of
// a softmax-family loss (SoftmaxRow), row by row.
// NOLINT(build/header_guard)

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
