// The elementwise + reduce driver on the GPU: the CPU's loss functors
// (cpp/src/losses/*-inl.h through ScalarMath, compiled as device code) and
// the CPU's option checks and functor construction (internal/builders.h),
// run by one grid-stride kernel and a deterministic two-stage reduction.
//
// Partition: elements are taken in packs of kPack = 16 / sizeof(storage)
// consecutive elements; thread t of the grid handles packs t, t + T, t + 2T,
// ... (T threads in all), the elements of a pack in order, summing w * l in
// float64. The block count depends only on the element count and the dtype,
// never on the device or on alignment: aligned contiguous inputs load a pack
// with one 16-byte load, others element by element, in the same order, so
// the bits are the same either way. Each block folds its threads' sums in a
// fixed tree; one final block folds the block partials in index order.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "fastloss/cuda.hpp"
#include "internal/builders.h"
#include "internal/checks.h"

namespace fastloss {
namespace cuda {
namespace {

thread_local std::string g_last_error;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1024;
constexpr int64_t kMinPacksPerThread = 4;

// Operands of the plan.
enum Slot { kY = 0, kP, kW, kG, kL, kSlots };

struct Plan {
  int rank = 0;
  int64_t n = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kSlots][kMaxRank] = {};
  void* data[kSlots] = {};
  bool contiguous = false;  // rank 1, every operand stride 1 (weights: 1 or 0)
  bool aligned = false;     // contiguous and every pointer 16-byte aligned
};

struct Params {
  double scale = 1.0;               // gradient scale (mean: 1 / count)
  const double* wsum = nullptr;     // weighted mean: 1 / *wsum instead
  bool check_y = false;
  double y_lo = 0.0, y_hi = 1.0;
  bool accumulate = true;           // mean / sum (not kNone)
};

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

template <typename S>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(S);
  S v[kSize];
};

// Offsets of flat element e (C order over plan.shape) for every operand.
__device__ __forceinline__ void Offsets(const Plan& plan, int64_t e, int64_t* off) {
  for (int s = 0; s < kSlots; ++s) off[s] = 0;
  for (int k = plan.rank - 1; k >= 0; --k) {
    const int64_t i = e % plan.shape[k];
    e /= plan.shape[k];
    for (int s = 0; s < kSlots; ++s) off[s] += i * plan.strides[s][k];
  }
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

// One element: loss and gradient through the functor, outputs stored.
template <class Loss, typename S, bool kGrad>
__device__ __forceinline__ double Element(const Loss& f, const Params& prm, double scale,
                                          S y_s, S p_s, S w_s, bool has_w, S* g, S* l) {
  using C = typename ComputeOf<S>::type;
  const internal::ScalarMath<C> m;
  const C y = ToCompute<C>(y_s), p = ToCompute<C>(p_s);
  const C w = has_w ? ToCompute<C>(w_s) : C(1);
  C dl = C(0);
  C loss = f.template Eval<kGrad>(m, y, p, dl);
  // y_true outside the loss's range: NaN loss and gradient (the CPU raises;
  // the GPU cannot without waiting for the device). NaN carries through the
  // reduction, so the value is NaN too.
  if (prm.check_y && (y < static_cast<C>(prm.y_lo) || y > static_cast<C>(prm.y_hi))) {
    loss = dl = m.Div(m.Zero(), m.Zero());
  }
  const C wl = w * loss;
  if constexpr (kGrad) {
    if (g) *g = FromCompute<S>(static_cast<C>(dl * w * static_cast<C>(scale)));
  }
  if (l) *l = FromCompute<S>(wl);
  return static_cast<double>(wl);
}

template <class Loss, typename S, bool kGrad>
__global__ void __launch_bounds__(kThreads)
    ElementwiseKernel(Loss f, Plan plan, Params prm, double* partials) {
  __shared__ double shared[kThreads];
  constexpr int kPack = Pack<S>::kSize;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t n = plan.n;
  const int64_t packs = (n + kPack - 1) / kPack;
  const double scale = prm.wsum ? 1.0 / *prm.wsum : prm.scale;
  const S* y = static_cast<const S*>(plan.data[kY]);
  const S* p = static_cast<const S*>(plan.data[kP]);
  const S* w = static_cast<const S*>(plan.data[kW]);
  S* g = kGrad ? static_cast<S*>(plan.data[kG]) : nullptr;
  S* l = static_cast<S*>(plan.data[kL]);
  const bool has_w = w != nullptr;
  double acc = 0.0;
  if (plan.aligned) {
    // Whole packs with 16-byte loads and stores; the last, partial pack
    // element by element (same order).
    const bool w_scalar = has_w && plan.strides[kW][0] == 0;
    for (int64_t j = tid; j < packs; j += threads) {
      const int64_t e0 = j * kPack;
      if (e0 + kPack <= n) {
        const Pack<S> py = reinterpret_cast<const Pack<S>*>(y)[j];
        const Pack<S> pp = reinterpret_cast<const Pack<S>*>(p)[j];
        Pack<S> pw, pg, pl;
        if (has_w) {
          if (w_scalar) {
            for (int k = 0; k < kPack; ++k) pw.v[k] = w[0];
          } else {
            pw = reinterpret_cast<const Pack<S>*>(w)[j];
          }
        }
        for (int k = 0; k < kPack; ++k) {
          acc += Element<Loss, S, kGrad>(f, prm, scale, py.v[k], pp.v[k], has_w ? pw.v[k] : S(),
                                         has_w, g ? &pg.v[k] : nullptr, l ? &pl.v[k] : nullptr);
        }
        if (g) reinterpret_cast<Pack<S>*>(g)[j] = pg;
        if (l) reinterpret_cast<Pack<S>*>(l)[j] = pl;
      } else {
        for (int64_t e = e0; e < n; ++e) {
          acc += Element<Loss, S, kGrad>(f, prm, scale, y[e], p[e],
                                         has_w ? w[w_scalar ? 0 : e] : S(), has_w,
                                         g ? g + e : nullptr, l ? l + e : nullptr);
        }
      }
    }
  } else if (plan.contiguous) {
    const int64_t ws = has_w ? plan.strides[kW][0] : 0;
    for (int64_t j = tid; j < packs; j += threads) {
      const int64_t e0 = j * kPack, e1 = e0 + kPack < n ? e0 + kPack : n;
      for (int64_t e = e0; e < e1; ++e) {
        acc += Element<Loss, S, kGrad>(f, prm, scale, y[e], p[e], has_w ? w[e * ws] : S(),
                                       has_w, g ? g + e : nullptr, l ? l + e : nullptr);
      }
    }
  } else {
    for (int64_t j = tid; j < packs; j += threads) {
      const int64_t e0 = j * kPack, e1 = e0 + kPack < n ? e0 + kPack : n;
      for (int64_t e = e0; e < e1; ++e) {
        int64_t off[kSlots];
        Offsets(plan, e, off);
        acc += Element<Loss, S, kGrad>(f, prm, scale, y[off[kY]], p[off[kP]],
                                       has_w ? w[off[kW]] : S(), has_w,
                                       g ? g + off[kG] : nullptr, l ? l + off[kL] : nullptr);
      }
    }
  }
  if (!prm.accumulate) return;  // uniform over the grid: no barrier is skipped by some
  const double block = BlockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = block;
}

// The weights' total over y_pred's shape (each weight as often as it is
// broadcast), for the weighted mean: same partition as the loss kernel.
template <typename S>
__global__ void __launch_bounds__(kThreads) WeightSumKernel(Plan plan, double* partials) {
  __shared__ double shared[kThreads];
  using C = typename ComputeOf<S>::type;
  constexpr int kPack = Pack<S>::kSize;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t n = plan.n;
  const int64_t packs = (n + kPack - 1) / kPack;
  const S* w = static_cast<const S*>(plan.data[kW]);
  double acc = 0.0;
  for (int64_t j = tid; j < packs; j += threads) {
    const int64_t e0 = j * kPack, e1 = e0 + kPack < n ? e0 + kPack : n;
    for (int64_t e = e0; e < e1; ++e) {
      int64_t off[kSlots];
      Offsets(plan, e, off);
      acc += static_cast<double>(ToCompute<C>(w[off[kW]]));
    }
  }
  const double block = BlockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = block;
}

// One block: the partials folded in index order (thread t takes t, t + 256,
// ... in order, then a fixed tree). mode 0: *out = total; 1: the mean over
// `count`; 2: the mean over *wsum.
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
    if (mode == 1) v = total / count;
    if (mode == 2) v = total / *wsum;
    *out = static_cast<R>(v);
  }
}

