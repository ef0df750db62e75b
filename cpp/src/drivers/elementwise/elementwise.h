// The portable part of the elementwise + reduce driver: argument checks,
// broadcasting of weights, strided inputs gathered block by block, the split
// over threads, and the deterministic fold of the block partials.
#ifndef FASTLOSS_SRC_DRIVERS_ELEMENTWISE_ELEMENTWISE_H_
#define FASTLOSS_SRC_DRIVERS_ELEMENTWISE_ELEMENTWISE_H_

#include <string>

#include "fastloss/fastloss.hpp"
#include "drivers/checks.h"
#include "drivers/kernels.h"

namespace fastloss {
namespace internal {

// What some losses add to a plain Call.
template <typename T>
struct ElementwiseExtras {
  // A third per-element input for functors with kAux, broadcast to y_pred
  // like the weights (named aux_name in errors).
  const View<const T>* aux = nullptr;
  const char* aux_name = "aux";
  // y_true values outside [y_lo, y_hi] are an Error naming the first such
  // position (NaN is not). The check runs on each chunk of 16384 elements
  // just before the kernel reads it, or inside the kernel (fused_check, for
  // arrays of more than one chunk), so when it fails, outputs of chunks that
  // ran before it (and, fused, of the failing chunk) may already have been
  // written; an array of one chunk leaves them untouched.
  bool check_y = false;
  double y_lo = 0.0, y_hi = 1.0;
  // The same for aux (e.g. a variance must be >= 0), checked on each
  // chunk before the kernel reads it.
  bool check_aux = false;
  double aux_lo = 0.0, aux_hi = 0.0;
  // The derivative with respect to aux (kAuxGrad functors), of y_pred's
  // shape; aux must then have y_pred's shape too (no broadcast).
  const View<T>* aux_grad = nullptr;
  const char* aux_grad_name = "aux's gradient";
  // The kernel range-checks y as it reads it (ChecksY functors; set by
  // RunLoss): then the chunk where the check fails is written too.
  bool fused_check = false;
  // Run every argument check, then return 0 without reading or writing any
  // data: losses of two calls validate the second before running the first,
  // so an error leaves every output untouched.
  bool validate_only = false;
  // The outputs are a part of a larger whole that streams its outputs (a
  // segment of a large segmented call): stream them whatever their size.
  bool stream_large = false;
};

// Runs `kernel` (instantiated for the functor `functor` points to) over
// `call`. `name` prefixes error messages. `cost` is the functor's kCost.
template <typename T>
double RunElementwise(const char* name, const void* functor, int cost,
                      ElementwiseKernel kernel, const Call<T>& call,
                      const ElementwiseExtras<T>& extras = {});

template <class Loss, typename T>
double RunLoss(const char* name, const Loss& loss, const Call<T>& call,
               const ElementwiseExtras<T>& extras = {}) {
  ElementwiseExtras<T> e = extras;
  e.fused_check = ChecksY<Loss>::value;
  return RunElementwise<T>(name, &loss, Loss::kCost, ElementwiseKernelFor<Loss, T>(),
                           call, e);
}


}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_DRIVERS_ELEMENTWISE_ELEMENTWISE_H_
