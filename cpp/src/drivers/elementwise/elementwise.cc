#include "drivers/elementwise/elementwise.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "fastloss/fastloss.hpp"
#include "drivers/checks.h"
#include "drivers/kernels.h"
#include "math/prefetch.h"
#include "runtime/thread_pool.h"
#include "losses/losses.h"

namespace fastloss {
namespace internal {

std::string ShapeString(const int64_t* shape, int rank) {
  std::string s = "(";
  for (int k = 0; k < rank; ++k) {
    if (k) s += ", ";
    s += std::to_string(shape[k]);
  }
  if (rank == 1) s += ",";
  return s + ")";
}

Extent ExtentOf(const void* data, int64_t itemsize, const int64_t* shape,
                const int64_t* strides, int rank) {
  Extent e;
  int64_t lo = 0, hi = 0;
  for (int k = 0; k < rank; ++k) {
    if (shape[k] == 0) return e;
    const int64_t span = (shape[k] - 1) * strides[k];
    (span < 0 ? lo : hi) += span;
  }
  const uintptr_t base = reinterpret_cast<uintptr_t>(data);
  e.lo = base + static_cast<uintptr_t>(lo * itemsize);
  e.hi = base + static_cast<uintptr_t>((hi + 1) * itemsize);
  return e;
}

void CheckDistinctElements(const char* name, const char* arg, int rank, const int64_t* shape,
                           const int64_t* strides) {
  // (|stride|, extent) of the dimensions longer than 1, by |stride|.
  __int128 st[kMaxRank], ext[kMaxRank];
  int n = 0;
  for (int k = 0; k < rank; ++k) {
    if (shape[k] == 0) return;  // no elements
    if (shape[k] == 1) continue;
    const __int128 a = strides[k] < 0 ? -static_cast<__int128>(strides[k]) : strides[k];
    int j = n++;
    for (; j > 0 && st[j - 1] > a; --j) {
      st[j] = st[j - 1];
      ext[j] = ext[j - 1];
    }
    st[j] = a;
    ext[j] = shape[k] - 1;
  }
  __int128 reach = 0;  // the largest offset the smaller strides reach
  for (int j = 0; j < n; ++j) {
    if (st[j] <= reach) {
      throw Error(std::string(name) + ": " + arg +
                  " has elements that share memory (a zero stride or overlapping strides); "
                  "an output needs one place per element");
    }
    reach += st[j] * ext[j];
  }
}

void CheckOutputOverlap(const char* name, const char* out_name, const void* out_data,
                        int64_t out_itemsize, int out_rank, const int64_t* out_shape,
                        const int64_t* out_strides, const char* in_name, const void* in_data,
                        int64_t in_itemsize, int in_rank, const int64_t* in_shape,
                        const int64_t* in_strides, bool alias_ok) {
  const Extent a = ExtentOf(out_data, out_itemsize, out_shape, out_strides, out_rank);
  const Extent b = ExtentOf(in_data, in_itemsize, in_shape, in_strides, in_rank);
  if (!ExtentsIntersect(a, b)) return;
  bool same = alias_ok && out_data == in_data && out_itemsize == in_itemsize &&
              out_rank == in_rank;
  for (int k = 0; same && k < out_rank; ++k) {
    same = out_shape[k] == in_shape[k] && (out_shape[k] == 1 || out_strides[k] == in_strides[k]);
  }
  if (!same) {
    throw Error(std::string(name) + ": " + out_name + " overlaps " + in_name + " in memory" +
                (alias_ok ? " (only an exact in-place alias is allowed)" : ""));
  }
}

int CoalesceDims(int rank, int64_t* shape, int64_t (*strides)[kMaxRank], int operands,
                 const bool* used) {
  int r = 0;
  for (int k = 0; k < rank; ++k) {
    if (shape[k] == 1) continue;
    shape[r] = shape[k];
    for (int s = 0; s < operands; ++s) strides[s][r] = strides[s][k];
    ++r;
  }
  rank = r;
  if (rank == 0) return 0;
  r = 0;
  for (int k = 1; k < rank; ++k) {
    bool mergeable = true;
    for (int s = 0; s < operands && mergeable; ++s) {
      if (used[s]) mergeable = strides[s][r] == strides[s][k] * shape[k];
    }
    if (mergeable) {
      shape[r] *= shape[k];
    } else {
      shape[++r] = shape[k];
    }
    for (int s = 0; s < operands; ++s) strides[s][r] = strides[s][k];
  }
  return r + 1;
}

std::string RenameArguments(const std::string& msg, const char* true_name,
                            const char* pred_name) {
  const auto word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  };
  std::string r;
  for (size_t i = 0; i < msg.size();) {
    const bool t = msg.compare(i, 6, "y_true") == 0, p = msg.compare(i, 6, "y_pred") == 0;
    if ((t || p) && (i == 0 || !word(msg[i - 1])) && (i + 6 == msg.size() || !word(msg[i + 6]))) {
      r += t ? true_name : pred_name;
      i += 6;
    } else {
      r += msg[i++];
    }
  }
  return r;
}

std::string PositionString(int64_t flat, const int64_t* shape, int rank) {
  int64_t idx[kMaxRank];
  for (int k = rank - 1; k >= 0; --k) {
    idx[k] = shape[k] > 0 ? flat % shape[k] : 0;
    flat = shape[k] > 0 ? flat / shape[k] : 0;
  }
  return ShapeString(idx, rank);
}

namespace {

constexpr int64_t kBlock = kReductionBlock;
// Blocks per y_true range check on contiguous data (a few L2-sized runs).
constexpr int64_t kCheckBlocks = 16;
// Blocks whose partials are folded per round: bounds the partials buffer
// (on the stack) whatever the input size.
constexpr int64_t kRoundBlocks = 2048;
// Blocks per task handed to a thread.
constexpr int64_t kChunkBlocks = 16;
// Below this many (elements x functor cost) a call stays on the caller's
// thread: waking a worker costs more than it saves.
constexpr int64_t kParallelWork = int64_t{1} << 18;

// Inputs before kGrad, outputs from it on.
enum Slot { kY, kP, kW, kA, kGrad, kAuxGrad, kLoss, kSlots };

// The iteration space shared by all operands of one call: a shape and, per
// operand, strides in elements (absent operands have data == nullptr).
struct Plan {
  int rank = 0;
  int64_t shape[kMaxRank];
  int64_t n = 1;
  const void* data[kSlots] = {};
  int64_t strides[kSlots][kMaxRank];
  bool contiguous[kSlots] = {};
  bool all_contiguous = true;

