// The fused elementwise combinations (api/combination.cc): a combination checked
// against the sum of the separate calls and against the double reference of
// reference.h. Used by combination_test.cc and structured_test.cc (SIMD
// targets).
#ifndef FASTLOSS_TESTS_CPP_COMBINATION_REFERENCE_H_
#define FASTLOSS_TESTS_CPP_COMBINATION_REFERENCE_H_

#include "structured_helpers.h"

namespace fastloss_test {

// ============================================================================
// Fused combinations.
// ============================================================================

// Regression-type data: residuals of all sizes, exact ties, |r| > 2.
inline void CombinationData(size_t n, uint64_t seed, std::vector<double>* y,
                            std::vector<double>* p) {
  Rng rng(seed);
  y->resize(n);
  p->resize(n);
  for (size_t i = 0; i < n; ++i) {
    (*y)[i] = 2.0 * rng.N();
    (*p)[i] = (*y)[i] + (rng.P(0.1) ? 0.0 : 2.0 * rng.N());
  }
}

struct Out {
  double value = 0;
  std::vector<double> grad, losses;
};

// Runs f on (y, p) with a weights view (or none), gradient and losses
// buffers of `lay`, and returns what it wrote.
template <typename T, class F>
Out RunPlain(F f, const std::vector<int64_t>& shape, const std::vector<double>& y,
             const std::vector<double>& p, const View<const T>* w, Reduction r, Layout lay,
             Expected* ref_out = nullptr, const LossConfig* ref_config = nullptr) {
  Arr<T> ya = Input<T>(shape, lay, y), pa = Input<T>(shape, lay, p);
  Arr<T> ga = NewArr<T>(shape, lay), la = NewArr<T>(shape, lay);
  Call<T> call;
  call.y_true = ya->cview();
  call.y_pred = pa->cview();
  call.reduction = r;
  call.grad = ga->view();
  call.losses = la->view();
  if (!(r == Reduction::kNone)) call.losses.reset();
  if (w) {
    call.weights = *w;
  }
  if (ref_out) *ref_out = Reference(*ref_config, call, 1e-14);
  Out o;
  o.value = f(call);
  std::vector<T> g = ga->Values(), l = la->Values();
  o.grad.assign(g.begin(), g.end());
  o.losses.assign(l.begin(), l.end());
  EXPECT_TRUE(ga->OnlyViewWritten());
  EXPECT_TRUE(r == Reduction::kNone ? la->OnlyViewWritten() : la->Untouched());
  return o;
}

template <typename T>
void CheckCombination(Layout lay, Reduction r, bool weighted, uint64_t seed) {
  SCOPED_TRACE(std::string("0.5 mse + 0.3 mae + 0.2 huber(2) ") + LayoutName(lay) + " " +
               ReductionName(r) + (weighted ? " weighted" : "") + " " + DtypeName<T>());
  const std::vector<int64_t> shape = {7, 37};
  std::vector<double> y, p;
  CombinationData(259, seed, &y, &p);
  y = RoundTo<T>(y);
  p = RoundTo<T>(p);
  std::vector<T> wbuf(37);
  Rng rng(seed + 1);
  for (T& v : wbuf) v = static_cast<T>(rng.P(0.1) ? 0.0 : rng.U(0.1, 2));
  const View<const T> wv = CView(wbuf, {37});
  const View<const T>* w = weighted ? &wv : nullptr;
  fastloss::ElementwiseCombination c;
  fastloss::HuberOptions h2;
  h2.delta = 2.0;
  c.Add(0.5, fastloss::MseOptions{}).Add(0.3, fastloss::MaeOptions{}).Add(0.2, h2);
  EXPECT_EQ(c.size(), 3);
  const Out comb = RunPlain<T>([&](const Call<T>& call) { return fastloss::Combined(call, c); },
                               shape, y, p, w, r, lay);
  LossConfig cm, ca, ch;
  cm.id = LossId::kMse;
  ca.id = LossId::kMae;
  ch.id = LossId::kHuber;
  ch.huber = h2;
  Expected em, ea, eh;
  const Out om = RunPlain<T>([](const Call<T>& call) { return fastloss::Mse(call); }, shape, y, p, w,
                             r, lay, &em, &cm);
  const Out oa = RunPlain<T>([](const Call<T>& call) { return fastloss::Mae(call); }, shape, y, p, w,
                             r, lay, &ea, &ca);
  const Out oh = RunPlain<T>([&](const Call<T>& call) { return fastloss::Huber(call, h2); }, shape,
                             y, p, w, r, lay, &eh, &ch);
  // Against the sum of the separate calls: a few ulps of T.
  const double ulp = std::numeric_limits<T>::epsilon();
  const double sv = 0.5 * om.value + 0.3 * oa.value + 0.2 * oh.value;
  const double mv = 0.5 * std::fabs(om.value) + 0.3 * std::fabs(oa.value) + 0.2 * std::fabs(oh.value);
  EXPECT_TRUE(Close(comb.value, sv, 16 * ulp * mv + Floor<T>()))
      << "value " << comb.value << " vs separate " << sv;
  // Against the double reference.
  if (r != Reduction::kNone) {
    const double ev = 0.5 * em.value + 0.3 * ea.value + 0.2 * eh.value;
    const double tol = Rt<T>() * (std::fabs(ev) + mv);
    EXPECT_TRUE(Close(comb.value, ev, tol)) << "value " << comb.value << " vs reference " << ev;
  } else {
    EXPECT_EQ(comb.value, 0.0);
  }
  int bad_g = 0, bad_l = 0;
  for (size_t i = 0; i < comb.grad.size(); ++i) {
    const double sg = 0.5 * om.grad[i] + 0.3 * oa.grad[i] + 0.2 * oh.grad[i];
    const double mg =
        0.5 * std::fabs(om.grad[i]) + 0.3 * std::fabs(oa.grad[i]) + 0.2 * std::fabs(oh.grad[i]);
    const double eg = 0.5 * em.grad[i] + 0.3 * ea.grad[i] + 0.2 * eh.grad[i];
    if (!Close(comb.grad[i], sg, 8 * ulp * mg + Floor<T>()) ||
        !Close(comb.grad[i], eg, Rt<T>() * mg + Floor<T>())) {
      if (bad_g++ < 5) {
        ADD_FAILURE() << "grad[" << i << "] " << comb.grad[i] << " vs separate " << sg
                      << " vs reference " << eg;
      }
    }
    if (r == Reduction::kNone) {
      const double sl = 0.5 * om.losses[i] + 0.3 * oa.losses[i] + 0.2 * oh.losses[i];
      const double ml = 0.5 * std::fabs(om.losses[i]) + 0.3 * std::fabs(oa.losses[i]) +
                        0.2 * std::fabs(oh.losses[i]);
      const double el = 0.5 * em.losses[i] + 0.3 * ea.losses[i] + 0.2 * eh.losses[i];
      if (!Close(comb.losses[i], sl, 8 * ulp * ml + Floor<T>()) ||
          !Close(comb.losses[i], el, Rt<T>() * ml + Floor<T>())) {
        if (bad_l++ < 5) {
          ADD_FAILURE() << "losses[" << i << "] " << comb.losses[i] << " vs separate " << sl
                        << " vs reference " << el;
        }
      }
    }
  }
  EXPECT_EQ(bad_g, 0);
  EXPECT_EQ(bad_l, 0);
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_COMBINATION_REFERENCE_H_