size_t ItemSize(DType t) {
  switch (t) {
    case DType::kFloat64: return 8;
    case DType::kFloat32: return 4;
    default: return 2;
  }
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kFloat64: return "float64";
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    default: return "bfloat16";
  }
}

// The argument checks of internal/checks.h work on anything with rank,
// shape, strides and data (a View<const char> of the device view).
View<const char> AsView(const DeviceView& v) {
  View<const char> r;
  r.data = static_cast<const char*>(v.data);
  r.rank = v.rank;
  for (int k = 0; k < v.rank && k < kMaxRank; ++k) {
    r.shape[k] = v.shape[k];
    r.strides[k] = v.strides[k];
  }
  return r;
}

void CheckDType(const char* name, const char* arg, const DeviceView& v, DType t) {
  if (v.dtype != t) {
    throw Error(std::string(name) + ": " + arg + " must have y_pred's dtype " + DTypeName(t) +
                ", got " + DTypeName(v.dtype));
  }
}

// Checks the call and lays out the plan (coalesced dimensions).
Plan MakePlan(const char* name, const DeviceCall& call) {
  const DeviceView& p = call.y_pred;
  const View<const char> pv = AsView(p), yv = AsView(call.y_true);
  internal::CheckView(name, "y_true", yv);
  internal::CheckView(name, "y_pred", pv);
  internal::CheckSameShape(name, "y_true", yv, "y_pred", pv);
  CheckDType(name, "y_true", call.y_true, p.dtype);
  const bool none = call.reduction == Reduction::kNone;
  if (none && !call.has_losses && !call.has_grad) {
    throw Error(std::string(name) + ": reduction 'none' needs an output (losses or grad)");
  }
  Plan plan;
  plan.rank = p.rank;
  plan.n = p.size();
  for (int k = 0; k < p.rank; ++k) {
    plan.shape[k] = p.shape[k];
    plan.strides[kY][k] = call.y_true.strides[k];
    plan.strides[kP][k] = p.strides[k];
  }
  plan.data[kY] = call.y_true.data;
  plan.data[kP] = p.data;
  if (call.has_weights) {
    const View<const char> wv = AsView(call.weights);
    internal::CheckView(name, "weights", wv);
    CheckDType(name, "weights", call.weights, p.dtype);
    internal::BroadcastTo(name, "weights", wv, pv, plan.strides[kW]);
    plan.data[kW] = call.weights.data;
  }
  if (call.has_grad) {
    const View<const char> gv = AsView(call.grad);
    internal::CheckView(name, "grad", gv);
    internal::CheckSameShape(name, "grad", gv, "y_pred", pv);
    CheckDType(name, "grad", call.grad, p.dtype);
    for (int k = 0; k < p.rank; ++k) plan.strides[kG][k] = call.grad.strides[k];
    plan.data[kG] = call.grad.data;
  }
  if (none && call.has_losses) {
    const View<const char> lv = AsView(call.losses);
    internal::CheckView(name, "losses", lv);
    internal::CheckSameShape(name, "losses", lv, "y_pred", pv);
    CheckDType(name, "losses", call.losses, p.dtype);
    for (int k = 0; k < p.rank; ++k) plan.strides[kL][k] = call.losses.strides[k];
    plan.data[kL] = call.losses.data;
  }
  const size_t item = ItemSize(p.dtype);
  const char* names[kSlots] = {"y_true", "y_pred", "weights", "grad", "losses"};
  // A misaligned element pointer would be a sticky CUDA error (it ends the
  // context, the caller's too): refused here.
  for (int s = 0; s < kSlots; ++s) {
    if (plan.data[s] && reinterpret_cast<uintptr_t>(plan.data[s]) % item != 0) {
      throw Error(std::string(name) + ": " + names[s] + "'s data is not aligned to its " +
                  std::to_string(item) + "-byte element size");
    }
  }
  // Outputs may alias an input only as the same view (in place), and may
  // not overlap themselves (a zero stride would make threads race).
  for (int out = kG; out < kSlots; ++out) {
    if (!plan.data[out]) continue;
    for (int k = 0; k < plan.rank; ++k) {
      if (plan.strides[out][k] == 0 && plan.shape[k] > 1) {
        throw Error(std::string(name) + ": " + names[out] +
                    " has a zero stride (a broadcast view): its elements would overlap");
      }
    }
    const internal::Extent eo =
        internal::ExtentOf(plan.data[out], item, plan.shape, plan.strides[out], plan.rank);
    for (int in = 0; in < out; ++in) {
      if (!plan.data[in]) continue;
      const internal::Extent ei =
          internal::ExtentOf(plan.data[in], item, plan.shape, plan.strides[in], plan.rank);
      if (eo.hi <= ei.lo || ei.hi <= eo.lo) continue;
      bool same = plan.data[out] == plan.data[in];
      for (int k = 0; same && k < plan.rank; ++k) {
        same = plan.shape[k] == 1 || plan.strides[out][k] == plan.strides[in][k];
      }
      if (!same) {
        throw Error(std::string(name) + ": " + names[out] + " overlaps " + names[in] +
                    " in memory (only an exact in-place alias is allowed)");
      }
    }
  }
  if (!none && call.result == nullptr && !call.has_grad) {
    throw Error(std::string(name) + ": result must be given (device memory for the value)");
  }
  bool used[kSlots];
  for (int s = 0; s < kSlots; ++s) used[s] = plan.data[s] != nullptr;
  plan.rank = internal::CoalesceDims(plan.rank, plan.shape, plan.strides, kSlots, used);
  if (plan.rank == 0) {
    plan.rank = 1;
    plan.shape[0] = plan.n == 0 ? 0 : 1;
    for (int s = 0; s < kSlots; ++s) plan.strides[s][0] = 1;
  }
  // A scalar weight (every stride 0) on a contiguous run keeps the fast path.
  bool w_scalar = plan.data[kW] != nullptr;
  for (int k = 0; w_scalar && k < plan.rank; ++k) w_scalar = plan.strides[kW][k] == 0;
  plan.contiguous = plan.rank == 1;
  for (int s = 0; plan.contiguous && s < kSlots; ++s) {
    if (!plan.data[s]) continue;
    plan.contiguous = plan.strides[s][0] == 1 || (s == kW && w_scalar);
  }
  plan.aligned = plan.contiguous;
  for (int s = 0; plan.aligned && s < kSlots; ++s) {
    if (plan.data[s] && !(s == kW && w_scalar)) {
      plan.aligned = reinterpret_cast<uintptr_t>(plan.data[s]) % 16 == 0;
    }
  }
  return plan;
}

