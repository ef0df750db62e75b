// fastloss: confusion counts and the scores made from them (precision,
// recall, F-beta, specificity, per class or averaged).
//
//   fastloss::ConfusionOptions o;
//   o.task = fastloss::ConfusionTask::kMulticlass;
//   fastloss::ConfusionCall<float> call;
//   call.labels = labels_view;                   // (N,) int64 true classes
//   call.y_pred = scores_view;                   // (N, C) scores
//   fastloss::ConfusionCounts counts;            // one per stream or thread
//   fastloss::Confusion(call, o, counts);        // adds this batch's counts
//   counts.Merge(other);                         // integer addition: exact, any order
//   double f1 = fastloss::ConfusionScore(counts, fastloss::Score::kFBeta, so)[0];
//
// Counts are int64, per class: tp, fp, tn, fn. Merging is integer addition,
// so the counts (and every score made from them) are the same for any batch
// split, merge order, thread or process count. Segments (offsets, CSR row
// pointers) give S independent sets of counts in one pass.
//
// Tasks and inputs (items: the elements for kBinary, the rows for the others):
//   kBinary      y_true in [0, 1] (>= 0.5 is positive), y_pred scores of the
//                same shape; one class (the positive one). A prediction is
//                positive where y_pred > threshold (sigmoid(y_pred) >
//                threshold with from_logits).
//   kMultilabel  y_true in [0, 1] and y_pred scores of one shape, C classes
//                along `axis`: one binary problem per class.
//   kMulticlass  labels: int64 true classes (the rows' shape) and either
//                y_pred scores with C classes along `axis` (the prediction
//                is the first maximum, NumPy's argmax) or `predicted` int64
//                labels of the labels' shape (num_classes gives C).
// ignore_index drops the items whose target is it (a label, or a y_true
// value for the binary tasks). A NaN score or target is an Error naming its
// position (a count has no NaN to give).
#ifndef FASTLOSS_CONFUSION_HPP_
#define FASTLOSS_CONFUSION_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fastloss/core.hpp"
#include "fastloss/options.hpp"

namespace fastloss {

enum class ConfusionTask { kBinary = 0, kMulticlass = 1, kMultilabel = 2 };
inline constexpr const char* kConfusionTasks[] = {"binary", "multiclass", "multilabel", nullptr};

struct ConfusionOptions {
  ConfusionTask task = ConfusionTask::kBinary;
  std::optional<int64_t> num_classes;
  double threshold = 0.5;
  bool from_logits = false;
  std::optional<int64_t> ignore_index;
  int axis = -1;
  FASTLOSS_FIELDS(
      FASTLOSS_CHOICE(task, kConfusionTasks,
                      "``'binary'`` (targets in [0, 1], one score per item), ``'multiclass'`` "
                      "(integer labels; class scores along ``axis`` or predicted labels) or "
                      "``'multilabel'`` (targets in [0, 1] and scores, C classes along ``axis``).")
      FASTLOSS_OPTIONAL_INT(num_classes,
                            "C: required with predicted labels; else it must equal the scores' "
                            "class axis (a check), or None.")
      FASTLOSS_REAL(threshold, kUnit,
                    "Binary and multilabel: a score is positive above this probability, in [0, 1].")
      FASTLOSS_BOOL(from_logits,
                    "Binary and multilabel: ``y_pred`` holds logits (positive where "
                    "``sigmoid(y_pred) > threshold``).")
      FASTLOSS_OPTIONAL_INT(ignore_index,
                            "Items whose target equals this value (e.g. -100) are not counted.")
      FASTLOSS_INT(axis, "The class axis of ``y_pred`` (multiclass scores, multilabel)."))
  static void Validate(const char* loss, const ConfusionOptions& o) {
    if (o.num_classes && *o.num_classes < 1) {
      throw Error(std::string(loss) + ": num_classes must be >= 1, got " +
                  std::to_string(*o.num_classes));
    }
  }
};

// Per-segment, per-class counts: count(s, c, k) with k = kTp, kFp, kTn, kFn.
struct ConfusionCounts {
  enum Kind { kTp = 0, kFp = 1, kTn = 2, kFn = 3 };  // torchmetrics' stat_scores order
  int64_t segments = 0;  // 0 until the first update
  int64_t classes = 0;
  std::vector<int64_t> counts;  // segments x classes x 4

  int64_t& at(int64_t s, int64_t c, int k) { return counts[(s * classes + c) * 4 + k]; }
  int64_t at(int64_t s, int64_t c, int k) const { return counts[(s * classes + c) * 4 + k]; }

