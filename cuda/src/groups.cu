// The multi-sum + finalize driver and the box driver on the GPU, over the
// CPU's functors (cpp/src/losses/structured-inl.h) and option checks
// (internal/builders.h).
//
// Groups (e.g. Dice over the pixels of each image): the inputs' axes split
// into reduced axes (a group's elements) and kept axes (one score each).
// Each group is cut into chunks of kChunk elements; a work item is one chunk
// of one group and is done by one warp: lane j takes elements j, j + 32, ...
// of the chunk in order, summing the functor's Terms in float64, then the
// warp folds its lanes in a fixed shuffle tree. A finalize kernel (one thread
// per group) folds the group's chunk sums in chunk order, calls Finalize, and
// keeps the gradient's coefficients; a last pass writes the gradient. Which
// warp takes which item does not change any sum, so the bits are fixed.
//
// Boxes: one box per thread of a grid-stride loop, the block partials folded
// as in the elementwise driver.
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "common.cuh"
#include "internal/builders.h"

namespace fastloss {
namespace cuda {
namespace {

using namespace detail;  // NOLINT(build/namespaces): the drivers' shared pieces

constexpr int64_t kChunk = 2048;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int64_t kMaxItemBlocks = 16384;
constexpr unsigned kFullMask = 0xffffffffu;

// --- Groups ------------------------------------------------------------------------

// Operands: y_true, y_pred, grad (element shaped), weights, losses (group shaped).
enum GroupOp { kGT = 0, kGP, kGG, kGW, kGL, kGOps };

struct GroupPlan {
  Space<kGOps> outer;  // the groups: base offsets of y, p, g; offsets of w, l
  Space<kGOps> inner;  // a group's elements: y, p, g
  bool inner_contiguous = false;
  int64_t ngroups = 0, ninner = 0, chunks = 0;
  void* data[kGOps] = {};
};

__device__ __forceinline__ int64_t InnerOffset(const GroupPlan& plan, int64_t i, int op) {
  if (plan.inner_contiguous) return i;
  int64_t off[kGOps];
  plan.inner.Offsets(i, off);
  return off[op];
}

// item_sums[it * kSums + k]: term k summed over work item it.
template <class Loss, typename S>
__global__ void __launch_bounds__(kThreads)
    GroupSumsKernel(Loss f, GroupPlan plan, double* item_sums) {
  using C = typename ComputeOf<S>::type;
  const internal::ScalarMath<C> m;
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) >> 5;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  const int64_t items = plan.ngroups * plan.chunks;
  const S* in[2] = {static_cast<const S*>(plan.data[kGT]), static_cast<const S*>(plan.data[kGP])};
  for (int64_t it = warp; it < items; it += warps) {  // uniform per warp
    const int64_t g = it / plan.chunks, c = it % plan.chunks;
    int64_t goff[kGOps];
    plan.outer.Offsets(g, goff);
    const int64_t i0 = c * kChunk;
    const int64_t i1 = i0 + kChunk < plan.ninner ? i0 + kChunk : plan.ninner;
    double acc[Loss::kSums] = {};
    for (int64_t i = i0 + lane; i < i1; i += 32) {
      C x[Loss::kInputs];
      for (int s = 0; s < Loss::kInputs; ++s) {
        x[s] = ToCompute<C>(in[s][goff[s] + InnerOffset(plan, i, s)]);
      }
      C t[Loss::kSums];
      f.Terms(m, x, t);
      for (int k = 0; k < Loss::kSums; ++k) acc[k] += static_cast<double>(t[k]);
    }
    for (int k = 0; k < Loss::kSums; ++k) {
      for (int o = 16; o > 0; o /= 2) acc[k] += __shfl_down_sync(kFullMask, acc[k], o);
      if (lane == 0) item_sums[it * Loss::kSums + k] = acc[k];
    }
  }
}

struct FinalizeParams {
  double scale = 1.0;            // the gradient's scale: 1 / count (mean) or 1
  const double* wsum = nullptr;  // weighted mean: 1 / *wsum (0 where it is 0)
  bool accumulate = true;        // mean / sum (not kNone)
};

// One thread per group: the chunk sums folded in order, Finalize, the
// scaled coefficients, w l stored (kNone) and summed.
template <class Loss, typename S>
__global__ void __launch_bounds__(kThreads)
    GroupFinalizeKernel(Loss f, GroupPlan plan, const double* item_sums, FinalizeParams prm,
                        double* coefs, double* partials) {
  __shared__ double shared[kThreads];
  using C = typename ComputeOf<S>::type;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * kThreads;
  const S* w = static_cast<const S*>(plan.data[kGW]);
  S* l = static_cast<S*>(plan.data[kGL]);
  double scale = prm.scale;
  if (prm.wsum) scale = *prm.wsum != 0.0 ? 1.0 / *prm.wsum : 0.0;
  double acc = 0.0;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; g < plan.ngroups;
       g += threads) {
    double sums[Loss::kSums] = {};
    for (int64_t c = 0; c < plan.chunks; ++c) {
      for (int k = 0; k < Loss::kSums; ++k) sums[k] += item_sums[(g * plan.chunks + c) * Loss::kSums + k];
    }
    int64_t off[kGOps];
    plan.outer.Offsets(g, off);
    const double wg = w ? static_cast<double>(ToCompute<C>(w[off[kGW]])) : 1.0;
    double c[Loss::kCoefs];
    const double wl = wg * f.Finalize(sums, 0.0, c);
    if (l) l[off[kGL]] = FromCompute<S>(static_cast<C>(wl));
    for (int k = 0; k < Loss::kCoefs; ++k) coefs[g * Loss::kCoefs + k] = c[k] * (wg * scale);
    acc += wl;
  }
  if (!prm.accumulate) return;  // uniform over the grid
  const double block = BlockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = block;
}

// The gradient, item by item as the sums.
template <class Loss, typename S>
__global__ void __launch_bounds__(kThreads)
    GroupGradKernel(Loss f, GroupPlan plan, const double* coefs) {
  using C = typename ComputeOf<S>::type;
  const internal::ScalarMath<C> m;
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) >> 5;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  const int64_t items = plan.ngroups * plan.chunks;
  const S* in[2] = {static_cast<const S*>(plan.data[kGT]), static_cast<const S*>(plan.data[kGP])};
  S* grad = static_cast<S*>(plan.data[kGG]);
  for (int64_t it = warp; it < items; it += warps) {
    const int64_t g = it / plan.chunks, c = it % plan.chunks;
    int64_t goff[kGOps];
    plan.outer.Offsets(g, goff);
    C cf[Loss::kCoefs];
    for (int k = 0; k < Loss::kCoefs; ++k) cf[k] = static_cast<C>(coefs[g * Loss::kCoefs + k]);
    const int64_t i0 = c * kChunk;
    const int64_t i1 = i0 + kChunk < plan.ninner ? i0 + kChunk : plan.ninner;
    for (int64_t i = i0 + lane; i < i1; i += 32) {
      C x[Loss::kInputs];
      for (int s = 0; s < Loss::kInputs; ++s) {
        x[s] = ToCompute<C>(in[s][goff[s] + InnerOffset(plan, i, s)]);
      }
      C gv[Loss::kGrads];
      f.Grad(m, x, cf, gv);
      grad[goff[kGG] + InnerOffset(plan, i, kGG)] = FromCompute<S>(gv[0]);
    }
  }
}

