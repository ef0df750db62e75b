// Per-target kernels of the multi-sum + finalize driver (groups.h)
// and of the box driver: written once over a functor, instantiated for each
// Highway target by kernels/structured.cc. Highway re-include toggle guard.

#if defined(FASTLOSS_SRC_DRIVERS_GROUPS_GROUPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FASTLOSS_SRC_DRIVERS_GROUPS_GROUPS_INL_H_
#undef FASTLOSS_SRC_DRIVERS_GROUPS_GROUPS_INL_H_
#else
#define FASTLOSS_SRC_DRIVERS_GROUPS_GROUPS_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "fastloss/fastloss.hpp"
#include "hwy/highway.h"
#include "drivers/groups/groups.h"
#include "drivers/kernels.h"
#include "math/prefetch.h"
#include "math/simd_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {

template <class Loss>
HWY_INLINE Loss CopyFunctor(const void* functor) {
  static_assert(std::is_trivially_copyable<Loss>::value, "functors are plain data");
  Loss loss;
  std::memcpy(static_cast<void*>(&loss), functor, sizeof(Loss));
  return loss;
}

// Adds the terms of elements [i, i + lanes of d) to acc.
template <class Loss, class D, typename T = hn::TFromD<D>>
HWY_INLINE void AddTerms(D d, const Loss& loss, const T* const* in, size_t i,
                         hn::Vec<D>* acc) {
  const SimdMath<D> m{d};
  hn::Vec<D> x[Loss::kInputs];
  for (int k = 0; k < Loss::kInputs; ++k) x[k] = hn::LoadU(d, in[k] + i);
  hn::Vec<D> t[Loss::kSums];
  loss.Terms(m, x, t);
  for (int k = 0; k < Loss::kSums; ++k) acc[k] = hn::Add(acc[k], t[k]);
}

// sums[k] += sum over the run of term k: lanes of T within each block of
// kReductionBlock elements, float64 across blocks (in order).
template <class Loss, typename T>
HWY_NOINLINE void GroupSumsImpl(const void* functor, const internal::GroupArgs& a) {
  const Loss loss = CopyFunctor<Loss>(functor);
  const hn::ScalableTag<T> d;
  const hn::CappedTag<T, 1> d1;
  const size_t lanes = hn::Lanes(d);
  const T* in[Loss::kInputs];
  for (int k = 0; k < Loss::kInputs; ++k) in[k] = static_cast<const T*>(a.in[k]);
  const size_t n = static_cast<size_t>(a.n);
  constexpr size_t kBlock = static_cast<size_t>(kReductionBlock);
  for (size_t b0 = 0; b0 < n; b0 += kBlock) {
    const size_t end = b0 + (n - b0 < kBlock ? n - b0 : kBlock);
    hn::Vec<decltype(d)> acc0[Loss::kSums], acc1[Loss::kSums];
    for (int k = 0; k < Loss::kSums; ++k) acc0[k] = acc1[k] = hn::Zero(d);
    size_t i = b0;
    for (; i + 2 * lanes <= end; i += 2 * lanes) {
      for (int k = 0; k < Loss::kInputs; ++k) {
        internal::PrefetchAhead(in[k], i, 2 * lanes * sizeof(T));
      }
      AddTerms(d, loss, in, i, acc0);
      AddTerms(d, loss, in, i + lanes, acc1);
    }
    for (; i + lanes <= end; i += lanes) AddTerms(d, loss, in, i, acc0);
    double block[Loss::kSums];
    for (int k = 0; k < Loss::kSums; ++k) {
      block[k] = static_cast<double>(hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0[k], acc1[k]))));
    }
    if constexpr (std::is_same<T, float>::value) {
      // A float lane sum past FLT_MAX (terms near 1e35, say x^2 of |x| ~
      // 1e18) is inf or NaN where the float64 sum of the same terms is
      // finite: then the block's terms are taken again one lane at a time
      // and added in float64 (rare; the sums pass writes nothing, so the
      // inputs are intact). Terms that are inf or NaN stay so.
      bool finite = true;
      for (int k = 0; k < Loss::kSums; ++k) finite = finite && std::isfinite(block[k]);
      if (!finite) {
        for (int k = 0; k < Loss::kSums; ++k) block[k] = 0.0;
        for (size_t j = b0; j < i; ++j) {
          hn::Vec<decltype(d1)> t1[Loss::kSums];
          for (int k = 0; k < Loss::kSums; ++k) t1[k] = hn::Zero(d1);
          AddTerms(d1, loss, in, j, t1);
          for (int k = 0; k < Loss::kSums; ++k) block[k] += static_cast<double>(hn::GetLane(t1[k]));
        }
      }
    }
    for (; i < end; ++i) {
      hn::Vec<decltype(d1)> t1[Loss::kSums];
      for (int k = 0; k < Loss::kSums; ++k) t1[k] = hn::Zero(d1);
      AddTerms(d1, loss, in, i, t1);
      for (int k = 0; k < Loss::kSums; ++k) block[k] += static_cast<double>(hn::GetLane(t1[k]));
    }
    for (int k = 0; k < Loss::kSums; ++k) a.sums[k] += block[k];
  }
}

