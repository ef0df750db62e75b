// The classification losses, each written once. No include guard and no
// namespace: see common-inl.h for why and how this file is included.
//
// Binary losses are element functors with the same Eval protocol as the
// regression ones (regression-inl.h). Row-wise losses (softmax cross-entropy,
// focal, KL, ...) are written as per-element terms that the row driver
// (drivers/rowwise/rowwise-inl.h) sums along the class axis; see the "Row terms"
// section below.

// --- Shared pieces --------------------------------------------------------

// The logistic function's parts at x, all from one exp, one log1p and one
// division:
//   sp_pos = softplus(x)  = max(x, 0) + log1p(exp(-|x|)),
//   sp_neg = softplus(-x) = max(-x, 0) + log1p(exp(-|x|)),
//   sig_pos = sigmoid(x), sig_neg = sigmoid(-x) = 1 - sigmoid(x).
// Each keeps its relative accuracy where it is tiny (softplus(-17) = 4.1e-8
// in float, sigmoid(-80) = 1.8e-35), and x = +-inf gives 0 / inf / 0 / 1
// exactly. NaN gives NaN everywhere: e = exp(-|x|) is NaN, and every part
// goes through e (the max(+-x, 0) selects may drop it, the sums keep it).
// e is in [0, 1], so the specialised ExpNonPositive / Log1pUnit apply (no
// overflow, pole or domain fix-ups); Log1pUnit reuses 1 / (1 + e).
// Also kept: abs_x = |x|, l1p = log1p(exp(-|x|)) and neg = x < 0, for
// callers that combine the two softplus terms themselves (BceLogitsT). The
// parts a caller does not read are dead code once inlined.
template <class M, class V>
struct Logistic {
  V sp_pos, sp_neg, sig_pos, sig_neg, abs_x, l1p;
  typename M::Mask neg;
  FASTLOSS_HD Logistic(const M& m, V x) : neg(m.Lt(x, m.Zero())) {
    abs_x = m.Abs(x);
    const V e = m.ExpNonPositive(m.Neg(abs_x));           // in [0, 1]
    const V r = m.Div(m.Set(1.0), m.Add(m.Set(1.0), e));  // sigmoid(|x|)
    l1p = m.Log1pUnit(e, r);
    const V er = m.Mul(e, r);                              // sigmoid(-|x|)
    sp_pos = m.Add(m.Select(neg, m.Zero(), abs_x), l1p);
    sp_neg = m.Add(m.Select(neg, abs_x, m.Zero()), l1p);
    sig_pos = m.Select(neg, er, r);
    sig_neg = m.Select(neg, r, er);
  }
};

// c * v, where c == 0 gives 0 even for v = inf (a term whose coefficient is
// exactly zero is absent, not 0 * inf = NaN).
template <class M, class V>
FASTLOSS_HD V TimesUnlessZero(const M& m, V c, V v) {
  return m.Select(m.Eq(c, m.Zero()), m.Zero(), m.Mul(c, v));
}

// q^gamma for q in [0, 1], gamma >= 0 (0^0 = 1); the common exponents
// exactly, by multiplication.
template <class M, class V>
FASTLOSS_HD V PowUnit(const M& m, V q, double gamma) {
  if (gamma == 0.0) return m.Set(1.0);
  if (gamma == 1.0) return q;
  if (gamma == 2.0) return m.Mul(q, q);
  if (gamma == 3.0) return m.Mul(m.Mul(q, q), q);
  return m.Select(m.Gt(q, m.Zero()), m.Exp(m.Mul(m.Set(gamma), m.Log(q))), m.Zero());
}

// Binary targets after label smoothing: pos = y (1 - ls) + ls / 2 (the weight
// of the positive term before pos_weight), neg = 1 - pos.
struct Smoothing {
  double keep = 1.0, add = 0.0;  // y' = keep y + add
  template <class M, class V>
  FASTLOSS_HD V Apply(const M& m, V y) const {
    if (add == 0.0) return y;
    return m.Add(m.Mul(m.Set(keep), y), m.Set(add));
  }
};