  // Drops unit dimensions and merges dimensions that every operand walks
  // contiguously, so that the common cases become rank 1.
  void Coalesce() {
    bool used[kSlots];
    for (int s = 0; s < kSlots; ++s) used[s] = data[s] != nullptr;
    rank = CoalesceDims(rank, shape, strides, kSlots, used);
    if (rank == 0) {  // one element (or a 0-d array)
      rank = 1;
      shape[0] = 1;
      for (int s = 0; s < kSlots; ++s) strides[s][0] = 1;
    }
    all_contiguous = true;
    for (int s = 0; s < kSlots; ++s) {
      contiguous[s] = data[s] && rank == 1 && strides[s][0] == 1;
      if (data[s] && !contiguous[s]) all_contiguous = false;
    }
  }
};

// Copies elements [start, start + count) (C order over plan.shape) of a
// strided operand into dst (kGather) or from src into it (!kGather).
template <bool kGather, typename T>
void CopyStrided(const Plan& plan, int slot, int64_t start, int64_t count, T* buf) {
  const int rank = plan.rank;
  const int64_t* shape = plan.shape;
  const int64_t* st = plan.strides[slot];
  T* base = const_cast<T*>(static_cast<const T*>(plan.data[slot]));
  int64_t idx[kMaxRank];
  int64_t rest = start, offset = 0;
  for (int k = rank - 1; k >= 0; --k) {
    idx[k] = rest % shape[k];
    rest /= shape[k];
    offset += idx[k] * st[k];
  }
  const int64_t inner = shape[rank - 1], s = st[rank - 1];
  while (count > 0) {
    const int64_t run = std::min(count, inner - idx[rank - 1]);
    T* src = base + offset;
    if constexpr (kGather) {
      if (s == 1) {
        std::memcpy(buf, src, static_cast<size_t>(run) * sizeof(T));
      } else if (s == 0) {
        std::fill(buf, buf + run, *src);
      } else {
        for (int64_t j = 0; j < run; ++j) buf[j] = src[j * s];
      }
    } else {
      for (int64_t j = 0; j < run; ++j) src[j * s] = buf[j];
    }
    buf += run;
    count -= run;
    offset += run * s;
    idx[rank - 1] += run;
    for (int k = rank - 1; k > 0 && idx[k] == shape[k]; --k) {
      offset -= shape[k] * st[k];
      idx[k] = 0;
      ++idx[k - 1];
      offset += st[k - 1];
    }
  }
}

// Per-thread staging buffers for one block of every operand.
struct Scratch {
  alignas(64) double buf[kSlots][kBlock];
};

Scratch& ThreadScratch() {
  thread_local std::unique_ptr<Scratch> scratch;
  if (!scratch) scratch.reset(new Scratch);
  return *scratch;
}

// Per-thread staging of the outputs (gradient, aux gradient, losses) of
// kStageBlocks blocks, for large outputs not aligned for streaming stores.
constexpr int64_t kStageBlocks = 8;
struct StageBuffers {
  alignas(64) double buf[3][kStageBlocks * kBlock];
};

StageBuffers& ThreadStage() {
  thread_local std::unique_ptr<StageBuffers> stage;
  if (!stage) stage.reset(new StageBuffers);
  return *stage;
}



template <typename T>
struct Executor {
  const Plan& plan;
  const void* functor;
  ElementwiseKernel kernel;
  double grad_scale;
  bool want_sum;
  bool stream;
  // Large outputs not aligned for the kernels' streaming stores: each block
  // is written to the thread's scratch, then streamed out (StreamCopy).
  bool stage = false;
  bool check_y = false;
  // The kernel checks y as it reads it (KernelArgs::y_outside); the position
  // of the first bad value is then searched in the chunk that reported it.
  bool fused_check = false;
  T y_lo = 0, y_hi = 1;
  // The first flat position of y_true found outside [y_lo, y_hi] (minimum
  // over threads), or INT64_MAX.
  mutable std::atomic<int64_t> bad_y{std::numeric_limits<int64_t>::max()};
  // The same for aux, checked before the kernel (never fused).
  bool check_aux = false;
  T aux_lo = 0, aux_hi = 0;
  mutable std::atomic<int64_t> bad_aux{std::numeric_limits<int64_t>::max()};

