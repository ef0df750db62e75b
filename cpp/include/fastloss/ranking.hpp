// fastloss: pairwise ranking loss.
#ifndef FASTLOSS_RANKING_HPP_
#define FASTLOSS_RANKING_HPP_

#include "fastloss/core.hpp"
#include "fastloss/options.hpp"

namespace fastloss {

enum class PairNormalization { kAllPairs, kOrderedPairs };
// PairNormalization's names, in its order (Python's normalization=).
inline constexpr const char* kPairNormalizationNames[] = {"all_pairs", "ordered_pairs", nullptr};

struct PairwiseRankingOptions {
  double margin = 1.0;
  PairNormalization normalization = PairNormalization::kAllPairs;
  FASTLOSS_FIELDS(
      FASTLOSS_REAL(margin, kNonNegative, "The hinge's margin, >= 0.")
      FASTLOSS_GROUPS("Integer query ids of relevance's shape: pairs are formed within a group "
                      "only (None: one group).")
      FASTLOSS_CHOICE(normalization, kPairNormalizationNames,
                      "What ``'mean'`` divides by: the number of unordered pairs ``n (n - 1) / "
                      "2`` (summed over groups), or the number of pairs with different "
                      "relevance."))
  FASTLOSS_DOC("Pairwise hinge ranking loss (RankSVM / RankNet-style), in O(n log n).",
      "For every pair with ``relevance_i > relevance_j`` (within the same group when "
      "``groups`` is given): ``max(0, margin - (s_i - s_j))``. Computed by sorting and a "
      "Fenwick tree, never pair by pair: n = 1e6 takes a fraction of a second. A pair "
      "exactly at the hinge contributes 0 and no gradient.",
      "``relevance`` is graded relevance of any shape (taken flat), ``scores`` the model's "
      "scores of relevance's shape. Only ``'mean'`` and ``'sum'``: ``'none'`` is a "
      "ValueError, and there are no weights.")
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

// The row of the losses of several inputs (see FASTLOSS_MULTI_LOSSES in
// registry.hpp).
#define FASTLOSS_RANKING_MULTI_LOSSES(X) \
  X(PairwiseRanking, pairwise_ranking, Pairs, "", "relevance scores", "relevance")

#endif  // FASTLOSS_RANKING_HPP_