template <class Loss, class D, typename T = hn::TFromD<D>>
HWY_INLINE void GradStep(D d, const Loss& loss, const T* const* in, T* const* out,
                         const hn::Vec<D>* c, size_t i) {
  const SimdMath<D> m{d};
  hn::Vec<D> x[Loss::kInputs];
  for (int k = 0; k < Loss::kInputs; ++k) x[k] = hn::LoadU(d, in[k] + i);
  hn::Vec<D> g[Loss::kGrads];
  loss.Grad(m, x, c, g);
  for (int j = 0; j < Loss::kGrads; ++j) {
    if (out[j]) hn::StoreU(g[j], d, out[j] + i);
  }
}

// grad[j][i] = Grad(in[.][i], coef)[j] over the run.
template <class Loss, typename T>
HWY_NOINLINE void GroupGradImpl(const void* functor, const internal::GroupArgs& a) {
  const Loss loss = CopyFunctor<Loss>(functor);
  const hn::ScalableTag<T> d;
  const hn::CappedTag<T, 1> d1;
  const size_t lanes = hn::Lanes(d);
  const T* in[Loss::kInputs];
  for (int k = 0; k < Loss::kInputs; ++k) in[k] = static_cast<const T*>(a.in[k]);
  T* out[Loss::kGrads];
  for (int j = 0; j < Loss::kGrads; ++j) out[j] = static_cast<T*>(a.grad[j]);
  hn::Vec<decltype(d)> c[Loss::kCoefs];
  hn::Vec<decltype(d1)> c1[Loss::kCoefs];
  for (int k = 0; k < Loss::kCoefs; ++k) {
    c[k] = hn::Set(d, static_cast<T>(a.coef[k]));
    c1[k] = hn::Set(d1, static_cast<T>(a.coef[k]));
  }
  const size_t n = static_cast<size_t>(a.n);
  size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    for (int k = 0; k < Loss::kInputs; ++k) {
      internal::PrefetchAhead(in[k], i, 2 * lanes * sizeof(T));
    }
    GradStep(d, loss, in, out, c, i);
    GradStep(d, loss, in, out, c, i + lanes);
  }
  for (; i + lanes <= n; i += lanes) GradStep(d, loss, in, out, c, i);
  for (; i < n; ++i) GradStep(d1, loss, in, out, c1, i);
}

// --- Boxes: (n, 4) contiguous runs, lanes over boxes (LoadInterleaved4). ---
template <bool kGrad, bool kStore, bool kWeighted, class Loss, class D,
          typename T = hn::TFromD<D>>