// Binary cross-entropy on probabilities, the Keras convention:
// pc = clip(p, eps, 1 - eps), ce = -(a log pc + b log(1 - pc)) for positive
// and negative coefficients a, b; dce/dp = (b pc - a (1 - pc)) / (pc (1 - pc))
// where the clip is inactive, 0 where it is active (NaN p stays NaN). With
// hard targets (a = 0 or b = 0) in every lane, the one term that is not 0.
template <class M, class V>
struct ClippedBce {
  V pc, ce, dce;
  typename M::Mask active;  // the clip is active: p < eps or p > 1 - eps
  template <bool kGrad>
  static FASTLOSS_HD ClippedBce Make(const M& m, V a, V b, V p, double eps) {
    ClippedBce c;
    const V lo = m.Set(eps), hi = m.Set(1.0 - eps);
    c.pc = Clamp(m, p, lo, hi);
    const V qc = m.Sub(m.Set(1.0), c.pc);
    // pc and 1 - pc are positive normal numbers (eps in (0, 1/2)): the
    // unit-interval logarithms apply. log1p(-pc), not log(1 - pc): exact
    // where 1 - pc rounds (pc = eps).
    c.active = m.Or(m.Lt(p, lo), m.Gt(p, hi));
    const auto pos_only = m.Eq(b, m.Zero());
    V d = m.Zero();
    if (m.AllTrue(m.Or(pos_only, m.Eq(a, m.Zero())))) {
      // Hard targets (one coefficient zero in every lane): one logarithm of
      // the target's probability u, pc or qc (log1p(-pc) = log(qc + its
      // rounding error)), and dce/dp = -a / pc or b / qc: the general
      // form's value (its other term is an exact 0) in half the work.
      const V u = m.Select(pos_only, c.pc, qc);
      const V logu = m.LogCorrected(u, m.Select(pos_only, m.Zero(), m.OneMinusError(c.pc)));
      c.ce = m.Neg(m.Mul(m.Select(pos_only, a, b), logu));
      if constexpr (kGrad) d = m.Div(m.Select(pos_only, m.Neg(a), b), u);
    } else {
      c.ce = m.Neg(m.Add(m.Mul(a, m.LogNormal(c.pc)), m.Mul(b, m.Log1mUnit(c.pc))));
      if constexpr (kGrad) d = m.Div(m.Sub(m.Mul(b, c.pc), m.Mul(a, qc)), m.Mul(c.pc, qc));
    }
    c.dce = kGrad ? m.Select(c.active, m.Zero(), d) : d;
    return c;
  }
};

// --- Binary cross-entropy --------------------------------------------------

// From logits x, PyTorch's BCEWithLogits with pos_weight pw:
//   l = pw y sp(-x) + (1 - y) sp(x), dl/dx = (1 - y) sig(x) - pw y sig(-x).
// kAux: pw is a per-element operand; otherwise the scalar pos_weight.
template <bool kArrayPosWeight>
struct BceLogitsT {
  static constexpr int kCost = 8;
  static constexpr bool kChecksY = true;  // y_true in [0, 1], checked as it is read
  static constexpr bool kAux = kArrayPosWeight;
  Smoothing smooth;
  double pos_weight{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V x, V pw, V& g) const {
    const V t = smooth.Apply(m, y);
    const V a = m.Mul(pw, t), b = m.Sub(m.Set(1.0), t);
    const Logistic<M, V> s(m, x);
    if constexpr (kGrad) g = m.Sub(m.Mul(b, s.sig_pos), m.Mul(a, s.sig_neg));
    // a sp(-x) + b sp(x) = c |x| + (a + b) log1p(exp(-|x|)) with c = a for
    // x < 0, b otherwise (sp(+-x) = max(+-x, 0) + log1p(exp(-|x|))): one
    // product that can meet an infinity, taken as 0 where c = 0; the log1p
    // term is finite (or NaN for NaN x).
    return m.MulAdd(m.Add(a, b), s.l1p, TimesUnlessZero(m, m.Select(s.neg, a, b), s.abs_x));
  }
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V x, V& g) const {
    return Eval<kGrad>(m, y, x, m.Set(pos_weight), g);
  }
};
using BceLogits = BceLogitsT<false>;
using BceLogitsPw = BceLogitsT<true>;

// From probabilities (ClippedBce) with pos_weight on the positive term.
template <bool kArrayPosWeight>
struct BceProbsT {
  static constexpr int kCost = 8;
  static constexpr bool kChecksY = true;  // y_true in [0, 1], checked as it is read
  static constexpr bool kAux = kArrayPosWeight;
  Smoothing smooth;
  double pos_weight{};
  double eps{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V pw, V& g) const {
    const V t = smooth.Apply(m, y);
    const ClippedBce<M, V> c =
        ClippedBce<M, V>::template Make<kGrad>(m, m.Mul(pw, t), m.Sub(m.Set(1.0), t), p, eps);
    if constexpr (kGrad) g = c.dce;
    return c.ce;
  }
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    return Eval<kGrad>(m, y, p, m.Set(pos_weight), g);
  }
};
using BceProbs = BceProbsT<false>;
using BceProbsPw = BceProbsT<true>;

