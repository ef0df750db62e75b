// The segmentation, metric-learning, detection and adversarial losses, each
// written once. No include guard and no namespace: see common-inl.h for why
// and how this file is included (after classification-inl.h, whose Logistic
// the adversarial losses use).
//
// --- Group functors (the multi-sum + finalize driver, drivers/groups/groups.h) ---
// A loss of a group of elements (a region of an image, a row of a matrix)
// that depends on the elements only through a few sums is written as
//
//   static constexpr int kInputs;     // per-element inputs, in argument order
//   static constexpr int kSums;       // sums over the group
//   static constexpr int kCoefs;      // coefficients of the gradient
//   static constexpr int kFirstGrad, kGrads;  // inputs [kFirstGrad, +kGrads)
//                                             // are differentiated
//   static constexpr int kCost;       // rough cost per element
//   // The kSums terms of one element (the driver sums them, in float64
//   // across blocks).
//   template <class M, class V> void Terms(const M&, const V* in, V* t) const;
//   // From the sums (and the group's target, when the loss has one): the
//   // group's loss, and the coefficients c with which
//   double Finalize(const double* S, double target, double* c) const;
//   // gives d loss / d in[kFirstGrad + j] of one element as g[j]. Grad must be
//   // linear in c: the driver scales c by the group's weight and the mean's
//   // 1 / count.
//   template <class M, class V> void Grad(const M&, const V* in, const V* c, V* g) const;
//
// Finalize runs once per group on doubles; Terms and Grad run per element on
// SIMD vectors, scalars or (later) CUDA device code.

// A NaN-propagating max / min of doubles for the Finalize steps.
FASTLOSS_HD double MaxD(double a, double b) { return (a != a || a > b) ? a : b; }
FASTLOSS_HD double MinD(double a, double b) { return (a != a || a < b) ? a : b; }

// --- Overlap scores: Dice, Jaccard, Tversky, focal Tversky ---------------------
// Every score is TI = (a I + s) / (b I + alpha Sp + beta Sy + s) for sums
// I = sum y p, Sy = sum y (y^2), Sp = sum p (p^2), and the loss is
// (1 - TI)^gamma:
//   Dice     a = 2, b = 0,  alpha = beta = 1
//   Jaccard  a = 1, b = -1, alpha = beta = 1     (I + s) / (Sy + Sp - I + s)
//   Tversky  a = 1, b = 1 - alpha - beta          (I + s) / (I + alpha FP + beta FN + s)
// with FP = Sp - I and FN = Sy - I.
struct OverlapScore {
  double a{}, b{}, alpha{}, beta{}, smooth{}, gamma{};
  // Loss from (I, Sy, Sp); *dI and *dSp are its derivatives.
  FASTLOSS_HD double Eval(double I, double Sy, double Sp, double* dI, double* dSp) const {
    const double num = a * I + smooth;
    const double den = b * I + alpha * Sp + beta * Sy + smooth;
    const double ti = num / den;
    const double dti_dI = (a * den - b * num) / (den * den);
    const double dti_dSp = -num * alpha / (den * den);
    const double u = 1.0 - ti;
    if (gamma == 1.0) {
      *dI = -dti_dI;
      *dSp = -dti_dSp;
      return u;
    }
    // d (u^gamma) = gamma u^(gamma - 1) du; 0 where u = 0 (a perfect score).
    const double f = u == 0.0 ? 0.0 : gamma * std::pow(u, gamma - 1.0);
    *dI = -f * dti_dI;
    *dSp = -f * dti_dSp;
    return std::pow(u, gamma);
  }
};

// The element side of the overlap losses: inputs (y, x), p = x or sigmoid(x).
template <bool kSquared, bool kLogits>
struct Overlap {
  static constexpr int kInputs = 2, kSums = 3, kCoefs = 2, kFirstGrad = 1, kGrads = 1;
  static constexpr int kCost = kLogits ? 6 : 1;
  OverlapScore score;

