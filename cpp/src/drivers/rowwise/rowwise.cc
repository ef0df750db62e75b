#include "drivers/rowwise/rowwise.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fastloss/fastloss.hpp"
#include "drivers/checks.h"
#include "drivers/kernels.h"
#include "drivers/rowwise/row_scan.h"
#include "runtime/thread_pool.h"

namespace fastloss {
namespace internal {
namespace {

// Elements (rows x classes) per task handed to a thread: fixed, so the fold
// of the task partials does not depend on the thread count.
constexpr int64_t kTaskElements = int64_t{1} << 15;
// Tasks whose partials are folded per round (bounded stack storage).
constexpr int64_t kRoundTasks = 2048;
constexpr int64_t kParallelWork = int64_t{1} << 18;

enum RowSlot { kX, kY, kG, kLab, kOut, kW, kHit, kRowSlots };

// The rows: the shape of y_pred without the class axis, coalesced, with each
// operand's strides along it.
struct Rows {
  int rank = 0;
  int64_t shape[kMaxRank];
  int64_t strides[kRowSlots][kMaxRank];
  bool present[kRowSlots] = {};
  int64_t n = 1;

  void Coalesce() {
    rank = CoalesceDims(rank, shape, strides, kRowSlots, present);
    if (rank == 0) {
      rank = 1;
      shape[0] = 1;
      for (int s = 0; s < kRowSlots; ++s) strides[s][0] = 0;
    }
  }