// --- Binary focal ----------------------------------------------------------

// The focal modulation of a binary cross-entropy ce (derivative dce) with
// targets a = y', b = 1 - y': q = 1 - pt is the probability given to the
// wrong answer and dq its derivative; l = alpha_t ce q^gamma,
// dl = alpha_t q^gamma (dce + gamma ce dq / q) (the second term is 0 where
// q = 0, its limit for gamma > 0; for gamma = 0 it is absent).
struct FocalModulation {
  double alpha{};
  bool has_alpha{};
  double gamma{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Apply(const M& m, V a, V b, V ce, V dce, V q, V dq, V& g) const {
    const V mod = PowUnit(m, q, gamma);
    V l = m.Mul(ce, mod);
    V grad = m.Zero();
    if constexpr (kGrad) {
      V inner = dce;
      if (gamma != 0.0) {
        const V ratio = m.Select(m.Gt(q, m.Zero()), m.Div(dq, q), m.Zero());
        inner = m.Add(inner, m.Mul(m.Mul(m.Set(gamma), ce), ratio));
      }
      grad = m.Mul(mod, inner);
    }
    if (has_alpha) {
      const V at = m.Add(m.Mul(m.Set(alpha), a), m.Mul(m.Set(1.0 - alpha), b));
      l = m.Mul(l, at);
      if constexpr (kGrad) grad = m.Mul(grad, at);
    }
    if constexpr (kGrad) g = grad;
    return l;
  }
};

// torchvision's sigmoid_focal_loss on logits x: p = sig(x), ce = BCE with
// logits, q = 1 - pt = sig(x) b + sig(-x) a (accurate where tiny),
// dq/dx = sig(x) sig(-x) (b - a).
struct BinaryFocalLogits {
  static constexpr int kCost = 10;
  static constexpr bool kChecksY = true;  // y_true in [0, 1], checked as it is read
  Smoothing smooth;
  FocalModulation focal;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V x, V& g) const {
    const V a = smooth.Apply(m, y), b = m.Sub(m.Set(1.0), a);
    const Logistic<M, V> s(m, x);
    const V ce = m.Add(TimesUnlessZero(m, a, s.sp_neg), TimesUnlessZero(m, b, s.sp_pos));
    const V dce = m.Sub(m.Mul(b, s.sig_pos), m.Mul(a, s.sig_neg));
    const V q = m.Add(m.Mul(s.sig_pos, b), m.Mul(s.sig_neg, a));
    const V dq = m.Mul(m.Mul(s.sig_pos, s.sig_neg), m.Sub(b, a));
    return focal.Apply<kGrad>(m, a, b, ce, dce, q, dq, g);
  }
};

// Keras' binary_focal_crossentropy on probabilities: clipped BCE,
// q = pc b + (1 - pc) a, dq/dp = b - a (0 through an active clip).
struct BinaryFocalProbs {
  static constexpr int kCost = 10;
  static constexpr bool kChecksY = true;  // y_true in [0, 1], checked as it is read
  Smoothing smooth;
  FocalModulation focal;
  double eps{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V a = smooth.Apply(m, y), b = m.Sub(m.Set(1.0), a);
    const ClippedBce<M, V> c = ClippedBce<M, V>::template Make<kGrad>(m, a, b, p, eps);
    const V q = m.Add(m.Mul(c.pc, b), m.Mul(m.Sub(m.Set(1.0), c.pc), a));
    const V dq = m.Select(c.active, m.Zero(), m.Sub(b, a));
    return focal.Apply<kGrad>(m, a, b, c.ce, c.dce, q, dq, g);
  }
};

// --- Hinge family ------------------------------------------------------------

// Labels in {-1, 1}; a label of exactly 0 counts as -1 (Keras converts {0, 1}
// labels). Returns z = 1 - y' p and y'.
template <class M, class V>
FASTLOSS_HD V HingeMargin(const M& m, V y, V p, V& ys) {
  ys = m.Select(m.Eq(y, m.Zero()), m.Set(-1.0), y);
  return m.Sub(m.Set(1.0), m.Mul(ys, p));
}

