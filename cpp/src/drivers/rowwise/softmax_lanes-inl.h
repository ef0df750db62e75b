// Part of drivers/rowwise/rowwise-inl.h (per-target code, included there
// inside namespace fastloss::HWY_NAMESPACE; no guard of its own): sparse
// softmax rows with few classes, one row per lane, and the softmax kernel
// entry (SoftmaxRun, SoftmaxKernelImpl, SoftmaxRowKernel).
// NOLINT(build/header_guard)

#if HWY_TARGET != HWY_SCALAR
// Softmax rows from logits with few classes, one row per lane: sparse
// targets (labels), and dense ones (categorical cross-entropy, focal, poly-1
// on one-hot or soft targets). Rows of C <= kLanesMaxC classes waste most of
// a vector per class pass and pay horizontal max/sum reductions per row;
// here a block of Lanes(d) rows is walked class by class instead (a gather
// of column c of the block), so every operation is a full vector and no
// reduction crosses lanes. The statistics and the term are those of
// SoftmaxRow: shift = the row's max (0 for a fully masked row), s = sum
// exp(x - shift), log q = (x - shift) - log s, q = exp(x - shift) / s, the
// gradient D - q H with H = sum_c D_c (= -sum y' for cross-entropy: known
// per row for labels, summed in the lanes for dense targets, with the
// term's D_c kept in the tile until H is complete). The block's logits (and
// dense targets) go through stack tiles of C x Lanes values; the gradient
// leaves the logits' tile transposed, row by row.
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
template <int kB, class Term, typename T, bool kSparse, bool kGrad, class D, size_t kMaxN>
HWY_INLINE void SoftmaxLanesBlocks(D d, const losses::SoftmaxRows<Term>& L,
                                   const internal::RowArgs& a, const LaneRows<T, kMaxN>* lr,
                                   T* HWY_RESTRICT xt, const T* HWY_RESTRICT yt, int64_t tile,
                                   hn::Vec<D>* l) {
  static_assert(!kSparse || !Term::kNeedsH, "labels: H = -sum y' is known per row");
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
  const V add = hn::Set(d, static_cast<T>(L.add)), keep = hn::Set(d, static_cast<T>(L.keep));
  V logs[kB], inv[kB], labv[kB], ktv[kB], hv[kB], gs[kB], lsum[kB];
  hn::Mask<D> masked[kB], dead[kB];
  for (int b = 0; b < kB; ++b) {
    masked[b] = hn::Eq(mx[b], neg_inf);  // every class -inf
    // s >= 1 (the max contributes 1) unless the row is masked or NaN.
    logs[b] = m.Log(s[b]);
    inv[b] = hn::Div(hn::Set(d, T(1)), s[b]);
    gs[b] = hn::Load(d, lr[b].gs);
    if constexpr (kSparse) {
      labv[b] = hn::Load(d, lr[b].lab);
      ktv[b] = hn::Load(d, lr[b].kt);
      hv[b] = hn::Load(d, lr[b].h);
      // No gradient for fully masked rows and ignored ones (label -1), whose
      // logits may be NaN.
      dead[b] = hn::Or(masked[b], hn::Lt(labv[b], hn::Zero(d)));
    } else {
      hv[b] = hn::Zero(d);  // H = sum_c D_c, summed below
      dead[b] = masked[b];
    }
    lsum[b] = hn::Zero(d);
  }
  for (int64_t c = 0; c < C; ++c) {
    const V base = cw ? hn::Mul(hn::Set(d, cw[c]), add) : add;
    const V cv = hn::Set(d, static_cast<T>(c));
    for (int b = 0; b < kB; ++b) {
      T* x = xt + b * tile + c * N;
      const V logq = hn::Sub(hn::Sub(hn::Load(d, x), shift[b]), logs[b]);
      const V q = hn::Mul(hn::Load(d, et + (b * C + c) * N), inv[b]);
      V y;
      if constexpr (kSparse) {
        y = hn::Add(base, hn::IfThenElseZero(hn::Eq(cv, labv[b]), ktv[b]));
      } else {
        y = hn::MulAdd(keep, hn::Load(d, yt + b * tile + c * N), add);  // y' = keep y + add
      }
      V dl = hn::Zero(d);
      lsum[b] = hn::Add(lsum[b], L.term.template Eval<kGrad>(m, y, logq, q, dl));
      if constexpr (kGrad) {
        if constexpr (kSparse) {
          const V gv = hn::Mul(hn::NegMulAdd(q, hv[b], dl), gs[b]);  // (D - q H) * scale
          hn::Store(hn::IfThenZeroElse(dead[b], gv), d, x);
        } else {
          hv[b] = hn::Add(hv[b], dl);
          hn::Store(dl, d, x);  // D_c, until H is complete
        }
      }
    }
  }
  if constexpr (kGrad && !kSparse) {
    for (int64_t c = 0; c < C; ++c) {
      for (int b = 0; b < kB; ++b) {
        T* x = xt + b * tile + c * N;
        const V q = hn::Mul(hn::Load(d, et + (b * C + c) * N), inv[b]);
        const V gv = hn::Mul(hn::NegMulAdd(q, hv[b], hn::Load(d, x)), gs[b]);
        hn::Store(hn::IfThenZeroElse(dead[b], gv), d, x);
      }
    }
  }
  for (int b = 0; b < kB; ++b) {
    l[b] = hn::IfThenElse(masked[b], hn::Set(d, std::numeric_limits<T>::quiet_NaN()), lsum[b]);
  }
}