int64_t BlocksFor(int64_t n, size_t item) {
  const int64_t pack = static_cast<int64_t>(16 / item);
  const int64_t packs = (n + pack - 1) / pack;
  const int64_t per_block = kThreads * kMinPacksPerThread;
  int64_t blocks = (packs + per_block - 1) / per_block;
  if (blocks < 1) blocks = 1;
  return blocks < kMaxBlocks ? blocks : kMaxBlocks;
}

template <class Loss, typename S>
cudaError_t LaunchTyped(const Loss& f, const Plan& plan, const DeviceCall& call,
                        internal::YRange range, cudaStream_t stream) {
  const bool none = call.reduction == Reduction::kNone;
  const int64_t blocks = BlocksFor(plan.n, sizeof(S));
  const bool weighted_mean = call.has_weights && call.reduction == Reduction::kMean;
  // Scratch: loss partials, weight partials, the weight total.
  const size_t bytes = sizeof(double) * (2 * blocks + 1);
  cudaGetLastError();  // a stale (non-sticky) error of earlier, unrelated work
  void* scratch = nullptr;
  cudaError_t err = cudaMallocAsync(&scratch, bytes, stream);
  if (err != cudaSuccess) return err;
  double* partials = static_cast<double*>(scratch);
  double* wpartials = partials + blocks;
  double* wsum = wpartials + blocks;
  Params prm;
  prm.scale = call.reduction == Reduction::kMean ? 1.0 / static_cast<double>(plan.n) : 1.0;
  prm.accumulate = !none;
  prm.check_y = range.check;
  prm.y_lo = range.lo;
  prm.y_hi = range.hi;
  if (weighted_mean) {
    WeightSumKernel<S><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(plan, wpartials);
    FoldKernel<double><<<1, kThreads, 0, stream>>>(wpartials, blocks, 0, 0.0, nullptr, wsum);
    prm.wsum = wsum;
  }
  if (plan.n > 0) {
    if (call.has_grad) {
      ElementwiseKernel<Loss, S, true>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(f, plan, prm, partials);
    } else {
      ElementwiseKernel<Loss, S, false>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(f, plan, prm, partials);
    }
  } else {
    cudaMemsetAsync(partials, 0, sizeof(double) * blocks, stream);
  }
  if (!none && call.result) {
    const int mode = call.reduction == Reduction::kSum ? 0 : (weighted_mean ? 2 : 1);
    const double count = static_cast<double>(plan.n);
    if (std::is_same<S, double>::value) {
      FoldKernel<double><<<1, kThreads, 0, stream>>>(partials, blocks, mode, count, wsum,
                                                      static_cast<double*>(call.result));
    } else {
      FoldKernel<float><<<1, kThreads, 0, stream>>>(partials, blocks, mode, count, wsum,
                                                     static_cast<float*>(call.result));
    }
  }
  err = cudaGetLastError();
  const cudaError_t free_err = cudaFreeAsync(scratch, stream);
  return err != cudaSuccess ? err : free_err;
}

