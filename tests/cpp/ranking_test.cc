// pairwise_ranking (drivers/ranking/) against the O(n^2) double reference of
// ranking_reference.h: float and double, groups, both normalizations, ties in
// relevance and scores, pairs at the hinge, single items and empty inputs. The
// errors, NaN, threads and SIMD targets: structured_test.cc.
#include "ranking_reference.h"

namespace fastloss_test {
namespace {

TEST(StructuredRanking, PairwiseMatchesQuadraticLoop) {
  SweepPairwise<float>(false);
  SweepPairwise<double>(false);
  // Larger: 2500 items in groups, continuous and tied scores.
  for (bool cont : {true, false}) {
    PairwiseCase<float>({2500}, Layout::kContiguous, true, PairNormalization::kAllPairs,
                        Reduction::kMean, 1.0, 77, cont);
    PairwiseCase<double>({50, 50}, Layout::kReversed, true, PairNormalization::kOrderedPairs,
                         Reduction::kMean, 0.5, 78, cont);
    PairwiseCase<double>({2500}, Layout::kEveryOther, false, PairNormalization::kAllPairs,
                         Reduction::kSum, 2.0, 79, cont);
  }
}

template <typename T>
void CheckPairwiseEdges() {
  SCOPED_TRACE(DtypeName<T>());
  auto run = [](const std::vector<double>& rel, const std::vector<double>& s, Reduction r,
                PairNormalization norm, std::vector<T>* g) {
    const std::vector<T> rt = Cast<T>(rel), st = Cast<T>(s);
    g->assign(s.size(), T(9));
    const int64_t n = static_cast<int64_t>(s.size());
    Call<T> call;
    call.y_true = CView(rt, {n});
    call.y_pred = CView(st, {n});
    call.grad = MView(*g, {n});
    call.reduction = r;
    fastloss::PairwiseRankingOptions o;
    o.normalization = norm;
    return fastloss::PairwiseRanking(call, nullptr, o);
  };
  std::vector<T> g;
  // One item: no pairs at all. Mean NaN, sum 0, zero gradient.
  EXPECT_TRUE(std::isnan(run({1}, {0.5}, Reduction::kMean, PairNormalization::kAllPairs, &g)));
  EXPECT_EQ(g[0], T(0));
  EXPECT_EQ(run({1}, {0.5}, Reduction::kSum, PairNormalization::kAllPairs, &g), 0.0);
  // All relevances tied: 3 pairs, none ordered.
  EXPECT_EQ(run({2, 2, 2}, {0, 1, 2}, Reduction::kMean, PairNormalization::kAllPairs, &g), 0.0);
  EXPECT_TRUE(std::isnan(run({2, 2, 2}, {0, 1, 2}, Reduction::kMean, PairNormalization::kOrderedPairs, &g)));
  for (T v : g) EXPECT_EQ(v, T(0));
  // A pair exactly at the hinge: 1 - (2 - 1) = 0, no loss, no gradient.
  EXPECT_EQ(run({1, 0}, {2, 1}, Reduction::kSum, PairNormalization::kAllPairs, &g), 0.0);
  EXPECT_EQ(g[0], T(0));
  EXPECT_EQ(g[1], T(0));
  // Reversed order: 1 - (1 - 2) = 2, gradient (-1, +1); mean over 1 pair.
  EXPECT_EQ(run({1, 0}, {1, 2}, Reduction::kMean, PairNormalization::kAllPairs, &g), 2.0);
  EXPECT_EQ(g[0], T(-1));
  EXPECT_EQ(g[1], T(1));
  // Empty: mean NaN, sum 0.
  EXPECT_TRUE(std::isnan(run({}, {}, Reduction::kMean, PairNormalization::kAllPairs, &g)));
  EXPECT_EQ(run({}, {}, Reduction::kSum, PairNormalization::kAllPairs, &g), 0.0);
}

TEST(StructuredRanking, PairwiseEdges) {
  CheckPairwiseEdges<float>();
  CheckPairwiseEdges<double>();
}

}  // namespace
}  // namespace fastloss_test
