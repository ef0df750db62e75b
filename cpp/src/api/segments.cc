// Per-segment losses (fastloss/segments.hpp): the loss's own call on views
// of each segment, many small segments spread over the library's threads.
#include "fastloss/segments.hpp"

#include <algorithm>
#include <exception>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "drivers/checks.h"
#include "fastloss/fastloss.hpp"
#include "runtime/thread_pool.h"

namespace fastloss {
namespace {

// Items per parallel task of whole segments.
constexpr int64_t kTaskItems = int64_t{1} << 15;

template <typename V>
V SliceRows(V v, int64_t lo, int64_t hi) {
  if (v.data) v.data += lo * v.strides[0];
  v.shape[0] = hi - lo;
  return v;
}

template <typename V>
V Flatten(V v) {
  const int64_t n = v.size();
  v.rank = 1;
  v.shape[0] = n;
  v.strides[0] = 1;
  return v;
}

// How one operand is cut: sliced along axis 0 (after flattening for
// elements), or passed whole (weights that broadcast along the items).
struct Cutter {
  const char* name;
  bool elements;
  int64_t n;        // items
  int loss_rank;    // rank of the per-item losses (weights broadcast to it)
  const char* lead; // the segmented operand's name

  template <typename V>
  V Items(const V& v, const char* arg) const {
    if (elements) {
      if (v.rank > 1 && !internal::IsCContiguous(v)) {
        throw Error(std::string(name) + ": segments of elements need a C-contiguous " + arg +
                    " (or a 1-D one)");
      }
      if (v.size() != n) {
        throw Error(std::string(name) + ": " + arg + " has " + std::to_string(v.size()) +
                    " elements, the segments " + std::to_string(n));
      }
      return Flatten(v);
    }
    if (v.rank < 1 || v.shape[0] != n) {
      throw Error(std::string(name) + ": " + arg + " must have " + std::to_string(n) +
                  " rows (axis 0), as " + lead + " has, got shape " +
                  internal::ShapeString(v.shape, v.rank));
    }
    return v;
  }
  // Whether the weights follow the items (sliced) or broadcast (whole).
  template <typename V>
  bool WeightsSliced(const V& w) const {
    if (elements) {
      if (w.size() == 1) return false;
      if (w.size() != n || (w.rank > 1 && !internal::IsCContiguous(w))) {
        throw Error(std::string(name) +
                    ": with segments of elements, weights must have y_pred's shape (C-contiguous) "
                    "or one element");
      }
      return true;
    }
    if (w.rank < loss_rank || w.rank == 0 || w.shape[0] == 1) return false;
    if (w.shape[0] != n) {
      throw Error(std::string(name) + ": weights of shape " +
                  internal::ShapeString(w.shape, w.rank) + " do not broadcast to the " +
                  std::to_string(n) + " rows of the segments");
    }
    return true;
  }
};

// The per-item operands of a call (cut with the items), each with its name
// in errors; the weights are cut apart (they may broadcast).
template <typename T, class F>
void ForItemOperands(Call<T>& c, F&& f) {
  f(c.y_true, "y_true");
  f(c.y_pred, "y_pred");
  if (c.grad) f(*c.grad, "grad");
}
template <typename T, class F>
void ForItemOperands(LabelCall<T>& c, F&& f) {
  f(c.labels, "y_true");
  f(c.y_pred, "y_pred");
  if (c.grad) f(*c.grad, "grad");
}
// A MultiCall's inputs (the ones given: an absent input is a default
// view), its target and its gradients.
template <typename V>
bool Given(const V& v) {
  return v.data != nullptr || v.rank > 0;
}
template <typename T, class F>
void ForItemOperands(MultiCall<T>& c, F&& f) {
  static const char* const kInputs[] = {"input 1", "input 2", "input 3"};
  static const char* const kGrads[] = {"the gradient of input 1", "the gradient of input 2",
                                       "the gradient of input 3"};
  for (int k = 0; k < MultiCall<T>::kMaxInputs; ++k) {
    if (Given(c.inputs[k])) f(c.inputs[k], kInputs[k]);
  }
  if (Given(c.target)) f(c.target, "target");
  for (int k = 0; k < MultiCall<T>::kMaxInputs; ++k) {
    if (c.grads[k]) f(*c.grads[k], kGrads[k]);
  }
}

// The operand whose items are segmented.
template <typename T>
const View<const T>& Lead(const Call<T>& c) {
  return c.y_pred;
}
template <typename T>
const View<const T>& Lead(const LabelCall<T>& c) {
  return c.y_pred;
}
template <typename T>
const View<const T>& Lead(const MultiCall<T>& c) {
  return c.inputs[0];
}

// The call of items [lo, hi) of `base` (whose operands are laid out by
// the Cutter).
template <class CallT>
void Cut(CallT& c, int64_t lo, int64_t hi, bool slice_w) {
  ForItemOperands(c, [lo, hi](auto& v, const char*) { v = SliceRows(v, lo, hi); });
  if (c.weights && slice_w) c.weights = SliceRows(*c.weights, lo, hi);
}

}  // namespace

namespace internal {

std::vector<int64_t> CheckedOffsets(const char* name, const View<const int64_t>& offsets,
                                    int64_t n, const char* items) {
  CheckView(name, "offsets", offsets);
  if (offsets.rank != 1 || offsets.shape[0] < 1) {
    throw Error(std::string(name) + ": offsets must be 1-D with S + 1 >= 1 entries, got shape " +
                ShapeString(offsets.shape, offsets.rank));
  }
  const int64_t S = offsets.shape[0] - 1;
  std::vector<int64_t> off(static_cast<size_t>(S + 1));
  for (int64_t s = 0; s <= S; ++s) off[s] = offsets.data[s * offsets.strides[0]];
  if (off[0] != 0 || off[S] != n) {
    throw Error(std::string(name) + ": offsets must run from 0 to the " + std::to_string(n) +
                " " + items + ", got " + std::to_string(off[0]) + " .. " + std::to_string(off[S]));
  }
  for (int64_t s = 0; s < S; ++s) {
    if (off[s + 1] < off[s]) {
      throw Error(std::string(name) + ": offsets must be non-decreasing, got " +
                  std::to_string(off[s]) + " then " + std::to_string(off[s + 1]) +
                  " at position " + std::to_string(s + 1));
    }
  }
  return off;
}

}  // namespace internal

void OffsetsFromSortedIds(const View<const int64_t>& ids, int64_t num_segments,
                          int64_t* offsets) {
  if (num_segments < 0) throw Error("num_segments must be >= 0");
  const int64_t n = ids.size();
  if (ids.rank != 1 && n > 0) {
    throw Error("segment_ids must be 1-D (one id per item), got shape " +
                internal::ShapeString(ids.shape, ids.rank));
  }
  int64_t s = 0;  // segments whose start is known
  offsets[0] = 0;
  int64_t prev = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = ids.data[i * (ids.rank ? ids.strides[0] : 0)];
    if (id < 0 || id >= num_segments) {
      throw Error("segment_ids: id " + std::to_string(id) + " at position " + std::to_string(i) +
                  " is outside [0, num_segments = " + std::to_string(num_segments) + ")");
    }
    if (id < prev) {
      throw Error("segment_ids must be sorted (non-decreasing): id " + std::to_string(id) +
                  " at position " + std::to_string(i) + " follows " + std::to_string(prev) +
                  " (pass offsets=, or sort the items by segment)");
    }
    while (s < id) offsets[++s] = i;
    prev = id;
  }
  while (s < num_segments) offsets[++s] = n;
}

