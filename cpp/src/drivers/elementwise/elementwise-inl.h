// The elementwise + reduce SIMD kernel, written once for every elementwise
// loss functor. Per-target code (Highway re-include toggle guard); the family
// files (kernels/regression.cc, ...) instantiate it for their functors with
// FASTLOSS_ELEMENTWISE_KERNELS and export the result with
// FASTLOSS_ELEMENTWISE_EXPORT.
//
// One pass: each input element is loaded once, the per-element loss and its
// derivative come from the same functor call, and the gradient / per-element
// loss are stored in the same iteration (so an output may alias an input at
// the same index: every element is read before it is written).
//
// Accumulation: within a block of kReductionBlock elements the weighted losses
// are summed in vectors of T lanes over runs of kFoldVectors vectors (each
// lane adds at most 16 values in T), then each run's lanes are added and
// folded into the block's float64 partial. The driver folds the
// partials in index order, so the result does not depend on how blocks are
// spread over threads. The last < lanes elements of a block run as one vector
// through the same functor: the block's last vector, its lanes done before
// masked out of the sum, the check and the stores (or, in a block shorter
// than a vector, a stack copy whose extra lanes are ignored).

#if defined(FASTLOSS_SRC_DRIVERS_ELEMENTWISE_ELEMENTWISE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FASTLOSS_SRC_DRIVERS_ELEMENTWISE_ELEMENTWISE_INL_H_
#undef FASTLOSS_SRC_DRIVERS_ELEMENTWISE_ELEMENTWISE_INL_H_
#else
#define FASTLOSS_SRC_DRIVERS_ELEMENTWISE_ELEMENTWISE_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cstring>
#include <type_traits>

#include "fastloss/fastloss.hpp"
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "drivers/kernels.h"
#include "math/prefetch.h"
#include "math/simd_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {

using internal::ChecksY;  // drivers/kernels.h
using internal::PrefetchAhead;
using internal::UsesAux;
using internal::UsesAuxGrad;

// y outside [lo, hi] seen so far, lane by lane (kCheck kernels).
template <class D>
struct YCheck {
  hn::Vec<D> lo, hi;
  hn::Mask<D> bad;
  YCheck(D d, double l, double h)
      : lo(hn::Set(d, static_cast<hn::TFromD<D>>(l))),
        hi(hn::Set(d, static_cast<hn::TFromD<D>>(h))),
        bad(hn::FirstN(d, 0)) {}
  HWY_INLINE void Add(hn::Vec<D> y) { bad = hn::Or(bad, hn::Or(hn::Lt(y, lo), hn::Gt(y, hi))); }
};

// Stores an output vector, non-temporally for outputs too large for the
// cache; with `keep`, only its lanes where keep is true (a block's tail).
template <class D, typename T = hn::TFromD<D>>
HWY_INLINE void StoreOut(D d, hn::Vec<D> v, T* to, bool stream,
                         const hn::Mask<D>* keep = nullptr) {
  if (keep) {
    hn::BlendedStore(v, *keep, d, to);
  } else if (stream) {
    hn::Stream(v, d, to);
  } else {
    hn::StoreU(v, d, to);
  }
}

// One vector of elements at offset i:
// evaluates the functor, stores what the mode asks for, returns w * l; with
// kCheck, adds y to the range check. With `keep` (a block's last, overlapping
// vector), only the lanes where keep is true are stored and checked.
template <bool kGrad, bool kStore, bool kWeighted, bool kCheck = false, class Loss, class D,
          typename T = hn::TFromD<D>>
