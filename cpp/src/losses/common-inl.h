// Helpers shared by the loss functors, generic over the math interface M.
//
// No include guard and no namespace, on purpose: a function that calls
// Highway ops must be compiled for each SIMD target, so this file (like every
// losses/*-inl.h) is included once inside each target's namespace by the
// dispatched family files, and once inside namespace fastloss::losses by
// losses/losses.h for the plain scalar (and later CUDA) instantiation. The
// text is written once; the compiler makes one copy per target.
//
// Functor members carry no defaults of their own ({} zero): every value comes
// from the loss's options struct, whose member initializers are the only
// place a default is written, through the loss's Build.
// Include after internal/base.h.

// clip(x, lo, hi) that keeps NaN (comparisons with NaN are false).
template <class M, class V>
FASTLOSS_HD V Clamp(const M& m, V x, V lo, V hi) {
  return m.Select(m.Gt(x, hi), hi, m.Select(m.Lt(x, lo), lo, x));
}

// x with the sign of s (s = NaN keeps x; the functors use it where x is NaN
// whenever s is).
template <class M, class V>
FASTLOSS_HD V WithSignOf(const M& m, V x, V s) {
  return m.Select(m.Lt(s, m.Zero()), m.Neg(x), x);
}


// Not a loss: l = p. Run through the elementwise driver it gives a
// deterministic, blocked float64 sum of an array (the weights' total for a
// weighted mean).
struct Identity {
  static constexpr int kCost = 1;
  template <bool kGrad, class M, class V>
  FASTLOSS_HD V Eval(const M& m, V /*y*/, V p, V& g) const {
    if constexpr (kGrad) g = m.Set(1.0);
    return p;
  }
};