  template <class M, class V>
  FASTLOSS_HD V Prob(const M& m, V x) const {
    if constexpr (kLogits) {
      return Logistic<M, V>(m, x).sig_pos;
    } else {
      return x;
    }
  }
  template <class M, class V>
  FASTLOSS_HD void Terms(const M& m, const V* in, V* t) const {
    const V y = in[0], p = Prob(m, in[1]);
    t[0] = m.Mul(y, p);
    t[1] = kSquared ? m.Mul(y, y) : y;
    t[2] = kSquared ? m.Mul(p, p) : p;
  }
  FASTLOSS_HD double Finalize(const double* S, double /*target*/, double* c) const {
    return score.Eval(S[0], S[1], S[2], &c[0], &c[1]);
  }
  template <class M, class V>
  FASTLOSS_HD void Grad(const M& m, const V* in, const V* c, V* g) const {
    const V y = in[0];
    if constexpr (kLogits) {
      const Logistic<M, V> s(m, in[1]);
      const V p = s.sig_pos;
      const V dsp = kSquared ? m.Mul(m.Set(2.0), p) : m.Set(1.0);
      g[0] = m.Mul(m.Add(m.Mul(c[0], y), m.Mul(c[1], dsp)), m.Mul(p, s.sig_neg));
    } else {
      const V dsp = kSquared ? m.Mul(m.Set(2.0), in[1]) : m.Set(1.0);
      g[0] = m.Add(m.Mul(c[0], y), m.Mul(c[1], dsp));
    }
  }
};
using OverlapPlain = Overlap<false, false>;
using OverlapSquared = Overlap<true, false>;
using OverlapLogits = Overlap<false, true>;
using OverlapSquaredLogits = Overlap<true, true>;

// --- Cosine losses ----------------------------------------------------------------
// Both need S = (sum a b, sum a^2, sum b^2) of two rows a, b, and both have
// gradients of the form  da = c0 b + c1 a,  db = c0 a + c2 b.
template <class M, class V>
FASTLOSS_HD void DotTerms(const M& m, V a, V b, V* t) {
  t[0] = m.Mul(a, b);
  t[1] = m.Mul(a, a);
  t[2] = m.Mul(b, b);
}

// 1 - cos(y, p), each norm clamped below by eps, |cos| <= 1; inputs (y, p),
// gradient wrt p only (coefficients c0 for y, c1 for p).
struct CosineSimilarity {
  static constexpr int kInputs = 2, kSums = 3, kCoefs = 2, kFirstGrad = 1, kGrads = 1;
  static constexpr int kCost = 1;
  double eps{};
  template <class M, class V>
  FASTLOSS_HD void Terms(const M& m, const V* in, V* t) const {
    DotTerms(m, in[0], in[1], t);
  }
  FASTLOSS_HD double Finalize(const double* S, double /*target*/, double* c) const {
    const double ny = std::sqrt(S[1]), np = std::sqrt(S[2]);
    const double nyc = MaxD(ny, eps), npc = MaxD(np, eps);
    const double cos = S[0] / (nyc * npc);
    // d cos / dp = y / (|y| |p|) - cos p / |p|^2; the second term vanishes
    // where |p| is clamped (a constant there).
    c[0] = -1.0 / (nyc * npc);
    c[1] = np >= eps ? cos / (npc * npc) : 0.0;
    return 1.0 - MaxD(-1.0, MinD(1.0, cos));
  }
  template <class M, class V>
  FASTLOSS_HD void Grad(const M& m, const V* in, const V* c, V* g) const {
    g[0] = m.Add(m.Mul(c[0], in[0]), m.Mul(c[1], in[1]));
  }
};