// l = max(0, z), dl/dp = -y' where z > 0, 0 where z <= 0, NaN for NaN.
struct Hinge {
  static constexpr int kCost = 1;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    V ys;
    const V z = HingeMargin(m, y, p, ys);
    if constexpr (kGrad) {
      g = m.Select(m.Gt(z, m.Zero()), m.Neg(ys), m.Select(m.Le(z, m.Zero()), m.Zero(), z));
    }
    return m.Max(z, m.Zero());
  }
};

// l = max(0, z)^2, dl/dp = -2 y' max(0, z).
struct SquaredHinge {
  static constexpr int kCost = 1;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    V ys;
    const V h = m.Max(HingeMargin(m, y, p, ys), m.Zero());
    if constexpr (kGrad) g = m.Mul(m.Mul(m.Set(-2.0), ys), h);
    return m.Mul(h, h);
  }
};

// PyTorch's SoftMarginLoss: l = sp(-y p), dl/dp = -y sig(-y p).
struct SoftMargin {
  static constexpr int kCost = 8;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const Logistic<M, V> s(m, m.Neg(m.Mul(y, p)));
    if constexpr (kGrad) g = m.Neg(m.Mul(y, s.sig_pos));
    return s.sp_pos;
  }
};

// --- Row terms ---------------------------------------------------------------
// The row driver (drivers/rowwise/rowwise-inl.h) computes, per row, the softmax (or
// the normalised, clipped probabilities) and hands each class to a term:
//
//   template <bool kGrad, class M, class V>
//   V Eval(const M& m, V y, V logq, V q, V& dlogq) const;
//
// with y the effective target weight y'_c >= 0 (label smoothing and class
// weights already applied), q_c and log q_c. It returns the class's loss
// l_c and stores D_c = dl_c / dlog q_c. The driver turns D into the
// gradient: logits d/dx_j = D_j - q_j sum_c D_c; probabilities
// d/dp_j = ([j unclipped] D_j / q_j - sum_{c unclipped} D_c) / sum(p).
// kNeedsH: D depends on q, so sum_c D_c needs its own pass (otherwise it is
// -sum_c y'_c, known from the targets).

// Cross-entropy: l_c = -y'_c log q_c (0 where y'_c = 0, even for a masked
// class with log q = -inf), D_c = -y'_c.
struct CceTerm {
  static constexpr bool kNeedsH = false;
  static constexpr int kCost = 4;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V logq, V /*q*/, V& dlogq) const {
    if constexpr (kGrad) dlogq = m.Neg(y);
    return TimesUnlessZero(m, y, m.Neg(logq));
  }
};

// Softmax focal (Keras' CategoricalFocalCrossentropy):
// l_c = -alpha y'_c (1 - q_c)^gamma log q_c,
// D_c = -alpha y'_c (1 - q_c)^gamma (1 - gamma q_c log q_c / (1 - q_c)).
// 1 - q = -expm1(log q) keeps its accuracy near q = 1, where
// q log q / (1 - q) -> -1; at q = 0 it is 0.
struct FocalTerm {
  static constexpr bool kNeedsH = true;
  static constexpr int kCost = 10;
  double alpha{};
  double gamma{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V logq, V q, V& dlogq) const {
    const V omq = m.Neg(m.Expm1(logq));
    const V w = m.Mul(m.Mul(m.Set(alpha), y), PowUnit(m, omq, gamma));
    if constexpr (kGrad) {
      V ratio = m.Select(m.Gt(omq, m.Zero()), m.Div(m.Mul(q, logq), omq), m.Set(-1.0));
      ratio = m.Select(m.Eq(q, m.Zero()), m.Zero(), ratio);
      dlogq = m.Neg(m.Mul(w, m.Sub(m.Set(1.0), m.Mul(m.Set(gamma), ratio))));
    }
    return TimesUnlessZero(m, w, m.Neg(logq));
  }
};

// Poly-1 (PolyLoss): l_c = -y'_c log q_c + epsilon y'_c (1 - q_c),
// D_c = -y'_c (1 + epsilon q_c).
struct Poly1Term {
  static constexpr bool kNeedsH = true;
  static constexpr int kCost = 5;
  double epsilon{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V logq, V q, V& dlogq) const {
    const V ey = m.Mul(m.Set(epsilon), y);
    if constexpr (kGrad) dlogq = m.Neg(m.Add(y, m.Mul(ey, q)));
    return m.Add(TimesUnlessZero(m, y, m.Neg(logq)), m.Mul(ey, m.Sub(m.Set(1.0), q)));
  }
};