const char* const kScoresDesc = "the scores' shape (y_pred's shape without axis)";

// The checked views of a call whose weights and losses have a shape of their
// own, `out` (the scores', the boxes'), described as `desc` in errors.
struct ReducedCall {
  View<const char> y, p, g, l;
  int64_t wstrides[kMaxRank] = {};  // weights broadcast to `out`
};
ReducedCall CheckReducedCall(const char* name, const DeviceCall& call,
                             const View<const char>& out, const char* desc) {
  ReducedCall r;
  const DeviceView& p = call.y_pred;
  r.p = AsView(p);
  r.y = AsView(call.y_true);
  internal::CheckView(name, "y_true", r.y);
  internal::CheckView(name, "y_pred", r.p);
  internal::CheckSameShape(name, "y_true", r.y, "y_pred", r.p);
  CheckDType(name, "y_true", call.y_true, p.dtype);
  const bool none = call.reduction == Reduction::kNone;
  if (none && !call.losses.has_value() && !call.grad.has_value()) {
    throw Error(std::string(name) + ": reduction 'none' needs an output (losses or grad)");
  }
  if (call.grad.has_value()) {
    r.g = AsView(*call.grad);
    internal::CheckView(name, "grad", r.g);
    internal::CheckSameShape(name, "grad", r.g, "y_pred", r.p);
    CheckDType(name, "grad", *call.grad, p.dtype);
  }
  if (call.weights.has_value()) {
    const View<const char> wv = AsView(*call.weights);
    internal::CheckView(name, "weights", wv);
    CheckDType(name, "weights", *call.weights, p.dtype);
    internal::BroadcastTo(name, "weights", wv, out, r.wstrides, desc);
  }
  if (none && call.losses.has_value()) {
    r.l = AsView(*call.losses);
    internal::CheckView(name, "losses", r.l);
    bool same = r.l.rank == out.rank;
    for (int k = 0; same && k < out.rank; ++k) same = r.l.shape[k] == out.shape[k];
    if (!same) {
      throw Error(std::string(name) + ": losses must have " + desc + " " +
                  internal::ShapeString(out.shape, out.rank) + ", got " +
                  internal::ShapeString(r.l.shape, r.l.rank));
    }
    CheckDType(name, "losses", *call.losses, p.dtype);
  }
  if (!none && call.result == nullptr && !call.grad.has_value()) {
    throw Error(std::string(name) + ": result must be given (device memory for the value)");
  }
  CheckResult(name, call);
  // The losses are written before the gradient pass reads the inputs: they
  // may not share any memory with them, not even as the same view.
  if (r.l.data) {
    const internal::Extent el =
        internal::ExtentOf(r.l.data, ItemSize(p.dtype), r.l.shape, r.l.strides, r.l.rank);
    for (const View<const char>* in : {&r.y, &r.p}) {
      const internal::Extent ei =
          internal::ExtentOf(in->data, ItemSize(p.dtype), in->shape, in->strides, in->rank);
      if (el.lo != el.hi && ei.lo != ei.hi && el.lo < ei.hi && ei.lo < el.hi) {
        throw Error(std::string(name) + ": losses overlaps " +
                    (in == &r.y ? "y_true" : "y_pred") + " in memory");
      }
    }
  }
  const Operand ops[] = {
      {"y_true", r.y.data, r.y.rank, r.y.shape, r.y.strides, false},
      {"y_pred", r.p.data, r.p.rank, r.p.shape, r.p.strides, false},
      {"weights", call.weights.has_value() ? call.weights->data : nullptr, out.rank, out.shape, r.wstrides,
       false},
      {"grad", r.g.data, r.g.rank, r.g.shape, r.g.strides, true},
      {"losses", r.l.data, r.l.rank, r.l.shape, r.l.strides, true},
  };
  CheckOperands(name, ItemSize(p.dtype), ops, 5);
  return r;
}

