// The boundary between the dispatched SIMD kernels and the portable drivers.
// Plain C++ (no Highway types): the drivers in elementwise.cc only see
// function pointers resolved by Highway's dynamic dispatch.
#ifndef FASTLOSS_SRC_INTERNAL_KERNELS_H_
#define FASTLOSS_SRC_INTERNAL_KERNELS_H_

#include <cstdint>

namespace fastloss {
namespace internal {

// One contiguous run of n elements for the elementwise kernels. Pointers are
// of the dtype the kernel was instantiated for.
struct KernelArgs {
  const void* y = nullptr;
  const void* p = nullptr;
  const void* w = nullptr;  // weights; nullptr: unweighted
  void* grad = nullptr;     // gradient out: w * dl/dp * grad_scale; nullptr: none
  void* loss = nullptr;     // per-element out: w * l; nullptr: none
  int64_t n = 0;
  double grad_scale = 1.0;
  // nullptr: no reduction. Else receives one float64 partial sum of w * l per
  // block of kReductionBlock elements (the last one may be short); the run
  // must start on a block boundary of the whole array.
  double* partials = nullptr;
  // Outputs are 64-byte aligned and too large to stay in cache: write them
  // with non-temporal stores (no read-for-ownership of the destination).
  bool stream = false;
};

// `functor` points to the loss functor the kernel was instantiated for.
using ElementwiseKernel = void (*)(const void* functor, const KernelArgs& args);

// Resolved through HWY_DYNAMIC_DISPATCH on every call, so the SIMD target
// in force (see targets.cc) is the one used. Specialised in the dispatched
// family files (regression.cc, ...).
template <class Loss, typename T>
ElementwiseKernel ElementwiseKernelFor();

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_INTERNAL_KERNELS_H_
