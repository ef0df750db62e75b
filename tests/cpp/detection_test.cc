// The box IoU losses (iou, giou, diou, ciou) against the double reference of
// detection_reference.h: float and double, every reduction, weights, strided
// operands, boxes that are identical, disjoint, touching, nested or degenerate.
// The errors, empty inputs, NaN, threads and SIMD targets: structured_test.cc.
#include "detection_reference.h"

namespace fastloss_test {
namespace {

TEST(StructuredBoxes, MatchesReference) {
  SweepBoxes<float>(false);
  SweepBoxes<double>(false);
}

template <typename T>
void CheckDegenerateBoxes() {
  SCOPED_TRACE(DtypeName<T>());
  const std::vector<std::vector<double>> cases = {
      {0, 0, 2, 2, 1, 1, 1, 1},  {0, 0, 2, 2, 1, 0, 1, 2},  {0, 0, 2, 2, 0, 1, 2, 1},
      {0, 0, 2, 2, 0, 0, 0, 0},  {0, 0, 2, 2, 2, 2, 0, 0},  {0, 0, 0, 0, 0, 0, 0, 0},
      {1, 1, 1, 1, 1, 1, 1, 1},  {0, 0, 0, 0, 0, 0, 2, 2},  {0, 0, 2, 0, 0, 0, 2, 0},
      {0, 0, 2, 2, 3, 3, 3, 5},  {0, 0, 2, 2, 1, 1, 3, 1},  {0, 0, 2, 2, 0, 0, 2, -1e-9},
      {0, 0, 2, 2, 0.5, 3, 1.5, 3}, {2, 2, 0, 0, 2, 2, 0, 0}, {0, 0, 2, 2, -1, -1, -1, 1}};
  const int64_t nb = static_cast<int64_t>(cases.size());
  std::vector<double> t, p;
  for (const std::vector<double>& c : cases) {
    t.insert(t.end(), c.begin(), c.begin() + 4);
    p.insert(p.end(), c.begin() + 4, c.end());
  }
  t = RoundTo<T>(t);
  p = RoundTo<T>(p);
  const std::vector<T> tt = Cast<T>(t), pp = Cast<T>(p);
  for (BoxIouKind kind : {BoxIouKind::kIou, BoxIouKind::kGiou, BoxIouKind::kDiou, BoxIouKind::kCiou}) {
    SCOPED_TRACE(BoxKindName(kind));
    fastloss::BoxIouOptions bo;
    bo.kind = kind;
    std::vector<T> g(static_cast<size_t>(4 * nb)), l(static_cast<size_t>(nb));
    Call<T> call;
    call.y_true = CView(tt, {nb, 4});
    call.y_pred = CView(pp, {nb, 4});
    call.grad = MView(g, {nb, 4});
    call.losses = MView(l, {nb});
    call.reduction = Reduction::kNone;
    fastloss::BoxIou(call, bo);
    const Ref ref = RefBoxes(bo, t, p, {nb, 4});
    for (int64_t b = 0; b < nb; ++b) {
      const size_t sb = static_cast<size_t>(b);
      EXPECT_TRUE(std::isfinite(static_cast<double>(l[sb]))) << "box " << b << ": " << l[sb];
      EXPECT_NEAR(static_cast<double>(l[sb]), ref.l[sb], Rt<T>() * (4 + std::fabs(ref.l[sb])))
          << "box " << b;
      for (size_t k = 0; k < 4; ++k) {
        const double gv = static_cast<double>(g[4 * sb + k]);
        EXPECT_TRUE(std::isfinite(gv)) << "box " << b << " grad " << k << ": " << gv;
      }
    }
    // The mean is finite too.
    call.reduction = Reduction::kMean;
    EXPECT_TRUE(std::isfinite(fastloss::BoxIou(call, bo)));
  }
}

TEST(StructuredBoxes, DegenerateBoxesAreFinite) {
  CheckDegenerateBoxes<float>();
  CheckDegenerateBoxes<double>();
}

}  // namespace
}  // namespace fastloss_test
