// The boundary between the dispatched SIMD kernels and the portable drivers.
// Plain C++ (no Highway types): the drivers in drivers/ only see
// function pointers resolved by Highway's dynamic dispatch.
#ifndef FASTLOSS_SRC_DRIVERS_KERNELS_H_
#define FASTLOSS_SRC_DRIVERS_KERNELS_H_

#include <cstdint>
#include <type_traits>

#include "hwy/cache_control.h"
#include "hwy/targets.h"

namespace fastloss {
namespace internal {

// Chooses Highway's SIMD target before a kernel pointer is taken. Until the
// first dispatched call, HWY_DYNAMIC_DISPATCH names Highway's initialising
// stub, which runs CPUID (a VM exit on virtual machines: microseconds) every
// time it is called: once per segment of a process's first segmented call,
// which took a third of a 1e5-segment call. The lookups below call this.
inline void ChooseTarget() {
  hwy::ChosenTarget& chosen = hwy::GetChosenTarget();
  if (HWY_UNLIKELY(!chosen.IsInitialized())) chosen.Update(hwy::SupportedTargets());
}

// Functors with `static constexpr bool kAux = true` take a third
// per-element operand (e.g. BCE's pos_weight array): Eval(m, y, p, aux, g).
// Shared by the SIMD driver and the CUDA one.
template <class L, class = void>
struct UsesAux : std::false_type {};
template <class L>
struct UsesAux<L, std::void_t<decltype(L::kAux)>> : std::integral_constant<bool, L::kAux> {};

// Functors with `static constexpr bool kAuxGrad = true` (and kAux) also give
// the derivative with respect to the third operand:
// Eval(m, y, p, aux, g, g_aux) (the second input of an Elements row).
template <class L, class = void>
struct UsesAuxGrad : std::false_type {};
template <class L>
struct UsesAuxGrad<L, std::void_t<decltype(L::kAuxGrad)>>
    : std::integral_constant<bool, L::kAuxGrad> {};

// Functors with `static constexpr bool kChecksY = true` have kernels that
// can range-check y_true while they read it (KernelArgs::y_outside): one
// pass over memory instead of a check pass before the kernel.
template <class L, class = void>
struct ChecksY : std::false_type {};
template <class L>
struct ChecksY<L, std::void_t<decltype(L::kChecksY)>> : std::integral_constant<bool, L::kChecksY> {};

// Element functors summed along a class axis with
// `static constexpr bool kClassMean = true` give the mean over the classes
// (the row driver divides the row's sum and gradient by C).
template <class L, class = void>
struct ClassMean : std::false_type {};
template <class L>
struct ClassMean<L, std::void_t<decltype(L::kClassMean)>>
    : std::integral_constant<bool, L::kClassMean> {};

// One contiguous run of n elements for the elementwise kernels. Pointers are
// of the dtype the kernel was instantiated for.
struct KernelArgs {
  const void* y = nullptr;
  const void* p = nullptr;
  const void* w = nullptr;  // weights; nullptr: unweighted
  const void* aux = nullptr;  // a third per-element operand (functors with kAux)
  void* grad = nullptr;     // gradient out: w * dl/dp * grad_scale; nullptr: none
  void* aux_grad = nullptr;  // kAuxGrad functors: w * dl/daux * grad_scale; nullptr: none
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
  // Non-null (kernels of ChecksY functors only): set to true when the run
  // reads a y outside [y_lo, y_hi] (NaN is inside); the outputs are written
  // all the same.
  bool* y_outside = nullptr;
  double y_lo = 0.0, y_hi = 1.0;
};

// Index of the first y in [0, n) outside [lo, hi] (NaN is inside), or -1;
// dispatched (kernels/range_check.cc).
template <typename T>
int64_t FirstOutside(const T* y, int64_t n, T lo, T hi);

// Copies n values to dst, the destination's whole vectors with non-temporal
// stores and the parts at either end with ordinary ones (kernels/stream_copy.cc).
// StreamFence() orders the non-temporal stores before the thread reports
// its work done.
template <typename T>
void StreamCopy(T* dst, const T* src, int64_t n);
inline void StreamFence() { hwy::FlushStream(); }

// `functor` points to the loss functor the kernel was instantiated for.
using ElementwiseKernel = void (*)(const void* functor, const KernelArgs& args);

// Resolved through HWY_DYNAMIC_DISPATCH on every call, so the SIMD target
// in force (see runtime/targets.cc) is the one used. Specialised in the dispatched
// family files (kernels/regression.cc, ...).
template <class Loss, typename T>
ElementwiseKernel ElementwiseKernelFor();

// A run of rows for the row-wise kernels: `rows` rows of C classes. Row r
// of operand X starts at X + r * X_row; class c is at + c * X_cls (all
// strides in elements). Pointers are of the kernel's dtype T, except labels.
struct RowArgs {
  const void* x = nullptr;         // y_pred
  const void* y = nullptr;         // dense targets, or nullptr
  const int64_t* labels = nullptr;  // integer targets, or nullptr
  const void* rw = nullptr;        // per-row weights, or nullptr (1)
  const void* cw = nullptr;        // class weights: C contiguous values, or nullptr
  void* grad = nullptr;            // nullptr: no gradient
  void* losses = nullptr;          // per-row s_r * l_r out, or nullptr
  int64_t rows = 0, C = 0;
  int64_t x_row = 0, y_row = 0, label_row = 0, rw_row = 0, g_row = 0, loss_row = 0;
  int64_t x_cls = 1, y_cls = 1, g_cls = 1;
  double grad_scale = 1.0;   // the gradient is s_r * dl_r * grad_scale
  double cw_total = 0.0;     // sum of the class weights (C without them)
  bool has_ignore = false;
  int64_t ignore_index = 0;
  bool check_y = false;      // dense targets must lie in [0, 1]
  // Out: the first row (of this run) whose targets failed check_y, or -1;
  // the run stops there.
  int64_t* bad_row = nullptr;
};

// Returns sum_r s_r * l_r over the run's rows, added in row order.
using RowKernel = double (*)(const void* functor, const RowArgs& args);

template <class Loss, typename T>
RowKernel RowKernelFor();

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_DRIVERS_KERNELS_H_
