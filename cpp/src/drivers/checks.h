// Argument checks shared by the drivers: each names the argument in its
// message, as the Python package reports it.
#ifndef FASTLOSS_SRC_DRIVERS_CHECKS_H_
#define FASTLOSS_SRC_DRIVERS_CHECKS_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fastloss/accumulator.hpp"
#include "fastloss/fastloss.hpp"

namespace fastloss {
namespace internal {

// "(a, b)": a shape.
std::string ShapeString(const int64_t* shape, int rank);
// "(i, j, k)": the multi-index of flat C-order position `flat` in `shape`.
std::string PositionString(int64_t flat, const int64_t* shape, int rank);

// The byte range [lo, hi) a strided view touches (empty: lo = hi = 0).
struct Extent {
  uintptr_t lo = 0, hi = 0;
};
Extent ExtentOf(const void* data, int64_t itemsize, const int64_t* shape,
                const int64_t* strides, int rank);

// Whether two byte ranges share a byte (an empty range shares none).
inline bool ExtentsIntersect(const Extent& a, const Extent& b) {
  return a.lo != a.hi && b.lo != b.hi && a.lo < b.hi && b.lo < a.hi;
}

// How errors name the gradient output: the C++ field and Python's `out=`.
inline constexpr const char* kGradArg = "grad (out)";

// An output view must give every element its own memory: a view with a zero
// stride along a dimension longer than 1, or strides under which two
// elements coincide, is an Error naming `arg`. O(rank): the dimensions
// sorted by |stride| must each step over the whole span of the smaller ones
// (then no two elements coincide). This also refuses the rare interleaved
// views whose elements happen to be distinct (e.g. shape (2, 3), strides
// (3, 2)); NumPy never creates such an output.
void CheckDistinctElements(const char* name, const char* arg, int rank, const int64_t* shape,
                           const int64_t* strides);
template <typename V>
inline void CheckDistinctElements(const char* name, const char* arg, const V& v) {
  CheckDistinctElements(name, arg, v.rank, v.shape, v.strides);
}

// An output may share memory with an input (or another output) only as an
// exact alias: the same address, item size, shape and strides (along
// dimensions longer than 1), which the drivers allow where `alias_ok`
// (every element is read before the same element is written). Any other
// shared byte is an Error naming `out_name`: a partial overlap would read
// values already overwritten.
void CheckOutputOverlap(const char* name, const char* out_name, const void* out_data,
                        int64_t out_itemsize, int out_rank, const int64_t* out_shape,
                        const int64_t* out_strides, const char* in_name, const void* in_data,
                        int64_t in_itemsize, int in_rank, const int64_t* in_shape,
                        const int64_t* in_strides, bool alias_ok);
template <typename O, typename I>
inline void CheckOutputOverlap(const char* name, const char* out_name, const View<O>& out,
                               const char* in_name, const View<I>& in, bool alias_ok = true) {
  CheckOutputOverlap(name, out_name, out.data, sizeof(O), out.rank, out.shape, out.strides,
                     in_name, in.data, sizeof(I), in.rank, in.shape, in.strides, alias_ok);
}

// The mean's rule, shared by every driver: a mean over a zero denominator
// (no elements, or weights summing to 0) is NaN, and its gradient is 0.
inline double MeanOf(double total, double den) {
  return den != 0.0 ? total / den : std::numeric_limits<double>::quiet_NaN();
}
inline double MeanScale(double den) { return den != 0.0 ? 1.0 / den : 0.0; }

// Call::segments is for elementwise losses (the others segment through
// fastloss::Segmented): an Error elsewhere.
template <class CallT>
void RejectSegments(const char* name, const CallT& call) {
  if (call.segments) {
    throw Error(std::string(name) +
                ": Call::segments is for elementwise losses; segment this one with Segmented");
  }
}

// The S + 1 offsets of a segmented call over n items, checked (1-D,
// non-decreasing, from 0 to n; errors name `offsets`). `items` names them
// in messages ("elements", "rows"). Defined in api/segments.cc.
std::vector<int64_t> CheckedOffsets(const char* name, const View<const int64_t>& offsets,
                                    int64_t n, const char* items);

// A call that adds to a LossState reduces (kMean or kSum): checked with the
// other arguments, before anything is written.
inline void CheckState(const char* name, Reduction reduction, const LossState* state) {
  if (state && reduction == Reduction::kNone) {
    throw Error(std::string(name) + ": a state needs reduction 'mean' or 'sum', not 'none'");
  }
}

// The end of every reducing driver: the value of `reduction` from the exact
// sums of the block partials (numerator) and of the denominator, which are
// also added to `state` when given, with the count of items.
inline double Reduced(Reduction reduction, const ExactSum& value, const ExactSum& weight,
                      int64_t count, LossState* state) {
  if (state) {
    state->value.Merge(value);
    state->weight.Merge(weight);
    state->count += count;
  }
  switch (reduction) {
    case Reduction::kMean: return MeanOf(value.Round(), weight.Round());
    case Reduction::kSum: return value.Round();
    case Reduction::kNone: return 0.0;
  }
  return 0.0;
}

// A sum in float64 blocks of kReductionBlock terms, each block added exactly:
// the same bits for any split of the terms on block boundaries.
class BlockedSum {
 public:
  void Add(double x) {
    block_ += x;
    if (++n_ == kReductionBlock) Flush();
  }
  // The exact sum of the blocks (the last one possibly partial).
  ExactSum Done() {
    Flush();
    return sum_;
  }

