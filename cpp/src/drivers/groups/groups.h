// The multi-sum + finalize driver (the design's "multi-sum reductions with a
// finalize step" and "row-norm" drivers are this one driver): a loss of
// groups of elements that depends on each group only through a few sums --
// Dice over the pixels of an image, cosine similarity or a triplet distance
// over the features of a row, a gradient penalty over a sample.
//
// The inputs' axes are split into reduced axes (summed over: a group) and
// kept axes (one loss per index: the groups' shape). Per group: one pass of
// the functor's Terms summed (float64 across blocks of kReductionBlock), its
// Finalize on the sums (the loss and the gradient's coefficients), then, for
// a gradient, a second pass of Grad. Groups of up to kGroupChunk elements are
// handled whole by one thread (the second pass reads them from cache);
// larger ones are split into chunks of kGroupChunk elements whose sums are
// folded in order. Either way the result is the same for any thread count.
#ifndef FASTLOSS_SRC_DRIVERS_GROUPS_GROUPS_H_
#define FASTLOSS_SRC_DRIVERS_GROUPS_GROUPS_H_

#include <cstdint>

#include "fastloss/fastloss.hpp"

namespace fastloss {
namespace internal {

constexpr int kMaxGroupInputs = 3;
constexpr int kMaxGroupSums = 4;
constexpr int kMaxGroupCoefs = 4;
constexpr int64_t kGroupChunk = int64_t{1} << 14;

// A contiguous run of n elements of one group, for the per-target kernels.
struct GroupArgs {
  const void* in[kMaxGroupInputs] = {};
  void* grad[kMaxGroupInputs] = {};  // gradient j (of input kFirstGrad + j); nullptr: skip
  int64_t n = 0;
  double coef[kMaxGroupCoefs] = {};   // Grad: the functor's coefficients
  double* sums = nullptr;             // Sums: the kSums totals, added to
};
using GroupKernel = void (*)(const void* functor, const GroupArgs& a);

struct GroupOps {
  int inputs = 0, sums = 0, coefs = 0, first_grad = 0, grads = 0, cost = 1;
  GroupKernel sums_kernel = nullptr, grad_kernel = nullptr;
  double (*finalize)(const void* functor, const double* sums, double target,
                     double* coef) = nullptr;
};

// Resolved through dynamic dispatch (kernels/structured.cc).
template <class Loss, typename T>
GroupKernel GroupSumsKernelFor();
template <class Loss, typename T>
GroupKernel GroupGradKernelFor();

template <class Loss, typename T>
GroupOps GroupOpsFor() {
  static_assert(Loss::kInputs <= kMaxGroupInputs && Loss::kSums <= kMaxGroupSums &&
                    Loss::kCoefs <= kMaxGroupCoefs,
                "group functor too large for GroupArgs");
  GroupOps ops;
  ops.inputs = Loss::kInputs;
  ops.sums = Loss::kSums;
  ops.coefs = Loss::kCoefs;
  ops.first_grad = Loss::kFirstGrad;
  ops.grads = Loss::kGrads;
  ops.cost = Loss::kCost;
  ops.sums_kernel = GroupSumsKernelFor<Loss, T>();
  ops.grad_kernel = GroupGradKernelFor<Loss, T>();
  ops.finalize = [](const void* f, const double* s, double target, double* c) {
    return static_cast<const Loss*>(f)->Finalize(s, target, c);
  };
  return ops;
}

template <typename T>
struct GroupProblem {
  const char* name = "";
  // The inputs, all of one shape (checked), named in errors.
  const View<const T>* in[kMaxGroupInputs] = {};
  const char* in_names[kMaxGroupInputs] = {"y_true", "y_pred", "x3"};
  // Bit k set: axis k of the inputs is reduced. Every bit < the inputs' rank.
  uint64_t reduced = 0;
  // How errors describe the groups' shape, e.g. "the rows' shape".
  const char* groups_desc = "the groups' shape";
  // Optional per-group target (cosine embedding's y), of the groups' shape.
  const View<const T>* target = nullptr;
  const char* target_name = "y";
  const View<const T>* weights = nullptr;  // broadcast to the groups' shape
  Reduction reduction = Reduction::kMean;
  View<T>* grads[kMaxGroupInputs] = {};  // gradient j, of input first_grad + j
  const char* grad_names[kMaxGroupInputs] = {"grad", "grad", "grad"};
  View<T>* losses = nullptr;  // kNone: w * l per group
  LossState* state = nullptr;  // Call::state
  // The groups span calls (region losses reducing the first axis): each
  // group's sums are the exact sums of their 1024-element block partials,
  // and a state keeps those sums (LossState::sums), not the losses.
  bool spanning = false;
};

template <typename T>
double RunGroups(const GroupProblem<T>& problem, const void* functor, const GroupOps& ops);

// The value of a state of spanning groups' sums (LossState::sums): each
// group's loss from its rounded sums, then `reduction` over the groups (as
// RunGroups gives it); `losses` (if not null) receives the groups' losses.
double GroupStateResult(const char* name, const LossState& state, const void* functor,
                        const GroupOps& ops, Reduction reduction, double* losses);

template <class Loss, typename T>
double RunGroupLoss(const GroupProblem<T>& problem, const Loss& loss) {
  return RunGroups<T>(problem, &loss, GroupOpsFor<Loss, T>());
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_DRIVERS_GROUPS_GROUPS_H_
