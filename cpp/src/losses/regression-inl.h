// The regression losses, each written once as an element functor.
// No include guard and no namespace: see common-inl.h for why and how this
// file is included.
//
// A functor holds its options and has one member template
//
//   template <bool kGrad, class M, class V>
//   V Eval(const M& m, V y, V p, V& g) const;
//
// returning the per-element loss l(y, p) and, when kGrad, storing dl/dp in g.
// M is the math interface (ScalarMath<T> or SimdMath<D>), V its value type;
// value and derivative share their subexpressions, and with kGrad = false the
// derivative is dead code the compiler removes. The drivers apply weights,
// reductions and the mean's 1/N; a functor knows nothing of them.
//
// kCost is the rough cost of one element in units of a load+fma, used only to
// decide when a call is worth splitting over threads.
// l = r^2, dl/dp = 2 r, r = p - y. Exact to rounding.
struct Mse {
  static constexpr int kCost = 1;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V r = m.Sub(p, y);
    if constexpr (kGrad) g = m.Add(r, r);
    return m.Mul(r, r);
  }
};

// l = |r|, dl/dp = sign(r) (0 at r = 0, the subgradient NumPy and PyTorch use).
struct Mae {
  static constexpr int kCost = 1;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V r = m.Sub(p, y);
    if constexpr (kGrad) g = m.Sign(r);
    return m.Abs(r);
  }
};

// Huber, scaled: l = scale * (r^2/2 if |r| <= delta else delta (|r| - delta/2)),
// dl/dp = scale * clip(r, -delta, delta). Continuous in value and derivative
// at |r| = delta. scale = 1 is Huber; smooth L1 with beta > 0 is
// Huber{beta, 1/beta} (PyTorch's definition divided through by beta), so the
// formula exists once. The scale is folded into the constants, and the
// branch mask is "|r| > delta" so that NaN takes the quadratic branch and
// stays NaN in value and derivative (11 vector ops for both). The linear
// branch is (scale delta) (|r| - delta/2), not scale delta |r| - scale
// delta^2/2: that difference of two products is inf - inf = NaN where both
// overflow (delta = 1e30, r = 1e38 in float32; 1e200 and 1e300 in float64)
// and the loss is +inf. Same operation count.
struct Huber {
  static constexpr int kCost = 1;
  double delta{};
  double scale{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V r = m.Sub(p, y);
    const V e = m.Abs(r);
    const auto linear = m.Gt(e, m.Set(delta));
    const V s_delta = m.Set(scale * delta);
    if constexpr (kGrad) {
      g = m.Select(linear, m.CopySign(s_delta, r), m.Mul(m.Set(scale), r));
    }
    const V quad = m.Mul(m.Mul(m.Set(0.5 * scale), r), r);
    const V lin = m.Mul(s_delta, m.Sub(e, m.Set(0.5 * delta)));
    return m.Select(linear, lin, quad);
  }
};

// l = log(cosh(r)), dl/dp = tanh(r), finite for every finite r.
// With a = |r| and u = expm1(-2a) in (-1, 0], tanh(a) = -u / (2 + u) keeps
// its relative accuracy for tiny a, and
//   log cosh a = -log1p(-tanh(a)^2) / 2   for a < 1 (no cancellation near 0),
//   log cosh a = a + log1p(u / 2)         for a >= 1 (= a - log 2 + ..., no
//                                          overflow up to the largest finite r).
// One expm1, one log1p and one division per element; <= ~6 ULP.
struct LogCosh {
  static constexpr int kCost = 8;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V r = m.Sub(p, y);
    const V a = m.Abs(r);
    const V u = m.Expm1(m.Mul(m.Set(-2.0), a));
    const V th = m.Div(m.Neg(u), m.Add(m.Set(2.0), u));
    if constexpr (kGrad) g = WithSignOf(m, th, r);
    const auto small = m.Lt(a, m.Set(1.0));
    const V lg = m.Log1p(m.Select(small, m.Neg(m.Mul(th, th)), m.Mul(m.Set(0.5), u)));
    return m.Select(small, m.Mul(m.Set(-0.5), lg), m.Add(a, lg));
  }
};

// Mean squared log error. l = (log1p(p) - log1p(y))^2,
// dl/dp = 2 (log1p(p) - log1p(y)) / (1 + p). Below -1: NaN; at -1: inf.
struct Msle {
  static constexpr int kCost = 8;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V dl = m.Sub(m.Log1p(p), m.Log1p(y));
    if constexpr (kGrad) g = m.Div(m.Add(dl, dl), m.Add(m.Set(1.0), p));
    return m.Mul(dl, dl);
  }
};