  // False (and bad_y / bad_aux updated) if y or aux [0, n) at flat position
  // `start` fails its range check: the chunk is then skipped.
  bool CheckInputs(const T* y, const T* aux, int64_t start, int64_t n) const {
    if (check_aux && !Found(aux, start, n, aux_lo, aux_hi, bad_aux)) return false;
    if (!check_y || fused_check) return true;
    return Found(y, start, n, y_lo, y_hi, bad_y);
  }
  // Runs the kernel on `a` (y at flat position `start`, n elements); false
  // if the fused check found a y outside the range (bad_y updated).
  bool Kernel(KernelArgs& a, const T* y, int64_t start, int64_t n) const {
    bool outside = false;
    if (check_y && fused_check) {
      a.y_outside = &outside;
      a.y_lo = static_cast<double>(y_lo);
      a.y_hi = static_cast<double>(y_hi);
    }
    kernel(functor, a);
    return !outside || Found(y, start, n, y_lo, y_hi, bad_y);
  }
  // False (and `bad` updated) if x[0, n) has a value outside [lo, hi].
  static bool Found(const T* x, int64_t start, int64_t n, T lo, T hi,
                    std::atomic<int64_t>& bad) {
    const int64_t i = FirstOutside(x, n, lo, hi);
    if (i < 0) return true;
    int64_t cur = bad.load();
    while (start + i < cur && !bad.compare_exchange_weak(cur, start + i)) {
    }
    return false;
  }

  // Blocks [b0, b1) into partials[0, b1 - b0).
  void Blocks(int64_t b0, int64_t b1, double* partials) const {
    if (stage) {
      StagedBlocks(b0, b1, partials);
      return;
    }
    if (plan.all_contiguous) {
      // With a y_true range check, runs of kCheckBlocks blocks: each run's y
      // is checked just before the kernel reads it again, from cache.
      const int64_t step = check_y || check_aux ? kCheckBlocks : b1 - b0;
      for (int64_t c0 = b0; c0 < b1; c0 += step) {
        const int64_t c1 = std::min(b1, c0 + step);
        const int64_t start = c0 * kBlock;
        const int64_t n = std::min(c1 * kBlock, plan.n) - start;
        KernelArgs a = Args(n, partials ? partials + (c0 - b0) : nullptr);
        for (int s = 0; s < kSlots; ++s) {
          if (plan.data[s]) SetPointer(a, s, Base(s) + start);
        }
        if (!CheckInputs(Base(kY) + start, check_aux ? Base(kA) + start : nullptr, start, n)) {
          return;
        }
        if (!Kernel(a, Base(kY) + start, start, n)) return;
        Refold(a);
      }
      return;
    }
    Scratch& scratch = ThreadScratch();
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t start = b * kBlock;
      const int64_t n = std::min(kBlock, plan.n - start);
      KernelArgs a = Args(n, partials + (b - b0));
      for (int s = 0; s < kSlots; ++s) {
        if (!plan.data[s]) continue;
        T* buf = reinterpret_cast<T*>(scratch.buf[s]);
        if (plan.contiguous[s]) {
          SetPointer(a, s, Base(s) + start);
        } else {
          if (s < kGrad) CopyStrided<true>(plan, s, start, n, buf);
          SetPointer(a, s, buf);
        }
      }
      if (!CheckInputs(static_cast<const T*>(a.y), static_cast<const T*>(a.aux), start, n)) {
        return;
      }
      if (!Kernel(a, static_cast<const T*>(a.y), start, n)) return;
      Refold(a);
      for (int s = kGrad; s < kSlots; ++s) {
        if (plan.data[s] && !plan.contiguous[s]) {
          CopyStrided<false>(plan, s, start, n, reinterpret_cast<T*>(scratch.buf[s]));
        }
      }
    }
  }

  // Contiguous operands whose large outputs are not aligned for streaming
  // stores: runs of kStageBlocks blocks, the outputs written to the
  // thread's staging buffers (in cache), then streamed out.
  void StagedBlocks(int64_t b0, int64_t b1, double* partials) const {
    StageBuffers& stage_buf = ThreadStage();
    for (int64_t c0 = b0; c0 < b1; c0 += kStageBlocks) {
      const int64_t c1 = std::min(b1, c0 + kStageBlocks);
      const int64_t start = c0 * kBlock;
      const int64_t n = std::min(c1 * kBlock, plan.n) - start;
      KernelArgs a = Args(n, partials ? partials + (c0 - b0) : nullptr);
      for (int s = 0; s < kSlots; ++s) {
        if (!plan.data[s]) continue;
        SetPointer(a, s, s < kGrad ? Base(s) + start
                                   : reinterpret_cast<T*>(stage_buf.buf[s - kGrad]));
      }
      if (!CheckInputs(Base(kY) + start, check_aux ? Base(kA) + start : nullptr, start, n) ||
          !Kernel(a, Base(kY) + start, start, n)) {
        StreamFence();
        return;
      }
      Refold(a);
      for (int s = kGrad; s < kSlots; ++s) {
        if (plan.data[s]) {
          StreamCopy(Base(s) + start, reinterpret_cast<const T*>(stage_buf.buf[s - kGrad]), n);
        }
      }
    }
    StreamFence();
  }

