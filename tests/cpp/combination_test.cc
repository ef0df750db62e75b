// The fused elementwise combinations (api/combination.cc) against the sum of the
// separate calls and the double reference: regression, classification and
// contrastive terms, negative coefficients, every reduction, weights, strided
// operands; the errors of Add and of a call. Empty inputs, NaN, threads and SIMD
// targets: structured_test.cc.
#include "combination_reference.h"

namespace fastloss_test {
namespace {

// Classification and contrastive terms with a negative coefficient, against
// the separate calls.
template <typename T>
void CheckCombinationOtherTerms(Reduction r, bool weighted) {
  SCOPED_TRACE(std::string("bce(logits) + 0.5 contrastive(1.5) - 0.1 mse ") + ReductionName(r) +
               (weighted ? " weighted" : "") + " " + DtypeName<T>());
  const std::vector<int64_t> shape = {5, 41};
  Rng rng(99);
  std::vector<double> y(205), p(205);
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = rng.P(0.4) ? 0.0 : (rng.P(0.6) ? 1.0 : rng.U(0, 1));
    p[i] = rng.U(0, 2.5);
  }
  y = RoundTo<T>(y);
  p = RoundTo<T>(p);
  std::vector<T> wbuf(5);
  for (T& v : wbuf) v = static_cast<T>(rng.U(0.2, 2));
  const View<const T> wv = CView(wbuf, {5, 1});
  const View<const T>* w = weighted ? &wv : nullptr;
  fastloss::BinaryCrossEntropyOptions b;
  b.from_logits = true;
  fastloss::ContrastiveOptions co;
  co.margin = 1.5;
  fastloss::ElementwiseCombination c;
  c.Add(1.0, b).Add(0.5, co).Add(-0.1, fastloss::MseOptions{});
  const fastloss::ElementwiseCombination copy = c;  // copies are independent and usable
  EXPECT_EQ(copy.size(), 3);
  const Out comb = RunPlain<T>([&](const Call<T>& call) { return fastloss::Combined(call, copy); },
                               shape, y, p, w, r, Layout::kEveryOther);
  const Out o1 = RunPlain<T>([&](const Call<T>& call) { return fastloss::BinaryCrossEntropy(call, b); },
                             shape, y, p, w, r, Layout::kContiguous);
  const Out o2 = RunPlain<T>([&](const Call<T>& call) { return fastloss::Contrastive(call, co); },
                             shape, y, p, w, r, Layout::kContiguous);
  const Out o3 = RunPlain<T>([](const Call<T>& call) { return fastloss::Mse(call); }, shape, y, p, w,
                             r, Layout::kContiguous);
  const double ulp = std::numeric_limits<T>::epsilon();
  const double sv = o1.value + 0.5 * o2.value - 0.1 * o3.value;
  const double mv = std::fabs(o1.value) + 0.5 * std::fabs(o2.value) + 0.1 * std::fabs(o3.value);
  EXPECT_TRUE(Close(comb.value, sv, 16 * ulp * mv + Floor<T>())) << comb.value << " vs " << sv;
  int bad = 0;
  for (size_t i = 0; i < comb.grad.size(); ++i) {
    const double sg = o1.grad[i] + 0.5 * o2.grad[i] - 0.1 * o3.grad[i];
    const double mg = std::fabs(o1.grad[i]) + 0.5 * std::fabs(o2.grad[i]) + 0.1 * std::fabs(o3.grad[i]);
    if (!Close(comb.grad[i], sg, 8 * ulp * mg + Floor<T>()) && bad++ < 5) {
      ADD_FAILURE() << "grad[" << i << "] " << comb.grad[i] << " vs " << sg;
    }
    if (r == Reduction::kNone) {
      const double sl = o1.losses[i] + 0.5 * o2.losses[i] - 0.1 * o3.losses[i];
      const double ml =
          std::fabs(o1.losses[i]) + 0.5 * std::fabs(o2.losses[i]) + 0.1 * std::fabs(o3.losses[i]);
      if (!Close(comb.losses[i], sl, 8 * ulp * ml + Floor<T>()) && bad++ < 5) {
        ADD_FAILURE() << "losses[" << i << "] " << comb.losses[i] << " vs " << sl;
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(StructuredCombination, EqualsTheSumOfSeparateCalls) {
  uint64_t seed = 900;
  for (Layout lay : {Layout::kContiguous, Layout::kEveryOther, Layout::kTransposed}) {
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      for (bool w : {false, true}) {
        CheckCombination<float>(lay, r, w, ++seed);
        CheckCombination<double>(lay, r, w, ++seed);
      }
    }
  }
}

TEST(StructuredCombination, ClassificationAndContrastiveTerms) {
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    for (bool w : {false, true}) {
      CheckCombinationOtherTerms<float>(r, w);
      CheckCombinationOtherTerms<double>(r, w);
    }
  }
}

TEST(StructuredCombination, Errors) {
  fastloss::ElementwiseCombination c;
  fastloss::HuberOptions h;
  h.delta = 0;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { c.Add(1.0, h); }, {"delta"}));
  fastloss::QuantileOptions q;
  q.q = 1.5;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { c.Add(1.0, q); }, {"q"}));
  fastloss::ContrastiveOptions co;
  co.margin = -1;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { c.Add(1.0, co); }, {"margin"}));
  EXPECT_EQ(c.size(), 0);
  // A target outside [0, 1] for a BCE term: an Error before any output.
  c.Add(1.0, fastloss::MseOptions{}).Add(1.0, fastloss::BinaryCrossEntropyOptions{});
  const std::vector<double> y = {0.5, 1.5}, p = {0.5, 0.5};
  StridedArray<double> g(2);
  Call<double> call;
  call.y_true = CView(y, {2});
  call.y_pred = CView(p, {2});
  call.grad = g.view();
  EXPECT_THROW(fastloss::Combined(call, c), fastloss::Error);
  EXPECT_TRUE(g.Untouched());
}

}  // namespace
}  // namespace fastloss_test