// PyTorch's cosine_embedding_loss: inputs (x1, x2), target y = +1 or -1.
struct CosineEmbedding {
  static constexpr int kInputs = 2, kSums = 3, kCoefs = 3, kFirstGrad = 0, kGrads = 2;
  static constexpr int kCost = 1;
  static constexpr double kEps = 1e-12;  // PyTorch's EPSILON
  double margin{};
  template <class M, class V>
  FASTLOSS_HD void Terms(const M& m, const V* in, V* t) const {
    DotTerms(m, in[0], in[1], t);
  }
  FASTLOSS_HD double Finalize(const double* S, double y, double* c) const {
    const double m1 = S[1] + kEps, m2 = S[2] + kEps;
    const double den = std::sqrt(m1 * m2);
    const double cos = S[0] / den;
    // d cos / dx1 = x2 / den - cos x1 / m1 (and symmetrically).
    double sign = -1.0, loss = 1.0 - cos;  // y = 1
    if (y != 1.0) {
      loss = cos - margin;
      sign = loss > 0.0 ? 1.0 : 0.0;
      loss = MaxD(loss, 0.0);
    }
    c[0] = sign / den;
    c[1] = -sign * cos / m1;
    c[2] = -sign * cos / m2;
    return loss;
  }
  template <class M, class V>
  FASTLOSS_HD void Grad(const M& m, const V* in, const V* c, V* g) const {
    g[0] = m.Add(m.Mul(c[0], in[1]), m.Mul(c[1], in[0]));
    g[1] = m.Add(m.Mul(c[0], in[0]), m.Mul(c[2], in[1]));
  }
};

// --- p-norm distances (triplet margin) ----------------------------------------------
// phi(t) = |t|^P summed over a row gives d^P; kP = 1 or 2 exactly, kP = 0 any
// P > 0 through exp/log. dphi/dt = P |t|^(P-1) sign(t).
template <int kP>
struct PowerTerm {
  double p{};
  template <class M, class V>
  FASTLOSS_HD V Phi(const M& m, V t) const {
    if constexpr (kP == 1) {
      return m.Abs(t);
    } else if constexpr (kP == 2) {
      return m.Mul(t, t);
    } else {
      // |t|^p, 0 at t = 0; NaN stays NaN (the test is a == 0, not a > 0).
      const V a = m.Abs(t);
      return m.Select(m.Eq(a, m.Zero()), m.Zero(), m.Exp(m.Mul(m.Set(p), m.Log(a))));
    }
  }
  template <class M, class V>
  FASTLOSS_HD V DPhi(const M& m, V t) const {
    if constexpr (kP == 1) {
      return m.Sign(t);
    } else if constexpr (kP == 2) {
      return m.Add(t, t);
    } else {
      const V a = m.Abs(t);
      const V mag = m.Mul(m.Set(p), m.Exp(m.Mul(m.Set(p - 1.0), m.Log(a))));
      return m.Select(m.Eq(a, m.Zero()), m.Mul(t, m.Zero()), WithSignOf(m, mag, t));
    }
  }
};

// PyTorch's triplet_margin_loss on rows (a, p, n): d(u, v) = |u - v + eps|_P,
// l = max(0, d(a, p) - d(a, n) + margin), with swap min(d(a, n), d(p, n)).
// squared: d = sum (u - v)^2 (eps = 0, P = 2, no root).
template <int kP, bool kSwap>
struct TripletMargin {
  static constexpr int kInputs = 3, kSums = kSwap ? 3 : 2, kCoefs = 3, kFirstGrad = 0;
  static constexpr int kGrads = 3;
  static constexpr int kCost = kP == 0 ? 16 : 1;
  PowerTerm<kP> phi;
  double margin{}, eps{};
  bool squared{};