 private:
  void Flush() {
    sum_.Add(block_);
    block_ = 0.0;
    n_ = 0;
  }
  ExactSum sum_;
  double block_ = 0.0;
  int64_t n_ = 0;
};

inline ExactSum ExactOf(double x) {
  ExactSum s;
  s.Add(x);
  return s;
}

// Drops unit dimensions of `shape` (and of every operand's strides) and
// merges neighbours that every operand with used[s] walks contiguously;
// returns the new rank (0 when one element is left). The drivers coalesce
// their operands with it so that the common layouts become rank 1.
int CoalesceDims(int rank, int64_t* shape, int64_t (*strides)[kMaxRank], int operands,
                 const bool* used);

// `msg` with the whole words y_true and y_pred (the names of Call's fields,
// which the drivers use) replaced by a loss's own argument names.
std::string RenameArguments(const std::string& msg, const char* true_name,
                            const char* pred_name);

// Runs f(); an Error it throws comes back with RenameArguments applied.
template <class F>
auto WithArgumentNames(const char* true_name, const char* pred_name, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(RenameArguments(e.what(), true_name, pred_name));
  }
}

template <typename V>
inline void CheckView(const char* name, const char* arg, const V& v) {
  if (v.rank < 0 || v.rank > kMaxRank) {
    throw Error(std::string(name) + ": " + arg + " has rank " + std::to_string(v.rank) +
                ", the limit is " + std::to_string(kMaxRank));
  }
  for (int k = 0; k < v.rank; ++k) {
    if (v.shape[k] < 0) {
      throw Error(std::string(name) + ": " + arg + " has a negative dimension");
    }
  }
  if (!v.valid()) throw Error(std::string(name) + ": " + arg + " has no data");
}

// Whether v is C-contiguous (size-1 dimensions may have any stride).
template <typename V>
inline bool IsCContiguous(const V& v) {
  int64_t expect = 1;
  for (int k = v.rank - 1; k >= 0; --k) {
    if (v.shape[k] != 1 && v.strides[k] != expect) return false;
    expect *= v.shape[k];
  }
  return true;
}

template <typename A, typename B>
inline void CheckSameShape(const char* name, const char* a_name, const A& a, const char* b_name,
                    const B& b) {
  bool same = a.rank == b.rank;
  for (int k = 0; same && k < a.rank; ++k) same = a.shape[k] == b.shape[k];
  if (!same) {
    throw Error(std::string(name) + ": " + a_name + " and " + b_name +
                " must have the same shape, got " + ShapeString(a.shape, a.rank) +
                " and " + ShapeString(b.shape, b.rank));
  }
}

// Broadcasts `v` (NumPy rules, right-aligned) to `p`'s shape (called
// `target` in errors): fills `strides` (0 along broadcast dimensions).
template <typename T>
inline void BroadcastTo(const char* name, const char* arg, const View<const T>& v,
                 const View<const T>& p, int64_t* strides,
                        const char* target = "y_pred's shape") {
  CheckView(name, arg, v);
  bool ok = v.rank <= p.rank;
  for (int k = 0; ok && k < v.rank; ++k) {
    const int64_t vs = v.shape[v.rank - 1 - k], ps = p.shape[p.rank - 1 - k];
    ok = vs == ps || vs == 1;
  }
  if (!ok) {
    throw Error(std::string(name) + ": " + arg + " of shape " + ShapeString(v.shape, v.rank) +
                " cannot be broadcast to " + target + " " + ShapeString(p.shape, p.rank));
  }
  const int lead = p.rank - v.rank;
  for (int k = 0; k < p.rank; ++k) {
    const bool broadcast = k < lead || v.shape[k - lead] != p.shape[k];
    strides[k] = broadcast ? 0 : v.strides[k - lead];
  }
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_DRIVERS_CHECKS_H_
