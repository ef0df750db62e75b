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
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "common.cuh"
#include "internal/builders.h"

namespace fastloss {
namespace cuda {
namespace {

using namespace detail;  // NOLINT(build/namespaces): the drivers' shared pieces

// Operands of the plan: y_true, y_pred, weights, the aux operand (BCE's
// pos_weight array, the second input of an Elements row), grad, the aux
// operand's gradient (kAuxGrad functors), losses.
enum Slot { kY = 0, kP, kW, kA, kG, kGA, kL, kSlots };

struct Plan {
  Space<kSlots> space;       // coalesced; n = the element count
  void* data[kSlots] = {};
  bool contiguous = false;   // rank 1, every operand stride 1 (weights, aux: 1 or 0)
  bool aligned = false;      // contiguous and y, p, w, g, l 16-byte aligned (w: or scalar)
};

struct Params {
  double scale = 1.0;               // gradient scale (mean: 1 / count)
  const double* wsum = nullptr;     // weighted mean: 1 / *wsum instead
  bool check_y = false;
  double y_lo = 0.0, y_hi = 1.0;
  bool check_aux = false;
  double aux_lo = 0.0, aux_hi = 0.0;
  bool accumulate = true;           // mean / sum (not kNone)
};

template <typename S>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(S);
  S v[kSize];
};

// One element: loss and gradient through the functor, outputs stored.
template <class Loss, typename S, bool kGrad>
__device__ __forceinline__ double Element(const Loss& f, const Params& prm, double scale,
                                          S y_s, S p_s, S w_s, bool has_w, S a_s, S* g, S* ga,
                                          S* l) {
  using C = typename ComputeOf<S>::type;
  const internal::ScalarMath<C> m;
  const C y = ToCompute<C>(y_s), p = ToCompute<C>(p_s);
  const C w = has_w ? ToCompute<C>(w_s) : C(1);
  C dl = C(0), dla = C(0);
  C loss;
  if constexpr (internal::UsesAuxGrad<Loss>::value) {
    loss = f.template Eval<kGrad>(m, y, p, ToCompute<C>(a_s), dl, dla);
  } else if constexpr (internal::UsesAux<Loss>::value) {
    loss = f.template Eval<kGrad>(m, y, p, ToCompute<C>(a_s), dl);
  } else {
    loss = f.template Eval<kGrad>(m, y, p, dl);
  }
  // y_true (or aux) outside the loss's range: NaN loss and gradients (the
  // CPU raises; the GPU cannot without waiting for the device). NaN carries
  // through the reduction, so the value is NaN too.
  const C a = ToCompute<C>(a_s);
  if ((prm.check_y && (y < static_cast<C>(prm.y_lo) || y > static_cast<C>(prm.y_hi))) ||
      (prm.check_aux && (a < static_cast<C>(prm.aux_lo) || a > static_cast<C>(prm.aux_hi)))) {
    loss = dl = dla = m.Div(m.Zero(), m.Zero());
  }
  const C wl = w * loss;
  if constexpr (kGrad) {
    if (g) *g = FromCompute<S>(static_cast<C>(dl * w * static_cast<C>(scale)));
    if (ga) *ga = FromCompute<S>(static_cast<C>(dla * w * static_cast<C>(scale)));
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
  const int64_t n = plan.space.n;
  const int64_t packs = (n + kPack - 1) / kPack;
  const double scale = prm.wsum ? (*prm.wsum != 0.0 ? 1.0 / *prm.wsum : 0.0) : prm.scale;
  const S* y = static_cast<const S*>(plan.data[kY]);
  const S* p = static_cast<const S*>(plan.data[kP]);
  const S* w = static_cast<const S*>(plan.data[kW]);
  const S* a = static_cast<const S*>(plan.data[kA]);
  S* g = kGrad ? static_cast<S*>(plan.data[kG]) : nullptr;
  S* ga = kGrad ? static_cast<S*>(plan.data[kGA]) : nullptr;
  S* l = static_cast<S*>(plan.data[kL]);
  const bool has_w = w != nullptr;
  // Contiguous plans: weights and aux have stride 1 or 0 (a scalar).
  const int64_t ws = has_w ? plan.space.strides[kW][0] : 0;
  const int64_t as = a ? plan.space.strides[kA][0] : 0;
  double acc = 0.0;
  if (plan.aligned) {
    // Whole packs with 16-byte loads and stores; the last, partial pack
    // element by element (same order).
    for (int64_t j = tid; j < packs; j += threads) {
      const int64_t e0 = j * kPack;
      if (e0 + kPack <= n) {
        const Pack<S> py = reinterpret_cast<const Pack<S>*>(y)[j];
        const Pack<S> pp = reinterpret_cast<const Pack<S>*>(p)[j];
        Pack<S> pw, pg, pl;
        if (has_w) {
          if (ws == 0) {
            for (int k = 0; k < kPack; ++k) pw.v[k] = w[0];
          } else {
            pw = reinterpret_cast<const Pack<S>*>(w)[j];
          }
        }
        for (int k = 0; k < kPack; ++k) {
          acc += Element<Loss, S, kGrad>(f, prm, scale, py.v[k], pp.v[k], has_w ? pw.v[k] : S(),
                                         has_w, a ? a[(e0 + k) * as] : S(),
                                         g ? &pg.v[k] : nullptr, ga ? ga + e0 + k : nullptr,
                                         l ? &pl.v[k] : nullptr);
        }
        if (g) reinterpret_cast<Pack<S>*>(g)[j] = pg;
        if (l) reinterpret_cast<Pack<S>*>(l)[j] = pl;
      } else {
        for (int64_t e = e0; e < n; ++e) {
          acc += Element<Loss, S, kGrad>(f, prm, scale, y[e], p[e], has_w ? w[e * ws] : S(),
                                         has_w, a ? a[e * as] : S(), g ? g + e : nullptr,
                                         ga ? ga + e : nullptr, l ? l + e : nullptr);
        }
      }
    }
  } else if (plan.contiguous) {
    for (int64_t j = tid; j < packs; j += threads) {
      const int64_t e0 = j * kPack, e1 = e0 + kPack < n ? e0 + kPack : n;
      for (int64_t e = e0; e < e1; ++e) {
        acc += Element<Loss, S, kGrad>(f, prm, scale, y[e], p[e], has_w ? w[e * ws] : S(),
                                       has_w, a ? a[e * as] : S(), g ? g + e : nullptr,
                                       ga ? ga + e : nullptr, l ? l + e : nullptr);
      }
    }
  } else {
    for (int64_t j = tid; j < packs; j += threads) {
      const int64_t e0 = j * kPack, e1 = e0 + kPack < n ? e0 + kPack : n;
      for (int64_t e = e0; e < e1; ++e) {
        int64_t off[kSlots];
        plan.space.Offsets(e, off);
        acc += Element<Loss, S, kGrad>(f, prm, scale, y[off[kY]], p[off[kP]],
                                       has_w ? w[off[kW]] : S(), has_w, a ? a[off[kA]] : S(),
                                       g ? g + off[kG] : nullptr, ga ? ga + off[kGA] : nullptr,
                                       l ? l + off[kL] : nullptr);
      }
    }
  }
  if (!prm.accumulate) return;  // uniform over the grid: no barrier is skipped by some
  const double block = BlockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = block;
}

// Checks the call and lays out the plan (coalesced dimensions). `aux`:
// BCE's pos_weight array (named `aux_name`), broadcast to y_pred, or the
// second input of an Elements row, whose gradient goes to `aux_grad` (named
// `aux_grad_name`; aux then has y_pred's shape).
Plan MakePlan(const char* name, const DeviceCall& call, const DeviceView* aux,
              const char* aux_name, const DeviceView* aux_grad = nullptr,
              const char* aux_grad_name = "aux's gradient") {
  const DeviceView& p = call.y_pred;
  const View<const char> pv = AsView(p), yv = AsView(call.y_true);
  internal::CheckView(name, "y_true", yv);
  internal::CheckView(name, "y_pred", pv);
  internal::CheckSameShape(name, "y_true", yv, "y_pred", pv);
  CheckDType(name, "y_true", call.y_true, p.dtype);
  const bool none = call.reduction == Reduction::kNone;
  if (none && !call.losses.has_value() && !call.grad.has_value() && !aux_grad) {
    throw Error(std::string(name) + ": reduction 'none' needs an output (losses or grad)");
  }
  Plan plan;
  Space<kSlots>& sp = plan.space;
  sp.rank = p.rank;
  sp.n = p.size();
  for (int k = 0; k < p.rank; ++k) {
    sp.shape[k] = p.shape[k];
    sp.strides[kY][k] = call.y_true.strides[k];
    sp.strides[kP][k] = p.strides[k];
  }
  plan.data[kY] = call.y_true.data;
  plan.data[kP] = p.data;
  if (call.weights.has_value()) {
    const View<const char> wv = AsView(*call.weights);
    internal::CheckView(name, "weights", wv);
    CheckDType(name, "weights", *call.weights, p.dtype);
    internal::BroadcastTo(name, "weights", wv, pv, sp.strides[kW]);
    plan.data[kW] = call.weights->data;
  }
  if (aux) {
    const View<const char> av = AsView(*aux);
    internal::CheckView(name, aux_name, av);
    CheckDType(name, aux_name, *aux, p.dtype);
    internal::BroadcastTo(name, aux_name, av, pv, sp.strides[kA]);
    plan.data[kA] = aux->data;
  }
  if (aux_grad) {
    if (!aux) throw Error(std::string(name) + ": a gradient of aux needs aux");
    const View<const char> av = AsView(*aux), gv = AsView(*aux_grad);
    internal::CheckSameShape(name, aux_name, av, "y_pred", pv);
    internal::CheckView(name, aux_grad_name, gv);
    internal::CheckSameShape(name, aux_grad_name, gv, aux_name, av);
    CheckDType(name, aux_grad_name, *aux_grad, p.dtype);
    for (int k = 0; k < p.rank; ++k) sp.strides[kGA][k] = aux_grad->strides[k];
    plan.data[kGA] = aux_grad->data;
  }
  if (call.grad.has_value()) {
    const View<const char> gv = AsView(*call.grad);
    internal::CheckView(name, "grad", gv);
    internal::CheckSameShape(name, "grad", gv, "y_pred", pv);
    CheckDType(name, "grad", *call.grad, p.dtype);
    for (int k = 0; k < p.rank; ++k) sp.strides[kG][k] = call.grad->strides[k];
    plan.data[kG] = call.grad->data;
  }
  if (none && call.losses.has_value()) {
    const View<const char> lv = AsView(*call.losses);
    internal::CheckView(name, "losses", lv);
    internal::CheckSameShape(name, "losses", lv, "y_pred", pv);
    CheckDType(name, "losses", *call.losses, p.dtype);
    for (int k = 0; k < p.rank; ++k) sp.strides[kL][k] = call.losses->strides[k];
    plan.data[kL] = call.losses->data;
  }
  const char* names[kSlots] = {"y_true", "y_pred", "weights", aux_name,
                               "grad",   aux_grad_name, "losses"};
  Operand ops[kSlots];
  for (int s = 0; s < kSlots; ++s) {
    ops[s] = {names[s], plan.data[s], sp.rank, sp.shape, sp.strides[s], s >= kG};
  }
  CheckOperands(name, ItemSize(p.dtype), ops, kSlots);
  if (!none && call.result == nullptr && !call.grad.has_value() && !aux_grad) {
    throw Error(std::string(name) + ": result must be given (device memory for the value)");
  }
  CheckResult(name, call);
  bool used[kSlots];
  for (int s = 0; s < kSlots; ++s) used[s] = plan.data[s] != nullptr;
  sp.Coalesce(used);
  if (sp.rank == 0) {
    sp.rank = 1;
    sp.shape[0] = sp.n == 0 ? 0 : 1;
    for (int s = 0; s < kSlots; ++s) sp.strides[s][0] = 1;
  }
  // Weights and aux may be scalars (every stride 0) on a contiguous run.
  auto scalar = [&](int s) {
    bool all0 = plan.data[s] != nullptr;
    for (int k = 0; all0 && k < sp.rank; ++k) all0 = sp.strides[s][k] == 0;
    return all0;
  };
  plan.contiguous = sp.rank == 1;
  for (int s = 0; plan.contiguous && s < kSlots; ++s) {
    if (!plan.data[s]) continue;
    plan.contiguous = sp.strides[s][0] == 1 || ((s == kW || s == kA) && scalar(s));
  }
  plan.aligned = plan.contiguous;
  for (int s = 0; plan.aligned && s < kSlots; ++s) {
    if (plan.data[s] && s != kA && !(s == kW && scalar(s))) {
      plan.aligned = reinterpret_cast<uintptr_t>(plan.data[s]) % 16 == 0;
    }
  }
  return plan;
}

int64_t BlocksForElements(int64_t n, size_t item) {
  const int64_t pack = static_cast<int64_t>(16 / item);
  return BlocksFor((n + pack - 1) / pack);
}

// Enqueues the loss over the plan; the value goes to call.result, or as a
// double to `value_slot` when given (one part of a sum).
template <class Loss, typename S>
cudaError_t LaunchTyped(const Loss& f, const Plan& plan, const DeviceCall& call,
                        internal::YRange range, double* value_slot, cudaStream_t stream,
                        internal::YRange aux_range = internal::kAnyY) {
  const bool none = call.reduction == Reduction::kNone;
  const int64_t n = plan.space.n;
  const int64_t blocks = BlocksForElements(n, sizeof(S));
  const bool weighted_mean = call.weights.has_value() && call.reduction == Reduction::kMean;
  // Scratch: loss partials, weight partials, the weight total.
  Scratch scratch(2 * blocks + 1, stream);
  if (scratch.error() != cudaSuccess) return scratch.error();
  double* partials = scratch.get();
  double* wpartials = partials + blocks;
  double* wsum = wpartials + blocks;
  Params prm;
  prm.scale = call.reduction == Reduction::kMean ? 1.0 / static_cast<double>(n) : 1.0;
  prm.accumulate = !none;
  prm.check_y = range.check;
  prm.y_lo = range.lo;
  prm.y_hi = range.hi;
  prm.check_aux = aux_range.check && plan.data[kA] != nullptr;
  prm.aux_lo = aux_range.lo;
  prm.aux_hi = aux_range.hi;
  if (weighted_mean) {
    // Same partition as the loss kernel: thread t sums elements t, t + T, ...
    LaunchWeightSum<S>(plan.space, kW, plan.data[kW], blocks, wpartials, wsum, stream);
    prm.wsum = wsum;
  }
  if (n > 0) {
    if (call.grad.has_value() || plan.data[kGA] != nullptr) {
      ElementwiseKernel<Loss, S, true>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(f, plan, prm, partials);
    } else {
      ElementwiseKernel<Loss, S, false>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(f, plan, prm, partials);
    }
  } else {
    cudaMemsetAsync(partials, 0, sizeof(double) * blocks, stream);
  }
  LaunchValue(call, std::is_same<S, double>::value, partials, blocks, static_cast<double>(n), wsum,
              value_slot, stream);
  return scratch.Finish();
}

// losses::Build<T>(options, sink) hands the functor here (the options'
// fields are checked before). With `validate_only` it checks the call and
// launches nothing.
struct LaunchSink {
  const char* name;
  const DeviceCall& call;
  cudaStream_t stream;
  cudaError_t* result;
  const DeviceView* aux = nullptr;
  const char* aux_name = "aux";
  const DeviceView* aux_grad = nullptr;  // an Elements row's second gradient
  const char* aux_grad_name = "aux's gradient";
  bool validate_only = false;
  template <class F>
  double operator()(const F& f, internal::YRange range,
                    internal::YRange aux_range = internal::kAnyY) const {
    const Plan plan = MakePlan(name, call, aux, aux_name, aux_grad, aux_grad_name);
    if (validate_only) return 0.0;
    *result = WithStorage(call.y_pred.dtype, [&](auto s) {
      return LaunchTyped<F, decltype(s)>(f, plan, call, range, nullptr, stream, aux_range);
    });
    return 0.0;
  }
};

// Builds with the arithmetic type's limits (double for float64 inputs).
template <class Options, class... Extra>
void BuildFor(const DeviceCall& call, const Options& o, const LaunchSink& sink, Extra... extra) {
  if (call.y_pred.dtype == DType::kFloat64) {
    losses::Build<double>(o, sink, extra...);
  } else {
    losses::Build<float>(o, sink, extra...);
  }
}

template <class Options>
cudaError_t Run(const char* name, const DeviceCall& call, const Options& o, cudaStream_t stream) {
  return Guarded([&] {
    cudaError_t result = cudaSuccess;
    CheckOptions(name, o);
    BuildFor(call, o, LaunchSink{name, call, stream, &result});
    return result;
  });
}

// --- Adversarial losses: elementwise functors of one score array ------------------

// A ScoreCall as a DeviceCall (y_true = the scores; the functors do not read it).
DeviceCall ScoresAsCall(const DeviceScoreCall& s, Reduction r, void* result) {
  DeviceCall c;
  c.y_true = s.scores;
  c.y_pred = s.scores;
  c.weights = s.weights;
  c.reduction = r;
  c.grad = s.grad;
  c.losses = s.losses;
  c.result = result;
  return c;
}

// Error messages name the scores argument (e.g. real_logits) instead of
// y_true / y_pred.
template <class F>
void Named(const char* arg, F&& f) {
  internal::WithArgumentNames(arg, arg, [&] {
    f();
    return 0;
  });
}

// One score array per part: every part is checked before any launches; the
// value is the sum of the parts' reductions (the first stores, the others add).
struct ScorePart {
  const char* arg;
  const DeviceScoreCall* call;
  internal::YRange range;
};
template <class Loss, int kParts>
cudaError_t RunScoreParts(const char* name, const ScorePart (&parts)[kParts],
                          const Loss (&losses)[kParts], Reduction r, void* result,
                          cudaStream_t stream) {
  return Guarded([&] {
    DeviceCall calls[kParts];
    Plan plans[kParts];
    for (int i = 0; i < kParts; ++i) {
      calls[i] = ScoresAsCall(*parts[i].call, r, result);
      if (i > 0 && calls[i].y_pred.dtype != calls[0].y_pred.dtype) {
        throw Error(std::string(name) + ": " + parts[i].arg + " must have " + parts[0].arg +
                    "'s dtype " + DTypeName(calls[0].y_pred.dtype) + ", got " +
                    DTypeName(calls[i].y_pred.dtype));
      }
      Named(parts[i].arg, [&] { plans[i] = MakePlan(name, calls[i], nullptr, "aux"); });
    }
    // Each part's value as a double, then their sum rounded once.
    const bool value = r != Reduction::kNone && result != nullptr;
    Scratch values(value ? kParts : 0, stream);
    if (values.error() != cudaSuccess) return values.error();
    for (int i = 0; i < kParts; ++i) {
      const cudaError_t err = WithStorage(calls[i].y_pred.dtype, [&](auto s) {
        return LaunchTyped<Loss, decltype(s)>(losses[i], plans[i], calls[i], parts[i].range,
                                              value ? values.get() + i : nullptr, stream);
      });
      if (err != cudaSuccess) return err;
    }
    if (value) {
      if (calls[0].y_pred.dtype == DType::kFloat64) {
        SumValuesKernel<double><<<1, 1, 0, stream>>>(values.get(), kParts,
                                                     static_cast<double*>(result));
      } else {
        SumValuesKernel<float><<<1, 1, 0, stream>>>(values.get(), kParts,
                                                    static_cast<float*>(result));
      }
    }
    return values.Finish();
  });
}

}  // namespace

// The elementwise entry points of the registry (the region and box ones are
// in groups.cu).
#define FASTLOSS_CUDA_ENTRY(Name, name, driver, aliases, true_name, pred_name)       \
  FASTLOSS_ELEMENTWISE_ONLY_##driver(                                                \
      cudaError_t Name(const DeviceCall& call, const Name##Options& o, cudaStream_t s) { \
        return internal::WithArgumentNames(#true_name, #pred_name,                    \
                                           [&] { return Run(#name, call, o, s); });  \
      })
FASTLOSS_LOSSES(FASTLOSS_CUDA_ENTRY)
#undef FASTLOSS_CUDA_ENTRY

// The Elements rows of FASTLOSS_MULTI_LOSSES: y_true = the target, y_pred =
// the first input, aux = the second (its gradient: grads[1]), as on the CPU
// (internal::ElementsSink).
template <class Options>
cudaError_t RunElements(const char* name, const char* args, const char* target,
                        const DeviceMultiCall& m, const Options& o, cudaStream_t stream) {
  return Guarded([&] {
    cudaError_t result = cudaSuccess;
    CheckOptions(name, o);
    const internal::ElementsNames names(args, target);
    const std::string grad_name = names.AuxGrad();
    const char* in0 = names.in[0].c_str();
    const char* in1 = names.in[1].c_str();
    internal::CheckView(name, in0, AsView(m.inputs[0]));
    internal::CheckView(name, in1, AsView(m.inputs[1]));
    internal::CheckView(name, target, AsView(m.target));
    internal::CheckSameShape(name, in0, AsView(m.inputs[0]), in1, AsView(m.inputs[1]));
    internal::CheckSameShape(name, target, AsView(m.target), in0, AsView(m.inputs[0]));
    CheckDType(name, in1, m.inputs[1], m.inputs[0].dtype);
    DeviceCall call;
    call.y_true = m.target;
    call.y_pred = m.inputs[0];
    call.weights = m.weights;
    call.reduction = m.reduction;
    call.grad = m.grads[0];
    call.losses = m.losses;
    call.result = m.result;
    LaunchSink sink{name, call, stream, &result};
    sink.aux = &m.inputs[1];
    sink.aux_name = in1;
    sink.aux_grad = m.grads[1] ? &*m.grads[1] : nullptr;
    sink.aux_grad_name = grad_name.c_str();
    internal::WithArgumentNames(target, in0, [&] {
      BuildFor(call, o, sink);
      return 0;
    });
    return result;
  });
}

#define FASTLOSS_CUDA_ELEMENTS_ENTRY(Name, name, kind, aliases, args, target)             \
  FASTLOSS_ELEMENTS_ONLY_##kind(                                                          \
      cudaError_t Name(const DeviceMultiCall& call, const Name##Options& o, cudaStream_t s) { \
        return RunElements(#name, args, target, call, o, s);                              \
      })
FASTLOSS_MULTI_LOSSES(FASTLOSS_CUDA_ELEMENTS_ENTRY)
#undef FASTLOSS_CUDA_ELEMENTS_ENTRY

cudaError_t BinaryCrossEntropy(const DeviceCall& call, const DeviceView& pos_weight,
                               const BinaryCrossEntropyOptions& o, cudaStream_t stream) {
  return Guarded([&] {
    cudaError_t result = cudaSuccess;
    CheckOptions("binary_cross_entropy", o);
    LaunchSink sink{"binary_cross_entropy", call, stream, &result};
    sink.aux = &pos_weight;
    sink.aux_name = "pos_weight";
    BuildFor(call, o, sink, true);
    return result;
  });
}

cudaError_t GanDiscriminator(const DeviceScoreCall& real, const DeviceScoreCall& fake,
                             Reduction reduction, void* result, cudaStream_t stream) {
  const ScorePart parts[2] = {{"real_logits", &real, internal::kAnyY},
                              {"fake_logits", &fake, internal::kAnyY}};
  const losses::ScaledSoftplus f[2] = {internal::GanRealLoss(), internal::GanFakeLoss()};
  return RunScoreParts("gan_discriminator", parts, f, reduction, result, stream);
}

cudaError_t GanGenerator(const DeviceScoreCall& fake, Reduction reduction, bool saturating,
                         void* result, cudaStream_t stream) {
  const ScorePart parts[1] = {{"fake_logits", &fake, internal::kAnyY}};
  const losses::ScaledSoftplus f[1] = {internal::GanGeneratorLoss(saturating)};
  return RunScoreParts("gan_generator", parts, f, reduction, result, stream);
}

cudaError_t WassersteinCritic(const DeviceScoreCall& real, const DeviceScoreCall& fake,
                              Reduction reduction, void* result, cudaStream_t stream) {
  const ScorePart parts[2] = {{"real_scores", &real, internal::kAnyY},
                              {"fake_scores", &fake, internal::kAnyY}};
  const losses::Linear f[2] = {internal::WassersteinRealLoss(), internal::WassersteinFakeLoss()};
  return RunScoreParts("wasserstein_critic", parts, f, reduction, result, stream);
}

cudaError_t WassersteinGenerator(const DeviceScoreCall& fake, Reduction reduction, void* result,
                                 cudaStream_t stream) {
  const ScorePart parts[1] = {{"fake_scores", &fake, internal::kAnyY}};
  const losses::Linear f[1] = {internal::WassersteinGeneratorLoss()};
  return RunScoreParts("wasserstein_generator", parts, f, reduction, result, stream);
}

}  // namespace cuda
}  // namespace fastloss