  template <class M, class V>
  FASTLOSS_HD void Terms(const M& m, const V* in, V* t) const {
    const V e = m.Set(eps);
    t[0] = phi.Phi(m, m.Add(m.Sub(in[0], in[1]), e));
    t[1] = phi.Phi(m, m.Add(m.Sub(in[0], in[2]), e));
    if constexpr (kSwap) t[2] = phi.Phi(m, m.Add(m.Sub(in[1], in[2]), e));
  }
  // d = S^(1/P) and dd/dS (0 at S = 0, where d has no derivative).
  FASTLOSS_HD double Dist(double S, double* dd) const {
    if (squared) {
      *dd = 1.0;
      return S;
    }
    const double d = kP == 1 ? S : (kP == 2 ? std::sqrt(S) : std::pow(S, 1.0 / phi.p));
    *dd = S > 0.0 ? d / (phi.p * S) : 0.0;
    return d;
  }
  FASTLOSS_HD double Finalize(const double* S, double /*target*/, double* c) const {
    double dap, dan, dpn = 0.0;
    const double d_ap = Dist(S[0], &dap);
    const double d_an = Dist(S[1], &dan);
    double w_an = 1.0, w_pn = 0.0, d_neg = d_an;
    if constexpr (kSwap) {
      const double d_pn = Dist(S[2], &dpn);
      // torch.min's gradient: all to the smaller, half each on a tie.
      if (d_pn < d_an) {
        w_an = 0.0;
        w_pn = 1.0;
        d_neg = d_pn;
      } else if (d_pn == d_an) {
        w_an = w_pn = 0.5;
      }
    }
    const double z = d_ap - d_neg + margin;
    const double active = z > 0.0 ? 1.0 : 0.0;
    c[0] = active * dap;
    c[1] = -active * w_an * dan;
    c[2] = -active * w_pn * dpn;
    return MaxD(z, 0.0);
  }
  template <class M, class V>
  FASTLOSS_HD void Grad(const M& m, const V* in, const V* c, V* g) const {
    const V e = m.Set(eps);
    const V ap = m.Mul(c[0], phi.DPhi(m, m.Add(m.Sub(in[0], in[1]), e)));
    const V an = m.Mul(c[1], phi.DPhi(m, m.Add(m.Sub(in[0], in[2]), e)));
    V pn = m.Zero();
    if constexpr (kSwap) pn = m.Mul(c[2], phi.DPhi(m, m.Add(m.Sub(in[1], in[2]), e)));
    g[0] = m.Add(ap, an);
    g[1] = m.Sub(pn, ap);
    g[2] = m.Neg(m.Add(an, pn));
  }
};
using TripletL1 = TripletMargin<1, false>;
using TripletL2 = TripletMargin<2, false>;
using TripletLp = TripletMargin<0, false>;
using TripletL1Swap = TripletMargin<1, true>;
using TripletL2Swap = TripletMargin<2, true>;
using TripletLpSwap = TripletMargin<0, true>;

// --- Contrastive loss --------------------------------------------------------------
// l = y d^2 + (1 - y) max(0, margin - d)^2 as a function of d2 = d^2 (so that
// the pairs form needs no root where y = 1): the loss and dl/d(d2).
struct ContrastiveOfSquare {
  double margin{};
  template <class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V d2, V d, V* dl_dd2) const {
    const V h = m.Max(m.Sub(m.Set(margin), d), m.Zero());
    const V ny = m.Sub(m.Set(1.0), y);
    // d(h^2)/d(d2) = -2 h dd/d(d2) = -h / d. At d = 0 the distance has no
    // derivative and contributes 0 (PyTorch's norm backward does the same);
    // the y term's gradient 2 y r is 0 there too.
    const V dh = m.Select(m.Gt(d, m.Zero()), m.Div(h, d), m.Zero());
    *dl_dd2 = m.Sub(y, m.Mul(ny, dh));
    return m.Add(m.Mul(y, d2), m.Mul(ny, m.Mul(h, h)));
  }
};

// On given distances (elementwise): y_true = y, y_pred = d.
struct Contrastive {
  static constexpr int kCost = 1;
  ContrastiveOfSquare f;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V d, V& g) const {
    const V h = m.Max(m.Sub(m.Set(f.margin), d), m.Zero());
    const V ny = m.Sub(m.Set(1.0), y);
    // dl/dd = 2 y d - 2 (1 - y) h (written directly: d may be 0 or negative).
    if constexpr (kGrad) g = m.Mul(m.Set(2.0), m.Sub(m.Mul(y, d), m.Mul(ny, h)));
    return m.Add(m.Mul(y, m.Mul(d, d)), m.Mul(ny, m.Mul(h, h)));
  }
};

// On rows (x1, x2) with d = |x1 - x2 + eps|_2 and a target y per row.
template <typename T, class S>
auto Build(const ContrastiveOptions& o, S&& sink) {
  Contrastive f;
  f.f.margin = o.margin;
  return sink(f, ::fastloss::internal::kUnitY);
}