  // float32 kernels add the weighted losses in float lanes (runs of
  // kFoldVectors vectors) before a block's float64 partial: a run whose sum
  // passes FLT_MAX gives inf (or inf - inf = NaN) where the float64 sum of
  // the same per-element values is finite. Such a block (rare: its losses
  // are near 1e35 or larger, or one is inf or NaN) is evaluated again, its
  // per-element w * l written to a stack buffer and added in float64 (the
  // outputs are not touched again). A block that holds an inf or NaN loss
  // stays non-finite, and so does one whose input the gradient was written
  // over (refold false: in-place calls, see RunElementwise).
  bool refold = true;
  void Refold(const KernelArgs& a) const {
    if constexpr (std::is_same<T, float>::value) {
      if (!a.partials || !refold) return;
      const int64_t blocks = (a.n + kBlock - 1) / kBlock;
      for (int64_t b = 0; b < blocks; ++b) {
        if (std::isfinite(a.partials[b])) continue;
        const int64_t off = b * kBlock, n = std::min(kBlock, a.n - off);
        alignas(64) T losses[kBlock];
        KernelArgs r;
        r.n = n;
        r.grad_scale = a.grad_scale;
        const auto at = [off](const void* ptr) -> const void* {
          return ptr ? static_cast<const T*>(ptr) + off : nullptr;
        };
        r.y = at(a.y);
        r.p = at(a.p);
        r.w = at(a.w);
        r.aux = at(a.aux);
        r.loss = losses;
        kernel(functor, r);
        double sum = 0.0;
        for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(losses[i]);
        a.partials[b] = sum;
      }
    } else {
      (void)a;
    }
  }

  KernelArgs Args(int64_t n, double* partials) const {
    KernelArgs a;
    a.n = n;
    a.grad_scale = grad_scale;
    a.partials = want_sum ? partials : nullptr;
    a.stream = stream;
    return a;
  }

  static void SetPointer(KernelArgs& a, int slot, T* ptr) {
    switch (slot) {
      case kY: a.y = ptr; break;
      case kP: a.p = ptr; break;
      case kW: a.w = ptr; break;
      case kA: a.aux = ptr; break;
      case kGrad: a.grad = ptr; break;
      case kAuxGrad: a.aux_grad = ptr; break;
      default: a.loss = ptr; break;
    }
  }

  T* Base(int slot) const { return const_cast<T*>(static_cast<const T*>(plan.data[slot])); }

  // The exact sum of the block partials (the same for any thread count and
  // any split of the input on block boundaries).
  ExactSum Run(int threads) const {
    const int64_t blocks = (plan.n + kBlock - 1) / kBlock;
    ExactSum total;
    double partials[kRoundBlocks];
    for (int64_t r0 = 0; r0 < blocks; r0 += kRoundBlocks) {
      const int64_t nr = std::min(kRoundBlocks, blocks - r0);
      if (threads <= 1) {
        Blocks(r0, r0 + nr, partials);
      } else {
        const int64_t tasks = (nr + kChunkBlocks - 1) / kChunkBlocks;
        ParallelFor(tasks, threads, [&](int64_t t) {
          const int64_t b0 = r0 + t * kChunkBlocks;
          const int64_t b1 = std::min(b0 + kChunkBlocks, r0 + nr);
          Blocks(b0, b1, partials + (b0 - r0));
        });
      }
      if (want_sum) {
        for (int64_t i = 0; i < nr; ++i) total.Add(partials[i]);
      }
    }
    return total;
  }
};

int ThreadsFor(int64_t n, int cost) {
  if (n * std::max(cost, 1) < kParallelWork) return 1;
  const int64_t chunks = (n + kBlock * kChunkBlocks - 1) / (kBlock * kChunkBlocks);
  return static_cast<int>(std::min<int64_t>(GetNumThreads(), std::max<int64_t>(chunks, 1)));
}

// Outputs larger than this are written with non-temporal stores: they cannot
// stay in cache anyway, and streaming saves reading each destination line
// before overwriting it (a third of the traffic of a value_and_grad call).
constexpr int64_t kStreamBytes = int64_t{8} << 20;

// How a call writes its outputs: ordinary stores; streamed by the kernels
// (every output 64-byte aligned); or staged per block and streamed out
// (Executor::stage). `large`: the outputs are part of a larger whole (a
// segment of a segmented call) that streams.
enum class OutputMode { kStore, kStream, kStage };

template <typename T>
OutputMode OutputModeOf(const Plan& plan, bool large) {
  if (!plan.all_contiguous ||
      (!large && plan.n * static_cast<int64_t>(sizeof(T)) < kStreamBytes)) {
    return OutputMode::kStore;
  }
  bool any = false, aligned = true;
  for (int s = kGrad; s < kSlots; ++s) {
    if (!plan.data[s]) continue;
    const uintptr_t a = reinterpret_cast<uintptr_t>(plan.data[s]);
    if (a % sizeof(T) != 0) return OutputMode::kStore;
    if (a % 64 != 0) aligned = false;
    any = true;
  }
  if (!any) return OutputMode::kStore;
  return aligned ? OutputMode::kStream : OutputMode::kStage;
}

template <typename T>
void SetOutputMode(Executor<T>& ex, bool large) {
  const OutputMode mode = OutputModeOf<T>(ex.plan, large);
  ex.stream = mode == OutputMode::kStream;
  ex.stage = mode == OutputMode::kStage;
}

template <typename T>
ExactSum Sum(const Plan& plan, const void* functor, int cost, ElementwiseKernel kernel,
             double grad_scale, bool want_sum) {
  Executor<T> ex{plan, functor, kernel, grad_scale, want_sum, false};
  return ex.Run(ThreadsFor(plan.n, cost));
}

// sum(w) over w broadcast to `shape`: the distinct elements once (through the
// same deterministic blocked driver), times how often broadcasting repeats
// each of them.
template <typename T>
ExactSum WeightTotal(const View<const T>& w, const int64_t* strides, const int64_t* shape,
                     int rank) {
  Plan plan;
  int64_t repeats = 1;
  for (int k = 0; k < rank; ++k) {
    if (strides[k] == 0) {
      repeats *= shape[k];
    } else {
      plan.shape[plan.rank] = shape[k];
      plan.strides[kY][plan.rank] = strides[k];
      plan.strides[kP][plan.rank] = strides[k];
      plan.n *= shape[k];
      ++plan.rank;
    }
  }
  plan.data[kY] = plan.data[kP] = w.data;
  plan.Coalesce();
  static const losses::Identity identity;
  ExactSum total = Sum<T>(plan, &identity, losses::Identity::kCost,
                         ElementwiseKernelFor<losses::Identity, T>(), 1.0, true);
  total.MultiplyBy(repeats);
  return total;
}

std::string Num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", x);
  return buf;
}