// Mean absolute percentage error (a fraction, as scikit-learn).
// l = |r| / max(|y|, eps), dl/dp = sign(r) / max(|y|, eps).
struct Mape {
  static constexpr int kCost = 2;
  double eps{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    // Divisions, not a reciprocal: 1 / max(|y|, eps) overflows for a
    // subnormal eps where |r| / max(|y|, eps) does not.
    const V den = m.Max(m.Abs(y), m.Set(eps));
    const V r = m.Sub(p, y);
    if constexpr (kGrad) g = m.Div(m.Sign(r), den);
    return m.Div(m.Abs(r), den);
  }
};

// Poisson negative log-likelihood with PyTorch's semantics (p = input,
// y = target):
//   log_input:  l = exp(p) - y p,          dl/dp = exp(p) - y
//   otherwise:  l = p - y log(p + eps),    dl/dp = 1 - y / (p + eps)
//   full:       l += y log y - y + log(2 pi y) / 2 where y > 1 (Stirling),
//               which does not depend on p.
// exp overflows to +inf (never NaN) for p beyond ~88 (float) / ~709 (double).
struct PoissonNll {
  static constexpr int kCost = 6;
  bool log_input{};
  bool full{};
  double eps{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    V l;
    if (log_input) {
      const V e = m.Exp(p);
      if constexpr (kGrad) g = m.Sub(e, y);
      l = m.Sub(e, m.Mul(y, p));
    } else {
      const V q = m.Add(p, m.Set(eps));
      if constexpr (kGrad) g = m.Sub(m.Set(1.0), m.Div(y, q));
      l = m.Sub(p, m.Mul(y, m.Log(q)));
    }
    if (full) {
      const V stirling =
          m.Add(m.Sub(m.Mul(y, m.Log(y)), y),
                m.Mul(m.Set(0.5), m.Log(m.Mul(m.Set(6.283185307179586476925), y))));
      l = m.Add(l, m.Select(m.Gt(y, m.Set(1.0)), stirling, m.Zero()));
    }
    return l;
  }
};

// Quantile (pinball) loss. With e = y - p:
// l = max(q e, (q - 1) e) = e (q - [e < 0]); dl/dp = -q if e > 0, 1 - q if
// e < 0, 0 if e = 0. NaN stays NaN through the multiplications.
struct Quantile {
  static constexpr int kCost = 1;
  double q{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V p, V& g) const {
    const V e = m.Sub(y, p);
    const auto below = m.Lt(e, m.Zero());
    if constexpr (kGrad) {
      g = m.Select(m.Gt(e, m.Zero()), m.Set(-q),
                   m.Select(below, m.Set(1.0 - q), m.Mul(e, m.Zero())));
    }
    return m.Mul(e, m.Select(below, m.Set(q - 1.0), m.Set(q)));
  }
};

// Tweedie deviance with power p (scikit-learn's mean_tweedie_deviance;
// y_pred = mu > 0 the predicted mean):
//   p = 0:  l = (y - mu)^2
//   p = 1:  l = 2 (y log(y / mu) - y + mu)            (Poisson; y log y = 0 at y = 0)
//   p = 2:  l = 2 (log(mu / y) + y / mu - 1)          (Gamma)
//   else:   l = 2 (max(y, 0)^(2-p) / ((1-p)(2-p)) - y mu^(1-p) / (1-p) + mu^(2-p) / (2-p))
// and for every p dl/dmu = 2 mu^-p (mu - y). Powers are exp(a log mu):
// mu <= 0 (and, for p >= 1, y < 0; for p >= 2, y <= 0) gives NaN or inf
// where scikit-learn raises.
struct Tweedie {
  static constexpr int kCost = 8;
  double power{};
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V mu, V& g) const {
    const V d = m.Sub(mu, y);
    if (power == 0.0) {
      if constexpr (kGrad) g = m.Add(d, d);
      return m.Mul(d, d);
    }
    const V log_mu = m.Log(mu);
    if constexpr (kGrad) g = m.Mul(m.Set(2.0), m.Mul(m.Exp(m.Mul(m.Set(-power), log_mu)), d));
    if (power == 1.0) {
      // y log(y / mu) is 0 at y = 0 (not 0 * -inf).
      const V ylog = m.Select(m.Eq(y, m.Zero()), m.Zero(), m.Mul(y, m.Sub(m.Log(y), log_mu)));
      return m.Mul(m.Set(2.0), m.Add(ylog, d));  // d = mu - y
    }
    if (power == 2.0) {
      return m.Mul(m.Set(2.0), m.Sub(m.Add(m.Sub(log_mu, m.Log(y)), m.Div(y, mu)), m.Set(1.0)));
    }
    const double a = 1.0 - power, b = 2.0 - power;
    const V y_pos = m.Max(y, m.Zero());
    // max(y, 0)^(2-p): 0 at y = 0 (exp(b log 0) = exp(-inf) for b > 0).
    const V t1 = m.Mul(m.Exp(m.Mul(m.Set(b), m.Log(y_pos))), m.Set(1.0 / (a * b)));
    const V t2 = m.Mul(m.Mul(y, m.Exp(m.Mul(m.Set(a), log_mu))), m.Set(1.0 / a));
    const V t3 = m.Mul(m.Exp(m.Mul(m.Set(b), log_mu)), m.Set(1.0 / b));
    return m.Mul(m.Set(2.0), m.Add(m.Sub(t1, t2), t3));
  }
};

