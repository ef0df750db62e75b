// The portable part of the multi-sum + finalize driver (groups.h)
// and of the box driver (boxes.h): shapes, the split into groups and
// chunks, gathering strided inputs, threads, and the deterministic folds.
#include "drivers/groups/groups.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "fastloss/fastloss.hpp"
#include "drivers/groups/boxes.h"
#include "drivers/checks.h"
#include "runtime/thread_pool.h"

namespace fastloss {
namespace internal {
namespace {

constexpr int64_t kTaskElements = int64_t{1} << 15;
constexpr int64_t kParallelWork = int64_t{1} << 17;
// Elements gathered per kernel call for strided inputs.
constexpr int64_t kGather = 2048;

// A multi-dimensional index space (C order) with per-operand strides.
struct Space {
  static constexpr int kOps = 2 * kMaxGroupInputs;
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kOps][kMaxRank] = {};
  bool present[kOps] = {};
  int64_t n = 1;

  void Coalesce() { rank = CoalesceDims(rank, shape, strides, kOps, present); }
  bool Contiguous() const {
    if (rank == 0) return true;
    if (rank > 1) return false;
    for (int s = 0; s < kOps; ++s) {
      if (present[s] && strides[s][0] != 1) return false;
    }
    return true;
  }
  // Offsets of flat index i for every operand.
  void Offsets(int64_t i, int64_t* off) const {
    for (int s = 0; s < kOps; ++s) off[s] = 0;
    for (int k = rank - 1; k >= 0; --k) {
      const int64_t j = i % shape[k];
      i /= shape[k];
      for (int s = 0; s < kOps; ++s) off[s] += j * strides[s][k];
    }
  }
};

// Offset of flat index i (C order over shape) with strides.
int64_t OffsetOf(int64_t i, const int64_t* shape, const int64_t* strides, int rank) {
  int64_t off = 0;
  for (int k = rank - 1; k >= 0; --k) {
    off += (i % shape[k]) * strides[k];
    i /= shape[k];
  }
  return off;
}

template <typename T>
void CheckShape(const char* name, const char* arg, const View<T>& v, const int64_t* shape,
                int rank, const char* desc) {
  CheckView(name, arg, v);
  bool same = v.rank == rank;
  for (int k = 0; same && k < rank; ++k) same = v.shape[k] == shape[k];
  if (!same) {
    throw Error(std::string(name) + ": " + arg + " must have " + desc + " " +
                ShapeString(shape, rank) + ", got " + ShapeString(v.shape, v.rank));
  }
}

// The checks of a problem, before anything is read or written: the inputs
// and gradients (returns whether any gradient is asked for).
template <typename T>
bool CheckInputsAndGradients(const GroupProblem<T>& pr, const GroupOps& ops) {
  const char* name = pr.name;
  const int ni = ops.inputs;
  for (int k = 0; k < ni; ++k) {
    CheckView(name, pr.in_names[k], *pr.in[k]);
    if (k > 0) CheckSameShape(name, pr.in_names[0], *pr.in[0], pr.in_names[k], *pr.in[k]);
  }
  bool any_grad = false;
  for (int j = 0; j < ops.grads; ++j) {
    if (!pr.grads[j]) continue;
    any_grad = true;
    const int k = ops.first_grad + j;
    CheckView(name, pr.grad_names[j], *pr.grads[j]);
    CheckSameShape(name, pr.grad_names[j], *pr.grads[j], pr.in_names[k], *pr.in[k]);
    CheckDistinctElements(name, pr.grad_names[j], *pr.grads[j]);
    // The gradient pass reads each input element before writing the same
    // element of a gradient: an exact alias of an input is allowed. The
    // weights and the target are read group by group, between gradient
    // writes, and gradients never share memory with each other.
    for (int i = 0; i < ni; ++i) {
      CheckOutputOverlap(name, pr.grad_names[j], *pr.grads[j], pr.in_names[i], *pr.in[i]);
    }
    for (int i = 0; i < j; ++i) {
      if (pr.grads[i]) {
        CheckOutputOverlap(name, pr.grad_names[j], *pr.grads[j], pr.grad_names[i], *pr.grads[i],
                           false);
      }
    }
  }
  return any_grad;
}

// The checks of the per-group operands (losses, target, weights) against
// the groups' shape; sets the weights' broadcast strides.
template <typename T>
void CheckGroupOperands(const GroupProblem<T>& pr, const GroupOps& ops, const View<const T>& groups,
                        View<T>* losses, int64_t* wstrides) {
  const char* name = pr.name;
  if (losses) {
    CheckShape(name, "losses", *losses, groups.shape, groups.rank, pr.groups_desc);
    CheckDistinctElements(name, "losses", *losses);
    // The losses are written before the gradient pass reads the inputs: no
    // shared memory at all, not even as the same view.
    for (int k = 0; k < ops.inputs; ++k) {
      CheckOutputOverlap(name, "losses", *losses, pr.in_names[k], *pr.in[k], false);
    }
    for (int j = 0; j < ops.grads; ++j) {
      if (pr.grads[j]) {
        CheckOutputOverlap(name, "losses", *losses, pr.grad_names[j], *pr.grads[j], false);
      }
    }
  }
  if (pr.target) CheckShape(name, pr.target_name, *pr.target, groups.shape, groups.rank, pr.groups_desc);
  if (pr.weights) BroadcastTo(name, "weights", *pr.weights, groups, wstrides, pr.groups_desc);
  // The weights and the target are read group by group, between output
  // writes: no output may share their memory.
  for (int j = 0; j < ops.grads; ++j) {
    if (!pr.grads[j]) continue;
    if (pr.weights) CheckOutputOverlap(name, pr.grad_names[j], *pr.grads[j], "weights", *pr.weights, false);
    if (pr.target) {
      CheckOutputOverlap(name, pr.grad_names[j], *pr.grads[j], pr.target_name, *pr.target, false);
    }
  }
  if (losses && pr.weights) CheckOutputOverlap(name, "losses", *losses, "weights", *pr.weights, false);
  if (losses && pr.target) CheckOutputOverlap(name, "losses", *losses, pr.target_name, *pr.target, false);
}

// One checked problem, split into the inner (reduced) space over inputs and
// gradients and the outer (groups) space over the same operands, and run
// group by group (RunWholeGroups) or chunk by chunk (RunChunkedGroups).
template <typename T>
class GroupRun {
 public:
  GroupRun(const GroupProblem<T>& pr, const void* functor, const GroupOps& ops,
           const View<const T>& groups, View<T>* losses, const int64_t* wstrides, bool any_grad)
      : pr_(pr), functor_(functor), ops_(ops), groups_(groups), losses_(losses),
        any_grad_(any_grad) {
    std::copy(wstrides, wstrides + kMaxRank, wstrides_);
    SplitSpaces();
    ngroups_ = groups.size();
  }