  // Sizes the counts (all zero) for S segments of C classes; an update of
  // other sizes is an Error (`name` names the caller).
  void Shape(int64_t S, int64_t C, const char* name = "confusion") {
    CheckShape(S, C, name);
    if (counts.empty()) {
      segments = S;
      classes = C;
      counts.assign(static_cast<size_t>(S * C * 4), 0);
    }
  }
  // Whether an update of S segments of C classes fits (an Error if not).
  void CheckShape(int64_t S, int64_t C, const char* name = "confusion") const {
    if (!counts.empty() && (S != segments || C != classes)) {
      throw Error(std::string(name) + ": the counts have " + std::to_string(segments) +
                  " segment(s) of " + std::to_string(classes) + " class(es); this update has " +
                  std::to_string(S) + " of " + std::to_string(C));
    }
  }
  void Merge(const ConfusionCounts& o) {
    if (o.counts.empty()) return;
    Shape(o.segments, o.classes, "confusion merge");
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
  }
};

// The inputs of one batch (see the tasks above); exactly one of y_true /
// labels and one of y_pred / predicted.
template <typename T>
struct ConfusionCall {
  std::optional<View<const T>> y_true;
  std::optional<View<const int64_t>> labels;
  std::optional<View<const T>> y_pred;
  std::optional<View<const int64_t>> predicted;
  // Segments of the items (axis 0 of the labels or targets; the flat
  // elements for kBinary): S + 1 non-decreasing offsets from 0 to the number
  // of items; none: one segment.
  std::optional<View<const int64_t>> offsets;
};

// Checks the call and adds its counts to `counts` (sized on first use: S
// segments, C classes). Nothing is added when it throws.
template <typename T>
void Confusion(const ConfusionCall<T>& call, const ConfusionOptions& options,
               ConfusionCounts& counts);

// --- Scores of the counts ----------------------------------------------------
enum class Score { kPrecision = 0, kRecall = 1, kFBeta = 2, kSpecificity = 3 };
enum class Average { kMacro = 0, kMicro = 1, kWeighted = 2, kNone = 3 };
inline constexpr const char* kAverages[] = {"macro", "micro", "weighted", "none", nullptr};

struct ScoreOptions {
  Average average = Average::kMacro;
  double beta = 1.0;
  double zero_division = 0.0;
  FASTLOSS_FIELDS(
      FASTLOSS_CHOICE(average, kAverages,
                      "``'macro'``: the mean of the per-class scores; ``'micro'``: the score of the "
                      "counts summed over the classes; ``'weighted'``: the mean weighted by each "
                      "class's support (tp + fn); ``'none'``: one score per class. The binary "
                      "task has one class: every average is its score.")
      FASTLOSS_REAL(beta, kPositive, "F-beta's weight of recall (> 0; 1 is F1).")
      FASTLOSS_REAL(zero_division, kAny,
                    "The score of a class whose denominator is 0: 0.0 (scikit-learn's default), "
                    "1.0 or NaN."))
};

// The scores, one row each: X(Score kind, Python name, takes beta, summary).
#define FASTLOSS_CONFUSION_SCORES(X)                                                          \
  X(kPrecision, precision, false,                                                           \
    "Precision ``tp / (tp + fp)`` (scikit-learn's ``precision_score``, torchmetrics' "       \
    "``Precision``).")                                                                      \
  X(kRecall, recall, false,                                                                 \
    "Recall (sensitivity) ``tp / (tp + fn)`` (scikit-learn's ``recall_score``).")           \
  X(kFBeta, f1_score, false,                                                                \
    "F1 score ``2 tp / (2 tp + fn + fp)`` (scikit-learn's ``f1_score``).")                  \
  X(kFBeta, fbeta_score, true,                                                              \
    "F-beta score ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)`` (scikit-learn's "         \
    "``fbeta_score``).")                                                                    \
  X(kSpecificity, specificity, false,                                                       \
    "Specificity (true negative rate) ``tn / (tn + fp)`` (torchmetrics' ``Specificity``).")

// The score of every segment: out has S values (C per segment with
// Average::kNone). Precision tp / (tp + fp), recall tp / (tp + fn),
// F-beta (1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp), specificity
// tn / (tn + fp), as scikit-learn computes them: macro averages over all C
// classes, zero_division where a denominator is 0; the averages leave NaN
// scores (zero_division = NaN) out, and a weighted average whose supports
// are all 0 is the plain mean (scikit-learn's _nanaverage). With one class
// (the binary task) every average is that class's score.
void ConfusionScore(const ConfusionCounts& counts, Score score, const ScoreOptions& options,
                    double* out);

}  // namespace fastloss

#endif  // FASTLOSS_CONFUSION_HPP_
