// fastloss: metric-learning losses: cosine similarity of rows, contrastive
// loss on distances (registry rows below), and the losses of several inputs
// (MultiCall: cosine embedding, triplet margin, contrastive pairs, margin
// ranking).
#ifndef FASTLOSS_METRIC_HPP_
#define FASTLOSS_METRIC_HPP_

#include "fastloss/core.hpp"
#include "fastloss/options.hpp"

namespace fastloss {

struct CosineSimilarityOptions {
  int axis = -1;
  double eps = 1e-8;
  FASTLOSS_FIELDS(
      FASTLOSS_INT(axis, "The vectors' axis.")
      FASTLOSS_REAL(eps, kNonNegative,
                    "Lower bound of each norm (separately), >= 0: zero vectors give a finite "
                    "loss 1 and a finite gradient."))
  FASTLOSS_DOC("Cosine similarity loss ``1 - cos`` of rows along ``axis``.",
      "``cos = sum(y * p) / (max(|y|, eps) * max(|p|, eps))`` clipped to ``[-1, 1]``, "
      "``l = 1 - cos``. Keras' ``cosine_similarity`` loss returns ``-cos`` (this is 1 +"
      " Keras' value); PyTorch's ``F.cosine_similarity`` returns ``cos``. ``dl/dp = -(y"
      " / (|y|' |p|') - cos p / |p|**2)`` (the second term vanishes where ``|p| < "
      "eps``).",
      "The losses, weights and the mean are over the rows: ``y_pred``'s shape without "
      "``axis``.")
};

// Contrastive (on distances; registry row) and ContrastivePairs (on the rows
// of two inputs) share these options; `eps` is ContrastivePairs' only.
struct ContrastiveOptions {
  double margin = 1.0;
  double eps = 1e-6;
  FASTLOSS_FIELDS(FASTLOSS_REAL(margin, kNonNegative, "The margin of dissimilar pairs, >= 0."))
  FASTLOSS_DOC("Contrastive loss on given distances (Hadsell, Chopra and LeCun, 2006).",
      "``y_true`` in [0, 1] (1 = similar pair), ``y_pred = d`` a distance: ``l = y d**2"
      " + (1 - y) max(0, margin - d)**2``; ``dl/dd = 2 y d - 2 (1 - y) max(0, margin - "
      "d)``. Targets outside [0, 1] are a ValueError.",
      "To compute the distances from embeddings as well, use ``contrastive_pairs``.")
};

// --- Losses of several inputs ----------------------------------------------------
struct CosineEmbeddingOptions {
  double margin = 0.0;  // in [-1, 1]
};
// PyTorch's cosine_embedding_loss of inputs {x1, x2}, target y in {-1, 1}
// (anything else is an Error): cos = sum(x1 x2) / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12)),
// l = 1 - cos where y = 1, max(0, cos - margin) where y = -1.
template <typename T>
double CosineEmbedding(const MultiCall<T>& call, const CosineEmbeddingOptions& = {});

struct TripletMarginOptions {
  double margin = 1.0;  // >= 0
  double p = 2.0;       // > 0
  double eps = 1e-6;    // >= 0
  bool swap = false;
  bool squared = false;  // d = sum (a - b)^2 (no eps); needs p = 2
};
// PyTorch's triplet_margin_loss of inputs {anchor, positive, negative}:
// d(a, b) = |a - b + eps|_p, l = max(0, d(a, p) - d(a, n) + margin); swap uses
// min(d(a, n), d(p, n)). No target.
template <typename T>
double TripletMargin(const MultiCall<T>& call, const TripletMarginOptions& = {});

// The contrastive loss on d = |x1 - x2 + eps|_2 of the rows of inputs
// {x1, x2}; target y of the rows' shape, in [0, 1].
template <typename T>
double ContrastivePairs(const MultiCall<T>& call, const ContrastiveOptions& = {});

struct MarginRankingOptions {
  double margin = 0.0;  // >= 0
};
// PyTorch's margin_ranking_loss, elementwise on inputs {x1, x2} and target y:
// l = max(0, -y (x1 - x2) + margin).
template <typename T>
double MarginRanking(const MultiCall<T>& call, const MarginRankingOptions& = {});

}  // namespace fastloss

// The registry rows (see regression.hpp).
#define FASTLOSS_METRIC_LOSSES(X)                                     \
  X(CosineSimilarity, cosine_similarity, VectorRows, "", y_true, y_pred) \
  X(Contrastive, contrastive, Elementwise, "", y_true, distance)

#endif  // FASTLOSS_METRIC_HPP_