  int64_t ngroups() const { return ngroups_; }

  // The mean's denominator: the weights' total over the groups, in order.
  ExactSum Denominator() const {
    if (!pr_.weights) return ExactOf(static_cast<double>(ngroups_));
    BlockedSum den;
    for (int64_t g = 0; g < ngroups_; ++g) den.Add(GroupWeight(g));
    return den.Done();
  }

  // The exact sum of the groups' weighted losses; writes the losses and
  // gradients.
  ExactSum Run(double grad_scale) {
    grad_scale_ = grad_scale;
    const int64_t work = ngroups_ * std::max<int64_t>(ninner_, 1) * std::max(ops_.cost, 1);
    const int max_threads = work < kParallelWork ? 1 : GetNumThreads();
    if (pr_.spanning) return RunSpanning(max_threads);
    return ninner_ <= kGroupChunk ? RunWholeGroups(max_threads) : RunChunkedGroups(max_threads);
  }

 private:
  void SplitSpaces() {
    const View<const T>& x0 = *pr_.in[0];
    for (int s = 0; s < ops_.inputs; ++s) inner_.present[s] = outer_.present[s] = true;
    for (int j = 0; j < ops_.grads; ++j) {
      inner_.present[kMaxGroupInputs + j] = outer_.present[kMaxGroupInputs + j] =
          pr_.grads[j] != nullptr;
    }
    for (int k = 0; k < x0.rank; ++k) {
      Space& sp = ((pr_.reduced >> k) & 1) ? inner_ : outer_;
      sp.shape[sp.rank] = x0.shape[k];
      for (int s = 0; s < ops_.inputs; ++s) sp.strides[s][sp.rank] = pr_.in[s]->strides[k];
      for (int j = 0; j < ops_.grads; ++j) {
        if (pr_.grads[j]) sp.strides[kMaxGroupInputs + j][sp.rank] = pr_.grads[j]->strides[k];
      }
      sp.n *= x0.shape[k];
      ++sp.rank;
    }
    ninner_ = inner_.n;
    inner_.Coalesce();
    contiguous_ = inner_.Contiguous();
    if (!contiguous_ && inner_.rank >= 2 && inner_.shape[inner_.rank - 1] >= kMinRow) {
      rows_contiguous_ = true;
      for (int s = 0; s < Space::kOps; ++s) {
        if (inner_.present[s] && inner_.strides[s][inner_.rank - 1] != 1) rows_contiguous_ = false;
      }
    }
  }
  // Rows at least this long run in place (rows_contiguous_); shorter ones
  // are gathered.
  static constexpr int64_t kMinRow = 64;

