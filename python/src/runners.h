// fastloss._core: what every front door of the registry's single-input
// losses shares -- the Python-side driver kinds, the call type of each, the
// shape of a "none" reduction's losses and one runner per registry row
// (Run##Name: the C++ entry point, or its overload with an array option).
// Included by the NumPy front door (single.cc) and the JAX FFI handlers
// (jax_ffi.cc), so neither restates a row; the same for the losses of
// several inputs (multi.cc).
#ifndef FASTLOSS_PYTHON_RUNNERS_H_
#define FASTLOSS_PYTHON_RUNNERS_H_

#include <cstdint>
#include <type_traits>
#include <utility>

#include "fastloss/fastloss.hpp"

namespace fastloss_py {

// The group driver's rows (VectorRows) are called like dense rows.
enum class Driver { kElementwise, kDenseRows, kLabelRows, kRegions, kBoxes };

#define FASTLOSS_PY_DRIVER_Elementwise Driver::kElementwise
#define FASTLOSS_PY_DRIVER_DenseRows Driver::kDenseRows
#define FASTLOSS_PY_DRIVER_VectorRows Driver::kDenseRows
#define FASTLOSS_PY_DRIVER_LabelRows Driver::kLabelRows
#define FASTLOSS_PY_DRIVER_Regions Driver::kRegions
#define FASTLOSS_PY_DRIVER_Boxes Driver::kBoxes

// The loss's call type for T.
template <Driver D, typename T>
using CallOf = std::conditional_t<D == Driver::kLabelRows, fastloss::LabelCall<T>,
                                  fastloss::Call<T>>;

// The shape of the per-element (per-row, per-region, per-box) losses of a
// y_pred of rank `rank` and shape `in`: the one place the "none"
// reduction's result shape is computed. A bad axis gives shape () here;
// the C++ entry point reports it.
template <Driver D, class O>
int LossesShape(int rank, const int64_t* in, const O& o, int64_t* shape) {
  bool drop[fastloss::kMaxRank] = {};
  if constexpr (D == Driver::kDenseRows || D == Driver::kLabelRows) {
    const int a = o.axis < 0 ? o.axis + rank : o.axis;
    if (a < 0 || a >= rank) return 0;
    drop[a] = true;
  } else if constexpr (D == Driver::kRegions) {
    for (int k = 0; k < rank; ++k) drop[k] = o.all_axes;
    for (int axis : o.axes) {
      const int k = axis < 0 ? axis + rank : axis;
      if (!o.all_axes && k >= 0 && k < rank) drop[k] = true;
    }
  } else if constexpr (D == Driver::kBoxes) {
    if (rank > 0) drop[rank - 1] = true;
  }
  int out = 0;
  for (int k = 0; k < rank; ++k) {
    if (!drop[k]) shape[out++] = in[k];
  }
  return out;
}

// A loss whose options have a real-or-array field runs with the array
// through the public overload that takes it (`aux`).
template <typename T, class CallT, class O>
double RunWithArray(const CallT&, const fastloss::View<const T>&, const O&) {
  throw fastloss::Error("this loss takes no array option");  // no such field: unreachable
}
template <typename T>
double RunWithArray(const fastloss::Call<T>& call, const fastloss::View<const T>& aux,
                    const fastloss::BinaryCrossEntropyOptions& o) {
  return fastloss::BinaryCrossEntropy<T>(call, aux, o);
}

#define FASTLOSS_PY_RUNNER(Name, name, driver, aliases, true_name, pred_name)                  \
  struct Run##Name {                                                                          \
    template <typename T, class CallT>                                                        \
    static double Run(const CallT& call, const fastloss::Name##Options& o,                     \
                      const fastloss::View<const T>* aux) {                                   \
      if (aux) return RunWithArray<T>(call, *aux, o);                                          \
      return fastloss::Name<T>(call, o);                                                       \
    }                                                                                         \
  };
FASTLOSS_LOSSES(FASTLOSS_PY_RUNNER)
#undef FASTLOSS_PY_RUNNER

// The kinds of the losses of several inputs (FASTLOSS_MULTI_LOSSES), and
// one runner per row: the row's entry point, whatever its call types.
enum class MultiKind { kRows, kElements, kPairs, kScorePair, kScores, kSamples, kPenalty };

#define FASTLOSS_PY_MULTI_RUNNER(Name, name, kind, aliases, args, target) \
  struct RunMulti##Name {                                                 \
    template <typename T, class... A>                                     \
    static double Run(A&&... a) {                                         \
      return fastloss::Name<T>(std::forward<A>(a)...);                    \
    }                                                                     \
  };
FASTLOSS_MULTI_LOSSES(FASTLOSS_PY_MULTI_RUNNER)
#undef FASTLOSS_PY_MULTI_RUNNER

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_RUNNERS_H_
