// The portable part of the row-wise driver: the class axis and the rows,
// argument checks (labels in range before anything is written), the mean's
// denominator, the split of rows over threads and the deterministic fold.
#ifndef FASTLOSS_SRC_DRIVERS_ROWWISE_ROWWISE_H_
#define FASTLOSS_SRC_DRIVERS_ROWWISE_ROWWISE_H_

#include <cstdint>

#include "fastloss/fastloss.hpp"
#include "drivers/kernels.h"

namespace fastloss {
namespace internal {

template <typename T>
struct RowProblem {
  const char* name = "";
  int axis = -1;
  View<const T> y_pred;
  const View<const T>* y_true = nullptr;       // dense targets, or
  const View<const int64_t>* labels = nullptr;  // integer targets
  const View<const T>* weights = nullptr;       // broadcast to the rows
  const View<const T>* class_weights = nullptr;
  Reduction reduction = Reduction::kMean;
  View<T>* grad = nullptr;
  View<T>* losses = nullptr;
  View<T>* hits = nullptr;  // labels only: LabelCall::hits
  bool has_ignore = false;
  int64_t ignore_index = 0;
  bool check_y = false;  // dense targets must lie in [0, 1]
  // The mean divides by sum_r s_r w_{t_r} over non-ignored rows (PyTorch's
  // weighted cross-entropy / NLL) instead of sum_r s_r.
  bool target_weighted_mean = false;
  LossState* state = nullptr;  // Call::state
};

// Runs `kernel` (for the functor `functor` points to; `cost` its kCost per
// element) over the rows and returns the reduced value.
template <typename T>
double RunRows(const RowProblem<T>& problem, const void* functor, int cost, RowKernel kernel);

template <class Loss, typename T>
double RunRowLoss(const RowProblem<T>& problem, const Loss& loss) {
  return RunRows<T>(problem, &loss, Loss::kCost, RowKernelFor<Loss, T>());
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_DRIVERS_ROWWISE_ROWWISE_H_