// KL divergence term t (log t - log p) with t = y (or exp(y) for
// log_target) and log p = p (log_input) or log(p). A zero target contributes
// 0 with gradient 0; a negative one gives NaN. dl/dp = -t (log_input) or
// -t / p. An element functor (Eval as the binary losses); the row driver sums
// it along the class axis.
struct KlDivergence {
  static constexpr int kCost = 6;
  bool log_input{};
  bool log_target{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V lp = log_input ? p : m.Log(p);
    const V t = log_target ? m.Exp(y) : y;
    const V lt = log_target ? y : m.Log(y);
    if constexpr (kGrad) {
      g = log_input ? m.Neg(t) : TimesUnlessZero(m, t, m.Neg(m.Div(m.Set(1.0), p)));
    }
    return TimesUnlessZero(m, t, m.Sub(lt, lp));
  }
};

// Liger-Kernel's generalized Jensen-Shannon divergence term, P = y (teacher),
// Q = p (student), as probabilities or (log_input) log-probabilities:
//   0 < beta < 1: beta P (log P - log M) + (1 - beta) Q (log Q - log M),
//                 M = beta P + (1 - beta) Q; dl/dQ = (1 - beta)(log Q - log M);
//   beta = 0:     P (log P - log Q) (forward KL), dl/dQ = -P / Q;
//   beta = 1:     Q (log Q - log P) (reverse KL), dl/dQ = log Q - log P + 1.
// With log_input the gradient is with respect to log Q: Q dl/dQ.
// Zero-probability terms contribute 0.
struct JensenShannon {
  static constexpr int kCost = 10;
  double beta{};
  bool log_input{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V P = log_input ? m.Exp(y) : y, Q = log_input ? m.Exp(p) : p;
    const V lP = log_input ? y : m.Log(y), lQ = log_input ? p : m.Log(p);
    V l, dq;  // dq = dl/dQ times Q (log_input) or dl/dQ
    if (beta == 0.0) {
      l = TimesUnlessZero(m, P, m.Sub(lP, lQ));
      dq = log_input ? m.Neg(P) : TimesUnlessZero(m, P, m.Neg(m.Div(m.Set(1.0), Q)));
    } else if (beta == 1.0) {
      const V d = m.Sub(lQ, lP);
      l = TimesUnlessZero(m, Q, d);
      dq = log_input ? TimesUnlessZero(m, Q, m.Add(d, m.Set(1.0))) : m.Add(d, m.Set(1.0));
    } else {
      const V lM = m.Log(m.Add(m.Mul(m.Set(beta), P), m.Mul(m.Set(1.0 - beta), Q)));
      const V dQ = m.Sub(lQ, lM);
      l = m.Add(TimesUnlessZero(m, m.Mul(m.Set(beta), P), m.Sub(lP, lM)),
                TimesUnlessZero(m, m.Mul(m.Set(1.0 - beta), Q), dQ));
      dq = log_input ? TimesUnlessZero(m, m.Mul(m.Set(1.0 - beta), Q), dQ)
                     : m.Mul(m.Set(1.0 - beta), dQ);
    }
    if constexpr (kGrad) g = dq;
    return l;
  }
};

// Keras' categorical hinge: pos = sum_c y_c p_c, neg = max_c (1 - y_c) p_c,
// l = max(0, neg - pos + 1); where l > 0, dl/dp_j = -y_j + (1 - y_j) [j == k]
// with k the first class attaining neg.
struct CategoricalHingeTerm {
  static constexpr int kCost = 2;
  template <class M, class V>
  FASTLOSS_HD V Pos(const M& m, V y, V p) const { return m.Mul(y, p); }
  template <class M, class V>
  FASTLOSS_HD V Neg(const M& m, V y, V p) const { return m.Mul(m.Sub(m.Set(1.0), y), p); }
  template <class M, class V>
  FASTLOSS_HD V Value(const M& m, V pos, V neg) const {
    return m.Max(m.Add(m.Sub(neg, pos), m.Set(1.0)), m.Zero());
  }
  template <class M, class V>
  FASTLOSS_HD V Grad(const M& m, V y, bool is_k) const {
    return is_k ? m.Sub(m.Set(1.0), m.Add(y, y)) : m.Neg(y);
  }
};

// PyTorch's MultiMarginLoss term for a non-target class c: z = margin - x_t + x_c,
// l = max(0, z)^p, dl/dx_c = p max(0, z)^(p - 1) (dl/dx_t is minus the sum).
struct MultiMarginTerm {
  static constexpr int kCost = 2;
  int p{};
  double margin{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V xt, V xc, V& g) const {
    const V z = m.Add(m.Sub(m.Set(margin), xt), xc);
    const V h = m.Max(z, m.Zero());
    if constexpr (kGrad) {
      g = p == 1 ? m.Select(m.Gt(z, m.Zero()), m.Set(1.0), m.Mul(h, m.Zero()))
                 : m.Add(h, h);
    }
    return p == 1 ? h : m.Mul(h, h);
  }
};