// Per-segment values (Call::segments) in one pass over contiguous operands:
// per small segment one kernel call over its elements, its block partials
// (blocks counted from the segment's start, as a call on the segment alone
// counts them) folded exactly; large segments, and calls the fast path does
// not cover (strided operands, broadcast weights, range checks, a second
// gradient), run as the loss's own call on each segment. Either way each
// value is the bits of the call on that segment alone.
template <typename T>
double RunSegments(const char* name, const void* functor, int cost, ElementwiseKernel kernel,
                   const Call<T>& call, const ElementwiseExtras<T>& extras) {
  const SegmentOutputs<T>& sg = *call.segments;
  Call<T> whole = call;
  whole.segments = nullptr;
  if (call.reduction == Reduction::kNone) {
    throw Error(std::string(name) + ": segments need reduction 'mean' or 'sum', not 'none'");
  }
  if (call.state) {
    throw Error(std::string(name) + ": a segmented call adds to per-segment states, not call.state");
  }
  if (call.losses) throw Error(std::string(name) + ": a segmented call writes no losses");
  {
    ElementwiseExtras<T> v = extras;
    v.validate_only = true;  // every shape, output and overlap check, no data read
    RunElementwise<T>(name, functor, cost, kernel, whole, v);
  }
  const View<const T>& p = call.y_pred;
  const int64_t n = p.size();
  const std::vector<int64_t> off = CheckedOffsets(name, sg.offsets, n, "elements");
  const int64_t S = static_cast<int64_t>(off.size()) - 1;
  const bool fast = IsCContiguous(p) && IsCContiguous(call.y_true) &&
                    (!call.grad || IsCContiguous(*call.grad)) &&
                    (!call.weights || (call.weights->size() == n && IsCContiguous(*call.weights))) &&
                    (!extras.aux || (extras.aux->size() == n && IsCContiguous(*extras.aux))) &&
                    !extras.check_y && !extras.check_aux && !extras.aux_grad;
  const bool mean = call.reduction == Reduction::kMean;
  const T* y = call.y_true.data;
  const T* w = call.weights ? call.weights->data : nullptr;
  const T* aux = extras.aux ? extras.aux->data : nullptr;
  T* g = call.grad ? call.grad->data : nullptr;
  // A gradient too large for the cache is streamed out, as the unsegmented
  // call streams it: large segments through their own call; runs of small
  // ones through a Stager (their starts are rarely aligned).
  const bool stream = g && fast && n * static_cast<int64_t>(sizeof(T)) >= kStreamBytes &&
                      reinterpret_cast<uintptr_t>(g) % sizeof(T) == 0;
  // The loss's own call on segment s (flat views of the contiguous operands,
  // or through Segmented's slicing).
  auto own_call = [&](int64_t s) {
    Call<T> c = whole;
    const int64_t lo = off[s], m = off[s + 1] - off[s];
    c.y_true = View<const T>::Contiguous(y + lo, {m});
    c.y_pred = View<const T>::Contiguous(p.data + lo, {m});
    if (w) c.weights = View<const T>::Contiguous(w + lo, {m});
    if (g) c.grad = View<T>::Contiguous(g + lo, {m});
    c.state = sg.states ? sg.states + s : nullptr;
    ElementwiseExtras<T> e = extras;
    e.stream_large = stream;
    View<const T> a;
    if (aux) {
      a = View<const T>::Contiguous(aux + lo, {m});
      e.aux = &a;
    }
    sg.values[s] = static_cast<T>(RunElementwise<T>(name, functor, cost, kernel, c, e));
  };
  // The gradient of a run of small segments, staged: each segment's goes to
  // `buf` (buf[0] is g[base]); after it, the whole 64-byte lines before its
  // end are streamed out, the rest moved to the front.
  struct Stager {
    T* g;
    int64_t base;
    std::vector<T> buf;
    T* At(int64_t lo, int64_t m) {
      const size_t need = static_cast<size_t>(lo - base + m);
      if (buf.size() < need) buf.resize(need);
      return buf.data() + (lo - base);
    }
    void Done(int64_t hi) {
      const uintptr_t origin = reinterpret_cast<uintptr_t>(g);
      const uintptr_t end = reinterpret_cast<uintptr_t>(g + hi) & ~uintptr_t{63};
      if (end <= reinterpret_cast<uintptr_t>(g + base)) return;
      const int64_t cut = static_cast<int64_t>((end - origin) / sizeof(T));
      StreamCopy(g + base, buf.data(), cut - base);
      std::memmove(buf.data(), buf.data() + (cut - base),
                   static_cast<size_t>(hi - cut) * sizeof(T));
      base = cut;
    }
    void Finish(int64_t hi) {
      StreamCopy(g + base, buf.data(), hi - base);
      base = hi;
      StreamFence();
    }
  };
  if (aux && !(extras.aux->size() == n && IsCContiguous(*extras.aux))) {
    throw Error(std::string(name) + ": segments with an array " + extras.aux_name +
                " need it of y_pred's shape and C-contiguous (broadcast it first)");
  }
  if (!fast) {
    // Segmented slices the call's operands; aux (of y_pred's shape, C
    // order) is sliced here alike: the segment's elements start at the same
    // flat position in both.
    const std::function<double(const Call<T>&)> run = [&](const Call<T>& c) {
      ElementwiseExtras<T> e = extras;
      View<const T> a;
      if (aux) {
        a = c.y_pred;
        a.data = aux + (c.y_pred.data - p.data);
        e.aux = &a;
      }
      return RunElementwise<T>(name, functor, cost, kernel, c, e);
    };
    Segmented<T, Call<T>>(name, whole, sg.offsets, sg.values, true, p.rank, run, sg.states);
    return 0.0;
  }
  static const losses::Identity identity;
  const ElementwiseKernel sum_kernel = ElementwiseKernelFor<losses::Identity, T>();
  // One small segment: its kernel call, its partials folded exactly.
  // A task's scratch: the block partials and the kernels' arguments, made
  // once per task (zeroing a KernelArgs per segment cost a tenth of a
  // small segment's time), their per-segment fields set before each call.
  struct SmallScratch {
    std::vector<double> partials;
    KernelArgs wa, la;
    int64_t prefetched = -1;  // inputs requested up to this element
  };
  // The kernels prefetch kPrefetchBytes ahead in their unrolled loop only,
  // which a segment of a hundred elements enters once or not at all: for
  // short segments the task requests the inputs' lines up to
  // kPrefetchBytes past each segment's end itself (1e5 segments over 1e7
  // float32, value: 1.8x -> 1.45x the unsegmented call on a Zen 4). A
  // longer segment's own loop has requested them.
  auto prefetch_to = [&](SmallScratch& sc, int64_t hi, int64_t m) {
    constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));
    constexpr int64_t kAhead = static_cast<int64_t>(kPrefetchBytes / sizeof(T));
    const int64_t ahead = hi + kAhead;
    int64_t i = std::max(sc.prefetched, hi) & ~(kLine - 1);
    sc.prefetched = ahead;
    if (m >= kAhead) return;
    // Addresses formed as integers: never a pointer out of range.
    const uintptr_t ya = reinterpret_cast<uintptr_t>(y), pa = reinterpret_cast<uintptr_t>(p.data),
                    wa = reinterpret_cast<uintptr_t>(w), xa = reinterpret_cast<uintptr_t>(aux);
    for (; i < ahead; i += kLine) {
      const uintptr_t off_i = static_cast<uintptr_t>(i) * sizeof(T);
      hwy::Prefetch(reinterpret_cast<const T*>(ya + off_i));
      hwy::Prefetch(reinterpret_cast<const T*>(pa + off_i));
      if (wa) hwy::Prefetch(reinterpret_cast<const T*>(wa + off_i));
      if (xa) hwy::Prefetch(reinterpret_cast<const T*>(xa + off_i));
    }
  };
  auto small = [&](int64_t s, SmallScratch& scratch, Stager* stager) {
    std::vector<double>& partials = scratch.partials;
    const int64_t lo = off[s], m = off[s + 1] - off[s];
    LossState* st = sg.states ? sg.states + s : nullptr;
    if (m == 0) {
      sg.values[s] = static_cast<T>(mean ? std::numeric_limits<double>::quiet_NaN() : 0.0);
      return;
    }
    const int64_t blocks = (m + kBlock - 1) / kBlock;
    partials.resize(static_cast<size_t>(blocks));
    prefetch_to(scratch, lo + m, m);
    // The weights' block partials (the mean's denominator), then the loss's
    // with the segment's mean scale; false if a float32 block's lane sums
    // overflowed: the segment's own call then redoes it (it refolds such
    // blocks in float64; the gradient is rewritten alike).
    auto weight_partials = [&]() {
      KernelArgs& a = scratch.wa;
      a.n = m;
      a.grad_scale = 1.0;
      a.partials = partials.data();
      a.y = a.p = w + lo;
      sum_kernel(&identity, a);
    };
    auto loss_partials = [&](double grad_scale) {
      KernelArgs& a = scratch.la;
      a.n = m;
      a.grad_scale = grad_scale;
      a.partials = partials.data();
      a.y = y + lo;
      a.p = p.data + lo;
      a.w = w ? w + lo : nullptr;
      a.aux = aux ? aux + lo : nullptr;
      a.grad = stager ? stager->At(lo, m) : g ? g + lo : nullptr;
      kernel(functor, a);
      for (int64_t b = 0; b < blocks; ++b) {
        if (!std::isfinite(partials[b]) && std::is_same<T, float>::value) return false;
      }
      return true;
    };
    // The segment's own call, its gradient copied into the staging that
    // will be streamed over it.
    auto redo = [&]() {
      own_call(s);
      if (stager) std::copy(g + lo, g + lo + m, stager->At(lo, m));
    };
    if (!st) {
      // No state: the partials' exact sums rounded by ExactSum::Sum (Round's
      // bits; a few blocks touch no limbs, which cost a segment of one to
      // a few blocks several times its kernel call).
      const int64_t nb = blocks;
      double den1 = static_cast<double>(m);
      if (w && mean) {
        weight_partials();
        den1 = ExactSum::Sum(partials.data(), nb);
      }
      if (!loss_partials(mean && g ? MeanScale(den1) : 1.0)) {
        redo();
        return;
      }
      const double total = ExactSum::Sum(partials.data(), nb);
      sg.values[s] = static_cast<T>(mean ? MeanOf(total, den1) : total);
      return;
    }
    auto fold = [&]() {
      ExactSum e;
      for (int64_t b = 0; b < blocks; ++b) e.Add(partials[b]);
      return e;
    };
    ExactSum den = ExactOf(static_cast<double>(m));
    if (w && (mean || st)) {
      weight_partials();
      den = fold();
    }
    if (!loss_partials(mean && g ? MeanScale(den.Round()) : 1.0)) {
      redo();
      return;
    }
    const ExactSum total = fold();
    sg.values[s] = static_cast<T>(Reduced(call.reduction, total, den, m, st));
  };
  // Large segments use the threads inside their own call, one after the
  // other; small ones are grouped into tasks of about kParallelWork element
  // costs spread over the threads.
  struct Task {
    int64_t begin, end;
  };
  std::vector<Task> small_tasks;
  std::vector<int64_t> large;
  int64_t work = 0;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t cost_s = (off[s + 1] - off[s]) * std::max(cost, 1);
    if (cost_s >= kParallelWork) {
      large.push_back(s);
      continue;
    }
    if (small_tasks.empty() || work >= kParallelWork) {
      small_tasks.push_back({s, s + 1});
      work = 0;
    }
    small_tasks.back().end = s + 1;
    work += cost_s + 64;  // a call's own cost, for runs of empty segments
  }
  for (int64_t s : large) own_call(s);
  std::vector<std::exception_ptr> errors(small_tasks.size());
  auto run_small = [&](int64_t t) {
    try {
      SmallScratch scratch;
      const Task& task = small_tasks[static_cast<size_t>(t)];
      if (!stream) {
        for (int64_t s = task.begin; s < task.end; ++s) small(s, scratch, nullptr);
        return;
      }
      // Staged gradients go out once 16 KiB have gathered (a StreamCopy
      // per segment of a hundred elements cost more than the copy).
      constexpr int64_t kStageOut = (int64_t{1} << 14) / static_cast<int64_t>(sizeof(T));
      Stager stager{g, off[task.begin], {}};
      for (int64_t s = task.begin; s < task.end; ++s) {
        small(s, scratch, &stager);
        if (off[s + 1] - stager.base >= kStageOut) stager.Done(off[s + 1]);
      }
      stager.Finish(off[task.end]);
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  };
  const int64_t ntasks = static_cast<int64_t>(small_tasks.size());
  const int threads = static_cast<int>(std::min<int64_t>(GetNumThreads(), ntasks));
  if (threads <= 1) {
    for (int64_t t = 0; t < ntasks; ++t) run_small(t);
  } else {
    ParallelFor(ntasks, threads, [&](int64_t t) { run_small(t); });
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return 0.0;
}

}  // namespace

