// ElementwiseCombination: sum_k c_k loss_k over the same inputs in one pass.
// The terms' kernels run one after the other on each block of
// kReductionBlock elements, so the inputs are read from memory once (the
// later terms find them in L1), and the gradient and per-element losses are
// accumulated in stack buffers and written once.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fastloss/fastloss.hpp"
#include "internal/builders.h"
#include "drivers/elementwise/elementwise.h"
#include "drivers/kernels.h"

namespace fastloss {

struct ElementwiseCombination::Impl {
  struct Term {
    std::string name;
    double coef = 1.0;
    int cost = 1;
    internal::YRange range;
    // The functor for float and for double (plain data, kept as doubles for
    // alignment), and the getters of its kernels (resolved per call, so a
    // forced SIMD target applies).
    std::vector<double> functor[2];
    internal::ElementwiseKernel (*kernel[2])() = {nullptr, nullptr};
  };
  std::vector<Term> terms;
};

namespace internal {
namespace {

template <class F, class = void>
struct HasAux : std::false_type {};
template <class F>
struct HasAux<F, std::void_t<decltype(F::kAux)>> : std::integral_constant<bool, F::kAux> {};

template <typename T>
struct AddSink {
  const char* name;
  ElementwiseCombination::Impl::Term* term;
  template <class F>
  double operator()(const F& f, YRange r) const {
    static_assert(std::is_trivially_copyable<F>::value, "functors are plain data");
    if (HasAux<F>::value) {
      throw Error(std::string("combination: ") + name +
                  " with an array option cannot be part of a fused combination");
    }
    const int k = std::is_same<T, double>::value ? 1 : 0;
    term->name = name;
    term->cost = F::kCost;
    term->range = r;
    term->functor[k].assign((sizeof(F) + sizeof(double) - 1) / sizeof(double), 0.0);
    std::memcpy(term->functor[k].data(), &f, sizeof(F));
    term->kernel[k] = &ElementwiseKernelFor<F, T>;
    return 0.0;
  }
};

struct Part {
  ElementwiseKernel kernel;
  const void* functor;
  double coef;
};
struct Composite {
  std::vector<Part> parts;
};

template <typename T>
void CompositeKernel(const void* f, const KernelArgs& a) {
  const Composite& c = *static_cast<const Composite*>(f);
  constexpr int64_t kBlock = kReductionBlock;
  T acc_g[kBlock], tmp_g[kBlock], acc_l[kBlock], tmp_l[kBlock];
  const size_t sz = sizeof(T);
  for (int64_t b0 = 0, bi = 0; b0 < a.n; b0 += kBlock, ++bi) {
    const int64_t nb = std::min(kBlock, a.n - b0);
    double block = 0.0;
    for (size_t k = 0; k < c.parts.size(); ++k) {
      const Part& part = c.parts[k];
      KernelArgs b;
      b.y = static_cast<const char*>(a.y) + b0 * sz;
      b.p = static_cast<const char*>(a.p) + b0 * sz;
      b.w = a.w ? static_cast<const char*>(a.w) + b0 * sz : nullptr;
      b.n = nb;
      b.grad_scale = a.grad_scale * part.coef;
      b.grad = a.grad ? (k == 0 ? acc_g : tmp_g) : nullptr;
      b.loss = a.loss ? (k == 0 ? acc_l : tmp_l) : nullptr;
      double partial = 0.0;
      b.partials = a.partials ? &partial : nullptr;
      part.kernel(part.functor, b);
      block += part.coef * partial;
      const T ck = static_cast<T>(part.coef);
      if (a.loss) {
        if (k == 0) {
          for (int64_t i = 0; i < nb; ++i) acc_l[i] *= ck;
        } else {
          for (int64_t i = 0; i < nb; ++i) acc_l[i] += ck * tmp_l[i];
        }
      }
      if (a.grad && k > 0) {
        for (int64_t i = 0; i < nb; ++i) acc_g[i] += tmp_g[i];
      }
    }
    if (a.grad) std::memcpy(static_cast<char*>(a.grad) + b0 * sz, acc_g, nb * sz);
    if (a.loss) std::memcpy(static_cast<char*>(a.loss) + b0 * sz, acc_l, nb * sz);
    if (a.partials) a.partials[bi] = block;
  }
}

}  // namespace
}  // namespace internal

ElementwiseCombination::ElementwiseCombination() : impl_(new Impl) {}
ElementwiseCombination::~ElementwiseCombination() { delete impl_; }
ElementwiseCombination::ElementwiseCombination(const ElementwiseCombination& o)
    : impl_(new Impl(*o.impl_)) {}
ElementwiseCombination& ElementwiseCombination::operator=(const ElementwiseCombination& o) {
  if (this != &o) *impl_ = *o.impl_;
  return *this;
}
int ElementwiseCombination::size() const { return static_cast<int>(impl_->terms.size()); }

#define FASTLOSS_COMBINATION_ADD(Name, name, driver, aliases, true_name, pred_name)       \
  FASTLOSS_ELEMENTWISE_ONLY_##driver(                                                      \
      ElementwiseCombination& ElementwiseCombination::Add(double coef,                     \
                                                          const Name##Options& o) {        \
        if (!std::isfinite(coef)) {                                                        \
          throw Error("combination: coefficients must be finite, got " +                   \
                      internal::OptionNum(coef));                                          \
        }                                                                                  \
        CheckOptions(#name, o);                                                            \
        Impl::Term t;                                                                      \
        t.coef = coef;                                                                     \
        losses::Build<float>(o, internal::AddSink<float>{#name, &t});                      \
        losses::Build<double>(o, internal::AddSink<double>{#name, &t});                    \
        impl_->terms.push_back(std::move(t));                                              \
        return *this;                                                                      \
      })
FASTLOSS_LOSSES(FASTLOSS_COMBINATION_ADD)
#undef FASTLOSS_COMBINATION_ADD

template <typename T>
double Combined(const Call<T>& call, const ElementwiseCombination& combination) {
  const auto& terms = combination.impl_->terms;
  if (terms.empty()) throw Error("combined: the combination has no terms");
  if (call.class_weights) throw Error("combined: class_weights is not an argument of this loss");
  const int k = std::is_same<T, double>::value ? 1 : 0;
  internal::Composite c;
  internal::ElementwiseExtras<T> e;
  e.y_lo = -std::numeric_limits<double>::infinity();
  e.y_hi = std::numeric_limits<double>::infinity();
  int cost = 0;
  for (const auto& t : terms) {
    c.parts.push_back({t.kernel[k](), t.functor[k].data(), t.coef});
    cost += t.cost;
    if (t.range.check) {
      e.check_y = true;
      e.y_lo = std::max(e.y_lo, t.range.lo);
      e.y_hi = std::min(e.y_hi, t.range.hi);
    }
  }
  return internal::RunElementwise<T>("combined", &c, cost, &internal::CompositeKernel<T>, call,
                                     e);
}

template double Combined<float>(const Call<float>&, const ElementwiseCombination&);
template double Combined<double>(const Call<double>&, const ElementwiseCombination&);

}  // namespace fastloss