// Negative log-likelihood of the target's log-probability x_t with class
// weight w: l = -w x_t, dl/dx_t = -w.
struct NllTerm {
  static constexpr int kCost = 1;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V w, V xt, V& g) const {
    if constexpr (kGrad) g = m.Neg(w);
    return TimesUnlessZero(m, w, m.Neg(xt));
  }
};

// Generalized cross-entropy of the label's probability p_t (class weight w):
// l = w (1 - p_t^q) / q = -w expm1(q log p_t) / q, dl/dp_t = -w p_t^(q - 1).
struct GeneralizedCrossEntropyTerm {
  static constexpr int kCost = 4;
  double q{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V w, V pt, V& g) const {
    const V lp = m.Log(pt);
    if constexpr (kGrad) g = m.Neg(m.Mul(w, m.Exp(m.Mul(m.Set(q - 1.0), lp))));
    return m.Mul(w, m.Div(m.Neg(m.Expm1(m.Mul(m.Set(q), lp))), m.Set(q)));
  }
};

// Top-k hit of the target class t (labels, or the first maximum of a dense
// target row): rank = #{c : x_c > x_t} + #{c < t : x_c == x_t}, the class's
// position in a stable descending sort; l = [rank < k] (NaN if the row has a
// NaN). Run by the scalar TopK row kernel (drivers/rowwise/scalar_rows.cc),
// which writes a zero gradient: a metric has none.
struct TopKTerm {
  static constexpr int kCost = 1;
  int64_t k{};
};

// PyTorch's MultiLabelSoftMarginLoss: the mean over the classes (kClassMean)
// of the binary cross-entropy from logits, class weights applied by the row
// driver.
struct MultilabelSoftMargin {
  static constexpr int kCost = BceLogits::kCost;
  static constexpr bool kClassMean = true;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V x, V& g) const {
    return BceLogits{Smoothing{1.0, 0.0}, 1.0}.template Eval<kGrad>(m, y, x, g);
  }
};

// The options of a softmax-family row loss: which term, logits or
// probabilities, and the effective targets. Dense targets:
// y'_c = keep y_c + add; integer labels t with class weights w (1 without):
// y'_c = keep w_t [c == t] + add w_c, where keep = 1 - label_smoothing and
// add = label_smoothing / C (the kernel sets them from C). eps clips
// normalised probabilities.
template <class Term>
struct SoftmaxRows {
  using TermType = Term;
  static constexpr int kCost = Term::kCost;
  Term term;
  bool from_logits{};
  double label_smoothing{};
  double eps{};
  double keep = 1.0, add = 0.0;  // set by the kernel
};
template <class Term>
SoftmaxRows<Term> Softmax(const Term& term, bool from_logits, double label_smoothing,
                          double eps) {
  SoftmaxRows<Term> r;
  r.term = term;
  r.from_logits = from_logits;
  r.label_smoothing = label_smoothing;
  r.eps = eps;
  return r;
}
using CceRows = SoftmaxRows<CceTerm>;
using FocalRows = SoftmaxRows<FocalTerm>;
using Poly1Rows = SoftmaxRows<Poly1Term>;

// PyTorch's HingeEmbeddingLoss of x = y_pred (typically a distance) and
// labels y in {1, -1}, exactly as PyTorch computes it for any y:
//   l = [y != 1] max(0, margin - x) + [y != -1] x,
//   dl/dx = [y != -1] - [y != 1] [margin - x > 0].
// NaN x gives NaN value and gradient.
struct HingeEmbedding {
  static constexpr int kCost = 1;
  double margin{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V x, V& g) const {
    const auto pos = m.Eq(y, m.Set(1.0)), neg = m.Eq(y, m.Set(-1.0));
    const V h = m.Sub(m.Set(margin), x);
    const auto active = m.Gt(h, m.Zero());
    if constexpr (kGrad) {
      const V dh = m.Select(pos, m.Zero(), m.Select(active, m.Set(-1.0), m.Zero()));
      const V dx = m.Select(neg, m.Zero(), m.Set(1.0));
      g = m.Select(m.Eq(x, x), m.Add(dh, dx), x);
    }
    const V lh = m.Select(pos, m.Zero(), m.Select(active, h, m.Mul(h, m.Zero())));
    return m.Add(lh, m.Select(neg, m.Zero(), x));
  }
};