template <typename T>
double RunElementwise(const char* name, const void* functor, int cost,
                      ElementwiseKernel kernel, const Call<T>& call,
                      const ElementwiseExtras<T>& extras) {
  if (call.segments) return RunSegments<T>(name, functor, cost, kernel, call, extras);
  const std::string loss_name(name);
  CheckView(name, "y_true", call.y_true);
  CheckView(name, "y_pred", call.y_pred);
  CheckSameShape(name, "y_true", call.y_true, "y_pred", call.y_pred);
  const View<const T>& p = call.y_pred;
  CheckState(name, call.reduction, call.state);
  const bool none = call.reduction == Reduction::kNone;
  const bool store = none && call.losses.has_value();
  if (none && !call.losses.has_value() && !call.grad.has_value() && !extras.aux_grad) {
    throw Error(std::string(name) + ": reduction 'none' needs an output (losses or grad)");
  }
  if (call.grad.has_value()) {
    CheckView(name, "grad", *call.grad);
    CheckSameShape(name, "grad", *call.grad, "y_pred", p);
    CheckDistinctElements(name, kGradArg, *call.grad);
  }
  if (store) {
    CheckView(name, "losses", *call.losses);
    CheckSameShape(name, "losses", *call.losses, "y_pred", p);
    CheckDistinctElements(name, "losses", *call.losses);
  }

  Plan plan;
  plan.rank = p.rank;
  for (int k = 0; k < p.rank; ++k) {
    plan.shape[k] = p.shape[k];
    plan.n *= p.shape[k];
    plan.strides[kY][k] = call.y_true.strides[k];
    plan.strides[kP][k] = p.strides[k];
    plan.strides[kGrad][k] = call.grad.has_value() ? call.grad->strides[k] : 0;
    plan.strides[kLoss][k] = store ? call.losses->strides[k] : 0;
  }
  if (call.weights.has_value()) {
    BroadcastTo(name, "weights", *call.weights, p, plan.strides[kW]);
    plan.data[kW] = call.weights->data;
  }
  if (extras.aux) {
    BroadcastTo(name, extras.aux_name, *extras.aux, p, plan.strides[kA]);
  }
  if (extras.aux_grad) {
    // The gradient of an input is of that input's shape: aux is not broadcast.
    if (!extras.aux) throw Error(std::string(name) + ": a gradient of aux needs aux");
    CheckSameShape(name, extras.aux_name, *extras.aux, "y_pred", p);
    CheckView(name, extras.aux_grad_name, *extras.aux_grad);
    CheckSameShape(name, extras.aux_grad_name, *extras.aux_grad, extras.aux_name, *extras.aux);
    CheckDistinctElements(name, extras.aux_grad_name, *extras.aux_grad);
    std::copy(extras.aux_grad->strides, extras.aux_grad->strides + p.rank,
              plan.strides[kAuxGrad]);
  }

  const double n = static_cast<double>(plan.n);
  if (plan.n == 0) {
    return call.reduction == Reduction::kMean ? std::numeric_limits<double>::quiet_NaN()
                                              : 0.0;
  }
  // The denominator: the weights' exact total (for a mean, or a state), or
  // the count.
  ExactSum wsum = ExactOf(n);
  if (call.weights.has_value() && (call.reduction == Reduction::kMean || call.state)) {
    wsum = WeightTotal<T>(*call.weights, plan.strides[kW], plan.shape, plan.rank);
  }
  // A mean over a zero total weight is NaN with a zero gradient (MeanOf).
  const double grad_scale =
      call.reduction == Reduction::kMean ? MeanScale(wsum.Round()) : 1.0;

  plan.data[kY] = call.y_true.data;
  plan.data[kP] = p.data;
  plan.data[kA] = extras.aux ? extras.aux->data : nullptr;
  plan.data[kGrad] = call.grad.has_value() ? call.grad->data : nullptr;
  plan.data[kAuxGrad] = extras.aux_grad ? extras.aux_grad->data : nullptr;
  plan.data[kLoss] = store ? call.losses->data : nullptr;
  {
    // Over the broadcast operands: an output aliases an input exactly when
    // it walks the same addresses in the same order.
    // Two outputs share no memory at all.
    const char* const kNames[kSlots] = {"y_true", "y_pred", "weights", extras.aux_name,
                                        kGradArg, extras.aux_grad_name, "losses"};
    for (int out = kGrad; out < kSlots; ++out) {
      if (!plan.data[out]) continue;
      for (int in = 0; in < out; ++in) {
        if (plan.data[in]) {
          CheckOutputOverlap(name, kNames[out], plan.data[out], sizeof(T), plan.rank,
                             plan.shape, plan.strides[out], kNames[in], plan.data[in],
                             sizeof(T), plan.rank, plan.shape, plan.strides[in], in < kGrad);
        }
      }
    }
  }
  if (extras.validate_only) return 0.0;
  int64_t shape[kMaxRank];
  std::copy(p.shape, p.shape + p.rank, shape);
  plan.Coalesce();

  Executor<T> ex{plan, functor, kernel, grad_scale, !none, false};
  SetOutputMode(ex, extras.stream_large);
  // An overflowing float32 block is evaluated again from its inputs
  // (Executor::Refold): not when the gradient is written over an input (in
  // place), whose values are gone by then. Saving each block of that input
  // first cost in-place calls 40% in cache; such a block's value stays inf.
  for (int in = kY; in < kGrad; ++in) {
    for (int out = kGrad; out < kLoss; ++out) {
      if (plan.data[in] && plan.data[in] == plan.data[out]) ex.refold = false;
    }
  }
  ex.check_y = extras.check_y;
  // The fused check reads y again to name the bad position: not when an
  // output is written over y_true. Arrays of one check run are checked
  // first, so that a failing call leaves their outputs untouched.
  ex.fused_check = extras.fused_check && plan.n > kCheckBlocks * kBlock &&
                   plan.data[kGrad] != plan.data[kY] && plan.data[kAuxGrad] != plan.data[kY] &&
                   plan.data[kLoss] != plan.data[kY];
  ex.y_lo = static_cast<T>(extras.y_lo);
  ex.y_hi = static_cast<T>(extras.y_hi);
  ex.check_aux = extras.check_aux && extras.aux;
  ex.aux_lo = static_cast<T>(extras.aux_lo);
  ex.aux_hi = static_cast<T>(extras.aux_hi);
  const ExactSum total = ex.Run(ThreadsFor(plan.n, cost));
  const int64_t bad_aux = ex.bad_aux.load();
  if (bad_aux != std::numeric_limits<int64_t>::max()) {
    const std::string range = std::isinf(extras.aux_hi)
                                  ? ">= " + Num(extras.aux_lo)
                                  : "in [" + Num(extras.aux_lo) + ", " + Num(extras.aux_hi) + "]";
    throw Error(loss_name + ": " + extras.aux_name + " must be " + range +
                ", got a value outside at position " + PositionString(bad_aux, shape, p.rank));
  }
  const int64_t bad = ex.bad_y.load();
  if (bad != std::numeric_limits<int64_t>::max()) {
    throw Error(loss_name + ": y_true must be in [" + Num(extras.y_lo) + ", " +
                Num(extras.y_hi) + "], got a value outside at position " +
                PositionString(bad, shape, p.rank));
  }
  return Reduced(call.reduction, total, wsum, plan.n, call.state);
}

template double RunElementwise<float>(const char*, const void*, int, ElementwiseKernel,
                                      const Call<float>&, const ElementwiseExtras<float>&);
template double RunElementwise<double>(const char*, const void*, int, ElementwiseKernel,
                                       const Call<double>&, const ElementwiseExtras<double>&);

}  // namespace internal
}  // namespace fastloss