// PyTorch's GaussianNLLLoss with y_true = target, y_pred = input (the mean)
// and aux = var: v = max(var, eps) (NaN stays NaN), r = input - target,
// l = (log v + r^2 / v) / 2 + constant, dl/dinput = r / v,
// dl/dvar = (1 / v - (r / v)^2) / 2: the clamp passes the gradient through,
// as PyTorch's clamp under no_grad does. var < 0 is checked by the driver.
struct GaussianNll {
  static constexpr int kCost = 4;
  static constexpr bool kAux = true;
  static constexpr bool kAuxGrad = true;
  double eps;
  double constant;  // log(2 pi) / 2 with `full`, else 0
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V y, V x, V var, V& g, V& gv) const {
    const V e = m.Set(eps);
    const V v = m.Select(m.Lt(var, e), e, var);
    const V r = m.Sub(x, y);
    const V q = m.Div(r, v);
    const V half = m.Set(0.5);
    if constexpr (kGrad) {
      g = q;
      gv = m.Mul(half, m.Sub(m.Div(m.Set(1.0), v), m.Mul(q, q)));
    }
    return m.Add(m.Mul(half, m.Add(m.Log(v), m.Mul(q, r))), m.Set(constant));
  }
};

// --- Builders: options -> functor (see internal/option_checks.h). The
// options' own fields are checked before (CheckOptions); a builder checks
// what depends on the dtype T or on several options.
template <typename T, class S>
auto Build(const MseOptions&, S&& sink) { return sink(Mse{}, ::fastloss::internal::kAnyY); }
template <typename T, class S>
auto Build(const MaeOptions&, S&& sink) { return sink(Mae{}, ::fastloss::internal::kAnyY); }
template <typename T, class S>
auto Build(const HuberOptions& o, S&& sink) {
  return sink(Huber{o.delta, 1.0}, ::fastloss::internal::kAnyY);
}
// PyTorch's smooth L1 is Huber with delta = beta divided by beta, and L1 at
// beta = 0. Where 1 / beta overflows T (beta below ~2.9e-39 in float,
// ~5.6e-309 in double) the quadratic zone |r| < beta holds only subnormal
// residuals, and the loss is L1 to within beta / 2.
template <typename T, class S>
auto Build(const SmoothL1Options& o, S&& sink) {
  if (!(1.0 / o.beta <= static_cast<double>(std::numeric_limits<T>::max()))) {
    return sink(Mae{}, ::fastloss::internal::kAnyY);
  }
  return sink(Huber{o.beta, 1.0 / o.beta}, ::fastloss::internal::kAnyY);
}
template <typename T, class S>
auto Build(const LogCoshOptions&, S&& sink) { return sink(LogCosh{}, ::fastloss::internal::kAnyY); }
template <typename T, class S>
auto Build(const MsleOptions&, S&& sink) { return sink(Msle{}, ::fastloss::internal::kAnyY); }
template <typename T, class S>
auto Build(const MapeOptions& o, S&& sink) { return sink(Mape{o.eps}, ::fastloss::internal::kAnyY); }
template <typename T, class S>
auto Build(const PoissonNllOptions& o, S&& sink) {
  return sink(PoissonNll{o.log_input, o.full, o.eps}, ::fastloss::internal::kAnyY);
}
template <typename T, class S>
auto Build(const QuantileOptions& o, S&& sink) {
  return sink(Quantile{o.q}, ::fastloss::internal::kAnyY);
}
template <typename T, class S>
auto Build(const TweedieOptions& o, S&& sink) {
  return sink(Tweedie{o.power}, ::fastloss::internal::kAnyY);
}
// The Elements rows: sink(functor, y range, aux range).
template <typename T, class S>
auto Build(const GaussianNllOptions& o, S&& sink) {
  const double half_log_2pi = 0.91893853320467274178;  // log(2 pi) / 2
  return sink(GaussianNll{o.eps, o.full ? half_log_2pi : 0.0}, ::fastloss::internal::kAnyY,
              ::fastloss::internal::YRange{true, 0.0, std::numeric_limits<double>::infinity()});
}

// The elementwise functors of this file: kernels/regression.cc instantiates their kernels
// for every SIMD target (one list, beside the functors; redefined identically
// at each inclusion).
#define FASTLOSS_REGRESSION_FUNCTORS(X) X(Identity) X(Mse) X(Mae) X(Huber) X(LogCosh) X(Msle) X(Mape) X(PoissonNll) X(Quantile) X(Tweedie) X(GaussianNll)