// Build<T>(options, sink) checks the options and hands the functor here.
struct LaunchSink {
  const DeviceCall& call;
  cudaStream_t stream;
  cudaError_t* result;
  template <class F>
  double operator()(const char* name, const F& f, internal::YRange range) const {
    const Plan plan = MakePlan(name, call);
    switch (call.y_pred.dtype) {
      case DType::kFloat64: *result = LaunchTyped<F, double>(f, plan, call, range, stream); break;
      case DType::kFloat32: *result = LaunchTyped<F, float>(f, plan, call, range, stream); break;
      case DType::kFloat16: *result = LaunchTyped<F, __half>(f, plan, call, range, stream); break;
      case DType::kBFloat16:
        *result = LaunchTyped<F, __nv_bfloat16>(f, plan, call, range, stream);
        break;
    }
    return 0.0;
  }
};

// Builds with the arithmetic type's limits (double for float64 inputs).
template <class Options>
cudaError_t Run(const DeviceCall& call, const Options& o, cudaStream_t stream) {
  g_last_error.clear();
  cudaError_t result = cudaSuccess;
  try {
    LaunchSink sink{call, stream, &result};
    if (call.y_pred.dtype == DType::kFloat64) {
      internal::Build<double>(o, sink);
    } else {
      internal::Build<float>(o, sink);
    }
  } catch (const Error& e) {
    g_last_error = e.what();
    return cudaErrorInvalidValue;
  }
  return result;
}

}  // namespace