// Checks the call (as the CPU's RunGroups) and lays out the plan.
GroupPlan MakeGroupPlan(const char* name, const DeviceCall& call, uint64_t reduced) {
  const DeviceView& p = call.y_pred;
  internal::CheckView(name, "y_pred", AsView(p));
  View<const char> groups;  // the kept axes
  for (int k = 0; k < p.rank; ++k) {
    if (!((reduced >> k) & 1)) groups.shape[groups.rank++] = p.shape[k];
  }
  const ReducedCall rc = CheckReducedCall(name, call, groups, kScoresDesc);
  const int64_t* wstrides = rc.wstrides;
  GroupPlan plan;
  plan.data[kGT] = call.y_true.data;
  plan.data[kGP] = p.data;
  if (call.grad.has_value()) plan.data[kGG] = call.grad->data;
  if (call.weights.has_value()) plan.data[kGW] = call.weights->data;
  if (rc.l.data) plan.data[kGL] = call.losses->data;

  // The two spaces: element-shaped operands split by axis; group-shaped
  // ones (weights, losses) follow the kept axes.
  int kept = 0;
  for (int k = 0; k < p.rank; ++k) {
    const bool red = (reduced >> k) & 1;
    Space<kGOps>& sp = red ? plan.inner : plan.outer;
    const int r = sp.rank++;
    sp.shape[r] = p.shape[k];
    sp.n *= p.shape[k];
    sp.strides[kGT][r] = call.y_true.strides[k];
    sp.strides[kGP][r] = p.strides[k];
    if (call.grad.has_value()) sp.strides[kGG][r] = call.grad->strides[k];
    if (!red) {
      if (call.weights.has_value()) sp.strides[kGW][r] = wstrides[kept];
      if (plan.data[kGL]) sp.strides[kGL][r] = call.losses->strides[kept];
      ++kept;
    }
  }
  plan.ngroups = plan.outer.n;
  plan.ninner = plan.inner.n;
  plan.chunks = (plan.ninner + kChunk - 1) / kChunk;
  bool used[kGOps];
  for (int s = 0; s < kGOps; ++s) used[s] = plan.data[s] != nullptr;
  plan.outer.Coalesce(used);
  used[kGW] = used[kGL] = false;  // not in the inner space
  plan.inner.Coalesce(used);
  plan.inner_contiguous = plan.inner.rank == 0;
  if (plan.inner.rank == 1) {
    plan.inner_contiguous = true;
    for (int s = 0; s < kGW; ++s) {
      if (used[s] && plan.inner.strides[s][0] != 1) plan.inner_contiguous = false;
    }
  }
  return plan;
}