// --- Metrics (fastloss/evaluation.hpp) -----------------------------------------
// Binary accuracy: 1 where the predicted class [x > threshold] is y's class
// [y >= 0.5], else 0; NaN where x or y is NaN. `threshold` is already in the
// inputs' dtype, rounded down (see Build), so that x > threshold is the exact
// comparison. The gradient is 0: a metric has none.
struct BinaryAccuracy {
  static constexpr int kCost = 1;
  double threshold{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V x, V& g) const {
    if constexpr (kGrad) g = m.Zero();
    const V one = m.Set(1.0), zero = m.Zero();
    const auto truth = m.Le(m.Set(0.5), y);
    const V hit = m.Select(m.Gt(x, m.Set(threshold)), m.Select(truth, one, zero),
                           m.Select(truth, zero, one));
    return m.Select(m.Eq(y, y), m.Select(m.Eq(x, x), hit, x), y);
  }
};

// --- Builders of the binary losses: options -> functor (see
// internal/option_checks.h; the options' fields are checked before).
// `pos_weight_array`: BCE's per-element pos_weight, which the sink provides
// as the aux operand; the options' scalar pos_weight otherwise.
template <typename T, class S>
auto Build(const BinaryCrossEntropyOptions& o, S&& sink, bool pos_weight_array = false) {
  if (!o.from_logits) ::fastloss::internal::CheckEps<T>(sink.name, o.eps);
  const Smoothing s{1.0 - o.label_smoothing, 0.5 * o.label_smoothing};
  constexpr ::fastloss::internal::YRange unit = ::fastloss::internal::kUnitY;
  if (o.from_logits) {
    if (pos_weight_array) return sink(BceLogitsPw{s, 1.0}, unit);
    return sink(BceLogits{s, o.pos_weight}, unit);
  }
  if (pos_weight_array) return sink(BceProbsPw{s, 1.0, o.eps}, unit);
  return sink(BceProbs{s, o.pos_weight, o.eps}, unit);
}
template <typename T, class S>
auto Build(const BinaryFocalOptions& o, S&& sink) {
  if (!o.from_logits) ::fastloss::internal::CheckEps<T>(sink.name, o.eps);
  const FocalModulation focal{o.alpha.value_or(1.0), o.alpha.has_value(), o.gamma};
  const Smoothing s{1.0 - o.label_smoothing, 0.5 * o.label_smoothing};
  if (o.from_logits) return sink(BinaryFocalLogits{s, focal}, ::fastloss::internal::kUnitY);
  return sink(BinaryFocalProbs{s, focal, o.eps}, ::fastloss::internal::kUnitY);
}
template <typename T, class S>
auto Build(const HingeOptions&, S&& sink) { return sink(Hinge{}, ::fastloss::internal::kAnyY); }
template <typename T, class S>
auto Build(const SquaredHingeOptions&, S&& sink) {
  return sink(SquaredHinge{}, ::fastloss::internal::kAnyY);
}
template <typename T, class S>
auto Build(const SoftMarginOptions&, S&& sink) {
  return sink(SoftMargin{}, ::fastloss::internal::kAnyY);
}
template <typename T, class S>
auto Build(const HingeEmbeddingOptions& o, S&& sink) {
  return sink(HingeEmbedding{o.margin}, ::fastloss::internal::kAnyY);
}
template <typename T, class S>
auto Build(const BinaryAccuracyOptions& o, S&& sink) {
  return sink(BinaryAccuracy{::fastloss::internal::ScoreThreshold<T>(o.threshold, o.from_logits)},
              ::fastloss::internal::kUnitY);
}

