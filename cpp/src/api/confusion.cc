// Confusion counts (fastloss/confusion.hpp): one pass over the items, split
// over threads in tasks whose integer counts are added (exact, so any split
// gives the same counts), and the scores made from them.
#include "fastloss/confusion.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "drivers/checks.h"
#include "drivers/rowwise/row_scan.h"
#include "fastloss/runtime.hpp"
#include "internal/option_checks.h"
#include "runtime/thread_pool.h"

namespace fastloss {
namespace {

constexpr int kNoError = 0, kBadTarget = 1, kNanScore = 2, kBadLabel = 3, kBadPredicted = 4,
              kNoMemory = 5;

// The items of a call: the dimensions other than the class axis, in C order,
// and each operand's element stride along them (and along the class axis).
struct Items {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t count = 1;
};

// An operand walked item by item: its strides over the items' dimensions
// and along the class axis.
struct Walk {
  const void* data = nullptr;
  int64_t strides[kMaxRank] = {};
  int64_t cls = 0;
};

template <typename V>
Walk WalkOf(const V& v, int axis) {  // axis < 0: no class axis
  Walk w;
  w.data = v.data;
  int k = 0;
  for (int d = 0; d < v.rank; ++d) {
    if (d == axis) {
      w.cls = v.strides[d];
    } else {
      w.strides[k++] = v.strides[d];
    }
  }
  return w;
}

// Offset (in elements) of item i of `w`.
inline int64_t OffsetOf(const Items& it, const Walk& w, int64_t i) {
  int64_t off = 0;
  for (int d = it.rank - 1; d >= 0; --d) {
    const int64_t n = it.shape[d];
    off += (i % n) * w.strides[d];
    i /= n;
  }
  return off;
}

// The counts of one task's items: segments s0 .. s0 + kept.size() - 1.
struct TaskResult {
  int64_t s0 = 0;
  std::vector<int64_t> counts;  // segments x classes x 4 (multiclass tn: at the end)
  std::vector<int64_t> kept;    // per segment: items counted
  int error = kNoError;
  int64_t error_item = -1;
  int64_t error_class = 0;
};

template <typename T>
struct Problem {
  const char* name;
  ConfusionTask task;
  Items items;
  int64_t C = 1;
  Walk y_true, labels, y_pred, predicted;
  bool has_labels = false, has_predicted = false;
  bool has_ignore = false;
  int64_t ignore_index = 0;
  T threshold{};
  const int64_t* offsets = nullptr;  // S + 1, checked
  int64_t S = 1;
};

template <typename T>
void RunTask(const Problem<T>& p, int64_t begin, int64_t end, TaskResult& r) {
  const int64_t C = p.C;
  // The segments of items begin .. end - 1 (the last holding item end - 1).
  const auto segment_of = [&](int64_t i) {
    return p.offsets ? std::upper_bound(p.offsets, p.offsets + p.S + 1, i) - p.offsets - 1 : 0;
  };
  int64_t s = segment_of(begin);
  r.s0 = s;
  const int64_t segments = segment_of(end - 1) - s + 1;
  r.counts.assign(static_cast<size_t>(segments * C * 4), 0);
  r.kept.assign(static_cast<size_t>(segments), 0);
  auto fail = [&](int kind, int64_t item, int64_t c) {
    r.error = kind;
    r.error_item = item;
    r.error_class = c;
  };
  const T* y = static_cast<const T*>(p.y_true.data);
  const T* x = static_cast<const T*>(p.y_pred.data);
  const int64_t* lab = static_cast<const int64_t*>(p.labels.data);
  const int64_t* pre = static_cast<const int64_t*>(p.predicted.data);
  for (int64_t i = begin; i < end; ++i) {
    if (p.offsets) {
      while (p.offsets[s + 1] <= i) ++s;
    }
    int64_t* cnt = r.counts.data() + (s - r.s0) * C * 4;
    if (p.task == ConfusionTask::kMulticlass) {
      const int64_t t = lab[OffsetOf(p.items, p.labels, i)];
      if (p.has_ignore && t == p.ignore_index) continue;
      if (t < 0 || t >= C) return fail(kBadLabel, i, t);
      int64_t k = 0;
      if (p.has_predicted) {
        k = pre[OffsetOf(p.items, p.predicted, i)];
        if (k < 0 || k >= C) return fail(kBadPredicted, i, k);
      } else {
        const T* row = x + OffsetOf(p.items, p.y_pred, i);
        bool nan = false;
        k = internal::FirstMax(row, C, p.y_pred.cls, &nan);
        if (nan) {
          int64_t c = 0;
          while (row[c * p.y_pred.cls] == row[c * p.y_pred.cls]) ++c;
          return fail(kNanScore, i, c);
        }
      }
      ++r.kept[s - r.s0];
      if (t == k) {
        ++cnt[t * 4 + ConfusionCounts::kTp];
      } else {
        ++cnt[t * 4 + ConfusionCounts::kFn];
        ++cnt[k * 4 + ConfusionCounts::kFp];
      }
      continue;
    }
    // Binary (one class, no class axis) and multilabel (C classes).
    const T* yr = y + OffsetOf(p.items, p.y_true, i);
    const T* xr = x + OffsetOf(p.items, p.y_pred, i);
    const double ign = static_cast<double>(p.ignore_index);
    for (int64_t c = 0; c < C; ++c) {
      const T yv = yr[c * p.y_true.cls], xv = xr[c * p.y_pred.cls];
      if (p.has_ignore && static_cast<double>(yv) == ign) continue;
      if (!(yv >= T(0) && yv <= T(1))) return fail(kBadTarget, i, c);
      if (xv != xv) return fail(kNanScore, i, c);
      const bool truth = yv >= T(0.5), pred = xv > p.threshold;
      const int kind = truth ? (pred ? ConfusionCounts::kTp : ConfusionCounts::kFn)
                             : (pred ? ConfusionCounts::kFp : ConfusionCounts::kTn);
      ++cnt[c * 4 + kind];
    }
  }
}

std::string ItemText(const Items& it, int64_t item) {
  return internal::PositionString(item, it.shape, it.rank);
}

template <typename V>
void CheckAxis(const char* name, const char* arg, const V& v, int axis, int* out) {
  if (v.rank == 0 || axis < -v.rank || axis >= v.rank) {
    throw Error(std::string(name) + ": axis " + std::to_string(axis) + " is out of range for " +
                arg + " with " + std::to_string(v.rank) + " dimension(s)");
  }
  *out = axis < 0 ? axis + v.rank : axis;
}

template <typename V>
Items ItemsOf(const V& v, int axis) {
  Items it;
  for (int d = 0; d < v.rank; ++d) {
    if (d == axis) continue;
    it.shape[it.rank++] = v.shape[d];
    it.count *= v.shape[d];
  }
  return it;
}

}  // namespace

template <typename T>
void Confusion(const ConfusionCall<T>& call, const ConfusionOptions& o, ConfusionCounts& counts) {
  const char* name = "confusion";
  CheckOptions(name, o);
  Problem<T> p;
  p.name = name;
  p.task = o.task;
  p.has_ignore = o.ignore_index.has_value();
  p.ignore_index = o.ignore_index.value_or(0);
  const auto need = [&](bool ok, const char* what) {
    if (!ok) throw Error(std::string(name) + ": " + what);
  };
  if (o.task == ConfusionTask::kMulticlass) {
    need(call.labels.has_value() && !call.y_true,
         "the multiclass task takes integer labels as y_true");
    need(call.y_pred.has_value() != call.predicted.has_value(),
         "the multiclass task takes class scores or predicted labels as y_pred");
    const View<const int64_t>& labels = *call.labels;
    internal::CheckView(name, "y_true", labels);
    p.items = ItemsOf(labels, -1);
    p.labels = WalkOf(labels, -1);
    p.has_labels = true;
    if (call.predicted) {
      internal::CheckView(name, "y_pred", *call.predicted);
      internal::CheckSameShape(name, "y_true", labels, "y_pred", *call.predicted);
      need(o.num_classes.has_value(), "num_classes is required with predicted labels");
      p.C = *o.num_classes;
      p.predicted = WalkOf(*call.predicted, -1);
      p.has_predicted = true;
    } else {
      const View<const T>& scores = *call.y_pred;
      internal::CheckView(name, "y_pred", scores);
      int axis = 0;
      CheckAxis(name, "y_pred", scores, o.axis, &axis);
      const Items rows = ItemsOf(scores, axis);
      bool same = rows.rank == p.items.rank;
      for (int d = 0; same && d < rows.rank; ++d) same = rows.shape[d] == p.items.shape[d];
      if (!same) {
        throw Error(std::string(name) + ": y_true has shape " +
                    internal::ShapeString(labels.shape, labels.rank) +
                    "; the rows of y_pred (its shape without axis " + std::to_string(axis) +
                    ") have shape " + internal::ShapeString(rows.shape, rows.rank));
      }
      p.C = scores.shape[axis];
      p.y_pred = WalkOf(scores, axis);
    }
  } else {
    need(call.y_true.has_value() && !call.labels, "the binary and multilabel tasks take "
                                                  "targets in [0, 1] as y_true");
    need(call.y_pred.has_value() && !call.predicted,
         "the binary and multilabel tasks take scores as y_pred");
    const View<const T>& yt = *call.y_true;
    const View<const T>& yp = *call.y_pred;
    internal::CheckView(name, "y_true", yt);
    internal::CheckView(name, "y_pred", yp);
    bool same = yt.rank == yp.rank;
    for (int d = 0; same && d < yt.rank; ++d) same = yt.shape[d] == yp.shape[d];
    if (!same) {
      throw Error(std::string(name) + ": y_true has shape " +
                  internal::ShapeString(yt.shape, yt.rank) + " and y_pred " +
                  internal::ShapeString(yp.shape, yp.rank) + "; the " +
                  kConfusionTasks[static_cast<int>(o.task)] +
                  " task takes one shape (integer labels and class scores: task='multiclass')");
    }
    int axis = -1;
    if (o.task == ConfusionTask::kMultilabel) {
      CheckAxis(name, "y_pred", yp, o.axis, &axis);
      p.C = yp.shape[axis];
    }
    p.items = ItemsOf(yp, axis);
    p.y_true = WalkOf(yt, axis);
    p.y_pred = WalkOf(yp, axis);
    p.threshold = static_cast<T>(internal::ScoreThreshold<T>(o.threshold, o.from_logits));
  }
  if (p.C < 1) throw Error(std::string(name) + ": y_pred has no classes (C = 0)");
  if (o.num_classes && *o.num_classes != p.C && o.task != ConfusionTask::kBinary) {
    throw Error(std::string(name) + ": num_classes is " + std::to_string(*o.num_classes) +
                " but y_pred has " + std::to_string(p.C) + " classes");
  }
  std::vector<int64_t> offsets;
  if (call.offsets) {
    offsets = internal::CheckedOffsets(name, *call.offsets, p.items.count,
                                       o.task == ConfusionTask::kBinary ? "elements" : "rows");
    p.offsets = offsets.data();
    p.S = static_cast<int64_t>(offsets.size()) - 1;
  }
  const int64_t n = p.items.count;
  if (p.S * p.C > (int64_t{1} << 40)) throw Error(std::string(name) + ": too many counts");
  counts.CheckShape(p.S, p.C, name);

  // One contiguous run of items per thread (at least 64K values each), so
  // the partial counts take at most threads x (S x C x 4) int64 (a run's
  // counts span only the segments its items fall in); counts add exactly,
  // so any split gives the same counts.
  const bool one_value = o.task == ConfusionTask::kBinary || p.has_predicted;
  const int64_t per_item = one_value ? 1 : p.C;
  const int64_t min_items = std::max<int64_t>(1, (int64_t{1} << 16) / per_item);
  const int64_t tasks =
      n == 0 ? 0 : std::max<int64_t>(1, std::min<int64_t>(GetNumThreads(), n / min_items));
  const int threads = static_cast<int>(tasks);
  const int64_t per_task = tasks == 0 ? 0 : (n + tasks - 1) / tasks;
  std::vector<TaskResult> all(static_cast<size_t>(tasks));
  auto run = [&](int64_t k) {
    TaskResult& r = all[static_cast<size_t>(k)];
    try {
      RunTask(p, k * per_task, std::min(n, (k + 1) * per_task), r);
    } catch (const std::bad_alloc&) {  // no exception may leave a pool thread
      r.counts.clear();
      r.kept.clear();
      r.error = kNoMemory;
      r.error_item = k * per_task;
    }
  };
  if (threads <= 1) {
    for (int64_t k = 0; k < tasks; ++k) run(k);
  } else {
    internal::ParallelFor(tasks, threads, [&](int64_t k) { run(k); });
  }
  // The first error by item wins (the same error for any split).
  const TaskResult* bad = nullptr;
  for (const TaskResult& r : all) {
    if (r.error != kNoError && (bad == nullptr || r.error_item < bad->error_item)) bad = &r;
  }
  if (bad) {
    const std::string where = ItemText(p.items, bad->error_item);
    switch (bad->error) {
      case kNoMemory:
        throw std::bad_alloc();
      case kBadTarget:
        throw Error(std::string(name) + ": y_true must lie in [0, 1] (or equal ignore_index), "
                    "found a value outside at item " + where +
                    (p.C > 1 ? ", class " + std::to_string(bad->error_class) : std::string()));
      case kNanScore:
        throw Error(std::string(name) + ": y_pred is NaN at item " + where +
                    (p.C > 1 ? ", class " + std::to_string(bad->error_class) : std::string()));
      case kBadLabel:
        throw Error(std::string(name) + ": y_true label " + std::to_string(bad->error_class) +
                    " at " + where + " is outside [0, " + std::to_string(p.C) + ")");
      default:
        throw Error(std::string(name) + ": y_pred label " + std::to_string(bad->error_class) +
                    " at " + where + " is outside [0, " + std::to_string(p.C) + ")");
    }
  }
  counts.Shape(p.S, p.C, name);
  for (const TaskResult& r : all) {
    int64_t* dst = counts.counts.data() + r.s0 * p.C * 4;
    for (size_t i = 0; i < r.counts.size(); ++i) dst[i] += r.counts[i];
    if (o.task != ConfusionTask::kMulticlass) continue;
    // tn of class c: the kept rows that are neither true nor predicted c.
    for (size_t j = 0; j < r.kept.size(); ++j) {
      for (int64_t c = 0; c < p.C; ++c) {
        const int64_t* rc = r.counts.data() + (static_cast<int64_t>(j) * p.C + c) * 4;
        counts.at(r.s0 + static_cast<int64_t>(j), c, ConfusionCounts::kTn) +=
            r.kept[j] - rc[ConfusionCounts::kTp] - rc[ConfusionCounts::kFp] -
            rc[ConfusionCounts::kFn];
      }
    }
  }
}

template void Confusion<float>(const ConfusionCall<float>&, const ConfusionOptions&,
                               ConfusionCounts&);
template void Confusion<double>(const ConfusionCall<double>&, const ConfusionOptions&,
                                ConfusionCounts&);

void ConfusionScore(const ConfusionCounts& counts, Score score, const ScoreOptions& o,
                    double* out) {
  CheckOptions("score", o);
  const int64_t S = counts.segments, C = counts.classes;
  const double b2 = o.beta * o.beta, zd = o.zero_division;
  // The score of one set of counts (doubles: sums of int64 counts).
  const auto ratio = [&](double tp, double fp, double fn, double tn) {
    double num = tp, den = 0.0;
    switch (score) {
      case Score::kPrecision: den = tp + fp; break;
      case Score::kRecall: den = tp + fn; break;
      case Score::kFBeta:
        num = (1.0 + b2) * tp;
        den = num + b2 * fn + fp;
        break;
      case Score::kSpecificity:
        num = tn;
        den = tn + fp;
        break;
    }
    return den == 0.0 ? zd : num / den;
  };
  // One class (the binary task): every average is its score.
  const Average average = C == 1 && o.average != Average::kNone ? Average::kMicro : o.average;
  for (int64_t s = 0; s < S; ++s) {
    const auto k = [&](int64_t c, int kind) { return static_cast<double>(counts.at(s, c, kind)); };
    if (average == Average::kNone) {
      for (int64_t c = 0; c < C; ++c) {
        out[s * C + c] = ratio(k(c, ConfusionCounts::kTp), k(c, ConfusionCounts::kFp),
                               k(c, ConfusionCounts::kFn), k(c, ConfusionCounts::kTn));
      }
      continue;
    }
    if (average == Average::kMicro) {
      double tp = 0, fp = 0, fn = 0, tn = 0;
      for (int64_t c = 0; c < C; ++c) {
        tp += k(c, ConfusionCounts::kTp);
        fp += k(c, ConfusionCounts::kFp);
        fn += k(c, ConfusionCounts::kFn);
        tn += k(c, ConfusionCounts::kTn);
      }
      out[s] = ratio(tp, fp, fn, tn);
      continue;
    }
    // Macro / weighted: a (weighted) mean over the classes in class order;
    // NaN scores (zero_division=NaN) are left out, and weights (supports)
    // that are all 0 give the plain mean, as scikit-learn's _nanaverage does.
    double total = 0.0, weight = 0.0, plain = 0.0;
    int64_t kept = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double r = ratio(k(c, ConfusionCounts::kTp), k(c, ConfusionCounts::kFp),
                             k(c, ConfusionCounts::kFn), k(c, ConfusionCounts::kTn));
      if (std::isnan(r)) continue;
      const double w = average == Average::kWeighted
                           ? k(c, ConfusionCounts::kTp) + k(c, ConfusionCounts::kFn)
                           : 1.0;
      total += w * r;
      weight += w;
      plain += r;
      ++kept;
    }
    out[s] = kept == 0      ? std::numeric_limits<double>::quiet_NaN()
             : weight > 0.0 ? total / weight
                            : plain / static_cast<double>(kept);
  }
}

}  // namespace fastloss