#define FASTLOSS_CUDA_ENTRY(Name)                                                   \
  cudaError_t Name(const DeviceCall& call, const Name##Options& o, cudaStream_t s) { \
    return Run(call, o, s);                                                         \
  }
FASTLOSS_CUDA_ENTRY(Mse)
FASTLOSS_CUDA_ENTRY(Mae)
FASTLOSS_CUDA_ENTRY(Huber)
FASTLOSS_CUDA_ENTRY(SmoothL1)
FASTLOSS_CUDA_ENTRY(LogCosh)
FASTLOSS_CUDA_ENTRY(Msle)
FASTLOSS_CUDA_ENTRY(Mape)
FASTLOSS_CUDA_ENTRY(PoissonNll)
FASTLOSS_CUDA_ENTRY(Quantile)
FASTLOSS_CUDA_ENTRY(BinaryCrossEntropy)
FASTLOSS_CUDA_ENTRY(BinaryFocal)
FASTLOSS_CUDA_ENTRY(Hinge)
FASTLOSS_CUDA_ENTRY(SquaredHinge)
FASTLOSS_CUDA_ENTRY(SoftMargin)
FASTLOSS_CUDA_ENTRY(Contrastive)
#undef FASTLOSS_CUDA_ENTRY

const char* LastErrorMessage() { return g_last_error.c_str(); }

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

bool IsAvailable() { return DeviceCount() > 0; }

std::string DeviceName(int device) {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    throw Error("device_name: no CUDA device " + std::to_string(device));
  }
  return prop.name;
}

}  // namespace cuda
}  // namespace fastloss