template <typename T, class CallT>
void Segmented(const char* name, const CallT& call, const View<const int64_t>& offsets,
               T* values, bool elements, int loss_rank,
               const std::function<double(const CallT&)>& run, LossState* states) {
  if (call.reduction == Reduction::kNone) {
    throw Error(std::string(name) + ": segments need reduction 'mean' or 'sum', not 'none'");
  }
  if (call.state) {
    throw Error(std::string(name) + ": a segmented call adds to per-segment states, not call.state");
  }
  if (call.losses) throw Error(std::string(name) + ": a segmented call writes no losses");
  if constexpr (std::is_same<CallT, LabelCall<T>>::value) {
    if (call.hits) throw Error(std::string(name) + ": a segmented call writes no hits");
  }
  const View<const T>& p = Lead(call);
  const char* lead = std::is_same<CallT, MultiCall<T>>::value ? "input 1" : "y_pred";
  internal::CheckView(name, lead, p);
  if (!elements && p.rank < 1) {
    throw Error(std::string(name) + ": segments of rows need " + lead +
                " with at least one dimension");
  }
  const int64_t n = elements ? p.size() : p.shape[0];
  const std::vector<int64_t> off =
      internal::CheckedOffsets(name, offsets, n, elements ? "elements" : "rows");
  const int64_t S = static_cast<int64_t>(off.size()) - 1;
  Cutter cut{name, elements, n, loss_rank, lead};
  CallT base = call;
  if constexpr (std::is_same<CallT, Call<T>>::value) base.segments = nullptr;
  ForItemOperands(base, [&cut](auto& v, const char* arg) { v = cut.Items(v, arg); });
  const bool slice_w = call.weights && cut.WeightsSliced(*call.weights);
  if (slice_w && elements) base.weights = Flatten(*call.weights);
  // Segments of whole tasks of about kTaskItems items.
  std::vector<int64_t> task_start{0};
  for (int64_t s = 0, acc = 0; s < S; ++s) {
    acc += off[s + 1] - off[s];
    if (acc >= kTaskItems && s + 1 < S) {
      task_start.push_back(s + 1);
      acc = 0;
    }
  }
  task_start.push_back(S);
  const int64_t tasks = static_cast<int64_t>(task_start.size()) - 1;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(tasks));
  auto task = [&](int64_t t) {
    try {
      for (int64_t s = task_start[t]; s < task_start[t + 1]; ++s) {
        if (off[s + 1] == off[s]) {  // an empty segment: sum 0, mean NaN
          values[s] = static_cast<T>(call.reduction == Reduction::kMean
                                         ? std::numeric_limits<double>::quiet_NaN()
                                         : 0.0);
          continue;
        }
        CallT c = base;
        Cut(c, off[s], off[s + 1], slice_w);
        if (states) c.state = states + s;
        values[s] = static_cast<T>(run(c));
      }
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  };
  // Many small segments: tasks over the threads; otherwise one after the
  // other, each call using the threads itself.
  const bool parallel = tasks > 1 && S > 1 && n / S < kTaskItems;
  if (parallel) {
    internal::ParallelFor(tasks, GetNumThreads(), std::move(task));
  } else {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

#define FASTLOSS_INSTANTIATE_SEGMENTED(T)                                                     \
  template void Segmented<T, Call<T>>(const char*, const Call<T>&, const View<const int64_t>&, \
                                      T*, bool, int,                                           \
                                      const std::function<double(const Call<T>&)>&,            \
                                      LossState*);                                             \
  template void Segmented<T, LabelCall<T>>(const char*, const LabelCall<T>&,                   \
                                           const View<const int64_t>&, T*, bool, int,          \
                                           const std::function<double(const LabelCall<T>&)>&,  \
                                           LossState*);                                        \
  template void Segmented<T, MultiCall<T>>(const char*, const MultiCall<T>&,                   \
                                           const View<const int64_t>&, T*, bool, int,          \
                                           const std::function<double(const MultiCall<T>&)>&,  \
                                           LossState*);
FASTLOSS_INSTANTIATE_SEGMENTED(float)
FASTLOSS_INSTANTIATE_SEGMENTED(double)
#undef FASTLOSS_INSTANTIATE_SEGMENTED

}  // namespace fastloss