  double GroupWeight(int64_t g) const {
    return pr_.weights ? static_cast<double>(pr_.weights->data[OffsetOf(
                             g, groups_.shape, wstrides_, groups_.rank)])
                       : 1.0;
  }
  double GroupTarget(int64_t g) const {
    return pr_.target ? static_cast<double>(pr_.target->data[OffsetOf(
                            g, groups_.shape, pr_.target->strides, groups_.rank)])
                      : 0.0;
  }

  // Finalizes one group: stores w l (kNone), scales the coefficients; returns w l.
  double Finish(int64_t g, const double* sums, double* coef) const {
    const double w = GroupWeight(g);
    const double l = ops_.finalize(functor_, sums, GroupTarget(g), coef);
    const double wl = w * l;
    if (losses_) {
      losses_->data[OffsetOf(g, groups_.shape, losses_->strides, groups_.rank)] =
          static_cast<T>(wl);
    }
    for (int k = 0; k < ops_.coefs; ++k) coef[k] *= w * grad_scale_;
    return wl;
  }

  // Steps the multi-index `id` (and the operands' offsets `o`) of the inner
  // space by one element.
  void Step(int64_t* o, int64_t* id) const {
    for (int k = inner_.rank - 1; k >= 0; --k) {
      for (int s = 0; s < Space::kOps; ++s) o[s] += inner_.strides[s][k];
      if (++id[k] < inner_.shape[k]) break;
      for (int s = 0; s < Space::kOps; ++s) o[s] -= inner_.shape[k] * inner_.strides[s][k];
      id[k] = 0;
    }
  }

  // Runs a kernel over inner elements [i0, i0 + len) of the group at outer
  // offsets `goff`, gathering / scattering when the inner space is strided.
  void RunRange(GroupKernel kernel, const int64_t* goff, int64_t i0, int64_t len, GroupArgs a,
                bool grads_out, std::vector<T>& buf) const {
    const int ni = ops_.inputs;
    if (contiguous_) {
      for (int s = 0; s < ni; ++s) a.in[s] = pr_.in[s]->data + goff[s] + i0;
      for (int j = 0; j < ops_.grads; ++j) {
        a.grad[j] = grads_out && pr_.grads[j]
                        ? pr_.grads[j]->data + goff[kMaxGroupInputs + j] + i0
                        : nullptr;
      }
      a.n = len;
      kernel(functor_, a);
      return;
    }
    if (rows_contiguous_) {
      // Contiguous rows of the inner space (the last axis, e.g. the pixels
      // of an image when axis=(0, 2, 3)): the kernel runs on each row's
      // part of the range in place, without a gather.
      const int rank = inner_.rank;
      const int64_t row = inner_.shape[rank - 1];
      for (int64_t i = i0; i < i0 + len;) {
        const int64_t run = std::min(i0 + len - i, row - i % row);
        int64_t off[Space::kOps];
        inner_.Offsets(i, off);
        GroupArgs b = a;
        for (int s = 0; s < ni; ++s) b.in[s] = pr_.in[s]->data + goff[s] + off[s];
        for (int j = 0; j < ops_.grads; ++j) {
          const int s = kMaxGroupInputs + j;
          b.grad[j] = grads_out && pr_.grads[j] ? pr_.grads[j]->data + goff[s] + off[s] : nullptr;
        }
        b.n = run;
        kernel(functor_, b);
        i += run;
      }
      return;
    }
    if (buf.empty()) buf.resize(static_cast<size_t>(Space::kOps * kGather));
    for (int64_t c0 = i0; c0 < i0 + len; c0 += kGather) {
      const int64_t cn = std::min(kGather, i0 + len - c0);
      int64_t off[Space::kOps];
      inner_.Offsets(c0, off);
      int64_t idx[kMaxRank] = {};
      {
        int64_t rest = c0;
        for (int k = inner_.rank - 1; k >= 0; --k) {
          idx[k] = rest % inner_.shape[k];
          rest /= inner_.shape[k];
        }
      }
      // Gather the inputs (and remember the positions for the scatter).
      int64_t o[Space::kOps];
      std::copy(off, off + Space::kOps, o);
      int64_t id[kMaxRank];
      std::copy(idx, idx + kMaxRank, id);
      for (int64_t e = 0; e < cn; ++e) {
        for (int s = 0; s < ni; ++s) buf[s * kGather + e] = pr_.in[s]->data[goff[s] + o[s]];
        Step(o, id);
      }
      GroupArgs b = a;
      for (int s = 0; s < ni; ++s) b.in[s] = buf.data() + s * kGather;
      for (int j = 0; j < ops_.grads; ++j) {
        b.grad[j] = grads_out && pr_.grads[j] ? buf.data() + (kMaxGroupInputs + j) * kGather
                                              : nullptr;
      }
      b.n = cn;
      kernel(functor_, b);
      if (!grads_out) continue;
      std::copy(off, off + Space::kOps, o);
      std::copy(idx, idx + kMaxRank, id);
      for (int64_t e = 0; e < cn; ++e) {
        for (int j = 0; j < ops_.grads; ++j) {
          if (pr_.grads[j]) {
            const int s = kMaxGroupInputs + j;
            pr_.grads[j]->data[goff[s] + o[s]] = buf[s * kGather + e];
          }
        }
        Step(o, id);
      }
    }
  }