int64_t ItemBlocks(int64_t items) {
  int64_t blocks = (items + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks < 1) blocks = 1;
  return blocks < kMaxItemBlocks ? blocks : kMaxItemBlocks;
}

template <class Loss, typename S>
cudaError_t LaunchGroups(const Loss& f, const GroupPlan& plan, const DeviceCall& call,
                         cudaStream_t stream) {
  static_assert(Loss::kInputs == 2 && Loss::kFirstGrad == 1 && Loss::kGrads == 1,
                "the device group driver runs (y_true, y_pred) losses with a gradient of y_pred");
  const bool none = call.reduction == Reduction::kNone;
  const bool weighted_mean = call.weights.has_value() && call.reduction == Reduction::kMean;
  const int64_t items = plan.ngroups * plan.chunks;
  const int64_t gblocks = BlocksFor(plan.ngroups);
  // Scratch: item sums, coefficients, group partials, weight partials, weight total.
  const size_t n_items = static_cast<size_t>(items * Loss::kSums);
  const size_t n_coefs = static_cast<size_t>(plan.ngroups * Loss::kCoefs);
  Scratch scratch(n_items + n_coefs + 2 * static_cast<size_t>(gblocks) + 1, stream);
  if (scratch.error() != cudaSuccess) return scratch.error();
  double* item_sums = scratch.get();
  double* coefs = item_sums + n_items;
  double* partials = coefs + n_coefs;
  double* wpartials = partials + gblocks;
  double* wsum = wpartials + gblocks;
  FinalizeParams prm;
  prm.scale = call.reduction == Reduction::kMean && plan.ngroups > 0
                  ? 1.0 / static_cast<double>(plan.ngroups)
                  : 1.0;
  prm.accumulate = !none;
  if (weighted_mean) {
    LaunchWeightSum<S>(plan.outer, kGW, plan.data[kGW], gblocks, wpartials, wsum, stream);
    prm.wsum = wsum;
  }
  if (items > 0) {
    GroupSumsKernel<Loss, S><<<static_cast<unsigned>(ItemBlocks(items)), kThreads, 0, stream>>>(
        f, plan, item_sums);
  }
  if (plan.ngroups > 0) {
    GroupFinalizeKernel<Loss, S><<<static_cast<unsigned>(gblocks), kThreads, 0, stream>>>(
        f, plan, item_sums, prm, coefs, partials);
  } else {
    cudaMemsetAsync(partials, 0, sizeof(double) * gblocks, stream);
  }
  if (call.grad.has_value() && items > 0) {
    GroupGradKernel<Loss, S><<<static_cast<unsigned>(ItemBlocks(items)), kThreads, 0, stream>>>(
        f, plan, coefs);
  }
  LaunchValue(call, std::is_same<S, double>::value, partials, gblocks,
              static_cast<double>(plan.ngroups), wsum, nullptr, stream);
  return scratch.Finish();
}

