// fastloss: the segmentation (overlap) losses: one score per region.
//
// The score of a region is computed from three sums over it, with
// p = y_pred (or sigmoid(y_pred) with from_logits):
//   I = sum y p,  Sy = sum y,  Sp = sum p   (squared: Sy = sum y^2, Sp = sum p^2).
// `all_axes` reduces every axis (one score for the whole array, Keras'
// convention); otherwise `axes` lists the reduced axes (negative counts from
// the end; {} gives one score per element). The losses (kNone), weights and
// the mean are over the remaining axes: y_pred's shape without `axes`.
// The value reads the inputs once; the gradient needs the sums first, so it
// reads them a second time. Formulas: the options' FASTLOSS_DOC; functors in
// cpp/src/losses/structured-inl.h.
#ifndef FASTLOSS_SEGMENTATION_HPP_
#define FASTLOSS_SEGMENTATION_HPP_

#include <vector>

#include "fastloss/options.hpp"

namespace fastloss {

struct OverlapOptions {
  double smooth = 1e-6;
  bool all_axes = true;
  std::vector<int> axes;
  bool squared = false;
  bool from_logits = false;
  FASTLOSS_FIELDS(
      FASTLOSS_REAL(smooth, kNonNegative, "Added to numerator and denominator; finite and >= 0.")
      FASTLOSS_AXES(axis,
                    "The reduced axes. None reduces every axis (one score for the whole array, "
                    "Keras' convention); ``axis=(1, 2, 3)`` on ``(N, C, H, W)`` gives one score "
                    "per sample, and ``reduction`` / ``weights`` then apply over the samples.")
      FASTLOSS_BOOL(squared, "Use ``sum(y**2)`` and ``sum(p**2)`` in the denominator.")
      FASTLOSS_BOOL(from_logits,
                    "``y_pred`` holds logits: ``p = sigmoid(y_pred)``, the gradient goes "
                    "through it."))
};

struct DiceOptions : OverlapOptions {
  FASTLOSS_DOC("Soft Dice loss (segmentation).",
      "Per score, over the reduced axes: ``I = sum(y * p)``, ``Sy = sum(y)``, ``Sp = "
      "sum(p)`` (``squared``: ``sum(y**2)``, ``sum(p**2)``), with ``p = y_pred`` or "
      "``sigmoid(y_pred)``. ``l = 1 - (2 I + smooth) / (Sy + Sp + smooth)``; ``dl/dp = "
      "dl/dI * y + dl/dSp * (1 or 2 p)``.",
      "The losses (``reduction='none'``), weights and the mean are over the scores: "
      "``y_pred``'s shape without ``axis`` (``()`` for ``axis=None``). The value reads "
      "the inputs once; the gradient needs the sums first and reads them a second time."
      " ``y_true`` is not range-checked (soft masks are fine). With ``smooth=0`` an "
      "empty or all-zero region gives NaN.")
};

struct JaccardOptions : OverlapOptions {
  FASTLOSS_DOC("Soft Jaccard (IoU) loss (segmentation).",
      "Per score, over the reduced axes: ``I = sum(y * p)``, ``Sy = sum(y)``, ``Sp = "
      "sum(p)`` (``squared``: ``sum(y**2)``, ``sum(p**2)``), with ``p = y_pred`` or "
      "``sigmoid(y_pred)``. ``l = 1 - (I + smooth) / (Sy + Sp - I + smooth)``.",
      "The losses (``reduction='none'``), weights and the mean are over the scores: "
      "``y_pred``'s shape without ``axis`` (``()`` for ``axis=None``). The value reads "
      "the inputs once; the gradient needs the sums first and reads them a second time."
      " ``y_true`` is not range-checked (soft masks are fine). With ``smooth=0`` an "
      "empty or all-zero region gives NaN.")
};

struct TverskyOptions : OverlapOptions {
  double alpha = 0.5;
  double beta = 0.5;
  FASTLOSS_FIELDS(
      OverlapOptions::Fields(self_, visit_);
      FASTLOSS_REAL(alpha, kNonNegative, "Weight of the false positives ``Sp - I``, >= 0.")
      FASTLOSS_REAL(beta, kNonNegative, "Weight of the false negatives ``Sy - I``, >= 0."))
  FASTLOSS_DOC("Tversky loss (segmentation): Dice with weighted false positives and negatives.",
      "Per score, over the reduced axes: ``I = sum(y * p)``, ``Sy = sum(y)``, ``Sp = "
      "sum(p)`` (``squared``: ``sum(y**2)``, ``sum(p**2)``), with ``p = y_pred`` or "
      "``sigmoid(y_pred)``. ``TI = (I + smooth) / (I + alpha (Sp - I) + beta (Sy - I) +"
      " smooth)``, ``l = 1 - TI``. ``alpha = beta = 0.5`` is Dice (up to smooth), "
      "``alpha = beta = 1`` Jaccard.",
      "The losses (``reduction='none'``), weights and the mean are over the scores: "
      "``y_pred``'s shape without ``axis`` (``()`` for ``axis=None``). The value reads "
      "the inputs once; the gradient needs the sums first and reads them a second time."
      " ``y_true`` is not range-checked (soft masks are fine). With ``smooth=0`` an "
      "empty or all-zero region gives NaN.")
};

struct FocalTverskyOptions : TverskyOptions {
  double gamma = 0.75;
  FASTLOSS_FIELDS(TverskyOptions::Fields(self_, visit_);
                  FASTLOSS_REAL(gamma, kPositive, "The focal exponent, > 0."))
  FASTLOSS_DOC("Focal Tversky loss (Abraham and Khan, 2019).",
      "Per score, over the reduced axes: ``I = sum(y * p)``, ``Sy = sum(y)``, ``Sp = "
      "sum(p)`` (``squared``: ``sum(y**2)``, ``sum(p**2)``), with ``p = y_pred`` or "
      "``sigmoid(y_pred)``. ``l = (1 - TI)**gamma`` with ``TI`` the Tversky index (see "
      "``tversky``); ``gamma = 0.75`` is the paper's ``gamma = 4/3`` in its ``(1 - "
      "TI)**(1/gamma)`` form. The gradient is 0 where ``TI = 1``.",
      "The losses (``reduction='none'``), weights and the mean are over the scores: "
      "``y_pred``'s shape without ``axis`` (``()`` for ``axis=None``). The value reads "
      "the inputs once; the gradient needs the sums first and reads them a second time."
      " ``y_true`` is not range-checked (soft masks are fine). With ``smooth=0`` an "
      "empty or all-zero region gives NaN.")
};

}  // namespace fastloss

// The registry rows (see regression.hpp).
#define FASTLOSS_SEGMENTATION_LOSSES(X)                          \
  X(Dice, dice, Regions, "", y_true, y_pred)                     \
  X(Jaccard, jaccard, Regions, "", y_true, y_pred)               \
  X(Tversky, tversky, Regions, "", y_true, y_pred)               \
  X(FocalTversky, focal_tversky, Regions, "", y_true, y_pred)

#endif  // FASTLOSS_SEGMENTATION_HPP_