  // Small groups: whole groups per task, the tasks' partial sums folded in order.
  ExactSum RunWholeGroups(int max_threads) const {
    // A power of two of at most kReductionBlock groups: a task's partial
    // covers the same groups in any batch that starts on a block of groups.
    int64_t per_task = 1;
    while (per_task * 2 <= std::min<int64_t>(
                               kReductionBlock, kTaskElements / std::max<int64_t>(ninner_, 1))) {
      per_task *= 2;
    }
    const int64_t tasks = (ngroups_ + per_task - 1) / per_task;
    std::vector<double> partials(static_cast<size_t>(tasks));
    auto task = [&](int64_t t) {
      std::vector<T> buf;
      const int64_t g0 = t * per_task, g1 = std::min(ngroups_, g0 + per_task);
      double sum = 0.0;
      for (int64_t g = g0; g < g1; ++g) {
        int64_t goff[Space::kOps];
        outer_.Offsets(g, goff);
        double sums[kMaxGroupSums] = {};
        GroupArgs a;
        a.sums = sums;
        RunRange(ops_.sums_kernel, goff, 0, ninner_, a, false, buf);
        GroupArgs b;
        sum += Finish(g, sums, b.coef);
        if (any_grad_) RunRange(ops_.grad_kernel, goff, 0, ninner_, b, true, buf);
      }
      partials[static_cast<size_t>(t)] = sum;
    };
    const int threads = static_cast<int>(std::min<int64_t>(max_threads, tasks));
    if (threads <= 1) {
      for (int64_t t = 0; t < tasks; ++t) task(t);
    } else {
      ParallelFor(tasks, threads, [&](int64_t i) { task(i); });
    }
    ExactSum total;
    for (double p : partials) total.Add(p);
    return total;
  }

  // Large groups: chunk sums in parallel, folded per group in order; then
  // the gradient chunk by chunk.
  ExactSum RunChunkedGroups(int max_threads) const {
    const int64_t chunks = (ninner_ + kGroupChunk - 1) / kGroupChunk;
    const int64_t items = ngroups_ * chunks;
    const int threads = static_cast<int>(std::min<int64_t>(max_threads, items));
    auto for_items = [&](auto&& item) {
      if (threads <= 1) {
        for (int64_t it = 0; it < items; ++it) item(it);
      } else {
        ParallelFor(items, threads, [&](int64_t i) { item(i); });
      }
    };
    std::vector<double> sums(static_cast<size_t>(items * ops_.sums), 0.0);
    for_items([&](int64_t it) {
      std::vector<T> buf;
      const int64_t g = it / chunks, c = it % chunks;
      int64_t goff[Space::kOps];
      outer_.Offsets(g, goff);
      GroupArgs a;
      a.sums = sums.data() + it * ops_.sums;
      const int64_t i0 = c * kGroupChunk;
      RunRange(ops_.sums_kernel, goff, i0, std::min(kGroupChunk, ninner_ - i0), a, false, buf);
    });
    BlockedSum total;
    std::vector<double> coefs(static_cast<size_t>(ngroups_ * kMaxGroupCoefs), 0.0);
    for (int64_t g = 0; g < ngroups_; ++g) {
      double s[kMaxGroupSums] = {};
      for (int64_t c = 0; c < chunks; ++c) {
        for (int k = 0; k < ops_.sums; ++k) s[k] += sums[(g * chunks + c) * ops_.sums + k];
      }
      total.Add(Finish(g, s, coefs.data() + g * kMaxGroupCoefs));
    }
    if (any_grad_) for_items(GradItem(chunks, coefs));
    return total.Done();
  }

