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
// of two inputs, ContrastivePairsOptions below) share these options; `eps` is
// ContrastivePairs' only.
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

// --- Losses of several inputs (the rows of FASTLOSS_METRIC_MULTI_LOSSES) ----------
struct CosineEmbeddingOptions {
  double margin = 0.0;
  FASTLOSS_FIELDS(FASTLOSS_REAL(margin, kSigned,
                                "The margin of dissimilar pairs (y = -1), in [-1, 1]."))
  FASTLOSS_DOC("PyTorch's ``cosine_embedding_loss``.",
      "Rows along the last axis of ``x1`` and ``x2`` (``(N, D)`` or ``(D,)``); ``y`` of the "
      "rows' shape, each exactly 1 or -1 (anything else: ValueError). With "
      "``cos = sum(x1 x2) / sqrt((sum x1**2 + 1e-12) (sum x2**2 + 1e-12))``: "
      "``l = 1 - cos`` where ``y = 1``, ``max(0, cos - margin)`` where ``y = -1``.",
      "")
};
// PyTorch's cosine_embedding_loss of inputs {x1, x2}, target y in {-1, 1}
// (anything else is an Error): cos = sum(x1 x2) / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12)),
// l = 1 - cos where y = 1, max(0, cos - margin) where y = -1.
template <typename T>
double CosineEmbedding(const MultiCall<T>& call, const CosineEmbeddingOptions& = {});

struct TripletMarginOptions {
  double margin = 1.0;
  double p = 2.0;
  double eps = 1e-6;
  bool swap = false;
  bool squared = false;
  FASTLOSS_FIELDS(
      FASTLOSS_REAL(margin, kNonNegative, "The margin, >= 0.")
      FASTLOSS_REAL(p, kPositive, "The norm's degree, > 0; 1 and 2 are exact fast paths.")
      FASTLOSS_REAL(eps, kNonNegative, "Added to the differences (PyTorch's), >= 0.")
      FASTLOSS_BOOL(swap, "Use min(d(anchor, negative), d(positive, negative)) (Balntas et "
                          "al.'s distance swap).")
      FASTLOSS_BOOL(squared, "Use the squared Euclidean distance sum((a - b)**2) (no eps); "
                             "needs p = 2."))
  FASTLOSS_DOC("PyTorch's ``triplet_margin_loss``.",
      "Rows along the last axis; ``d(a, b) = ||a - b + eps||_p``; "
      "``l = max(0, d(anchor, positive) - d(anchor, negative) + margin)``. ``swap`` uses "
      "``min(d(anchor, negative), d(positive, negative))`` (the distance swap of Balntas "
      "et al.). ``squared=True`` uses the squared Euclidean distance ``sum((a - b)**2)`` "
      "(no eps), the form tutorials write; it needs ``p = 2``.",
      "At a hinge exactly at 0 the gradient is 0; where ``d = 0`` exactly the distance has "
      "no derivative and contributes 0.")
};
// PyTorch's triplet_margin_loss of inputs {anchor, positive, negative}:
// d(a, b) = |a - b + eps|_p, l = max(0, d(a, p) - d(a, n) + margin); swap uses
// min(d(a, n), d(p, n)). No target. squared = true (needs p = 2) is
// d = sum (a - b)^2 without eps.
template <typename T>
double TripletMargin(const MultiCall<T>& call, const TripletMarginOptions& = {});

// ContrastivePairs' options: Contrastive's and the eps of the distance.
struct ContrastivePairsOptions : ContrastiveOptions {
  FASTLOSS_FIELDS(
      ContrastiveOptions::Fields(self_, visit_);
      FASTLOSS_REAL(eps, kNonNegative, "Added to the differences (PyTorch's pairwise_distance), "
                                       ">= 0."))
  FASTLOSS_DOC("Contrastive loss of embedding pairs.",
      "``d = ||x1 - x2 + eps||_2`` per row (last axis), then ``fastloss.contrastive``: "
      "``l = y d**2 + (1 - y) max(0, margin - d)**2``; ``y_true`` (the rows' shape) is 1 "
      "for similar pairs and 0 for dissimilar ones, in [0, 1].",
      "")
};
// The contrastive loss on d = |x1 - x2 + eps|_2 of the rows of inputs
// {x1, x2}; target y of the rows' shape, in [0, 1]. (ContrastiveOptions, as
// before ContrastivePairsOptions, still works: it holds the same fields.)
template <typename T>
double ContrastivePairs(const MultiCall<T>& call, const ContrastivePairsOptions& = {});
template <typename T>
double ContrastivePairs(const MultiCall<T>& call, const ContrastiveOptions& o) {
  ContrastivePairsOptions p;
  static_cast<ContrastiveOptions&>(p) = o;
  return ContrastivePairs(call, p);
}

struct MarginRankingOptions {
  double margin = 0.0;
  FASTLOSS_FIELDS(FASTLOSS_REAL(margin, kNonNegative, "The margin, >= 0."))
  FASTLOSS_DOC("PyTorch's ``margin_ranking_loss``.",
      "Elementwise, all three of one shape: ``l = max(0, -y (x1 - x2) + margin)``; "
      "``dl/dx1 = -y`` where ``l > 0``, ``dl/dx2 = -dl/dx1``. ``y`` is 1 where x1 should "
      "rank higher, -1 where x2 should.",
      "")
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

// The rows of the losses of several inputs (see FASTLOSS_MULTI_LOSSES in
// registry.hpp).
#define FASTLOSS_METRIC_MULTI_LOSSES(X)                                                    \
  X(CosineEmbedding, cosine_embedding, Rows, "", "x1 x2 y", "y")                           \
  X(TripletMargin, triplet_margin, Rows, "", "anchor positive negative", "")               \
  X(ContrastivePairs, contrastive_pairs, Rows, "", "y_true x1 x2", "y_true")               \
  X(MarginRanking, margin_ranking, Elements, "", "x1 x2 y", "y")

#endif  // FASTLOSS_METRIC_HPP_