  // Element offsets of row `row` (C order over shape) for every slot.
  void Offsets(int64_t row, int64_t* off, int64_t* inner_index) const {
    for (int s = 0; s < kRowSlots; ++s) off[s] = 0;
    for (int k = rank - 1; k >= 0; --k) {
      const int64_t i = row % shape[k];
      row /= shape[k];
      if (k == rank - 1) *inner_index = i;
      for (int s = 0; s < kRowSlots; ++s) off[s] += i * strides[s][k];
    }
  }
};

}  // namespace

// The checked problem: the class axis, the rows (coalesced shape and every
// operand's strides along it), contiguous class weights, the outputs.
template <typename T>
struct RowPlan {
  int axis = 0;
  int64_t C = 0;
  View<const T> rows_view;  // the rows' shape, for the shape checks and messages
  std::string rows_desc;
  Rows rows;
  int64_t nrows = 0;
  int64_t wstrides[kMaxRank] = {};
  const T* wdata = nullptr;
  View<T>* losses = nullptr;  // kNone only
  std::vector<T> cw_copy;
  const T* cw = nullptr;
  double cw_total = 0.0;
};

// Shapes, axis, outputs and class weights; every check that needs no data.
template <typename T>
void CheckShapes(const RowProblem<T>& pr, RowPlan<T>& plan) {
  const char* name = pr.name;
  const std::string sname(name);
  const View<const T>& x = pr.y_pred;
  CheckView(name, "y_pred", x);
  if (x.rank < 1) {
    throw Error(sname + ": y_pred must have at least one dimension (the class axis)");
  }
  if (pr.axis < -x.rank || pr.axis >= x.rank) {
    throw Error(sname + ": axis " + std::to_string(pr.axis) +
                " is out of range for y_pred with " + std::to_string(x.rank) +
                " dimension" + (x.rank == 1 ? "" : "s"));
  }
  plan.axis = pr.axis < 0 ? pr.axis + x.rank : pr.axis;
  const int64_t C = plan.C = x.shape[plan.axis];
  if (C == 0) {
    throw Error(sname + ": y_pred has no classes (size 0 along axis " +
                std::to_string(pr.axis) + ")");
  }
  View<const T>& rows_view = plan.rows_view;
  for (int k = 0; k < x.rank; ++k) {
    if (k != plan.axis) rows_view.shape[rows_view.rank++] = x.shape[k];
  }
  plan.rows_desc = "the rows' shape (y_pred's shape without axis " + std::to_string(pr.axis) + ")";
  const std::string& rows_desc = plan.rows_desc;
  if (pr.y_true) {
    CheckView(name, "y_true", *pr.y_true);
    CheckSameShape(name, "y_true", *pr.y_true, "y_pred", x);
  }
  if (pr.labels) {
    CheckView(name, "y_true", *pr.labels);
    bool same = pr.labels->rank == rows_view.rank;
    for (int k = 0; same && k < rows_view.rank; ++k) {
      same = pr.labels->shape[k] == rows_view.shape[k];
    }
    if (!same) {
      throw Error(sname + ": y_true (integer labels) must have " + rows_desc + " " +
                  ShapeString(rows_view.shape, rows_view.rank) + ", got " +
                  ShapeString(pr.labels->shape, pr.labels->rank));
    }
  }
  const bool none = pr.reduction == Reduction::kNone;
  if (none && !pr.losses && !pr.grad) {
    throw Error(sname + ": reduction 'none' needs an output (losses or grad)");
  }
  if (pr.grad) {
    CheckView(name, "grad", *pr.grad);
    CheckSameShape(name, "grad", *pr.grad, "y_pred", x);
    CheckDistinctElements(name, kGradArg, *pr.grad);
  }
  View<T>* losses = plan.losses = none ? pr.losses : nullptr;
  if (losses) {
    CheckView(name, "losses", *losses);
    bool same = losses->rank == rows_view.rank;
    for (int k = 0; same && k < rows_view.rank; ++k) same = losses->shape[k] == rows_view.shape[k];
    if (!same) {
      throw Error(sname + ": losses must have " + rows_desc + " " +
                  ShapeString(rows_view.shape, rows_view.rank));
    }
    CheckDistinctElements(name, "losses", *losses);
  }
  if (pr.hits) {
    CheckView(name, "hits", *pr.hits);
    bool same = pr.hits->rank == rows_view.rank;
    for (int k = 0; same && k < rows_view.rank; ++k) same = pr.hits->shape[k] == rows_view.shape[k];
    if (!same) {
      throw Error(sname + ": hits must have " + rows_desc + " " +
                  ShapeString(rows_view.shape, rows_view.rank) + ", got " +
                  ShapeString(pr.hits->shape, pr.hits->rank));
    }
    CheckDistinctElements(name, "hits", *pr.hits);
  }
  // Class weights: contiguous (a copy of C values if strided).
  plan.cw_total = static_cast<double>(C);
  if (pr.class_weights) {
    const View<const T>& w = *pr.class_weights;
    CheckView(name, "class_weights", w);
    if (w.rank != 1 || w.shape[0] != C) {
      throw Error(sname + ": class_weights must have shape (" + std::to_string(C) +
                  ",) (one weight per class), got " + ShapeString(w.shape, w.rank));
    }
    plan.cw = w.data;
    if (w.strides[0] != 1) {
      plan.cw_copy.resize(static_cast<size_t>(C));
      for (int64_t c = 0; c < C; ++c) plan.cw_copy[c] = w.data[c * w.strides[0]];
      plan.cw = plan.cw_copy.data();
    }
    plan.cw_total = 0.0;
    for (int64_t c = 0; c < C; ++c) plan.cw_total += static_cast<double>(plan.cw[c]);
  }
  if (pr.weights) {
    BroadcastTo(name, "weights", *pr.weights, rows_view, plan.wstrides, rows_desc.c_str());
  }
}

// Outputs against the inputs and each other. The gradient may be y_pred or
// the dense targets themselves (the kernels read each element of a row
// before writing the same element of its gradient, and keep exp(x - max) in
// the gradient row only when it aliases neither); any other shared memory is
// an Error: a row's later passes read the targets, the weights and the other
// rows after the gradient of a row is written.
template <typename T>
void CheckOverlaps(const RowProblem<T>& pr, const View<T>* losses) {
  const char* name = pr.name;
  if (pr.grad) {
    CheckOutputOverlap(name, kGradArg, *pr.grad, "y_pred", pr.y_pred, true);
    if (pr.y_true) CheckOutputOverlap(name, kGradArg, *pr.grad, "y_true", *pr.y_true, true);
    if (pr.labels) CheckOutputOverlap(name, kGradArg, *pr.grad, "y_true", *pr.labels, false);
    if (pr.weights) CheckOutputOverlap(name, kGradArg, *pr.grad, "weights", *pr.weights, false);
    if (pr.class_weights) {
      CheckOutputOverlap(name, kGradArg, *pr.grad, "class_weights", *pr.class_weights, false);
    }
  }
  if (losses) {
    CheckOutputOverlap(name, "losses", *losses, "y_pred", pr.y_pred, false);
    if (pr.y_true) CheckOutputOverlap(name, "losses", *losses, "y_true", *pr.y_true, false);
    if (pr.labels) CheckOutputOverlap(name, "losses", *losses, "y_true", *pr.labels, false);
    if (pr.weights) CheckOutputOverlap(name, "losses", *losses, "weights", *pr.weights, false);
    if (pr.class_weights) {
      CheckOutputOverlap(name, "losses", *losses, "class_weights", *pr.class_weights, false);
    }
    if (pr.grad) CheckOutputOverlap(name, "losses", *losses, kGradArg, *pr.grad, false);
  }
  if (pr.hits) {
    const View<T>& h = *pr.hits;
    CheckOutputOverlap(name, "hits", h, "y_pred", pr.y_pred, false);
    if (pr.labels) CheckOutputOverlap(name, "hits", h, "y_true", *pr.labels, false);
    if (pr.weights) CheckOutputOverlap(name, "hits", h, "weights", *pr.weights, false);
    if (pr.class_weights) {
      CheckOutputOverlap(name, "hits", h, "class_weights", *pr.class_weights, false);
    }
    if (pr.grad) CheckOutputOverlap(name, "hits", h, kGradArg, *pr.grad, false);
    if (losses) CheckOutputOverlap(name, "hits", h, "losses", *losses, false);
  }
}

// The rows' shape and every operand's strides along it (not yet coalesced).
template <typename T>
void LayRows(const RowProblem<T>& pr, RowPlan<T>& plan) {
  const View<const T>& x = pr.y_pred;
  Rows& rows = plan.rows;
  rows.present[kX] = true;
  rows.present[kY] = pr.y_true != nullptr;
  rows.present[kG] = pr.grad != nullptr;
  rows.present[kLab] = pr.labels != nullptr;
  rows.present[kOut] = plan.losses != nullptr;
  rows.present[kW] = pr.weights != nullptr;
  rows.present[kHit] = pr.hits != nullptr;
  for (int k = 0, r = 0; k < x.rank; ++k) {
    if (k == plan.axis) continue;
    rows.shape[r] = x.shape[k];
    rows.n *= x.shape[k];
    rows.strides[kX][r] = x.strides[k];
    rows.strides[kY][r] = pr.y_true ? pr.y_true->strides[k] : 0;
    rows.strides[kG][r] = pr.grad ? pr.grad->strides[k] : 0;
    rows.strides[kLab][r] = pr.labels ? pr.labels->strides[r] : 0;
    rows.strides[kOut][r] = plan.losses ? plan.losses->strides[r] : 0;
    rows.strides[kW][r] = plan.wstrides[r];
    rows.strides[kHit][r] = pr.hits ? pr.hits->strides[r] : 0;
    ++r;
  }
  rows.rank = x.rank - 1;
  plan.nrows = rows.n;
  plan.wdata = pr.weights ? pr.weights->data : nullptr;
}

// Labels in range (before anything is written) and the mean's denominator,
// in row order.
template <typename T>
ExactSum CheckLabelsAndCount(const RowProblem<T>& pr, const RowPlan<T>& plan) {
  const int64_t C = plan.C, nrows = plan.nrows;
  const T* wdata = plan.wdata;
  const T* cw = plan.cw;
  const View<const T>& rows_view = plan.rows_view;
  // Contiguous labels without weights: a branch-free count and range check
  // (the loop below then only runs to name the first bad label).
  if (pr.labels && !wdata && !(pr.target_weighted_mean && cw) && IsCContiguous(*pr.labels)) {
    const int64_t* lab = pr.labels->data;
    int64_t counted = 0, bad = 0;
    for (int64_t r = 0; r < nrows; ++r) {
      const int64_t t = lab[r];
      const int64_t kept = pr.has_ignore && t == pr.ignore_index ? 0 : 1;
      counted += kept;
      bad |= kept & static_cast<int64_t>(static_cast<uint64_t>(t) >= static_cast<uint64_t>(C));
    }
    if (bad == 0) return ExactOf(static_cast<double>(counted));
  }
  if (!pr.labels && !wdata) return ExactOf(static_cast<double>(nrows));
  BlockedSum den;  // in blocks of rows, so that batches of whole blocks add up
  int64_t idx[kMaxRank] = {};
  int64_t lab_off = 0, w_off = 0;
  for (int64_t r = 0; r < nrows; ++r) {
    const double s = wdata ? static_cast<double>(wdata[w_off]) : 1.0;
    double wt = 1.0;
    bool counted = true;
    if (pr.labels) {
      const int64_t t = pr.labels->data[lab_off];
      if (pr.has_ignore && t == pr.ignore_index) {
        counted = false;
      } else if (t < 0 || t >= C) {
        throw Error(std::string(pr.name) + ": y_true has label " + std::to_string(t) +
                    " at position " + PositionString(r, rows_view.shape, rows_view.rank) +
                    ", outside [0, " + std::to_string(C) + ")" +
                    (pr.has_ignore ? " and not ignore_index" : ""));
      } else if (pr.target_weighted_mean && cw) {
        wt = static_cast<double>(cw[t]);
      }
    }
    den.Add(counted ? s * wt : 0.0);
    // Next row (C order over the uncoalesced rows shape).
    for (int k = rows_view.rank - 1; k >= 0; --k) {
      const int64_t ls = pr.labels ? pr.labels->strides[k] : 0;
      if (++idx[k] < rows_view.shape[k]) {
        lab_off += ls;
        w_off += plan.wstrides[k];
        break;
      }
      lab_off -= (rows_view.shape[k] - 1) * ls;
      w_off -= (rows_view.shape[k] - 1) * plan.wstrides[k];
      idx[k] = 0;
    }
  }
  return den.Done();
}

// Whether the target row at row index r lies outside [0, 1] (the first class
// outside goes to *c_bad).
template <typename T>
bool RowOutside(const RowProblem<T>& pr, const RowPlan<T>& plan, int64_t r, int64_t* c_bad) {
  int64_t off[kRowSlots], inner = 0;
  plan.rows.Offsets(r, off, &inner);
  const int64_t y_cls = pr.y_true->strides[plan.axis];
  const T* y = pr.y_true->data + off[kY];
  for (int64_t c = 0; c < plan.C; ++c) {
    const T v = y[c * y_cls];
    if (v < T(0) || v > T(1)) {
      *c_bad = c;
      return true;
    }
  }
  return false;
}

// Targets outside [0, 1] are found by the kernels as they read each row,
// after the rows before it have been written. Arrays of one task (at most
// kTaskElements = 32768 elements, or a single row) with an output are checked
// here first, so a failing call leaves their outputs untouched; larger arrays
// are not read twice, and there the rows before the bad one (and other
// threads' tasks) may already be written when the Error is thrown. Returns
// the first bad row or -1.
template <typename T>
int64_t PrecheckTargets(const RowProblem<T>& pr, const RowPlan<T>& plan) {
  const int64_t y_cls = pr.y_true->strides[plan.axis];
  for (int64_t r = 0; r < plan.nrows; ++r) {
    if (y_cls == 1) {
      int64_t off[kRowSlots], inner = 0;
      plan.rows.Offsets(r, off, &inner);
      if (FirstOutside<T>(pr.y_true->data + off[kY], plan.C, T(0), T(1)) >= 0) return r;
    } else {
      int64_t c_bad = 0;
      if (RowOutside(pr, plan, r, &c_bad)) return r;
    }
  }
  return -1;
}

// The Error for the first target outside [0, 1], in row `bad`.
template <typename T>
[[noreturn]] void ThrowOutsideTarget(const RowProblem<T>& pr, const RowPlan<T>& plan, int64_t bad) {
  const View<const T>& x = pr.y_pred;
  int64_t c_bad = 0;
  RowOutside(pr, plan, bad, &c_bad);
  int64_t off[kRowSlots], inner = 0;
  plan.rows.Offsets(bad, off, &inner);
  // Position in y_true's shape: the row's multi-index with the class inserted.
  int64_t rest = bad, pos[kMaxRank];
  for (int k = x.rank - 1; k >= 0; --k) {
    if (k == plan.axis) {
      pos[k] = c_bad;
      continue;
    }
    pos[k] = rest % x.shape[k];
    rest /= x.shape[k];
  }
  const T v = pr.y_true->data[off[kY] + c_bad * pr.y_true->strides[plan.axis]];
  throw Error(std::string(pr.name) + ": y_true must be in [0, 1], got " +
              std::to_string(static_cast<double>(v)) + " at position " + ShapeString(pos, x.rank));
}

template <typename T>
double RunRows(const RowProblem<T>& pr, const void* functor, int cost, RowKernel kernel) {
  RowPlan<T> plan;
  CheckState(pr.name, pr.reduction, pr.state);
  CheckShapes(pr, plan);
  CheckOverlaps(pr, plan.losses);
  LayRows(pr, plan);
  const ExactSum den = CheckLabelsAndCount(pr, plan);
  const int64_t nrows = plan.nrows, C = plan.C;
  if (nrows == 0) {
    return pr.reduction == Reduction::kMean ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  }
  const double grad_scale = pr.reduction == Reduction::kMean ? MeanScale(den.Round()) : 1.0;

  Rows& rows = plan.rows;
  rows.Coalesce();
  const View<const T>& x = pr.y_pred;
  View<T>* losses = plan.losses;
  // A power of two of at most kReductionBlock rows: a task's partial covers
  // the same rows in any batch that starts on a block of rows.
  int64_t rows_per_task = 1;
  while (rows_per_task * 2 <= std::min<int64_t>(kReductionBlock, kTaskElements / C)) {
    rows_per_task *= 2;
  }
  const int64_t tasks = (nrows + rows_per_task - 1) / rows_per_task;
  const int64_t x_cls = x.strides[plan.axis];
  const int64_t y_cls = pr.y_true ? pr.y_true->strides[plan.axis] : 0;
  const int64_t g_cls = pr.grad ? pr.grad->strides[plan.axis] : 0;
  constexpr int64_t kNoBadRow = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> bad_row{kNoBadRow};

  auto task = [&](int64_t t, double* partial) {
    const int64_t r0 = t * rows_per_task, r1 = std::min(nrows, r0 + rows_per_task);
    double total = 0.0;
    for (int64_t r = r0; r < r1;) {
      int64_t off[kRowSlots], inner = 0;
      rows.Offsets(r, off, &inner);
      const int in = rows.rank - 1;
      const int64_t n = std::min(r1 - r, rows.shape[in] - inner);
      RowArgs a;
      a.x = x.data + off[kX];
      a.y = pr.y_true ? pr.y_true->data + off[kY] : nullptr;
      a.labels = pr.labels ? pr.labels->data + off[kLab] : nullptr;
      a.rw = plan.wdata ? plan.wdata + off[kW] : nullptr;
      a.cw = plan.cw;
      a.grad = pr.grad ? pr.grad->data + off[kG] : nullptr;
      a.losses = losses ? losses->data + off[kOut] : nullptr;
      a.rows = n;
      a.C = C;
      a.x_row = rows.strides[kX][in];
      a.y_row = rows.strides[kY][in];
      a.label_row = rows.strides[kLab][in];
      a.rw_row = rows.strides[kW][in];
      a.g_row = rows.strides[kG][in];
      a.loss_row = rows.strides[kOut][in];
      a.x_cls = x_cls;
      a.y_cls = y_cls;
      a.g_cls = g_cls;
      a.grad_scale = grad_scale;
      a.cw_total = plan.cw_total;
      a.has_ignore = pr.has_ignore;
      a.ignore_index = pr.ignore_index;
      a.check_y = pr.check_y;
      int64_t bad = -1;
      a.bad_row = &bad;
      if (pr.hits) {
        // Each row's top-1 hit, before the kernel (the gradient may be
        // written over y_pred); the task's rows are then read from cache.
        T* h = pr.hits->data + off[kHit];
        const int64_t h_row = rows.strides[kHit][in];
        for (int64_t j = 0; j < n; ++j) {
          const int64_t label = a.labels[j * a.label_row];
          T hit = T(0);
          if (!(pr.has_ignore && label == pr.ignore_index)) {
            bool nan = false;
            const int64_t rank =
                StableRank(static_cast<const T*>(a.x) + j * a.x_row, C, x_cls, label, &nan);
            hit = nan ? std::numeric_limits<T>::quiet_NaN() : T(rank == 0 ? 1 : 0);
          }
          h[j * h_row] = hit;
        }
      }
      total += kernel(functor, a);
      if (bad >= 0) {
        int64_t cur = bad_row.load();
        while (r + bad < cur && !bad_row.compare_exchange_weak(cur, r + bad)) {
        }
        break;
      }
      r += n;
    }
    *partial = total;
  };

  if (pr.check_y && pr.y_true && (pr.grad || losses) &&
      (nrows * C <= kTaskElements || nrows == 1)) {
    const int64_t bad = PrecheckTargets(pr, plan);
    if (bad >= 0) ThrowOutsideTarget(pr, plan, bad);
  }
  const int threads =
      nrows * C * std::max(cost, 1) < kParallelWork
          ? 1
          : static_cast<int>(std::min<int64_t>(GetNumThreads(), tasks));
  ExactSum total;
  double partials[kRoundTasks];
  for (int64_t t0 = 0; t0 < tasks; t0 += kRoundTasks) {
    const int64_t nt = std::min(kRoundTasks, tasks - t0);
    if (threads <= 1) {
      for (int64_t t = 0; t < nt; ++t) task(t0 + t, partials + t);
    } else {
      ParallelFor(nt, threads, [&](int64_t t) { task(t0 + t, partials + t); });
    }
    for (int64_t t = 0; t < nt; ++t) total.Add(partials[t]);
    if (bad_row.load() != kNoBadRow) break;
  }
  if (bad_row.load() != kNoBadRow) ThrowOutsideTarget(pr, plan, bad_row.load());
  return Reduced(pr.reduction, total, den, nrows, pr.state);
}

template double RunRows<float>(const RowProblem<float>&, const void*, int, RowKernel);
template double RunRows<double>(const RowProblem<double>&, const void*, int, RowKernel);

}  // namespace internal
}  // namespace fastloss