  // The gradient of chunk `it` (group it / chunks, its chunk it % chunks of
  // kGroupChunk elements) from the groups' coefficients.
  auto GradItem(int64_t chunks, const std::vector<double>& coefs) const {
    return [this, chunks, &coefs](int64_t it) {
      std::vector<T> buf;
      const int64_t g = it / chunks, c = it % chunks;
      int64_t goff[Space::kOps];
      outer_.Offsets(g, goff);
      GroupArgs a;
      for (int k = 0; k < ops_.coefs; ++k) a.coef[k] = coefs[g * kMaxGroupCoefs + k];
      const int64_t i0 = c * kGroupChunk;
      RunRange(ops_.grad_kernel, goff, i0, std::min(kGroupChunk, ninner_ - i0), a, true, buf);
    };
  }

  // Groups that span calls: the sums of each 1024-element block of a group
  // (its inner elements in C order) in parallel, then each group's sums
  // folded exactly (the same bits for any split of the group on block
  // boundaries; added to the state), its loss, then the gradient.
  ExactSum RunSpanning(int max_threads) const {
    const int ns = ops_.sums;
    const int64_t blocks = std::max<int64_t>(1, (ninner_ + kReductionBlock - 1) / kReductionBlock);
    constexpr int64_t kPerChunk = kGroupChunk / kReductionBlock;
    const int64_t chunks = (blocks + kPerChunk - 1) / kPerChunk;
    const int64_t items = ngroups_ * chunks;
    const int threads = static_cast<int>(std::min<int64_t>(max_threads, items));
    auto for_n = [threads](int64_t n, auto&& f) {
      if (threads <= 1 || n <= 1) {
        for (int64_t i = 0; i < n; ++i) f(i);
      } else {
        ParallelFor(n, static_cast<int>(std::min<int64_t>(threads, n)), [&](int64_t i) { f(i); });
      }
    };
    std::vector<double> partials(static_cast<size_t>(ngroups_ * blocks * ns), 0.0);
    for_n(items, [&](int64_t it) {
      std::vector<T> buf;
      const int64_t g = it / chunks, c = it % chunks;
      int64_t goff[Space::kOps];
      outer_.Offsets(g, goff);
      for (int64_t b = c * kPerChunk; b < std::min(blocks, (c + 1) * kPerChunk); ++b) {
        GroupArgs a;
        a.sums = partials.data() + (g * blocks + b) * ns;
        const int64_t i0 = b * kReductionBlock;
        RunRange(ops_.sums_kernel, goff, i0, std::min(kReductionBlock, ninner_ - i0), a, false,
                 buf);
      }
    });
    std::vector<double> wl(static_cast<size_t>(ngroups_));
    std::vector<double> coefs(static_cast<size_t>(ngroups_ * kMaxGroupCoefs), 0.0);
    LossState* state = pr_.state;
    constexpr int64_t kFoldGroups = 256;
    for_n((ngroups_ + kFoldGroups - 1) / kFoldGroups, [&](int64_t r) {
      for (int64_t g = r * kFoldGroups; g < std::min(ngroups_, (r + 1) * kFoldGroups); ++g) {
        ExactSum e[kMaxGroupSums];
        const double* p = partials.data() + g * blocks * ns;
        for (int64_t b = 0; b < blocks; ++b) {
          for (int k = 0; k < ns; ++k) e[k].Add(p[b * ns + k]);
        }
        double s[kMaxGroupSums] = {};
        for (int k = 0; k < ns; ++k) {
          s[k] = e[k].Round();
          if (state) state->sums[static_cast<size_t>(g * ns + k)].Merge(e[k]);
        }
        wl[static_cast<size_t>(g)] = Finish(g, s, coefs.data() + g * kMaxGroupCoefs);
      }
    });
    BlockedSum total;
    for (double v : wl) total.Add(v);
    if (any_grad_ && ninner_ > 0) for_n(items, GradItem(chunks, coefs));
    return total.Done();
  }

