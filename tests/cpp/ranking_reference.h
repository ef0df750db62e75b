// pairwise_ranking (drivers/ranking/): the O(n^2) double reference and the sweep
// that checks the library against it. Used by ranking_test.cc and
// structured_test.cc (SIMD targets).
#ifndef FASTLOSS_TESTS_CPP_RANKING_REFERENCE_H_
#define FASTLOSS_TESTS_CPP_RANKING_REFERENCE_H_

#include "structured_helpers.h"

namespace fastloss_test {

// ============================================================================
// Ranking: pairwise_ranking against the O(n^2) loop.
// ============================================================================

struct PairRef {
  double sum = 0, abs_sum = 0, all_pairs = 0, ordered = 0;
  std::vector<double> grad, count;  // d sum / d s_i, number of active pairs of i
};

inline PairRef RefPairwise(double margin, const std::vector<double>& rel,
                           const std::vector<double>& s, const std::vector<int64_t>* groups) {
  PairRef r;
  const size_t n = s.size();
  r.grad.assign(n, 0.0);
  r.count.assign(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const bool same = !groups || (*groups)[i] == (*groups)[j];
      if (!same) continue;
      if (i < j) r.all_pairs += 1;
      if (!(rel[i] > rel[j])) continue;
      r.ordered += 1;
      const double z = margin - (s[i] - s[j]);
      if (z > 0) {
        r.sum += z;
        r.abs_sum += margin + std::fabs(s[i]) + std::fabs(s[j]);
        r.grad[i] -= 1;
        r.grad[j] += 1;
        r.count[i] += 1;
        r.count[j] += 1;
      }
    }
  }
  return r;
}

template <typename T>
void PairwiseCase(const std::vector<int64_t>& shape, Layout lay, bool with_groups,
                  PairNormalization norm, Reduction red, double margin, uint64_t seed,
                  bool continuous = false) {
  SCOPED_TRACE(std::string("pairwise_ranking ") + ShapeStr(shape) + " " + LayoutName(lay) +
               (with_groups ? " groups" : "") +
               (norm == PairNormalization::kAllPairs ? " all_pairs" : " ordered_pairs") + " " +
               ReductionName(red) + " margin " + std::to_string(margin) + " " + DtypeName<T>());
  Rng rng(seed);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<double> rel(n), s(n);
  std::vector<int64_t> g(n);
  for (size_t i = 0; i < n; ++i) {
    rel[i] = static_cast<double>(rng.I(0, 4));  // ties in relevance
    // Halves: ties in the scores and pairs exactly at the hinge.
    s[i] = continuous ? 2.0 * rng.N() : 0.5 * static_cast<double>(rng.I(-6, 7));
    g[i] = rng.I(0, 4) * 7 - 3;  // unsorted, negative ids too
  }
  s = RoundTo<T>(s);
  const PairRef pr = RefPairwise(margin, rel, s, with_groups ? &g : nullptr);
  Arr<T> ra = Input<T>(shape, lay, rel), sa = Input<T>(shape, lay, s), ga = NewArr<T>(shape, lay);
  auto gbuf = std::make_unique<StridedArray<int64_t>>(shape, StridesFor(shape, lay));
  gbuf->Fill(g);
  const View<const int64_t> gv = gbuf->cview();
  Call<T> call;
  call.y_true = ra->cview();
  call.y_pred = sa->cview();
  call.reduction = red;
  call.grad = ga->view();
  fastloss::PairwiseRankingOptions po;
  po.margin = margin;
  po.normalization = norm;
  const double v = fastloss::PairwiseRanking(call, with_groups ? &gv : nullptr, po);
  double den = 1.0;
  if (red == Reduction::kMean) den = norm == PairNormalization::kAllPairs ? pr.all_pairs : pr.ordered;
  const double rt = Rt<T>();
  const double expect = pr.sum / den;
  EXPECT_TRUE(Close(v, expect, rt * pr.abs_sum / std::fabs(den) + Floor<T>()))
      << "value " << v << " expected " << expect << " (sum " << pr.sum << ", all pairs "
      << pr.all_pairs << ", ordered " << pr.ordered << ")";
  std::vector<double> eg(n), tol(n);
  for (size_t i = 0; i < n; ++i) {
    eg[i] = pr.grad[i] / den;
    tol[i] = rt * (std::fabs(eg[i]) + pr.count[i] / std::fabs(den)) + Floor<T>();
  }
  EXPECT_TRUE(ViewMatches("grad", ga->view(), eg, tol));
  EXPECT_TRUE(ga->OnlyViewWritten());
}

template <typename T>
void SweepPairwise(bool quick) {
  uint64_t seed = 500;
  for (Layout lay : {Layout::kContiguous, Layout::kEveryOther, Layout::kTransposed}) {
    for (bool groups : {false, true}) {
      for (PairNormalization norm : {PairNormalization::kAllPairs, PairNormalization::kOrderedPairs}) {
        for (Reduction r : {Reduction::kMean, Reduction::kSum}) {
          for (double margin : {1.0, 0.0, 0.75}) {
            ++seed;
            if (quick && seed % 4 != 0) continue;
            PairwiseCase<T>({9, 14}, lay, groups, norm, r, margin, seed);
          }
        }
      }
    }
  }
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_RANKING_REFERENCE_H_
