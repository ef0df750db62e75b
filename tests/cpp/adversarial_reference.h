// The adversarial losses and the gradient penalty (GAN discriminator /
// generator, Wasserstein critic / generator, gradient_penalty): the double
// references written from notes/STRUCTURED_SPEC.md and the sweep that checks
// the library against them. Used by adversarial_test.cc and structured_test.cc
// (finite differences, large groups, SIMD targets).
#ifndef FASTLOSS_TESTS_CPP_ADVERSARIAL_REFERENCE_H_
#define FASTLOSS_TESTS_CPP_ADVERSARIAL_REFERENCE_H_

#include "structured_helpers.h"

namespace fastloss_test {

// ============================================================================
// Adversarial losses and penalties.
// ============================================================================

enum class ScoreLoss { kGanReal, kGanFake, kGanGen, kGanGenSat, kNeg, kPos };

// Per-element loss of one score array: softplus(-x) (real / generator),
// softplus(x) (fake), -softplus(x) (saturating generator), -x, x.
inline Ref RefScores(ScoreLoss k, const std::vector<double>& x, const std::vector<int64_t>& shape) {
  Ref ref;
  ref.lshape = shape;
  const size_t n = x.size();
  ref.l.resize(n);
  ref.ml.resize(n);
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  ref.gof.resize(n);
  for (size_t i = 0; i < n; ++i) {
    double l = 0, d = 0;
    switch (k) {
      case ScoreLoss::kGanReal:
      case ScoreLoss::kGanGen:
        l = Sp(-x[i]);
        d = -Sig(-x[i]);
        break;
      case ScoreLoss::kGanFake:
        l = Sp(x[i]);
        d = Sig(x[i]);
        break;
      case ScoreLoss::kGanGenSat:
        l = -Sp(x[i]);
        d = -Sig(x[i]);
        break;
      case ScoreLoss::kNeg:
        l = -x[i];
        d = -1;
        break;
      case ScoreLoss::kPos:
        l = x[i];
        d = 1;
        break;
    }
    ref.l[i] = l;
    ref.ml[i] = std::fabs(l);
    ref.dl[0][i] = d;
    ref.mdl[0][i] = std::fabs(d);
    ref.gof[i] = static_cast<int64_t>(i);
  }
  return ref;
}

// One ScoreCall with its buffers.
template <typename T>
struct ScoreSetup {
  Arr<T> x, g, l;
  Weights<T> w;
  ScoreCall<T> call;
  Want want;
};

template <typename T>
void MakeScoreSetup(const std::vector<int64_t>& shape, const std::vector<double>& x, const Ref& ref,
                    const Opts& o, ScoreSetup<T>* s) {
  s->x = Input<T>(shape, o.layout, x);
  s->g = NewArr<T>(shape, o.layout);
  s->l = NewArr<T>(ref.lshape, o.layout);
  s->call.scores = s->x->cview();
  s->call.grad = s->g->view();
  if (o.r == Reduction::kNone) {
    s->call.losses = s->l->view();
  }
  if (o.weighted) {
    MakeWeights<T>(ref.lshape, o, &s->w);
    s->call.weights = s->w.arr->cview();
  }
  s->want = Finish<T>(ref, o.weighted ? &s->w.full : nullptr, o.r, Rt<T>());
}

inline std::vector<double> Logits(size_t n, Rng& rng) {
  std::vector<double> x(n);
  for (double& v : x) v = rng.P(0.1) ? (rng.P(0.5) ? -1 : 1) * rng.U(20, 40) : 3.0 * rng.N();
  return x;
}

template <typename T>
void CheckTwoArrayLoss(bool gan, const Opts& o) {
  SCOPED_TRACE(std::string(gan ? "gan_discriminator " : "wasserstein_critic ") + DtypeName<T>() +
               " " + OptsName(o));
  Rng rng(o.seed * 37u + (gan ? 1u : 2u));
  const std::vector<int64_t> rshape = {6, 5}, fshape = {7};
  const std::vector<double> xr = RoundTo<T>(Logits(30, rng)), xf = RoundTo<T>(Logits(7, rng));
  const Ref rr = RefScores(gan ? ScoreLoss::kGanReal : ScoreLoss::kNeg, xr, rshape);
  const Ref rf = RefScores(gan ? ScoreLoss::kGanFake : ScoreLoss::kPos, xf, fshape);
  ScoreSetup<T> real, fake;
  MakeScoreSetup<T>(rshape, xr, rr, o, &real);
  Opts of = o;
  of.seed += 1000;
  MakeScoreSetup<T>(fshape, xf, rf, of, &fake);
  const double v = gan ? fastloss::GanDiscriminator(real.call, fake.call, o.r)
                       : fastloss::WassersteinCritic(real.call, fake.call, o.r);
  if (o.r == Reduction::kNone) {
    EXPECT_EQ(v, 0.0);
  } else {
    const double e = real.want.value + fake.want.value;
    EXPECT_TRUE(Close(v, e, real.want.value_tol + fake.want.value_tol))
        << "value " << v << " expected " << e;
  }
  if (o.r == Reduction::kNone) {
    EXPECT_TRUE(Matches<T>(real.want, 0.0, {&real.g->view()}, &real.l->view())) << "real";
    EXPECT_TRUE(Matches<T>(fake.want, 0.0, {&fake.g->view()}, &fake.l->view())) << "fake";
    EXPECT_TRUE(real.l->OnlyViewWritten());
    EXPECT_TRUE(fake.l->OnlyViewWritten());
  } else {
    EXPECT_TRUE(ViewMatches("real grad", real.g->view(), real.want.grad[0], real.want.grad_tol[0]));
    EXPECT_TRUE(ViewMatches("fake grad", fake.g->view(), fake.want.grad[0], fake.want.grad_tol[0]));
    EXPECT_TRUE(real.l->Untouched());
    EXPECT_TRUE(fake.l->Untouched());
  }
  EXPECT_TRUE(real.g->OnlyViewWritten());
  EXPECT_TRUE(fake.g->OnlyViewWritten());
}

template <typename T>
void CheckOneArrayLoss(ScoreLoss k, const Opts& o) {
  SCOPED_TRACE(std::string("score loss ") + std::to_string(static_cast<int>(k)) + " " +
               DtypeName<T>() + " " + OptsName(o));
  Rng rng(o.seed * 41u + static_cast<uint64_t>(k));
  const std::vector<int64_t> shape = {3, 4, 5};
  const std::vector<double> x = RoundTo<T>(Logits(60, rng));
  const Ref ref = RefScores(k, x, shape);
  ScoreSetup<T> s;
  MakeScoreSetup<T>(shape, x, ref, o, &s);
  double v = kNaN;
  switch (k) {
    case ScoreLoss::kGanGen: v = fastloss::GanGenerator(s.call, o.r); break;
    case ScoreLoss::kGanGenSat: v = fastloss::GanGenerator(s.call, o.r, true); break;
    case ScoreLoss::kNeg: v = fastloss::WassersteinGenerator(s.call, o.r); break;
    default: FAIL() << "not a one-array loss";
  }
  EXPECT_TRUE(Matches<T>(s.want, v, {&s.g->view()}, &s.l->view()));
  EXPECT_TRUE(s.g->OnlyViewWritten());
  EXPECT_TRUE(o.r == Reduction::kNone ? s.l->OnlyViewWritten() : s.l->Untouched());
}

// gradient_penalty: rows along axis 0, l = (|g_i| - target)^2.
inline Ref RefGradientPenalty(double target, const std::vector<double>& g,
                              const std::vector<int64_t>& shape) {
  std::vector<bool> red(shape.size(), true);
  red[0] = false;
  Ref ref;
  ref.gof = GroupOf(shape, red, &ref.lshape);
  const size_t ns = static_cast<size_t>(shape[0]), n = g.size();
  std::vector<double> S(ns, 0.0);
  for (size_t i = 0; i < n; ++i) S[static_cast<size_t>(ref.gof[i])] += g[i] * g[i];
  ref.l.resize(ns);
  ref.ml.resize(ns);
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  for (size_t s = 0; s < ns; ++s) {
    const double nn = std::sqrt(S[s]);
    ref.l[s] = (nn - target) * (nn - target);
    ref.ml[s] = (nn + std::fabs(target)) * (nn + std::fabs(target));
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t s = static_cast<size_t>(ref.gof[i]);
    const double nn = std::sqrt(S[s]);
    ref.dl[0][i] = nn > 0 ? 2.0 * (nn - target) * g[i] / nn : 0.0;
    ref.mdl[0][i] = nn > 0 ? 2.0 * (nn + std::fabs(target)) * std::fabs(g[i]) / nn : 0.0;
  }
  return ref;
}

template <typename T>
void GradientPenaltyCase(double target, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("gradient_penalty target " + std::to_string(target) + " " + ShapeStr(shape) + " " +
               DtypeName<T>() + " " + OptsName(o));
  Rng rng(o.seed * 43u + 9u);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<double> g(n);
  const int64_t per = n / static_cast<size_t>(shape[0]);
  for (size_t i = 0; i < n; ++i) {
    g[i] = i / static_cast<size_t>(per) == 1 ? 0.0 : 0.4 * rng.N();  // sample 1 is all zero
  }
  g = RoundTo<T>(g);
  const Ref ref = RefGradientPenalty(target, g, shape);
  ScoreSetup<T> s;
  MakeScoreSetup<T>(shape, g, ref, o, &s);
  const double v = fastloss::GradientPenalty(s.call, o.r, target);
  EXPECT_TRUE(Matches<T>(s.want, v, {&s.g->view()}, &s.l->view()));
  EXPECT_TRUE(s.g->OnlyViewWritten());
  EXPECT_TRUE(o.r == Reduction::kNone ? s.l->OnlyViewWritten() : s.l->Untouched());
}

template <typename T>
void SweepAdversarial(bool quick) {
  for (const Opts& o : Sweep(quick)) {
    CheckTwoArrayLoss<T>(true, o);
    CheckTwoArrayLoss<T>(false, o);
    for (ScoreLoss k : {ScoreLoss::kGanGen, ScoreLoss::kGanGenSat, ScoreLoss::kNeg}) {
      CheckOneArrayLoss<T>(k, o);
    }
    for (double target : {1.0, 0.5, 0.0}) {
      if (quick && target != 1.0) continue;
      GradientPenaltyCase<T>(target, {6, 3, 5}, o);
      if (!quick) GradientPenaltyCase<T>(target, {9}, o);
    }
  }
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_ADVERSARIAL_REFERENCE_H_