  const GroupProblem<T>& pr_;
  const void* functor_;
  const GroupOps& ops_;
  const View<const T>& groups_;
  View<T>* losses_;
  int64_t wstrides_[kMaxRank] = {};
  bool any_grad_;
  Space inner_, outer_;
  int64_t ninner_ = 0, ngroups_ = 0;
  bool contiguous_ = false;
  bool rows_contiguous_ = false;  // the inner space's last axis is contiguous
  double grad_scale_ = 1.0;
};

// A call of spanning groups that adds to a state: no weights (a group's
// loss is the dataset's, of sums over every call), and the state's region
// sums (if any) are of as many groups. Sizes the state's sums.
template <typename T>
void CheckSpanningState(const GroupProblem<T>& pr, const GroupOps& ops, int64_t groups) {
  const std::string name(pr.name);
  if (pr.weights) {
    throw Error(name + ": weights are not supported with a state of regions that span calls "
                "(axis includes the first axis): each region's score is over every call");
  }
  LossState& st = *pr.state;
  const size_t want = static_cast<size_t>(groups * ops.sums);
  if (st.sums.empty() && (st.count != 0 || st.value != ExactSum() || st.weight != ExactSum())) {
    throw Error(name + ": the state holds values, not the region sums of regions that span calls");
  }
  if (!st.sums.empty() && st.sums.size() != want) {
    throw Error(name + ": the state holds the sums of " +
                std::to_string(st.sums.size() / static_cast<size_t>(ops.sums)) +
                " regions, this call has " + std::to_string(groups) + " (" + pr.groups_desc + ")");
  }
  st.sums.resize(want);
}

}  // namespace

template <typename T>
double RunGroups(const GroupProblem<T>& pr, const void* functor, const GroupOps& ops) {
  CheckState(pr.name, pr.reduction, pr.state);
  const bool any_grad = CheckInputsAndGradients(pr, ops);
  const View<const T>& x0 = *pr.in[0];
  // The groups' shape: the kept axes.
  View<const T> groups;
  for (int k = 0; k < x0.rank; ++k) {
    if (!((pr.reduced >> k) & 1)) groups.shape[groups.rank++] = x0.shape[k];
  }
  const bool none = pr.reduction == Reduction::kNone;
  if (none && !pr.losses && !any_grad) {
    throw Error(std::string(pr.name) + ": reduction 'none' needs an output (losses or grad)");
  }
  View<T>* losses = none ? pr.losses : nullptr;
  int64_t wstrides[kMaxRank] = {};
  CheckGroupOperands(pr, ops, groups, losses, wstrides);

  if (pr.spanning && pr.state) CheckSpanningState(pr, ops, groups.size());

  GroupRun<T> run(pr, functor, ops, groups, losses, wstrides, any_grad);
  const ExactSum den = run.Denominator();
  if (run.ngroups() == 0) {
    return pr.reduction == Reduction::kMean ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  }
  const ExactSum total =
      run.Run(pr.reduction == Reduction::kMean ? MeanScale(den.Round()) : 1.0);
  if (pr.spanning) {  // the state has the sums (RunSpanning) and counts elements
    if (pr.state) pr.state->count += x0.size();
    return Reduced(pr.reduction, total, den, run.ngroups(), nullptr);
  }
  return Reduced(pr.reduction, total, den, run.ngroups(), pr.state);
}

double GroupStateResult(const char* name, const LossState& state, const void* functor,
                        const GroupOps& ops, Reduction reduction, double* losses) {
  if (reduction == Reduction::kNone && !losses) {
    throw Error(std::string(name) + ": reduction 'none' needs the losses' output");
  }
  const size_t ns = static_cast<size_t>(ops.sums);
  if (state.sums.size() % ns != 0) {
    throw Error(std::string(name) + ": the state holds " + std::to_string(state.sums.size()) +
                " region sums, not a multiple of the loss's " + std::to_string(ns));
  }
  if (state.sums.empty() && (state.value != ExactSum() || state.weight != ExactSum())) {
    throw Error(std::string(name) + ": the state holds values, not region sums");
  }
  // A state that has seen no element (no call, or empty ones) has no score:
  // NaN for a mean and 0 for a sum, as an empty segment's.
  const int64_t groups = state.count == 0 ? 0 : static_cast<int64_t>(state.sums.size() / ns);
  BlockedSum total;
  for (int64_t g = 0; g < groups; ++g) {
    double s[kMaxGroupSums] = {};
    for (size_t k = 0; k < ns; ++k) s[k] = state.sums[static_cast<size_t>(g) * ns + k].Round();
    double coef[kMaxGroupCoefs] = {};
    const double l = ops.finalize(functor, s, 0.0, coef);
    if (losses) losses[g] = l;
    total.Add(l);
  }
  if (groups == 0) {
    return reduction == Reduction::kMean ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  }
  const ExactSum t = total.Done();
  switch (reduction) {
    case Reduction::kMean: return MeanOf(t.Round(), static_cast<double>(groups));
    case Reduction::kSum: return t.Round();
    case Reduction::kNone: return 0.0;
  }
  return 0.0;
}

template double RunGroups<float>(const GroupProblem<float>&, const void*, const GroupOps&);
template double RunGroups<double>(const GroupProblem<double>&, const void*, const GroupOps&);

// --- Boxes ---------------------------------------------------------------------

template <typename T>
double RunBoxes(const char* name, const void* functor, int cost, ElementwiseKernel kernel,
                const Call<T>& call) {
  const std::string sname(name);
  CheckState(name, call.reduction, call.state);
  RejectSegments(name, call);
  CheckView(name, "y_true", call.y_true);
  CheckView(name, "y_pred", call.y_pred);
  const View<const T>& p = call.y_pred;
  if (p.rank < 1 || p.shape[p.rank - 1] != 4) {
    throw Error(sname + ": y_pred must have shape (..., 4) (boxes as x1, y1, x2, y2), got " +
                ShapeString(p.shape, p.rank));
  }
  CheckSameShape(name, "y_true", call.y_true, "y_pred", p);
  View<const T> boxes;
  boxes.rank = p.rank - 1;
  std::copy(p.shape, p.shape + boxes.rank, boxes.shape);
  const int64_t n = boxes.size();
  const bool none = call.reduction == Reduction::kNone;
  const bool store = none && call.losses.has_value();
  if (none && !call.losses.has_value() && !call.grad.has_value()) {
    throw Error(sname + ": reduction 'none' needs an output (losses or grad)");
  }
  if (call.grad.has_value()) {
    CheckView(name, "grad", *call.grad);
    CheckSameShape(name, "grad", *call.grad, "y_pred", p);
    CheckDistinctElements(name, kGradArg, *call.grad);
    // A box's four coordinates are read before its gradient is written.
    CheckOutputOverlap(name, kGradArg, *call.grad, "y_pred", p);
    CheckOutputOverlap(name, kGradArg, *call.grad, "y_true", call.y_true);
  }
  const char* desc = "the boxes' shape (y_pred's shape without the last axis)";
  if (store) {
    CheckShape(name, "losses", *call.losses, boxes.shape, boxes.rank, desc);
    CheckDistinctElements(name, "losses", *call.losses);
    CheckOutputOverlap(name, "losses", *call.losses, "y_pred", p, false);
    CheckOutputOverlap(name, "losses", *call.losses, "y_true", call.y_true, false);
    if (call.grad.has_value()) CheckOutputOverlap(name, "losses", *call.losses, kGradArg, *call.grad, false);
  }
  int64_t wstrides[kMaxRank] = {};
  if (call.weights.has_value()) BroadcastTo(name, "weights", *call.weights, boxes, wstrides, desc);
  if (call.weights.has_value() && call.grad.has_value()) {
    CheckOutputOverlap(name, kGradArg, *call.grad, "weights", *call.weights, false);
  }
  if (call.weights.has_value() && store) {
    CheckOutputOverlap(name, "losses", *call.losses, "weights", *call.weights, false);
  }
  if (n == 0) {
    return call.reduction == Reduction::kMean ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  }
  ExactSum den = ExactOf(static_cast<double>(n));
  if (call.weights.has_value() && (call.reduction == Reduction::kMean || call.state)) {
    BlockedSum sum;
    for (int64_t b = 0; b < n; ++b) {
      sum.Add(static_cast<double>(
          call.weights->data[OffsetOf(b, boxes.shape, wstrides, boxes.rank)]));
    }
    den = sum.Done();
  }
  const double grad_scale =
      call.reduction == Reduction::kMean ? MeanScale(den.Round()) : 1.0;

  // Contiguous: every operand C-contiguous (weights: absent or contiguous
  // over the boxes).
  auto c_contig = [](const int64_t* shape, const int64_t* strides, int rank) {
    int64_t expect = 1;
    for (int k = rank - 1; k >= 0; --k) {
      if (shape[k] != 1 && strides[k] != expect) return false;
      expect *= shape[k];
    }
    return true;
  };
  const bool contiguous =
      c_contig(p.shape, p.strides, p.rank) &&
      c_contig(call.y_true.shape, call.y_true.strides, p.rank) &&
      (!call.grad.has_value() || c_contig(call.grad->shape, call.grad->strides, p.rank)) &&
      (!store || c_contig(boxes.shape, call.losses->strides, boxes.rank)) &&
      (!call.weights.has_value() || c_contig(boxes.shape, wstrides, boxes.rank));

  constexpr int64_t kTask = 8 * kReductionBlock;
  const int64_t tasks = (n + kTask - 1) / kTask;
  const int64_t blocks_per_task = kTask / kReductionBlock;
  std::vector<double> partials(static_cast<size_t>(tasks * blocks_per_task), 0.0);
  auto task = [&](int64_t t) {
    const int64_t b0 = t * kTask, nb = std::min(kTask, n - b0);
    KernelArgs a;
    a.n = nb;
    a.grad_scale = grad_scale;
    a.partials = none ? nullptr : partials.data() + t * blocks_per_task;
    if (contiguous) {
      a.y = call.y_true.data + 4 * b0;
      a.p = p.data + 4 * b0;
      a.w = call.weights.has_value() ? call.weights->data + b0 : nullptr;
      a.grad = call.grad.has_value() ? call.grad->data + 4 * b0 : nullptr;
      a.loss = store ? call.losses->data + b0 : nullptr;
      kernel(functor, a);
      return;
    }
    std::vector<T> buf(static_cast<size_t>(nb * 14));
    T* yb = buf.data();
    T* pb = yb + 4 * nb;
    T* gb = pb + 4 * nb;
    T* wb = gb + 4 * nb;
    T* lb = wb + nb;
    const int r = p.rank;
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t yo = OffsetOf(b0 + i, boxes.shape, call.y_true.strides, boxes.rank);
      const int64_t po = OffsetOf(b0 + i, boxes.shape, p.strides, boxes.rank);
      for (int c = 0; c < 4; ++c) {
        yb[4 * i + c] = call.y_true.data[yo + c * call.y_true.strides[r - 1]];
        pb[4 * i + c] = p.data[po + c * p.strides[r - 1]];
      }
      if (call.weights.has_value()) {
        wb[i] = call.weights->data[OffsetOf(b0 + i, boxes.shape, wstrides, boxes.rank)];
      }
    }
    a.y = yb;
    a.p = pb;
    a.w = call.weights.has_value() ? wb : nullptr;
    a.grad = call.grad.has_value() ? gb : nullptr;
    a.loss = store ? lb : nullptr;
    kernel(functor, a);
    for (int64_t i = 0; i < nb; ++i) {
      if (call.grad.has_value()) {
        const int64_t go = OffsetOf(b0 + i, boxes.shape, call.grad->strides, boxes.rank);
        for (int c = 0; c < 4; ++c) call.grad->data[go + c * call.grad->strides[r - 1]] = gb[4 * i + c];
      }
      if (store) {
        call.losses->data[OffsetOf(b0 + i, boxes.shape, call.losses->strides, boxes.rank)] = lb[i];
      }
    }
  };
  const int threads = n * cost < kParallelWork
                          ? 1
                          : static_cast<int>(std::min<int64_t>(GetNumThreads(), tasks));
  if (threads <= 1) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    ParallelFor(tasks, threads, [&](int64_t i) { task(i); });
  }
  ExactSum total;
  for (double v : partials) total.Add(v);
  return Reduced(call.reduction, total, den, n, call.state);
}

template double RunBoxes<float>(const char*, const void*, int, ElementwiseKernel,
                                const Call<float>&);
template double RunBoxes<double>(const char*, const void*, int, ElementwiseKernel,
                                 const Call<double>&);

}  // namespace internal
}  // namespace fastloss