// --- Builders of the row losses: options -> sink(functor, RowRules) (the row
// driver checks the class axis, the labels, class_weights, then runs the
// functor's row kernel: the lists below).
template <typename T, class S>
auto Build(const CategoricalCrossEntropyOptions& o, S&& sink) {
  if (!o.from_logits) ::fastloss::internal::CheckEps<T>(sink.name, o.eps);
  return sink(Softmax(CceTerm{}, o.from_logits, o.label_smoothing, o.eps),
              ::fastloss::internal::RowRules{true, std::nullopt, false});
}
template <typename T, class S>
auto Build(const SparseCategoricalCrossEntropyOptions& o, S&& sink) {
  if (!o.from_logits) ::fastloss::internal::CheckEps<T>(sink.name, o.eps);
  return sink(Softmax(CceTerm{}, o.from_logits, o.label_smoothing, o.eps),
              ::fastloss::internal::RowRules{false, o.ignore_index, true});
}
template <typename T, class S>
auto Build(const CategoricalFocalOptions& o, S&& sink) {
  if (!o.from_logits) ::fastloss::internal::CheckEps<T>(sink.name, o.eps);
  return sink(Softmax(FocalTerm{o.alpha.value_or(1.0), o.gamma}, o.from_logits,
                      o.label_smoothing, o.eps),
              ::fastloss::internal::RowRules{true, std::nullopt, false});
}
template <typename T, class S>
auto Build(const Poly1CrossEntropyOptions& o, S&& sink) {
  if (!o.from_logits) ::fastloss::internal::CheckEps<T>(sink.name, o.eps);
  return sink(Softmax(Poly1Term{o.epsilon}, o.from_logits, o.label_smoothing, o.eps),
              ::fastloss::internal::RowRules{true, std::nullopt, false});
}
template <typename T, class S>
auto Build(const CategoricalHingeOptions&, S&& sink) {
  return sink(CategoricalHingeTerm{}, ::fastloss::internal::RowRules{});
}
template <typename T, class S>
auto Build(const MultiMarginOptions& o, S&& sink) {
  if (o.p != 1 && o.p != 2) {
    throw Error(std::string(sink.name) + ": p must be 1 or 2, got " + std::to_string(o.p));
  }
  return sink(MultiMarginTerm{o.p, o.margin}, ::fastloss::internal::RowRules{});
}
template <typename T, class S>
auto Build(const NllOptions& o, S&& sink) {
  return sink(NllTerm{}, ::fastloss::internal::RowRules{false, o.ignore_index, true});
}
template <typename T, class S>
auto Build(const GeneralizedCrossEntropyOptions& o, S&& sink) {
  return sink(GeneralizedCrossEntropyTerm{o.q},
              ::fastloss::internal::RowRules{false, o.ignore_index, true});
}
// (top_k >= 1 is checked with the options: their Validate.)
template <typename T, class S>
auto Build(const CategoricalAccuracyOptions& o, S&& sink) {
  return sink(TopKTerm{o.top_k}, ::fastloss::internal::RowRules{});
}
template <typename T, class S>
auto Build(const SparseCategoricalAccuracyOptions& o, S&& sink) {
  return sink(TopKTerm{o.top_k}, ::fastloss::internal::RowRules{false, o.ignore_index, true});
}
template <typename T, class S>
auto Build(const MultilabelSoftMarginOptions&, S&& sink) {
  return sink(MultilabelSoftMargin{}, ::fastloss::internal::RowRules{});
}
template <typename T, class S>
auto Build(const KlDivergenceOptions& o, S&& sink) {
  return sink(KlDivergence{o.log_input, o.log_target}, ::fastloss::internal::RowRules{});
}
template <typename T, class S>
auto Build(const JensenShannonOptions& o, S&& sink) {
  return sink(JensenShannon{o.beta, o.log_input}, ::fastloss::internal::RowRules{});
}

// The row functors of this file and the kernel family each runs on
// (drivers/rowwise): kernels/classification_rows.cc instantiates the SIMD
// ones for every target (Softmax: SoftmaxRows<Term>; ElementSum: an element
// functor summed along the class axis; TargetSum: terms relative to the
// target's x_t), drivers/rowwise/scalar_rows.cc the scalar ones.
#define FASTLOSS_ROW_FUNCTORS(X)                                                        \
  X(CceRows, Softmax) X(FocalRows, Softmax) X(Poly1Rows, Softmax) X(KlDivergence, ElementSum) \
  X(JensenShannon, ElementSum) X(MultilabelSoftMargin, ElementSum) X(MultiMarginTerm, TargetSum)
#define FASTLOSS_SCALAR_ROW_FUNCTORS(X)                              \
  X(CategoricalHingeTerm, CategoricalHinge) X(NllTerm, TargetOnly) \
  X(GeneralizedCrossEntropyTerm, TargetOnly) X(TopKTerm, TopK)

// The elementwise functors of this file: kernels/classification.cc instantiates their
// kernels for every SIMD target (redefined identically at each inclusion).
#define FASTLOSS_BINARY_FUNCTORS(X) X(BceLogits) X(BceLogitsPw) X(BceProbs) X(BceProbsPw) X(BinaryFocalLogits) X(BinaryFocalProbs) X(Hinge) X(SquaredHinge) X(SoftMargin) X(HingeEmbedding) X(BinaryAccuracy)