// The softmax rows [0, ...) of a run in blocks of Lanes(d) rows
// (SoftmaxLanesBlocks); returns the first row not done and adds the blocks'
// sum_r s_r l_r to `total`. Dense targets outside [0, 1] (check_y) stop it
// at the first block holding one, before anything of that block is
// written: the rows from there on take the row kernel, which reports them.
template <class Term, typename T, bool kSparse, bool kGrad, class D>
HWY_INLINE int64_t SoftmaxLanesRun(D d, const losses::SoftmaxRows<Term>& L,
                                   const internal::RowArgs& a, double& total) {
  constexpr size_t kMaxN = hn::MaxLanes(D());
  constexpr int kPair = 2;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), C = a.C, tile = C * N;
  const T* X = static_cast<const T*>(a.x);
  const T* Y = static_cast<const T*>(a.y);
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
  HWY_ALIGN T yt[kSparse ? 1 : kLanesBlocks * kLanesMaxC * kMaxN];
  const bool shuffle = CanTranspose<D>() && C >= N;
  auto to_tile = [&](const T* src, int64_t row, T* tile_out) {
    if (shuffle) {
      RowsToTile(d, src, row, C, tile_out);
    } else {
      for (int64_t i = 0; i < N; ++i) {
        for (int64_t c = 0; c < C; ++c) tile_out[c * N + i] = src[i * row + c];
      }
    }
  };
  int64_t r = 0;
  bool stop = false;
  while (r + N <= a.rows && !stop) {
    // Blocks of this round: kLanesBlocks (pairs of two), or what is left.
    int64_t nb = std::min(kLanesBlocks, (a.rows - r) / N);
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t rb = r + b * N;
      if constexpr (!kSparse) {
        T* yb = yt + b * tile;
        to_tile(Y + rb * a.y_row, a.y_row, yb);
        if (a.check_y) {
          bool bad = false;
          for (int64_t k = 0; k < tile; ++k) bad |= yb[k] < T(0) || yb[k] > T(1);
          if (bad) {  // this block and the rest: the row kernel
            nb = b;
            stop = true;
            break;
          }
        }
      }
      to_tile(X + rb * a.x_row, a.x_row, xt + b * tile);
      LaneRows<T, kMaxN>& rows = lr[b];
      if constexpr (!kSparse) {
        if (!plain) {
          for (int64_t i = 0; i < N; ++i) {
            rows.ignored[i] = false;
            rows.s[i] = RW ? RW[(rb + i) * a.rw_row] : T(1);
            rows.gs[i] = static_cast<T>(static_cast<double>(rows.s[i]) * a.grad_scale);
          }
        }
      } else if (plain) {
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
      SoftmaxLanesBlocks<kPair, Term, T, kSparse, kGrad>(d, L, a, lr + b, xt + b * tile,
                                                         yt + (kSparse ? 0 : b * tile), tile,
                                                         l + b);
    }
    for (; b < nb; ++b) {
      SoftmaxLanesBlocks<1, Term, T, kSparse, kGrad>(d, L, a, lr + b, xt + b * tile,
                                                     yt + (kSparse ? 0 : b * tile), tile, l + b);
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
  if constexpr (kLogits && (!kSparse || !Term::kNeedsH)) {
    if (vec && hn::Lanes(d) > 1 && a.C <= kLanesMaxC) {
      r = SoftmaxLanesRun<Term, T, kSparse, kGrad>(d, L, a, total);
    }
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
