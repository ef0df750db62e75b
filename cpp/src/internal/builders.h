// The sinks and the builders of the drivers other than the elementwise one
// (the elementwise losses' builders are in their functor files,
// losses/*-inl.h: Build<T>(options, sink) -> sink(functor, y_range)).
#ifndef FASTLOSS_SRC_INTERNAL_BUILDERS_H_
#define FASTLOSS_SRC_INTERNAL_BUILDERS_H_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>

#include "fastloss/fastloss.hpp"
#include "drivers/elementwise/elementwise.h"
#include "drivers/rowwise/rowwise.h"
#include "internal/option_checks.h"
#include "losses/losses.h"

namespace fastloss {
namespace internal {

// Runs the functor at once on `call` (the public entry points).
template <typename T>
struct RunSink {
  const char* name;
  const Call<T>& call;
  const View<const T>* aux = nullptr;
  const char* aux_name = "aux";
  template <class F>
  double operator()(const F& f, YRange r) const {
    ElementwiseExtras<T> e;
    e.check_y = r.check;
    e.y_lo = r.lo;
    e.y_hi = r.hi;
    e.aux = aux;
    e.aux_name = aux_name;
    return RunLoss(name, f, call, e);
  }
};

// Runs an elementwise functor with an aux gradient (kAuxGrad) on the inputs
// of a MultiCall: the Elements rows of FASTLOSS_MULTI_LOSSES, whose
// arguments (`args`, space-separated, as in the row) are two differentiable
// inputs and a target. y_true = the target, y_pred = the first input, aux =
// the second; errors use the row's names. Builders call
// sink(functor, y_true's range, aux's range).
// The two differentiable inputs among an Elements row's arguments, in order.
struct ElementsNames {
  std::string in[2];
  ElementsNames(const char* args, const char* target) {
    int k = 0;
    for (const char* c = args; *c;) {
      const char* e = c;
      while (*e && *e != ' ') ++e;
      const std::string word(c, e);
      if (!word.empty() && word != target && k < 2) in[k++] = word;
      c = *e ? e + 1 : e;
    }
  }
  std::string AuxGrad() const { return in[1] + "'s gradient"; }
};

template <typename T>
struct ElementsSink {
  const char* name;
  const char* args;
  const char* target;
  const MultiCall<T>& call;
  template <class F>
  double operator()(const F& f, YRange y_range, YRange aux_range) const {
    static_assert(UsesAuxGrad<F>::value, "an Elements row's functor has kAuxGrad");
    const ElementsNames names(args, target);
    const std::string* in = names.in;
    // The three arrays have one shape: nothing is broadcast.
    CheckView(name, in[0].c_str(), call.inputs[0]);
    CheckView(name, in[1].c_str(), call.inputs[1]);
    CheckView(name, target, call.target);
    CheckSameShape(name, in[0].c_str(), call.inputs[0], in[1].c_str(), call.inputs[1]);
    CheckSameShape(name, target, call.target, in[0].c_str(), call.inputs[0]);
    Call<T> c;
    c.y_true = call.target;
    c.y_pred = call.inputs[0];
    c.weights = call.weights;
    c.reduction = call.reduction;
    c.losses = call.losses;
    c.grad = call.grads[0];
    c.state = call.state;
    const std::string grad_name = names.AuxGrad();
    ElementwiseExtras<T> e;
    e.check_y = y_range.check;
    e.y_lo = y_range.lo;
    e.y_hi = y_range.hi;
    e.aux = &call.inputs[1];
    e.aux_name = in[1].c_str();
    e.check_aux = aux_range.check;
    e.aux_lo = aux_range.lo;
    e.aux_hi = aux_range.hi;
    e.aux_grad = call.grads[1] ? &*call.grads[1] : nullptr;
    e.aux_grad_name = grad_name.c_str();
    return WithArgumentNames(target, in[0].c_str(), [&] { return RunLoss(name, f, c, e); });
  }
};

// Runs a row functor at once on `call` (a Call<T> with dense targets or a
// LabelCall<T>) along `axis`, with its builder's RowRules.
template <typename T, class CallT>
struct RowSink {
  const char* name;
  const CallT& call;
  int axis;
  template <class F>
  double operator()(const F& f, const RowRules& rules) const {
    if constexpr (std::is_same<CallT, Call<T>>::value) RejectSegments(name, call);
    RowProblem<T> pr;
    pr.name = name;
    pr.axis = axis;
    pr.y_pred = call.y_pred;
    if constexpr (std::is_same<CallT, LabelCall<T>>::value) {
      pr.labels = &call.labels;
      pr.hits = call.hits ? const_cast<View<T>*>(&*call.hits) : nullptr;
    } else {
      pr.y_true = &call.y_true;
    }
    pr.weights = call.weights ? &*call.weights : nullptr;
    pr.class_weights = call.class_weights ? &*call.class_weights : nullptr;
    pr.reduction = call.reduction;
    pr.grad = call.grad ? const_cast<View<T>*>(&*call.grad) : nullptr;
    pr.losses = call.losses ? const_cast<View<T>*>(&*call.losses) : nullptr;
    pr.check_y = rules.check_y;
    pr.has_ignore = rules.ignore_index.has_value();
    pr.ignore_index = rules.ignore_index.value_or(0);
    pr.target_weighted_mean = rules.target_weighted_mean;
    pr.state = call.state;
    return RunRowLoss(pr, f);
  }
};

// --- Segmentation: the overlap losses (multi-sum + finalize driver) -----------
// BuildOverlap(name, options, score, rank, sink) checks the
// axes against y_pred's rank and returns sink(name, functor, reduced), the
// functor one of losses::Overlap<kSquared, kLogits>, `reduced` the bit mask
// of the reduced axes.
inline uint64_t OverlapAxesMask(const char* name, const OverlapOptions& o, int rank) {
  if (o.all_axes) return rank >= 64 ? ~uint64_t{0} : ((uint64_t{1} << rank) - 1);
  uint64_t mask = 0;
  for (int a : o.axes) {
    if (a < -rank || a >= rank) {
      throw Error(std::string(name) + ": axis " + std::to_string(a) +
                  " is out of range for y_pred with " + std::to_string(rank) + " dimension" +
                  (rank == 1 ? "" : "s"));
    }
    const int k = a < 0 ? a + rank : a;
    if ((mask >> k) & 1) {
      throw Error(std::string(name) + ": axis " + std::to_string(a) + " is repeated");
    }
    mask |= uint64_t{1} << k;
  }
  return mask;
}
template <class S>
double BuildOverlap(const char* name, const OverlapOptions& o, const losses::OverlapScore& score,
                    int rank, S&& sink) {
  const uint64_t mask = OverlapAxesMask(name, o, rank);
  if (o.squared) {
    if (o.from_logits) return sink(name, losses::OverlapSquaredLogits{score}, mask);
    return sink(name, losses::OverlapSquared{score}, mask);
  }
  if (o.from_logits) return sink(name, losses::OverlapLogits{score}, mask);
  return sink(name, losses::OverlapPlain{score}, mask);
}
// The score of each region loss, from its options (overloads by options
// type; the region entry points are generated from the registry).
inline losses::OverlapScore ScoreOf(const DiceOptions& o) {
  return {2.0, 0.0, 1.0, 1.0, o.smooth, 1.0};
}
inline losses::OverlapScore ScoreOf(const JaccardOptions& o) {
  return {1.0, -1.0, 1.0, 1.0, o.smooth, 1.0};
}
inline losses::OverlapScore ScoreOf(const TverskyOptions& o, double gamma = 1.0) {
  return {1.0, 1.0 - o.alpha - o.beta, o.alpha, o.beta, o.smooth, gamma};
}
inline losses::OverlapScore ScoreOf(const FocalTverskyOptions& o) {
  return ScoreOf(static_cast<const TverskyOptions&>(o), o.gamma);
}

// --- Detection: box losses (box driver) ------------------------------------------
// Returns sink("box_iou", functor) with the functor of o.kind.
template <class S>
double BuildBox(const BoxIouOptions& o, S&& sink) {
  switch (o.kind) {
    case BoxIouKind::kIou: return sink("box_iou", losses::BoxIou{o.eps});
    case BoxIouKind::kGiou: return sink("box_iou", losses::BoxGiou{o.eps});
    case BoxIouKind::kDiou: return sink("box_iou", losses::BoxDiou{o.eps});
    case BoxIouKind::kCiou: return sink("box_iou", losses::BoxCiou{o.eps});
  }
  throw Error("box_iou: unknown kind");
}

// --- Adversarial losses: the elementwise functor of each score array ------------
// gan_discriminator: softplus(-real) + softplus(fake).
inline losses::ScaledSoftplus GanRealLoss() { return {-1.0, 1.0}; }
inline losses::ScaledSoftplus GanFakeLoss() { return {1.0, 1.0}; }
// gan_generator: softplus(-fake) (non-saturating), or log(1 - sigmoid(fake)) =
// -softplus(fake) (saturating).
inline losses::ScaledSoftplus GanGeneratorLoss(bool saturating) {
  return saturating ? losses::ScaledSoftplus{1.0, -1.0} : losses::ScaledSoftplus{-1.0, 1.0};
}
// wasserstein_critic: R(fake) - R(real); wasserstein_generator: -R(fake).
inline losses::Linear WassersteinRealLoss() { return {-1.0}; }
inline losses::Linear WassersteinFakeLoss() { return {1.0}; }
inline losses::Linear WassersteinGeneratorLoss() { return {-1.0}; }

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_INTERNAL_BUILDERS_H_