HWY_INLINE hn::Vec<D> ElementStep(D d, const Loss& loss, const T* y, const T* p,
                                  const T* w, const T* aux, T* grad, T* aux_grad, T* out,
                                  hn::Vec<D> scale, size_t i, bool stream = false,
                                  YCheck<D>* check = nullptr,
                                  const hn::Mask<D>* keep = nullptr) {
  const SimdMath<D> m{d};
  hn::Vec<D> g = hn::Zero(d), ga = hn::Zero(d);
  hn::Vec<D> l;
  const hn::Vec<D> yv = hn::LoadU(d, y + i);
  if constexpr (kCheck) check->Add(keep ? hn::IfThenElse(*keep, yv, check->lo) : yv);
  if constexpr (UsesAuxGrad<Loss>::value) {
    l = loss.template Eval<kGrad>(m, yv, hn::LoadU(d, p + i), hn::LoadU(d, aux + i), g, ga);
  } else if constexpr (UsesAux<Loss>::value) {
    l = loss.template Eval<kGrad>(m, yv, hn::LoadU(d, p + i), hn::LoadU(d, aux + i), g);
  } else {
    (void)aux;
    l = loss.template Eval<kGrad>(m, yv, hn::LoadU(d, p + i), g);
  }
  if constexpr (kWeighted) {
    const hn::Vec<D> wv = hn::LoadU(d, w + i);
    l = hn::Mul(l, wv);
    if constexpr (kGrad) {
      g = hn::Mul(g, wv);
      if constexpr (UsesAuxGrad<Loss>::value) ga = hn::Mul(ga, wv);
    }
  }
  if constexpr (kStore) StoreOut(d, l, out + i, stream, keep);
  if constexpr (kGrad) {
    if constexpr (UsesAuxGrad<Loss>::value) {
      // Either gradient may be absent (the call asked for the other only).
      if (grad) StoreOut(d, hn::Mul(g, scale), grad + i, stream, keep);
      if (aux_grad) StoreOut(d, hn::Mul(ga, scale), aux_grad + i, stream, keep);
    } else {
      (void)aux_grad;
      StoreOut(d, hn::Mul(g, scale), grad + i, stream, keep);
    }
  }
  return l;
}

// Every unrolled step prefetches the input lines kPrefetchBytes ahead. A
// function, not a lambda: GCC 12 dropped the prefetches of a lambda from
// every weighted kernel (objdump of kernels/regression.cc.o).
template <bool kWeighted, bool kAux, typename T>
HWY_INLINE void PrefetchInputs(const T* y, const T* p, const T* w, const T* aux, size_t i,
                               size_t bytes) {
  PrefetchAhead(y, i, bytes);
  PrefetchAhead(p, i, bytes);
  if constexpr (kWeighted) PrefetchAhead(w, i, bytes);
  if constexpr (kAux) PrefetchAhead(aux, i, bytes);
}

// Vectors summed in float lanes before the lanes are folded into the block's
// float64 total: each lane adds at most kFoldVectors values in T.
constexpr size_t kFoldVectors = 16;

template <class Loss, typename T, bool kSum, bool kGrad, bool kStore, bool kWeighted,
          bool kCheck = false>