struct GroupSink {
  const DeviceCall& call;
  cudaStream_t stream;
  cudaError_t* result;
  template <class F>
  double operator()(const char* name, const F& f, uint64_t reduced) const {
    const GroupPlan plan = MakeGroupPlan(name, call, reduced);
    *result = WithStorage(call.y_pred.dtype,
                          [&](auto s) { return LaunchGroups<F, decltype(s)>(f, plan, call, stream); });
    return 0.0;
  }
};

template <class Options>
cudaError_t RunOverlap(const char* name, const DeviceCall& call, const Options& o,
                       const losses::OverlapScore& score, cudaStream_t stream) {
  return Guarded([&] {
    cudaError_t result = cudaSuccess;
    CheckOptions(name, o);
    internal::CheckView(name, "y_pred", AsView(call.y_pred));
    internal::BuildOverlap(name, o, score, call.y_pred.rank, GroupSink{call, stream, &result});
    return result;
  });
}


// --- Boxes ---------------------------------------------------------------------------

// Operands over the boxes' shape: y_true, y_pred, grad (plus their last-axis
// strides), weights, losses.
enum BoxOp { kBT = 0, kBP, kBG, kBW, kBL, kBOps };

struct BoxPlan {
  Space<kBOps> boxes;
  int64_t comp[3] = {};  // stride of the coordinate axis of y_true, y_pred, grad
  void* data[kBOps] = {};
};

struct BoxParams {
  double scale = 1.0;
  const double* wsum = nullptr;
  bool accumulate = true;
};

template <class Loss, typename S, bool kGrad>
__global__ void __launch_bounds__(kThreads)
    BoxKernel(Loss f, BoxPlan plan, BoxParams prm, double* partials) {
  __shared__ double shared[kThreads];
  using C = typename ComputeOf<S>::type;
  const internal::ScalarMath<C> m;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * kThreads;
  const S* t = static_cast<const S*>(plan.data[kBT]);
  const S* p = static_cast<const S*>(plan.data[kBP]);
  S* grad = static_cast<S*>(plan.data[kBG]);
  const S* w = static_cast<const S*>(plan.data[kBW]);
  S* l = static_cast<S*>(plan.data[kBL]);
  const double scale = prm.wsum ? (*prm.wsum != 0.0 ? 1.0 / *prm.wsum : 0.0) : prm.scale;
  double acc = 0.0;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; b < plan.boxes.n;
       b += threads) {
    int64_t off[kBOps];
    plan.boxes.Offsets(b, off);
    C tv[4], pv[4], g[4];
    for (int k = 0; k < 4; ++k) {
      tv[k] = ToCompute<C>(t[off[kBT] + k * plan.comp[0]]);
      pv[k] = ToCompute<C>(p[off[kBP] + k * plan.comp[1]]);
    }
    const C loss = f.template Eval<kGrad>(m, tv, pv, g);
    const C wb = w ? ToCompute<C>(w[off[kBW]]) : C(1);
    const C wl = wb * loss;
    if constexpr (kGrad) {
      if (grad) {
        const C s = wb * static_cast<C>(scale);
        for (int k = 0; k < 4; ++k) grad[off[kBG] + k * plan.comp[2]] = FromCompute<S>(g[k] * s);
      }
    }
    if (l) l[off[kBL]] = FromCompute<S>(wl);
    acc += static_cast<double>(wl);
  }
  if (!prm.accumulate) return;
  const double block = BlockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = block;
}

