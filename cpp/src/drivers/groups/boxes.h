// The box driver: losses of boxes (x1, y1, x2, y2) along a last axis of 4,
// one loss per box (the per-target kernels are in groups-inl.h; they follow
// the elementwise kernel protocol with a box for an element).
#ifndef FASTLOSS_SRC_DRIVERS_GROUPS_BOXES_H_
#define FASTLOSS_SRC_DRIVERS_GROUPS_BOXES_H_

#include "fastloss/fastloss.hpp"
#include "drivers/kernels.h"

namespace fastloss {
namespace internal {

template <typename T>
double RunBoxes(const char* name, const void* functor, int cost, ElementwiseKernel kernel,
                const Call<T>& call);

template <class Loss, typename T>
double RunBoxLoss(const char* name, const Loss& loss, const Call<T>& call) {
  return RunBoxes<T>(name, &loss, Loss::kCost, ElementwiseKernelFor<Loss, T>(), call);
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_DRIVERS_GROUPS_BOXES_H_
