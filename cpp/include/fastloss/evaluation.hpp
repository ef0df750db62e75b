// fastloss: evaluation metrics that are registry rows like the losses
// (accuracy of binary scores, of class scores against dense or integer
// targets, top-k): one value per element or row, 1 for a hit and 0 for a
// miss, reduced as the losses are ("mean" is the (weighted) accuracy, "sum"
// the (weighted) number of hits, "none" the hits themselves). They take
// weights, segments, accumulators and Dask arrays as every loss does; they
// are metrics (FASTLOSS_METRIC): piecewise constant, with no gradient.
//
// NaN in gives NaN out: a NaN score (anywhere in a row, for the row metrics)
// or target makes that element's or row's value NaN, as NumPy's comparisons
// would not.
#ifndef FASTLOSS_EVALUATION_HPP_
#define FASTLOSS_EVALUATION_HPP_

#include <string>

#include "fastloss/options.hpp"

namespace fastloss {

namespace detail {
template <class Options>
void CheckTopK(const char* loss, const Options& o) {
  if (o.top_k < 1) {
    throw Error(std::string(loss) + ": top_k must be >= 1, got " + std::to_string(o.top_k));
  }
}
}  // namespace detail

struct BinaryAccuracyOptions {
  double threshold = 0.5;
  bool from_logits = false;
  FASTLOSS_METRIC()
  FASTLOSS_FIELDS(
      FASTLOSS_REAL(threshold, kUnit,
                    "The probability above which a prediction is positive, in [0, 1] (with "
                    "``from_logits``, a logit ``x`` is positive where ``sigmoid(x) > threshold``).")
      FASTLOSS_BOOL(from_logits, "``y_pred`` holds logits (else probabilities or scores)."))
  FASTLOSS_DOC("Binary accuracy (Keras' ``BinaryAccuracy``, torchmetrics' ``BinaryAccuracy``): the "
               "fraction of elements whose predicted class is the true one.",
               "``hit = [(y_pred > threshold) == (y_true >= 0.5)]`` per element; with "
               "``from_logits``, ``y_pred > log(threshold) - log1p(-threshold)`` (the exact "
               "comparison, in float64, of ``sigmoid(y_pred) > threshold``). ``reduction='mean'`` "
               "is the (weighted) accuracy, ``'sum'`` the (weighted) number of hits.",
               "``y_true`` must lie in [0, 1] (ValueError otherwise); a soft target counts as "
               "the class it is nearer to, 0.5 as positive (Keras compares ``y_true`` with the "
               "0/1 prediction for equality, so a soft target is always a miss there). A metric: "
               "``grad`` and ``value_and_grad`` raise TypeError.")
};

struct CategoricalAccuracyOptions {
  int top_k = 1;
  int axis = -1;
  FASTLOSS_METRIC()
  FASTLOSS_FIELDS(
      FASTLOSS_INT(top_k, "A hit is the true class among the ``top_k`` highest scores (>= 1).")
      FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  static void Validate(const char* loss, const CategoricalAccuracyOptions& o) {
    detail::CheckTopK(loss, o);
  }
  FASTLOSS_DOC("Categorical accuracy with dense (one-hot or probability) targets (Keras' "
               "``CategoricalAccuracy``, ``TopKCategoricalAccuracy``).",
               "Per row, ``t = argmax(y_true)`` (the first maximum) and ``rank = #{c : y_pred_c "
               "> y_pred_t} + #{c < t : y_pred_c == y_pred_t}``, the position of class ``t`` in "
               "a stable descending sort of the row's scores; ``hit = [rank < top_k]``. For "
               "``top_k=1`` this is ``argmax(y_pred) == argmax(y_true)`` with NumPy's "
               "first-maximum ``argmax``.",
               "Ties are broken by class index, as a stable sort does (Keras' ``in_top_k`` counts "
               "every class tied with the k-th score as inside the top k). A NaN anywhere in a row "
               "of ``y_true`` or ``y_pred`` makes the row's value NaN.")
};

struct SparseCategoricalAccuracyOptions {
  int top_k = 1;
  std::optional<int64_t> ignore_index;
  int axis = -1;
  FASTLOSS_METRIC()
  FASTLOSS_FIELDS(
      FASTLOSS_INT(top_k, "A hit is the label among the ``top_k`` highest scores (>= 1).")
      FASTLOSS_OPTIONAL_INT(ignore_index,
                            "Rows with this label (e.g. -100, padding tokens) take no part: "
                            "value 0 and out of the mean's denominator.")
      FASTLOSS_INT(axis, "The class axis (negative counts from the end)."))
  static void Validate(const char* loss, const SparseCategoricalAccuracyOptions& o) {
    detail::CheckTopK(loss, o);
  }
  FASTLOSS_DOC("Accuracy of class scores against integer labels (Keras' "
               "``SparseCategoricalAccuracy``, ``SparseTopKCategoricalAccuracy``; token accuracy "
               "with ``ignore_index``).",
               "Per row with label ``t``: ``rank = #{c : y_pred_c > y_pred_t} + #{c < t : "
               "y_pred_c == y_pred_t}`` (the label's position in a stable descending sort), "
               "``hit = [rank < top_k]``; ``top_k=1`` is ``argmax(y_pred) == t``. "
               "``reduction='mean'`` divides by the (weighted) number of rows not ignored.",
               "Labels must lie in [0, C) (or equal ``ignore_index``): ValueError otherwise. "
               "Ties are broken by class index (see ``categorical_accuracy``); a NaN score in a "
               "row makes its value NaN.")
};

}  // namespace fastloss

// The registry rows (see registry.hpp).
#define FASTLOSS_EVALUATION_METRICS(X)                                                      \
  X(BinaryAccuracy, binary_accuracy, Elementwise, "", y_true, y_pred)                       \
  X(CategoricalAccuracy, categorical_accuracy, DenseRows, "", y_true, y_pred)               \
  X(SparseCategoricalAccuracy, sparse_categorical_accuracy, LabelRows, "", y_true, y_pred)

#endif  // FASTLOSS_EVALUATION_HPP_