BoxPlan MakeBoxPlan(const char* name, const DeviceCall& call) {
  const DeviceView& p = call.y_pred;
  internal::CheckView(name, "y_pred", AsView(p));
  if (p.rank < 1 || p.shape[p.rank - 1] != 4) {
    throw Error(std::string(name) +
                ": y_pred must have shape (..., 4) (boxes as x1, y1, x2, y2), got " +
                internal::ShapeString(p.shape, p.rank));
  }
  View<const char> boxes;
  boxes.rank = p.rank - 1;
  for (int k = 0; k < boxes.rank; ++k) boxes.shape[k] = p.shape[k];
  const ReducedCall rc = CheckReducedCall(
      name, call, boxes, "the boxes' shape (y_pred's shape without the last axis)");
  const int64_t* wstrides = rc.wstrides;
  BoxPlan plan;
  plan.data[kBT] = call.y_true.data;
  plan.data[kBP] = p.data;
  if (call.grad.has_value()) plan.data[kBG] = call.grad->data;
  if (call.weights.has_value()) plan.data[kBW] = call.weights->data;
  if (rc.l.data) plan.data[kBL] = call.losses->data;
  Space<kBOps>& sp = plan.boxes;
  sp.rank = boxes.rank;
  sp.n = boxes.size();
  for (int k = 0; k < boxes.rank; ++k) {
    sp.shape[k] = boxes.shape[k];
    sp.strides[kBT][k] = call.y_true.strides[k];
    sp.strides[kBP][k] = p.strides[k];
    if (call.grad.has_value()) sp.strides[kBG][k] = call.grad->strides[k];
    sp.strides[kBW][k] = wstrides[k];
    if (plan.data[kBL]) sp.strides[kBL][k] = call.losses->strides[k];
  }
  const int last = p.rank - 1;
  plan.comp[0] = call.y_true.strides[last];
  plan.comp[1] = p.strides[last];
  plan.comp[2] = call.grad.has_value() ? call.grad->strides[last] : 0;
  bool used[kBOps];
  for (int s = 0; s < kBOps; ++s) used[s] = plan.data[s] != nullptr;
  sp.Coalesce(used);
  return plan;
}

template <class Loss, typename S>
cudaError_t LaunchBoxes(const Loss& f, const BoxPlan& plan, const DeviceCall& call,
                        cudaStream_t stream) {
  const bool none = call.reduction == Reduction::kNone;
  const bool weighted_mean = call.weights.has_value() && call.reduction == Reduction::kMean;
  const int64_t n = plan.boxes.n;
  const int64_t blocks = BlocksFor(n);
  Scratch scratch(2 * blocks + 1, stream);
  if (scratch.error() != cudaSuccess) return scratch.error();
  double* partials = scratch.get();
  double* wpartials = partials + blocks;
  double* wsum = wpartials + blocks;
  BoxParams prm;
  prm.scale = call.reduction == Reduction::kMean ? 1.0 / static_cast<double>(n) : 1.0;
  prm.accumulate = !none;
  if (weighted_mean) {
    LaunchWeightSum<S>(plan.boxes, kBW, plan.data[kBW], blocks, wpartials, wsum, stream);
    prm.wsum = wsum;
  }
  if (n > 0) {
    if (call.grad.has_value()) {
      BoxKernel<Loss, S, true>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(f, plan, prm, partials);
    } else {
      BoxKernel<Loss, S, false>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(f, plan, prm, partials);
    }
  } else {
    cudaMemsetAsync(partials, 0, sizeof(double) * blocks, stream);
  }
  LaunchValue(call, std::is_same<S, double>::value, partials, blocks, static_cast<double>(n), wsum,
              nullptr, stream);
  return scratch.Finish();
}

struct BoxSink {
  const DeviceCall& call;
  cudaStream_t stream;
  cudaError_t* result;
  template <class F>
  double operator()(const char* name, const F& f) const {
    const BoxPlan plan = MakeBoxPlan(name, call);
    *result = WithStorage(call.y_pred.dtype,
                          [&](auto s) { return LaunchBoxes<F, decltype(s)>(f, plan, call, stream); });
    return 0.0;
  }
};

}  // namespace

#define FASTLOSS_CUDA_REGION_ENTRY(Name, name, driver, aliases, true_name, pred_name)  \
  FASTLOSS_REGIONS_ONLY_##driver(                                                       \
      cudaError_t Name(const DeviceCall& call, const Name##Options& o, cudaStream_t s) { \
        return RunOverlap(#name, call, o, internal::ScoreOf(o), s);                     \
      })
FASTLOSS_LOSSES(FASTLOSS_CUDA_REGION_ENTRY)
#undef FASTLOSS_CUDA_REGION_ENTRY

cudaError_t BoxIou(const DeviceCall& call, const BoxIouOptions& o, cudaStream_t stream) {
  return Guarded([&] {
    cudaError_t result = cudaSuccess;
    CheckOptions("box_iou", o);
    internal::WithArgumentNames("boxes_true", "boxes_pred", [&] {
      return internal::BuildBox(o, BoxSink{call, stream, &result});
    });
    return result;
  });
}

}  // namespace cuda
}  // namespace fastloss