HWY_NOINLINE void ElementwiseRun(const Loss loss, const internal::KernelArgs& a) {
  // `loss` is taken by value: a local whose address never escapes, so the
  // compiler knows the gradient stores cannot modify its options and hoists
  // everything derived from them out of the loop.
  const hn::ScalableTag<T> d;
  const size_t lanes = hn::Lanes(d);
  const T* y = static_cast<const T*>(a.y);
  const T* p = static_cast<const T*>(a.p);
  const T* w = static_cast<const T*>(a.w);
  const T* aux = static_cast<const T*>(a.aux);
  T* grad = static_cast<T*>(a.grad);
  T* aux_grad = static_cast<T*>(a.aux_grad);
  T* out = static_cast<T*>(a.loss);
  const auto scale = hn::Set(d, static_cast<T>(a.grad_scale));
  const size_t n = static_cast<size_t>(a.n);
  constexpr size_t kBlock = static_cast<size_t>(kReductionBlock);
  // Cheap functors are unrolled four times (independent accumulators hide
  // the add latency); transcendental ones twice: their bodies are long
  // dependency chains, two of them keep the core busy, four spill registers.
  constexpr size_t kUnroll = Loss::kCost >= 4 ? 2 : 4;
  const size_t fold = kFoldVectors * lanes;
  // Blocks start at multiples of kReductionBlock elements, so with an
  // aligned base every full-vector store is aligned; the partial tail
  // vector always uses ordinary stores.
  const bool stream = a.stream && (kGrad || kStore);
  YCheck<hn::ScalableTag<T>> check(d, a.y_lo, a.y_hi);

  for (size_t b0 = 0, bi = 0; b0 < n; b0 += kBlock, ++bi) {
    const size_t end = b0 + (n - b0 < kBlock ? n - b0 : kBlock);
    double block_sum = 0.0;
    // The last run's lane sums, reduced once the tail's lanes are added.
    auto pending = hn::Zero(d);
    size_t i = b0;
    while (i + lanes <= end) {
      const size_t run_end = i + fold <= end ? i + fold : i + (end - i) / lanes * lanes;
      auto acc0 = hn::Zero(d), acc1 = hn::Zero(d), acc2 = hn::Zero(d),
           acc3 = hn::Zero(d);
      if constexpr (kUnroll == 4) {
        for (; i + 4 * lanes <= run_end; i += 4 * lanes) {
          PrefetchInputs<kWeighted, UsesAux<Loss>::value>(y, p, w, aux, i, 4 * lanes * sizeof(T));
          acc0 = hn::Add(acc0, ElementStep<kGrad, kStore, kWeighted, kCheck>(
                                   d, loss, y, p, w, aux, grad, aux_grad, out, scale, i, stream, &check));
          acc1 = hn::Add(acc1, ElementStep<kGrad, kStore, kWeighted, kCheck>(
                                   d, loss, y, p, w, aux, grad, aux_grad, out, scale, i + lanes, stream,
                                   &check));
          acc2 = hn::Add(acc2, ElementStep<kGrad, kStore, kWeighted, kCheck>(
                                   d, loss, y, p, w, aux, grad, aux_grad, out, scale, i + 2 * lanes, stream,
                                   &check));
          acc3 = hn::Add(acc3, ElementStep<kGrad, kStore, kWeighted, kCheck>(
                                   d, loss, y, p, w, aux, grad, aux_grad, out, scale, i + 3 * lanes, stream,
                                   &check));
        }
      }
      if constexpr (kUnroll == 2) {
        for (; i + 2 * lanes <= run_end; i += 2 * lanes) {
          PrefetchInputs<kWeighted, UsesAux<Loss>::value>(y, p, w, aux, i, 2 * lanes * sizeof(T));
          acc0 = hn::Add(acc0, ElementStep<kGrad, kStore, kWeighted, kCheck>(
                                   d, loss, y, p, w, aux, grad, aux_grad, out, scale, i, stream, &check));
          acc1 = hn::Add(acc1, ElementStep<kGrad, kStore, kWeighted, kCheck>(
                                   d, loss, y, p, w, aux, grad, aux_grad, out, scale, i + lanes, stream,
                                   &check));
        }
      }
      for (; i < run_end; i += lanes) {
        acc0 = hn::Add(acc0, ElementStep<kGrad, kStore, kWeighted, kCheck>(
                                 d, loss, y, p, w, aux, grad, aux_grad, out, scale, i, stream, &check));
      }
      if constexpr (kSum) {
        if (i < end && i + lanes <= end) {  // another run follows
          const auto total = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
          block_sum += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, total)));
        } else {
          pending = hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3));
        }
      }
    }
    if (i < end && end - b0 >= lanes) {
      // The last partial vector of a block of at least one vector: the
      // vector that ends at the block's end, whose first lanes were done
      // already; only its last `rem` lanes are summed, checked and stored.
      const size_t rem = end - i;
      const auto keep = hn::Not(hn::FirstN(d, lanes - rem));
      const auto l = ElementStep<kGrad, kStore, kWeighted, kCheck>(
          d, loss, y, p, w, aux, grad, aux_grad, out, scale, end - lanes, false, &check, &keep);
      if constexpr (kSum) pending = hn::Add(pending, hn::IfThenElseZero(keep, l));
      i = end;
    }
    if (i < end) {
      // A block of less than one vector (a small call): its lanes copied to
      // the stack (the rest repeat the last element, so every lane is a
      // valid input, also for the range check), one vector step, the valid
      // lanes of its losses summed and of its outputs copied back.
      const size_t rem = end - i;
      constexpr size_t kMax = HWY_MAX_BYTES / sizeof(T);
      HWY_ALIGN T ty[kMax], tp[kMax], tw[kMax], ta[kMax], tg[kMax], tga[kMax], tl[kMax];
      const auto fill = [rem, i, lanes](T* to, const T* from) {
        for (size_t k = 0; k < lanes; ++k) to[k] = from[i + (k < rem ? k : rem - 1)];
      };
      fill(ty, y);
      fill(tp, p);
      if constexpr (kWeighted) fill(tw, w);
      if constexpr (UsesAux<Loss>::value) fill(ta, aux);
      const auto l = ElementStep<kGrad, kStore, kWeighted, kCheck>(
          d, loss, ty, tp, tw, ta, grad ? tg : nullptr, aux_grad ? tga : nullptr, tl, scale, 0,
          false, &check);
      if constexpr (kSum) pending = hn::IfThenElseZero(hn::FirstN(d, rem), l);
      const auto back = [rem, i](T* to, const T* from) {
        if (to) std::memcpy(to + i, from, rem * sizeof(T));
      };
      if constexpr (kGrad) {
        back(grad, tg);
        back(aux_grad, tga);
      }
      if constexpr (kStore) back(out, tl);
      i = end;
    }
    if constexpr (kSum) {
      block_sum += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, pending)));
      a.partials[bi] = block_sum;
    }
  }
  if constexpr (kCheck) {
    if (!hn::AllFalse(d, check.bad)) *a.y_outside = true;
  }
  // Non-temporal stores are weakly ordered: make them visible before the
  // driver hands the results to another thread.
  if (stream) hwy::FlushStream();
}