struct ContrastivePairs {
  static constexpr int kInputs = 2, kSums = 1, kCoefs = 1, kFirstGrad = 0, kGrads = 2;
  static constexpr int kCost = 1;
  ContrastiveOfSquare f;
  double eps{};
  template <class M, class V>
  FASTLOSS_HD void Terms(const M& m, const V* in, V* t) const {
    const V r = m.Add(m.Sub(in[0], in[1]), m.Set(eps));
    t[0] = m.Mul(r, r);
  }
  FASTLOSS_HD double Finalize(const double* S, double y, double* c) const {
    const internal::ScalarMath<double> m;
    double dl;
    const double l = f.Eval(m, y, S[0], std::sqrt(S[0]), &dl);
    c[0] = dl;
    return l;
  }
  template <class M, class V>
  FASTLOSS_HD void Grad(const M& m, const V* in, const V* c, V* g) const {
    // d(d2)/dx1 = 2 r.
    const V r = m.Add(m.Sub(in[0], in[1]), m.Set(eps));
    g[0] = m.Mul(m.Add(c[0], c[0]), r);
    g[1] = m.Neg(g[0]);
  }
};

// --- Squared norms: gradient penalty and L2 penalty ----------------------------------
// One input w, S = sum w^2. penalty: l = (sqrt(S) - target)^2 with
// dl/dw = 2 (|w| - target) w / |w| (0 at w = 0); else l = lam S, dl/dw = 2 lam w.
struct SquaredNorm {
  static constexpr int kInputs = 1, kSums = 1, kCoefs = 1, kFirstGrad = 0, kGrads = 1;
  static constexpr int kCost = 1;
  bool penalty{};
  double target{};
  double lam{};
  template <class M, class V>
  FASTLOSS_HD void Terms(const M& m, const V* in, V* t) const {
    t[0] = m.Mul(in[0], in[0]);
  }
  FASTLOSS_HD double Finalize(const double* S, double /*target*/, double* c) const {
    if (!penalty) {
      c[0] = lam;
      return lam * S[0];
    }
    const double n = std::sqrt(S[0]);
    const double r = n - target;
    c[0] = n > 0.0 ? r / n : (n == 0.0 ? 0.0 : n);  // dl/dS; NaN stays NaN
    return r * r;
  }
  template <class M, class V>
  FASTLOSS_HD void Grad(const M& m, const V* in, const V* c, V* g) const {
    g[0] = m.Mul(m.Add(c[0], c[0]), in[0]);
  }
};

// --- Elementwise losses of scores --------------------------------------------------
// l = scale softplus(sign x) (the GAN losses are BCE against a constant
// label); y is not read.
struct ScaledSoftplus {
  static constexpr int kCost = 6;
  double sign{}, scale{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V /*y*/, V x, V& g) const {
    const Logistic<M, V> s(m, x);
    if (sign > 0) {
      if constexpr (kGrad) g = m.Mul(m.Set(scale), s.sig_pos);
      return m.Mul(m.Set(scale), s.sp_pos);
    }
    if constexpr (kGrad) g = m.Mul(m.Set(-scale), s.sig_neg);
    return m.Mul(m.Set(scale), s.sp_neg);
  }
};

// l = scale x (Wasserstein losses); y is not read.
struct Linear {
  static constexpr int kCost = 1;
  double scale{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V /*y*/, V x, V& g) const {
    if constexpr (kGrad) g = m.Set(scale);
    return m.Mul(m.Set(scale), x);
  }
};

// PyTorch's margin_ranking_loss with y_true = y, y_pred = x1, aux = x2:
// l = max(0, -y (x1 - x2) + margin), dl/dx1 = -y where l > 0, dl/dx2 = -dl/dx1.
struct MarginRanking {
  static constexpr int kCost = 1;
  static constexpr bool kAux = true;
  static constexpr bool kAuxGrad = true;
  double margin;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V x1, V x2, V& g, V& g2) const {
    const V z = m.Add(m.Neg(m.Mul(y, m.Sub(x1, x2))), m.Set(margin));
    if constexpr (kGrad) {
      g = m.Select(m.Gt(z, m.Zero()), m.Neg(y), m.Mul(z, m.Zero()));
      g2 = m.Neg(g);
    }
    return m.Max(z, m.Zero());
  }
};
// The Elements rows' builders: sink(functor, y range, aux range).
template <typename T, class S>
auto Build(const MarginRankingOptions& o, S&& sink) {
  return sink(MarginRanking{o.margin}, ::fastloss::internal::kAnyY, ::fastloss::internal::kAnyY);
}

