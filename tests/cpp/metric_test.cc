// The metric-learning losses (cosine similarity, cosine embedding, triplet
// margin, contrastive on distances, contrastive pairs, margin ranking) against
// the double references of metric_reference.h: float and double, every
// reduction, weights, strided operands, zero vectors and zero distances. The
// errors, empty inputs, NaN, threads and SIMD targets: structured_test.cc.
#include "metric_reference.h"

namespace fastloss_test {
namespace {

TEST(StructuredCosine, MatchesReference) {
  SweepCosineSim<float>(false);
  SweepCosineSim<double>(false);
}

template <typename T>
void CheckZeroVectors() {
  SCOPED_TRACE(DtypeName<T>());
  // Rows: both zero, y zero, p zero, one nonzero element each.
  const std::vector<T> y = {0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 5};
  const std::vector<T> p = {0, 0, 0, 4, 5, 6, 0, 0, 0, 7, 0, 0};
  std::vector<T> g(12), l(4);
  Call<T> call;
  call.y_true = CView(y, {4, 3});
  call.y_pred = CView(p, {4, 3});
  call.grad = MView(g, {4, 3});
  call.losses = MView(l, {4});
  call.reduction = Reduction::kNone;
  fastloss::CosineSimilarity(call);
  for (T v : l) EXPECT_EQ(v, T(1));
  for (T v : g) EXPECT_TRUE(std::isfinite(static_cast<double>(v))) << v;
  // Both zero: gradient 0. y zero: gradient 0 (y / ... = 0, cos = 0).
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(g[i], T(0));
  // cosine_embedding with zero rows: finite too (PyTorch's EPSILON).
  std::vector<T> g1(12), g2(12), le(4);
  const std::vector<T> ye = {1, -1, 1, -1};
  MultiCall<T> mc;
  mc.inputs[0] = CView(y, {4, 3});
  mc.inputs[1] = CView(p, {4, 3});
  mc.target = CView(ye, {4});
  mc.grads[0] = MView(g1, {4, 3});
  mc.grads[1] = MView(g2, {4, 3});
  mc.losses = MView(le, {4});
  mc.reduction = Reduction::kNone;
  fastloss::CosineEmbedding(mc);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_TRUE(std::isfinite(static_cast<double>(g1[i])) && std::isfinite(static_cast<double>(g2[i])));
  }
  EXPECT_EQ(le[0], T(1));
  EXPECT_EQ(le[1], T(0));
}

TEST(StructuredCosine, ZeroVectorsAreFinite) {
  CheckZeroVectors<float>();
  CheckZeroVectors<double>();
}

TEST(StructuredMetric, MatchesReference) {
  SweepMetric<float>(false);
  SweepMetric<double>(false);
}

// Identical rows with eps = 0: d = 0, the distance has no derivative there;
// PyTorch's norm backward gives 0, and no NaN may come out of finite input.
template <typename T>
void CheckZeroDistances() {
  SCOPED_TRACE(DtypeName<T>());
  const std::vector<T> x = {1, 2, 3, 4, 5, 6};
  const std::vector<T> y = {0, 1};
  std::vector<T> g1(6, T(7)), g2(6, T(7)), l(2, T(7));
  MultiCall<T> mc;
  mc.inputs[0] = CView(x, {2, 3});
  mc.inputs[1] = CView(x, {2, 3});
  mc.target = CView(y, {2});
  mc.grads[0] = MView(g1, {2, 3});
  mc.grads[1] = MView(g2, {2, 3});
  mc.losses = MView(l, {2});
  mc.reduction = Reduction::kNone;
  fastloss::ContrastiveOptions co;
  co.eps = 0;
  fastloss::ContrastivePairs(mc, co);
  EXPECT_EQ(l[0], T(1));  // y = 0: max(0, 1 - 0)^2
  EXPECT_EQ(l[1], T(0));  // y = 1: 0^2
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(std::isfinite(static_cast<double>(g1[i]))) << "contrastive_pairs g1[" << i << "] = " << g1[i];
    EXPECT_TRUE(std::isfinite(static_cast<double>(g2[i]))) << "contrastive_pairs g2[" << i << "] = " << g2[i];
  }
  // Triplet with eps = 0 and anchor == positive: d(a, p) = 0, gradient finite.
  MultiCall<T> tc;
  const std::vector<T> n = {0, 0, 0, 9, 9, 9};
  std::vector<T> h0(6), h1(6), h2(6);
  tc.inputs[0] = CView(x, {2, 3});
  tc.inputs[1] = CView(x, {2, 3});
  tc.inputs[2] = CView(n, {2, 3});
  tc.grads[0] = MView(h0, {2, 3});
  tc.grads[1] = MView(h1, {2, 3});
  tc.grads[2] = MView(h2, {2, 3});
  tc.reduction = Reduction::kSum;
  fastloss::TripletMarginOptions to;
  to.eps = 0;
  to.margin = 10;
  const double v = fastloss::TripletMargin(tc, to);
  EXPECT_TRUE(std::isfinite(v));
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(std::isfinite(static_cast<double>(h0[i])) && std::isfinite(static_cast<double>(h1[i])) &&
                std::isfinite(static_cast<double>(h2[i])));
  }
}

TEST(StructuredMetric, ZeroDistancesGiveFiniteGradients) {
  CheckZeroDistances<float>();
  CheckZeroDistances<double>();
}

}  // namespace
}  // namespace fastloss_test
