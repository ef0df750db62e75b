// The adversarial losses and penalties (GAN discriminator / generator,
// Wasserstein critic / generator, gradient_penalty, l2_penalty) against the
// double references of adversarial_reference.h: float and double, every
// reduction, weights, strided operands. The errors, empty inputs, NaN, threads
// and SIMD targets: structured_test.cc.
#include "adversarial_reference.h"

namespace fastloss_test {
namespace {

template <typename T>
void CheckL2Penalty(Layout lay, double lam) {
  SCOPED_TRACE(std::string("l2_penalty ") + LayoutName(lay) + " lam " + std::to_string(lam) + " " +
               DtypeName<T>());
  Rng rng(static_cast<uint64_t>(lam * 1000) + 77u);
  const std::vector<int64_t> shape = {5, 7};
  std::vector<double> w(35);
  for (double& v : w) v = rng.N();
  w = RoundTo<T>(w);
  Arr<T> wa = Input<T>(shape, lay, w), ga = NewArr<T>(shape, lay);
  double sum = 0, mag = 0;
  std::vector<double> eg(35), tol(35);
  for (size_t i = 0; i < 35; ++i) {
    sum += w[i] * w[i];
    eg[i] = 2.0 * lam * w[i];
    tol[i] = Rt<T>() * std::fabs(eg[i]) + Floor<T>();
  }
  mag = lam * sum;
  const View<T> gv = ga->view();
  const double v = fastloss::L2Penalty(wa->cview(), lam, &gv);
  EXPECT_TRUE(Close(v, lam * sum, Rt<T>() * mag + Floor<T>())) << v << " vs " << lam * sum;
  EXPECT_TRUE(ViewMatches("grad", ga->view(), eg, tol));
  EXPECT_TRUE(ga->OnlyViewWritten());
  // Without a gradient.
  const double v2 = fastloss::L2Penalty(wa->cview(), lam);
  EXPECT_TRUE(SameBits(v, v2)) << v << " vs " << v2;
}

TEST(StructuredAdversarial, MatchesReference) {
  SweepAdversarial<float>(false);
  SweepAdversarial<double>(false);
}

TEST(StructuredAdversarial, L2Penalty) {
  for (Layout lay : {Layout::kContiguous, Layout::kEveryOther, Layout::kTransposed, Layout::kReversed}) {
    for (double lam : {0.0, 0.01, 2.0}) {
      CheckL2Penalty<float>(lay, lam);
      CheckL2Penalty<double>(lay, lam);
    }
  }
}

}  // namespace
}  // namespace fastloss_test