// --- Boxes ----------------------------------------------------------------------------
// The derivative of max(a, b) with respect to a under autograd's convention:
// 1 if a > b, 1/2 on a tie, else 0 (and of min(a, b): swap the roles).
template <class M, class V>
FASTLOSS_HD V MaxSide(const M& m, V a, V b) {
  return m.Select(m.Gt(a, b), m.Set(1.0), m.Select(m.Eq(a, b), m.Set(0.5), m.Zero()));
}

// torchvision's IoU losses of a predicted box p = (x1, y1, x2, y2) against a
// true box t (kKind 0 IoU, 1 GIoU, 2 DIoU, 3 CIoU); the gradient wrt p in g.
template <int kKind>
struct BoxLoss {
  static constexpr int kCost = kKind == 3 ? 12 : 3;
  double eps{};

  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, const V* t, const V* p, V* g) const {
    const V zero = m.Zero(), one = m.Set(1.0), e = m.Set(eps);
    const V x1 = p[0], y1 = p[1], x2 = p[2], y2 = p[3];
    const V w = m.Sub(x2, x1), h = m.Sub(y2, y1);
    const V wg = m.Sub(t[2], t[0]), hg = m.Sub(t[3], t[1]);
    // Intersection (0 without overlap, and no gradient through it then).
    const V iw = m.Sub(m.Min(x2, t[2]), m.Max(x1, t[0]));
    const V ih = m.Sub(m.Min(y2, t[3]), m.Max(y1, t[1]));
    const auto overlap = m.And(m.Gt(iw, zero), m.Gt(ih, zero));
    const V inter = m.Select(overlap, m.Mul(iw, ih), zero);
    const V uni = m.Sub(m.Add(m.Mul(w, h), m.Mul(wg, hg)), inter);
    const V ue = m.Add(uni, e);
    const V iou = m.Div(inter, ue);
    V loss = m.Sub(one, iou);
    // Accumulated partial derivatives of the loss.
    V d_inter = m.Neg(m.Div(m.Add(ue, inter), m.Mul(ue, ue)));  // -d iou / d inter
    V d_area = m.Div(inter, m.Mul(ue, ue));                     // -d iou / d area_p
    V d_cw = zero, d_ch = zero;     // enclosing width / height
    V d_cx = zero, d_cy = zero;     // centre offsets (pred - true)
    V d_w = zero, d_h = zero;       // direct dependence on w, h (CIoU)
    V cw = zero, ch = zero;
    if constexpr (kKind >= 1) {
      cw = m.Sub(m.Max(x2, t[2]), m.Min(x1, t[0]));
      ch = m.Sub(m.Max(y2, t[3]), m.Min(y1, t[1]));
    }
    if constexpr (kKind == 1) {
      // + (C - union) / (C + eps)
      const V c = m.Mul(cw, ch);
      const V ce = m.Add(c, e);
      loss = m.Add(loss, m.Div(m.Sub(c, uni), ce));
      const V d_c = m.Div(m.Add(uni, e), m.Mul(ce, ce));
      const V d_uni = m.Neg(m.Div(one, ce));
      // union = area_p + area_t - inter
      d_area = m.Add(d_area, d_uni);
      d_inter = m.Sub(d_inter, d_uni);
      d_cw = m.Mul(d_c, ch);
      d_ch = m.Mul(d_c, cw);
    }
    if constexpr (kKind >= 2) {
      // + rho^2 / (cw^2 + ch^2 + eps)
      const V diag = m.Add(m.Add(m.Mul(cw, cw), m.Mul(ch, ch)), e);
      const V half = m.Set(0.5);
      const V dx = m.Mul(half, m.Sub(m.Add(x1, x2), m.Add(t[0], t[2])));
      const V dy = m.Mul(half, m.Sub(m.Add(y1, y2), m.Add(t[1], t[3])));
      const V rho = m.Add(m.Mul(dx, dx), m.Mul(dy, dy));
      const V q = m.Div(rho, diag);
      loss = m.Add(loss, q);
      // d q / d dx = 2 dx / diag; d q / d cw = -2 cw q / diag.
      const V two_over = m.Div(m.Set(2.0), diag);
      d_cx = m.Mul(two_over, dx);
      d_cy = m.Mul(two_over, dy);
      d_cw = m.Neg(m.Mul(m.Mul(two_over, cw), q));
      d_ch = m.Neg(m.Mul(m.Mul(two_over, ch), q));
    }
    if constexpr (kKind == 3) {
      // + alpha v, v = 4/pi^2 (atan(wg/hg) - atan(w/h))^2, alpha constant.
      const V hs = SafeHeight(m, h), hgs = SafeHeight(m, hg);
      const V diff = m.Sub(m.Atan(m.Div(wg, hgs)), m.Atan(m.Div(w, hs)));
      const double k = 4.0 / (3.14159265358979323846 * 3.14159265358979323846);
      const V v = m.Mul(m.Set(k), m.Mul(diff, diff));
      const V alpha = m.Div(v, m.Add(m.Add(m.Sub(one, iou), v), e));
      loss = m.Add(loss, m.Mul(alpha, v));
      // d v / d w = -2k diff * hs / (w^2 + hs^2); d v / d h = 2k diff * w / (w^2 + hs^2)
      // where h is not replaced (|h| >= eps), else 0.
      const V r2 = m.Add(m.Mul(w, w), m.Mul(hs, hs));
      const V f = m.Div(m.Mul(m.Mul(m.Set(2.0 * k), diff), alpha), r2);
      d_w = m.Neg(m.Mul(f, hs));
      d_h = m.Select(m.Lt(m.Abs(h), e), zero, m.Mul(f, w));
    }
    if constexpr (kGrad) {
      // area_p = w h; inter = iw ih with iw = min(x2, tx2) - max(x1, tx1), ...
      const V di = m.Select(overlap, d_inter, zero);
      const V dw = m.Add(m.Mul(d_area, h), d_w);
      const V dh = m.Add(m.Mul(d_area, w), d_h);
      const V diw = m.Mul(di, ih), dih = m.Mul(di, iw);
      const V half = m.Set(0.5);
      // x1: w = x2 - x1, iw via max(x1, tx1), cw via min(x1, tx1), centre x1/2.
      g[0] = m.Sub(m.Sub(m.Mul(half, d_cx), dw), m.Add(m.Mul(diw, MaxSide(m, x1, t[0])),
                                                       m.Mul(d_cw, MaxSide(m, t[0], x1))));
      g[1] = m.Sub(m.Sub(m.Mul(half, d_cy), dh), m.Add(m.Mul(dih, MaxSide(m, y1, t[1])),
                                                       m.Mul(d_ch, MaxSide(m, t[1], y1))));
      g[2] = m.Add(m.Add(m.Mul(half, d_cx), dw), m.Add(m.Mul(diw, MaxSide(m, t[2], x2)),
                                                       m.Mul(d_cw, MaxSide(m, x2, t[2]))));
      g[3] = m.Add(m.Add(m.Mul(half, d_cy), dh), m.Add(m.Mul(dih, MaxSide(m, t[3], y2)),
                                                       m.Mul(d_ch, MaxSide(m, y2, t[3]))));
    }
    return loss;
  }
  // h, or +-eps (h's sign, + for 0) where |h| < eps.
  template <class M, class V>
  FASTLOSS_HD V SafeHeight(const M& m, V h) const {
    const V e = m.Set(eps);
    return m.Select(m.Lt(m.Abs(h), e), m.Select(m.Lt(h, m.Zero()), m.Neg(e), e), h);
  }
};
using BoxIou = BoxLoss<0>;
using BoxGiou = BoxLoss<1>;
using BoxDiou = BoxLoss<2>;
using BoxCiou = BoxLoss<3>;
