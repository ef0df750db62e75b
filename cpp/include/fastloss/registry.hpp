// fastloss: the loss registry.
//
// One row per loss, in its family's header (regression.hpp, classification.hpp,
// segmentation.hpp, detection.hpp, metric.hpp; the evaluation metrics in
// evaluation.hpp, options marked FASTLOSS_METRIC):
//
//   X(CppName, python_name, Driver, "aliases", y_true's name, y_pred's name)
//
// with the loss's options in CppName##Options (fields, checks, docs; see
// options.hpp). FASTLOSS_LOSSES(X) expands every row; everything that lists
// losses is generated from it: the entry points declared below, their
// definitions and instantiations, ElementwiseCombination::Add, the CUDA entry
// points, the Python binding tables and loss objects, their options and
// docstrings. Adding a loss of an existing driver is its element functor, its
// options struct + row, and its NumPy reference (fastloss.reference).
//
// Drivers, and the call each entry point takes:
//   Elementwise  Call<T>       per-element losses of y_true and y_pred of one shape
//   DenseRows    Call<T>       one loss per row along options.axis (y_true like y_pred)
//   LabelRows    LabelCall<T>  one loss per row; y_true integer labels of the rows' shape
//   VectorRows   Call<T>       one loss per vector along options.axis, y_true like
//                              y_pred (the group driver; metric.hpp)
//   Regions      Call<T>       one score per region of the reduced axes (segmentation.hpp)
//   Boxes        Call<T>       one loss per box along a last axis of 4 (detection.hpp)
#ifndef FASTLOSS_REGISTRY_HPP_
#define FASTLOSS_REGISTRY_HPP_

#include "fastloss/adversarial.hpp"
#include "fastloss/classification.hpp"
#include "fastloss/core.hpp"
#include "fastloss/detection.hpp"
#include "fastloss/evaluation.hpp"
#include "fastloss/metric.hpp"
#include "fastloss/ranking.hpp"
#include "fastloss/regression.hpp"
#include "fastloss/segmentation.hpp"

#define FASTLOSS_LOSSES(X)          \
  FASTLOSS_REGRESSION_LOSSES(X)     \
  FASTLOSS_CLASSIFICATION_LOSSES(X) \
  FASTLOSS_SEGMENTATION_LOSSES(X)   \
  FASTLOSS_DETECTION_LOSSES(X)      \
  FASTLOSS_METRIC_LOSSES(X)          \
  FASTLOSS_EVALUATION_METRICS(X)

// The losses of several inputs: one row per loss, in its family's header
// (metric.hpp, ranking.hpp, adversarial.hpp):
//
//   X(CppName, python_name, Kind, "aliases", "arguments", "target")
//
// with its options in CppName##Options (fields, checks, docs: the same
// description as the rows above). "arguments" are the Python call's
// positional arguments in order, space-separated; "target" is the one of them
// that is not differentiated ("" if none), the others are the inputs whose
// gradients .grad returns, in order. Kinds, and the entry point each row has:
//   Rows       Name(MultiCall<T>, o)          one loss per row along the inputs' last axis
//   Elements   Name(MultiCall<T>, o)          one loss per element of two inputs and a
//                                             target of one shape (the elementwise driver,
//                                             CPU and GPU: its functor has kAuxGrad)
//   Pairs      Name(Call<T>, groups, o)       one sum over pairs (no kNone, no weights)
//   ScorePair  Name(ScoreCall<T> x2, r, o)    two score arrays, each reduced on its own
//   Scores     Name(ScoreCall<T>, r, o)       one score array
//   Samples    Name(ScoreCall<T>, r, o)       one loss per sample along axis 0
//   Penalty    Name(View<const T>, o, grad)   a sum over arrays (no reduction, no weights)
// The Python binding (python/src/multi.cc), the loss objects, their options,
// signatures, docstrings and type stubs are generated from these rows.
#define FASTLOSS_MULTI_LOSSES(X)     \
  FASTLOSS_REGRESSION_MULTI_LOSSES(X) \
  FASTLOSS_METRIC_MULTI_LOSSES(X)    \
  FASTLOSS_RANKING_MULTI_LOSSES(X)   \
  FASTLOSS_ADVERSARIAL_MULTI_LOSSES(X)

// FASTLOSS_ELEMENTS_ONLY_##kind(...) keeps its arguments for the Elements
// rows of FASTLOSS_MULTI_LOSSES only.
#define FASTLOSS_ELEMENTS_ONLY_Rows(...)
#define FASTLOSS_ELEMENTS_ONLY_Elements(...) __VA_ARGS__
#define FASTLOSS_ELEMENTS_ONLY_Pairs(...)
#define FASTLOSS_ELEMENTS_ONLY_ScorePair(...)
#define FASTLOSS_ELEMENTS_ONLY_Scores(...)
#define FASTLOSS_ELEMENTS_ONLY_Samples(...)
#define FASTLOSS_ELEMENTS_ONLY_Penalty(...)

