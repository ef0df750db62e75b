// fastloss: the types every entry point shares (views, calls, reductions,
// the error type). Plain C++17: no Highway, CUDA or Python types.
#ifndef FASTLOSS_CORE_HPP_
#define FASTLOSS_CORE_HPP_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fastloss/version.hpp"

namespace fastloss {

// Thrown for every invalid argument. The message names the argument, and is
// the same text the Python package raises as ValueError.
class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Most dimensions a view may have (NumPy's limit).
inline constexpr int kMaxRank = 32;

// Elements per deterministic reduction block (see the header comment).
inline constexpr int64_t kReductionBlock = 1024;

// One extent of a shape, from any integer type without a narrowing error.
struct Extent {
  int64_t value = 0;
  bool valid = true;
  constexpr Extent() = default;
  template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
  constexpr Extent(I v)  // NOLINT(google-explicit-constructor): {n, m} lists
      : value(static_cast<int64_t>(v)),
        valid(!(std::is_unsigned<I>::value && sizeof(I) >= sizeof(int64_t) &&
                static_cast<unsigned long long>(v) > 0x7fffffffffffffffULL)) {}
};

// A non-owning strided view of a buffer. `strides` are in elements, not
// bytes, and may be zero (broadcast) or negative.
template <typename T>
struct View {
  T* data = nullptr;
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};

  // A C-contiguous view of `data` with the given shape: at most kMaxRank
  // extents of any integer type (int, int64_t, std::size_t, ... and mixed
  // lists such as {rows, 3}); more extents, or one beyond int64_t's range,
  // are an Error.
  template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
  static View Contiguous(T* data, std::initializer_list<I> shape) {
    Extent extents[kMaxRank];
    if (shape.size() > static_cast<std::size_t>(kMaxRank)) {
      return FromExtents(data, nullptr, shape.size());  // the Error
    }
    std::size_t k = 0;
    for (I e : shape) extents[k++] = Extent(e);
    return FromExtents(data, extents, shape.size());
  }
  static View Contiguous(T* data, std::initializer_list<Extent> shape) {
    return FromExtents(data, shape.begin(), shape.size());
  }
  static View FromExtents(T* data, const Extent* extents, std::size_t rank) {
    if (rank > static_cast<std::size_t>(kMaxRank)) {
      throw Error("View: at most " + std::to_string(kMaxRank) + " dimensions, got " +
                  std::to_string(rank));
    }
    View v;
    v.data = data;
    for (std::size_t k = 0; k < rank; ++k) {
      if (!extents[k].valid) throw Error("View: an extent does not fit int64_t");
      v.shape[v.rank++] = extents[k].value;
    }
    int64_t stride = 1;
    for (int k = v.rank - 1; k >= 0; --k) {
      v.strides[k] = stride;
      stride *= v.shape[k];
    }
    return v;
  }
  int64_t size() const {
    int64_t n = 1;
    for (int k = 0; k < rank; ++k) n *= shape[k];
    return n;
  }
  bool valid() const { return data != nullptr || size() == 0; }
};

enum class Reduction {
  kMean,  // sum(w * l) / sum(w); plain mean without weights
  kSum,   // sum(w * l)
  kNone,  // per-element w * l written to Call::losses
};

// Optional inputs and outputs (weights, grad, losses, ...) are
// std::optional views: absent until a view is assigned, so an output is
// written exactly when the caller gave one (there is no separate flag to
// forget), and `if (call.grad)` asks whether it is there.
template <typename T>
using OptionalView = std::optional<View<T>>;

// The running state of a reduction (accumulator.hpp). A call whose `state`
// is set adds its exact numerator, denominator and count to it (reduction
// kMean or kSum; the value returned is the call's own, as without it).
struct LossState;

// Per-segment values of an elementwise loss in one pass (segments.hpp): the
// elements (flat C order) of segment s are [offsets[s], offsets[s+1]);
// values[s] gets the call's reduction over them; states, when set, S
// LossStates that each segment's sums are added to.
template <typename T>
struct SegmentOutputs {
  View<const int64_t> offsets;
  T* values = nullptr;
  LossState* states = nullptr;
};

// One loss evaluation. Inputs and outputs share y_pred's shape exactly,
// except `weights`, which broadcasts to it (NumPy rules, right-aligned).
template <typename T>
struct Call {
  View<const T> y_true;
  View<const T> y_pred;
  OptionalView<const T> weights;
  Reduction reduction = Reduction::kMean;
  // d(reduced value)/d(y_pred). For kNone, w * dl/dy_pred (the gradient of
  // the sum of the per-element output). May alias y_pred or y_true exactly
  // (same data and strides) for an in-place update.
  OptionalView<T> grad;
  // With kNone: the per-element losses w * l (kNone needs losses, grad or
  // both). Ignored for the other reductions.
  OptionalView<T> losses;
  // Rank 1, length C: only for the row-wise losses whose options list
  // class_weights (an Error for any other loss).
  OptionalView<const T> class_weights;
  // When set: this call's sums are added to *state (see LossState).
  LossState* state = nullptr;
  // Elementwise losses: one reduced value per segment (the return value is
  // then 0); an Error for the other losses (see Segmented for those).
  const SegmentOutputs<T>* segments = nullptr;
};

template <typename T>
struct LabelCall {
  View<const int64_t> labels;  // in [0, C), or ignore_index where allowed
  View<const T> y_pred;
  OptionalView<const T> weights;
  OptionalView<const T> class_weights;  // rank 1, length C
  Reduction reduction = Reduction::kMean;
  OptionalView<T> grad;
  OptionalView<T> losses;
  // When set: each row's top-1 hit, read in the same pass as the loss (the
  // row is in cache): 1 where the label is y_pred's first maximum (NumPy's
  // argmax), 0 where not and for ignored rows, NaN for a row with a NaN;
  // the rows' shape. Token accuracy is then sum(hits) / (rows not ignored).
  OptionalView<T> hits;
  // When set: this call's sums are added to *state (see LossState).
  LossState* state = nullptr;
};

template <typename T>
struct MultiCall {
  static constexpr int kMaxInputs = 3;
  View<const T> inputs[kMaxInputs];
  View<const T> target;
  OptionalView<const T> weights;
  Reduction reduction = Reduction::kMean;
  OptionalView<T> grads[kMaxInputs];
  OptionalView<T> losses;
  // When set: this call's sums are added to *state (see LossState).
  LossState* state = nullptr;
};

template <typename T>
struct ScoreCall {
  View<const T> scores;
  OptionalView<const T> weights;  // broadcast to scores
  OptionalView<T> grad;
  OptionalView<T> losses;  // kNone
  // When set: this call's sums are added to *state (see LossState).
  LossState* state = nullptr;
};
}  // namespace fastloss

#endif  // FASTLOSS_CORE_HPP_
