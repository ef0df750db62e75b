// fastloss: pairwise ranking loss.
#ifndef FASTLOSS_RANKING_HPP_
#define FASTLOSS_RANKING_HPP_

#include "fastloss/core.hpp"

namespace fastloss {

enum class PairNormalization { kAllPairs, kOrderedPairs };
struct PairwiseRankingOptions {
  double margin = 1.0;  // >= 0
  PairNormalization normalization = PairNormalization::kAllPairs;
};
// y_true = relevance, y_pred = scores (any shape, taken flat): the sum over
// pairs with relevance_i > relevance_j (in the same group, when `groups` is
// given: integer ids of the same shape) of max(0, margin - (s_i - s_j)).
// kMean divides by the number of unordered pairs n (n - 1) / 2 (summed over
// groups), or by the number of ordered pairs counted. O(n log n). kNone and
// weights are an Error.
template <typename T>
double PairwiseRanking(const Call<T>& call, const View<const int64_t>* groups,
                       const PairwiseRankingOptions& = {});

}  // namespace fastloss

#endif  // FASTLOSS_RANKING_HPP_