// Selectors by driver: FASTLOSS_ELEMENTWISE_ONLY_##driver(...) keeps its
// arguments for elementwise rows only, FASTLOSS_ON_GPU_##driver(...) for the
// drivers the CUDA backend has, FASTLOSS_REGIONS_ONLY_##driver for region
// rows, FASTLOSS_ROWS_ONLY_##driver for row-wise ones; FASTLOSS_CALL_##driver names the call type.
#define FASTLOSS_ELEMENTWISE_ONLY_Elementwise(...) __VA_ARGS__
#define FASTLOSS_ELEMENTWISE_ONLY_DenseRows(...)
#define FASTLOSS_ELEMENTWISE_ONLY_VectorRows(...)
#define FASTLOSS_ELEMENTWISE_ONLY_LabelRows(...)
#define FASTLOSS_ELEMENTWISE_ONLY_Regions(...)
#define FASTLOSS_ELEMENTWISE_ONLY_Boxes(...)
#define FASTLOSS_ON_GPU_Elementwise(...) __VA_ARGS__
#define FASTLOSS_ON_GPU_DenseRows(...)
#define FASTLOSS_ON_GPU_VectorRows(...)
#define FASTLOSS_ON_GPU_LabelRows(...)
#define FASTLOSS_ON_GPU_Regions(...) __VA_ARGS__
#define FASTLOSS_ON_GPU_Boxes(...) __VA_ARGS__
#define FASTLOSS_REGIONS_ONLY_Elementwise(...)
#define FASTLOSS_REGIONS_ONLY_DenseRows(...)
#define FASTLOSS_REGIONS_ONLY_VectorRows(...)
#define FASTLOSS_REGIONS_ONLY_LabelRows(...)
#define FASTLOSS_REGIONS_ONLY_Regions(...) __VA_ARGS__
#define FASTLOSS_REGIONS_ONLY_Boxes(...)
#define FASTLOSS_ROWS_ONLY_Elementwise(...)
#define FASTLOSS_ROWS_ONLY_DenseRows(...) __VA_ARGS__
#define FASTLOSS_ROWS_ONLY_VectorRows(...)
#define FASTLOSS_ROWS_ONLY_LabelRows(...) __VA_ARGS__
#define FASTLOSS_ROWS_ONLY_Regions(...)
#define FASTLOSS_ROWS_ONLY_Boxes(...)
#define FASTLOSS_CALL_Elementwise Call
#define FASTLOSS_CALL_DenseRows Call
#define FASTLOSS_CALL_VectorRows Call
#define FASTLOSS_CALL_LabelRows LabelCall
#define FASTLOSS_CALL_Regions Call
#define FASTLOSS_CALL_Boxes Call

namespace fastloss {

// The entry points: the reduced value (0 for kNone), the gradient and the
// per-element (per-row, per-region, per-box) losses written to the call's
// optional outputs. Options are checked first (CheckOptions and the loss's
// own cross-field checks): an invalid option is an Error before anything is
// read or written.
#define FASTLOSS_DECLARE_ENTRY(Name, name, driver, aliases, true_name, pred_name) \
  template <typename T>                                                          \
  double Name(const FASTLOSS_CALL_##driver<T>& call, const Name##Options& = {});
FASTLOSS_LOSSES(FASTLOSS_DECLARE_ENTRY)
#undef FASTLOSS_DECLARE_ENTRY

// The value of a region loss's state whose regions span calls (LossState::
// sums, added by calls whose axis includes the first axis, e.g. axis=None):
// each region's loss from its summed terms -- the dataset's Dice, not a mean
// of the calls' -- then `reduction` over the regions; `losses` (if not null)
// receives one loss per region (required for kNone).
#define FASTLOSS_DECLARE_REGION_RESULT(Name, name, driver, aliases, true_name, pred_name) \
  FASTLOSS_REGIONS_ONLY_##driver(double RegionResult(                                     \
      const LossState& state, const Name##Options& options,                              \
      Reduction reduction = Reduction::kMean, double* losses = nullptr);)
FASTLOSS_LOSSES(FASTLOSS_DECLARE_REGION_RESULT)
#undef FASTLOSS_DECLARE_REGION_RESULT

// Binary cross-entropy with a per-element pos_weight array broadcast to
// y_pred (options' scalar pos_weight is then ignored; the array's values are
// not checked).
template <typename T>
double BinaryCrossEntropy(const Call<T>& call, const View<const T>& pos_weight,
                          const BinaryCrossEntropyOptions& = {});

}  // namespace fastloss

#endif  // FASTLOSS_REGISTRY_HPP_
