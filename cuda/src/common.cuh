// What the CUDA drivers share: storage <-> arithmetic types, the fixed-order
// block sum and the final fold, index spaces over strided operands, and the
// host-side argument checks of device views. Every reduction here is a fixed
// tree over a partition that depends only on the element count, never on
// the device or timing, so results are the same bits on every run.
#ifndef FASTLOSS_CUDA_SRC_COMMON_CUH_
#define FASTLOSS_CUDA_SRC_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>
#include <string>

#include "fastloss/cuda.hpp"
#include "drivers/checks.h"

namespace fastloss {
namespace cuda {
namespace detail {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1024;
constexpr int64_t kMinItemsPerThread = 4;

// Why the last entry point on this thread returned cudaErrorInvalidValue.
std::string& LastError();

// Storage type -> arithmetic type: float for float, half and bfloat16.
template <typename S> struct ComputeOf { using type = float; };
template <> struct ComputeOf<double> { using type = double; };

template <typename C> __device__ __forceinline__ C ToCompute(float x) { return x; }
template <typename C> __device__ __forceinline__ C ToCompute(double x) { return x; }
template <typename C> __device__ __forceinline__ C ToCompute(__half x) { return __half2float(x); }
template <typename C> __device__ __forceinline__ C ToCompute(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <typename S> __device__ __forceinline__ S FromCompute(float x) { return x; }
template <> __device__ __forceinline__ __half FromCompute<__half>(float x) {
  return __float2half_rn(x);
}
template <> __device__ __forceinline__ __nv_bfloat16 FromCompute<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <typename S> __device__ __forceinline__ S FromCompute(double x) {
  return static_cast<S>(x);
}

// Block sum of v in a fixed tree (every thread of the block calls it).
__device__ __forceinline__ double BlockSum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

// How FoldKernel turns the total into the value.
enum FoldMode { kFoldSum = 0, kFoldMeanCount = 1, kFoldMeanWsum = 2 };

// One block: the partials folded in index order (thread t takes t, t + 256,
// ... in order, then a fixed tree). The value (total, mean over `count`, or
// mean over *wsum) is stored to *out.
template <typename R>
__global__ void __launch_bounds__(kThreads)
    FoldKernel(const double* partials, int64_t blocks, int mode, double count, const double* wsum,
               R* out) {
  __shared__ double shared[kThreads];
  double acc = 0.0;
  for (int64_t b = threadIdx.x; b < blocks; b += kThreads) acc += partials[b];
  const double total = BlockSum(acc, shared);
  if (threadIdx.x == 0) {
    double v = total;
    if (mode == kFoldMeanCount) v = total / count;
    // A mean over a zero total weight is NaN with a zero gradient (the CPU
    // drivers' MeanOf / MeanScale).
    if (mode == kFoldMeanWsum) v = *wsum != 0.0 ? total / *wsum : CUDART_NAN;
    *out = static_cast<R>(v);
  }
}

// *out = v[0] + ... + v[n - 1] in order, rounded once (the adversarial
// losses' sum of per-array values, as the CPU adds them in double).
template <typename R>
__global__ void SumValuesKernel(const double* v, int n, R* out) {
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += v[i];
  *out = static_cast<R>(total);
}

// Blocks for a grid-stride loop over n items: a function of n alone.
inline int64_t BlocksFor(int64_t items) {
  const int64_t per_block = kThreads * kMinItemsPerThread;
  int64_t blocks = (items + per_block - 1) / per_block;
  if (blocks < 1) blocks = 1;
  return blocks < kMaxBlocks ? blocks : kMaxBlocks;
}

// A C-order index space with per-operand strides (in elements).
template <int kOps>
struct Space {
  int rank = 0;
  int64_t n = 1;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kOps][kMaxRank] = {};

  __host__ __device__ __forceinline__ void Offsets(int64_t i, int64_t* off) const {
    for (int s = 0; s < kOps; ++s) off[s] = 0;
    for (int k = rank - 1; k >= 0; --k) {
      const int64_t j = i % shape[k];
      i /= shape[k];
      for (int s = 0; s < kOps; ++s) off[s] += j * strides[s][k];
    }
  }
  // Merges dimensions that are contiguous for every used operand.
  void Coalesce(const bool* used) {
    rank = internal::CoalesceDims(rank, shape, strides, kOps, used);
  }
};

// The weights' total over a space (operand `op`), for a weighted mean: each
// thread sums its items of a grid-stride loop in order, then a block tree.
template <typename S, int kOps>
__global__ void __launch_bounds__(kThreads)
    SpaceWeightSumKernel(Space<kOps> space, int op, const S* w, double* partials) {
  __shared__ double shared[kThreads];
  using C = typename ComputeOf<S>::type;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * kThreads;
  double acc = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < space.n;
       i += threads) {
    int64_t off[kOps];
    space.Offsets(i, off);
    acc += static_cast<double>(ToCompute<C>(w[off[op]]));
  }
  const double block = BlockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = block;
}

// --- Host-side checks of device views ------------------------------------------

size_t ItemSize(DType t);
const char* DTypeName(DType t);
// The argument checks of drivers/checks.h work on anything with rank,
// shape, strides and data (a View<const char> of the device view).
View<const char> AsView(const DeviceView& v);
void CheckDType(const char* name, const char* arg, const DeviceView& v, DType t);

// One operand of a call for CheckOperands: its memory (shape and strides in
// elements) and whether the call writes it.
struct Operand {
  const char* name = "";
  const void* data = nullptr;  // nullptr: absent
  int rank = 0;
  const int64_t* shape = nullptr;
  const int64_t* strides = nullptr;
  bool output = false;
};
// Every present pointer aligned to `item` bytes (a misaligned access is a
// sticky error that ends the context, the caller's too); no output with a
// zero stride over a dimension > 1 (threads would race); no output sharing
// memory with another operand unless it is the exact same view (in place).
void CheckOperands(const char* name, size_t item, const Operand* ops, int n);

// Runs f() (which checks, then launches) with the entry points' error
// convention: an Error becomes cudaErrorInvalidValue and LastError().
template <class F>
cudaError_t Guarded(F&& f) {
  LastError().clear();
  try {
    return f();
  } catch (const Error& e) {
    LastError() = e.what();
    return cudaErrorInvalidValue;
  }
}

// Scratch memory on the stream, freed on it when the work is enqueued.
class Scratch {
 public:
  Scratch(size_t doubles, cudaStream_t stream) : stream_(stream) {
    cudaGetLastError();  // a stale (non-sticky) error of earlier, unrelated work
    error_ = cudaMallocAsync(&ptr_, sizeof(double) * (doubles ? doubles : 1), stream);
  }
  ~Scratch() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  cudaError_t error() const { return error_; }
  double* get() const { return static_cast<double*>(ptr_); }
  // The launch error, else the free's.
  cudaError_t Finish() {
    const cudaError_t err = cudaGetLastError();
    const cudaError_t free_err = ptr_ ? cudaFreeAsync(ptr_, stream_) : cudaSuccess;
    ptr_ = nullptr;
    return err != cudaSuccess ? err : free_err;
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
  cudaError_t error_ = cudaSuccess;
};

// Calls f(S{}) with the storage type of `t` (float, double, __half,
// __nv_bfloat16).
template <class F>
cudaError_t WithStorage(DType t, F&& f) {
  switch (t) {
    case DType::kFloat64: return f(double{});
    case DType::kFloat32: return f(float{});
    case DType::kFloat16: return f(__half{});
    case DType::kBFloat16: return f(__nv_bfloat16{});
  }
  return cudaErrorInvalidValue;
}

// Stores the reduced value: FoldKernel into *result as double for float64
// inputs, float otherwise.
inline void LaunchFold(bool f64, const double* partials, int64_t blocks, int mode, double count,
                       const double* wsum, void* result, cudaStream_t stream) {
  if (f64) {
    FoldKernel<double><<<1, kThreads, 0, stream>>>(partials, blocks, mode, count, wsum,
                                                    static_cast<double*>(result));
  } else {
    FoldKernel<float><<<1, kThreads, 0, stream>>>(partials, blocks, mode, count, wsum,
                                                   static_cast<float*>(result));
  }
}

// The weighted mean's denominator: the weights (operand `op` of `space`,
// storage S) summed over `blocks` blocks into wpartials, folded into *wsum.
template <typename S, int kOps>
void LaunchWeightSum(const Space<kOps>& space, int op, const void* w, int64_t blocks,
                     double* wpartials, double* wsum, cudaStream_t stream) {
  SpaceWeightSumKernel<S, kOps><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      space, op, static_cast<const S*>(w), wpartials);
  FoldKernel<double><<<1, kThreads, 0, stream>>>(wpartials, blocks, kFoldSum, 0.0, nullptr, wsum);
}

// The call's value from the block partials of w l: the sum, the mean over
// `count`, or (weights given) the mean over *wsum; stored to call.result, or
// as a double to `value_slot` when given (a part of a sum). Nothing for
// kNone, or without a destination.
inline void LaunchValue(const DeviceCall& call, bool f64, const double* partials, int64_t blocks,
                        double count, const double* wsum, double* value_slot,
                        cudaStream_t stream) {
  if (call.reduction == Reduction::kNone) return;
  const int mode = call.reduction == Reduction::kSum
                       ? kFoldSum
                       : (call.weights.has_value() ? kFoldMeanWsum : kFoldMeanCount);
  if (value_slot) {
    LaunchFold(true, partials, blocks, mode, count, wsum, value_slot, stream);
  } else if (call.result) {
    LaunchFold(f64, partials, blocks, mode, count, wsum, call.result, stream);
  }
}

// `result` (one float, or double for float64 inputs) aligned to its size.
inline void CheckResult(const char* name, const DeviceCall& call) {
  const size_t size = call.y_pred.dtype == DType::kFloat64 ? 8 : 4;
  if (call.result && reinterpret_cast<uintptr_t>(call.result) % size != 0) {
    throw Error(std::string(name) + ": result's data is not aligned to its " +
                std::to_string(size) + "-byte element size");
  }
}

}  // namespace detail
}  // namespace cuda
}  // namespace fastloss

#endif  // FASTLOSS_CUDA_SRC_COMMON_CUH_