HWY_INLINE hn::Vec<D> BoxStep(D d, const Loss& loss, const T* t, const T* p, const T* w,
                              T* grad, T* out, hn::Vec<D> scale, size_t i) {
  const SimdMath<D> m{d};
  hn::Vec<D> tv[4], pv[4], g[4];
  hn::LoadInterleaved4(d, t + 4 * i, tv[0], tv[1], tv[2], tv[3]);
  hn::LoadInterleaved4(d, p + 4 * i, pv[0], pv[1], pv[2], pv[3]);
  hn::Vec<D> l = loss.template Eval<kGrad>(m, tv, pv, g);
  hn::Vec<D> s = scale;
  if constexpr (kWeighted) {
    const hn::Vec<D> wv = hn::LoadU(d, w + i);
    l = hn::Mul(l, wv);
    s = hn::Mul(s, wv);
  }
  if constexpr (kStore) hn::StoreU(l, d, out + i);
  if constexpr (kGrad) {
    hn::StoreInterleaved4(hn::Mul(g[0], s), hn::Mul(g[1], s), hn::Mul(g[2], s),
                          hn::Mul(g[3], s), d, grad + 4 * i);
  }
  return l;
}

// The elementwise protocol of KernelArgs with boxes for elements: y, p and
// grad hold 4 n values, w and loss n; partials per kReductionBlock boxes.
template <class Loss, typename T, bool kGrad, bool kStore, bool kWeighted>
HWY_NOINLINE void BoxRun(const Loss loss, const internal::KernelArgs& a) {
  const hn::ScalableTag<T> d;
  const hn::CappedTag<T, 1> d1;
  const size_t lanes = hn::Lanes(d);
  const T* y = static_cast<const T*>(a.y);
  const T* p = static_cast<const T*>(a.p);
  const T* w = static_cast<const T*>(a.w);
  T* grad = static_cast<T*>(a.grad);
  T* out = static_cast<T*>(a.loss);
  const auto scale = hn::Set(d, static_cast<T>(a.grad_scale));
  const auto scale1 = hn::Set(d1, static_cast<T>(a.grad_scale));
  const size_t n = static_cast<size_t>(a.n);
  constexpr size_t kBlock = static_cast<size_t>(kReductionBlock);
  for (size_t b0 = 0, bi = 0; b0 < n; b0 += kBlock, ++bi) {
    const size_t end = b0 + (n - b0 < kBlock ? n - b0 : kBlock);
    auto acc = hn::Zero(d);
    size_t i = b0;
    for (; i + lanes <= end; i += lanes) {
      internal::PrefetchAhead(y, 4 * i, 4 * lanes * sizeof(T));
      internal::PrefetchAhead(p, 4 * i, 4 * lanes * sizeof(T));
      if constexpr (kWeighted) internal::PrefetchAhead(w, i, lanes * sizeof(T));
      acc = hn::Add(acc, BoxStep<kGrad, kStore, kWeighted>(d, loss, y, p, w, grad, out, scale, i));
    }
    double block = static_cast<double>(hn::GetLane(hn::SumOfLanes(d, acc)));
    for (; i < end; ++i) {
      block += static_cast<double>(hn::GetLane(
          BoxStep<kGrad, kStore, kWeighted>(d1, loss, y, p, w, grad, out, scale1, i)));
    }
    if (a.partials) a.partials[bi] = block;
  }
}

template <class Loss, typename T>
void BoxKernelImpl(const void* functor, const internal::KernelArgs& a) {
  const Loss loss = CopyFunctor<Loss>(functor);
  const bool grad = a.grad != nullptr, store = a.loss != nullptr;
#define FASTLOSS_BOX_MODE(G, ST)                                 \
  if (grad == G && store == ST) {                                \
    if (a.w) return BoxRun<Loss, T, G, ST, true>(loss, a);       \
    return BoxRun<Loss, T, G, ST, false>(loss, a);               \
  }
  FASTLOSS_BOX_MODE(false, false)
  FASTLOSS_BOX_MODE(true, false)
  FASTLOSS_BOX_MODE(false, true)
  FASTLOSS_BOX_MODE(true, true)
#undef FASTLOSS_BOX_MODE
}

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle

#ifndef FASTLOSS_GROUP_KERNELS
#define FASTLOSS_GROUP_KERNELS(Name)                                                   \
  void Name##SumsF32(const void* f, const ::fastloss::internal::GroupArgs& a) {       \
    GroupSumsImpl<losses::Name, float>(f, a);                                         \
  }                                                                                   \
  void Name##SumsF64(const void* f, const ::fastloss::internal::GroupArgs& a) {       \
    GroupSumsImpl<losses::Name, double>(f, a);                                        \
  }                                                                                   \
  void Name##GradF32(const void* f, const ::fastloss::internal::GroupArgs& a) {       \
    GroupGradImpl<losses::Name, float>(f, a);                                         \
  }                                                                                   \
  void Name##GradF64(const void* f, const ::fastloss::internal::GroupArgs& a) {       \
    GroupGradImpl<losses::Name, double>(f, a);                                        \
  }

#define FASTLOSS_GROUP_EXPORT(Name)                                                    \
  HWY_EXPORT(Name##SumsF32);                                                          \
  HWY_EXPORT(Name##SumsF64);                                                          \
  HWY_EXPORT(Name##GradF32);                                                          \
  HWY_EXPORT(Name##GradF64);                                                          \
  template <>                                                                         \
  internal::GroupKernel internal::GroupSumsKernelFor<losses::Name, float>() {         \
    internal::ChooseTarget();                                                         \
    return &HWY_DYNAMIC_DISPATCH(Name##SumsF32);                                      \
  }                                                                                   \
  template <>                                                                         \
  internal::GroupKernel internal::GroupSumsKernelFor<losses::Name, double>() {        \
    internal::ChooseTarget();                                                         \
    return &HWY_DYNAMIC_DISPATCH(Name##SumsF64);                                      \
  }                                                                                   \
  template <>                                                                         \
  internal::GroupKernel internal::GroupGradKernelFor<losses::Name, float>() {         \
    internal::ChooseTarget();                                                         \
    return &HWY_DYNAMIC_DISPATCH(Name##GradF32);                                      \
  }                                                                                   \
  template <>                                                                         \
  internal::GroupKernel internal::GroupGradKernelFor<losses::Name, double>() {        \
    internal::ChooseTarget();                                                         \
    return &HWY_DYNAMIC_DISPATCH(Name##GradF64);                                      \
  }

#define FASTLOSS_BOX_KERNELS(Name)                                                     \
  void Name##BoxF32(const void* f, const ::fastloss::internal::KernelArgs& a) {       \
    BoxKernelImpl<losses::Name, float>(f, a);                                         \
  }                                                                                   \
  void Name##BoxF64(const void* f, const ::fastloss::internal::KernelArgs& a) {       \
    BoxKernelImpl<losses::Name, double>(f, a);                                        \
  }

// Box kernels follow the elementwise kernel protocol (KernelArgs) and are
// resolved through ElementwiseKernelFor like the elementwise ones.
#define FASTLOSS_BOX_EXPORT(Name)                                                      \
  HWY_EXPORT(Name##BoxF32);                                                           \
  HWY_EXPORT(Name##BoxF64);                                                           \
  template <>                                                                         \
  internal::ElementwiseKernel internal::ElementwiseKernelFor<losses::Name, float>() { \
    internal::ChooseTarget();                                                         \
    return &HWY_DYNAMIC_DISPATCH(Name##BoxF32);                                       \
  }                                                                                   \
  template <>                                                                         \
  internal::ElementwiseKernel internal::ElementwiseKernelFor<losses::Name, double>() { \
    internal::ChooseTarget();                                                          \
    return &HWY_DYNAMIC_DISPATCH(Name##BoxF64);                                        \
  }
#endif