// The modes the driver uses: (sum, grad, store) is one of value, value+grad,
// grad, per-element value, per-element value + grad; each with and without
// weights.
//
// `functor` points to the plain fastloss::losses::X object the public API
// built; Loss is this target's copy of the same definition (same text, same
// layout), so its bytes are copied over.
template <class Loss, typename T>
void ElementwiseKernelImpl(const void* functor, const internal::KernelArgs& a) {
  static_assert(std::is_trivially_copyable<Loss>::value, "functors are plain data");
  Loss loss;
  std::memcpy(static_cast<void*>(&loss), functor, sizeof(Loss));
  const bool sum = a.partials != nullptr, grad = a.grad != nullptr || a.aux_grad != nullptr,
             store = a.loss != nullptr;
  // Range-checking kernels only for the functors that ask for them.
  constexpr bool kCanCheck = ChecksY<Loss>::value;
  const bool check = kCanCheck && a.y_outside != nullptr;
#define FASTLOSS_MODE(S, G, ST)                                                     \
  if (sum == S && grad == G && store == ST) {                                       \
    if constexpr (kCanCheck) {                                                      \
      if (check && a.w) return ElementwiseRun<Loss, T, S, G, ST, true, true>(loss, a); \
      if (check) return ElementwiseRun<Loss, T, S, G, ST, false, true>(loss, a);    \
    }                                                                               \
    if (a.w) return ElementwiseRun<Loss, T, S, G, ST, true>(loss, a);               \
    return ElementwiseRun<Loss, T, S, G, ST, false>(loss, a);                       \
  }
  FASTLOSS_MODE(true, false, false)
  FASTLOSS_MODE(true, true, false)
  FASTLOSS_MODE(false, true, false)
  FASTLOSS_MODE(false, false, true)
  FASTLOSS_MODE(false, true, true)
#undef FASTLOSS_MODE
}

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle

// Defines the per-target kernels NameF32 / NameF64 for this target's
// losses::Name. Use inside HWY_NAMESPACE of a family file, after including the
// functors into HWY_NAMESPACE::losses.
#ifndef FASTLOSS_ELEMENTWISE_KERNELS
#define FASTLOSS_ELEMENTWISE_KERNELS(Name)                                  \
  void Name##F32(const void* f, const ::fastloss::internal::KernelArgs& a) { \
    ElementwiseKernelImpl<losses::Name, float>(f, a);            \
  }                                                                          \
  void Name##F64(const void* f, const ::fastloss::internal::KernelArgs& a) { \
    ElementwiseKernelImpl<losses::Name, double>(f, a);           \
  }

// Exports them and resolves ElementwiseKernelFor<losses::Name, T> through
// dynamic dispatch. Use inside namespace fastloss, in the HWY_ONCE part.
#define FASTLOSS_ELEMENTWISE_EXPORT(Name)                                  \
  HWY_EXPORT(Name##F32);                                                   \
  HWY_EXPORT(Name##F64);                                                   \
  template <>                                                              \
  internal::ElementwiseKernel                                              \
  internal::ElementwiseKernelFor<losses::Name, float>() {                  \
    internal::ChooseTarget();                                              \
    return &HWY_DYNAMIC_DISPATCH(Name##F32);                               \
  }                                                                        \
  template <>                                                              \
  internal::ElementwiseKernel                                              \
  internal::ElementwiseKernelFor<losses::Name, double>() {                 \
    internal::ChooseTarget();                                              \
    return &HWY_DYNAMIC_DISPATCH(Name##F64);                               \
  }
#endif
