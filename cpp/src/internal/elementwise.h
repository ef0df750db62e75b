// The portable part of the elementwise + reduce driver: argument checks,
// broadcasting of weights, strided inputs gathered block by block, the split
// over threads, and the deterministic fold of the block partials.
#ifndef FASTLOSS_SRC_INTERNAL_ELEMENTWISE_H_
#define FASTLOSS_SRC_INTERNAL_ELEMENTWISE_H_

#include "fastloss/fastloss.hpp"
#include "internal/kernels.h"

namespace fastloss {
namespace internal {

// Runs `kernel` (instantiated for the functor `functor` points to) over
// `call`. `name` prefixes error messages. `cost` is the functor's kCost.
template <typename T>
double RunElementwise(const char* name, const void* functor, int cost,
                      ElementwiseKernel kernel, const Call<T>& call);

template <class Loss, typename T>
double RunLoss(const char* name, const Loss& loss, const Call<T>& call) {
  return RunElementwise<T>(name, &loss, Loss::kCost, ElementwiseKernelFor<Loss, T>(),
                           call);
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_INTERNAL_ELEMENTWISE_H_
