// The CUDA entry points (<fastloss/cuda.hpp>) against the CPU entry points on
// the same data: every loss, float32 and float64 (1e-6 / 1e-12 relative),
// float16 and bfloat16 (against the CPU's float32 result on the upcast data),
// every reduction, weights (full, per sample, scalar), strided inputs,
// bit-identical repeated runs, empty input, argument errors. Every test skips
// where no CUDA device is present (GTEST_SKIP with the reason).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <fastloss/cuda.hpp>
#include <fastloss/fastloss.hpp>

namespace {

using fastloss::Call;
using fastloss::Reduction;
using fastloss::View;
using fastloss::cuda::DeviceCall;
using fastloss::cuda::DeviceView;
using fastloss::cuda::DType;

#define SKIP_WITHOUT_GPU()                                                         \
  do {                                                                             \
    if (!fastloss::cuda::IsAvailable()) GTEST_SKIP() << "no CUDA device present"; \
  } while (0)

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << fastloss::cuda::LastErrorMessage()

// One loss on both sides, with the same options.
struct Loss {
  const char* name;
  std::function<double(const Call<float>&)> cpu32;
  std::function<double(const Call<double>&)> cpu64;
  std::function<cudaError_t(const DeviceCall&, cudaStream_t)> gpu;
  bool unit_y;  // y_true in [0, 1]
};

#define FASTLOSS_TEST_LOSS(label, Name, options, unit)                                   \
  Loss {                                                                                 \
    label, [](const Call<float>& c) { return fastloss::Name(c, options); },              \
        [](const Call<double>& c) { return fastloss::Name(c, options); },                \
        [](const DeviceCall& c, cudaStream_t s) { return fastloss::cuda::Name(c, options, s); }, \
        unit                                                                             \
  }

fastloss::BinaryCrossEntropyOptions Logits() {
  fastloss::BinaryCrossEntropyOptions o;
  o.from_logits = true;
  o.pos_weight = 2.0;
  return o;
}
fastloss::BinaryFocalOptions FocalLogits() {
  fastloss::BinaryFocalOptions o;
  o.from_logits = true;
  o.label_smoothing = 0.1;
  return o;
}

std::vector<Loss> Losses() {
  return {
      FASTLOSS_TEST_LOSS("mse", Mse, fastloss::MseOptions{}, false),
      FASTLOSS_TEST_LOSS("mae", Mae, fastloss::MaeOptions{}, false),
      FASTLOSS_TEST_LOSS("huber", Huber, fastloss::HuberOptions{0.5}, false),
      FASTLOSS_TEST_LOSS("smooth_l1", SmoothL1, fastloss::SmoothL1Options{0.5}, false),
      FASTLOSS_TEST_LOSS("log_cosh", LogCosh, fastloss::LogCoshOptions{}, false),
      FASTLOSS_TEST_LOSS("quantile", Quantile, fastloss::QuantileOptions{0.3}, false),
      FASTLOSS_TEST_LOSS("bce_probs", BinaryCrossEntropy, fastloss::BinaryCrossEntropyOptions{},
                         true),
      FASTLOSS_TEST_LOSS("bce_logits", BinaryCrossEntropy, Logits(), true),
      FASTLOSS_TEST_LOSS("focal_logits", BinaryFocal, FocalLogits(), true),
      FASTLOSS_TEST_LOSS("hinge", Hinge, fastloss::HingeOptions{}, false),
      FASTLOSS_TEST_LOSS("squared_hinge", SquaredHinge, fastloss::SquaredHingeOptions{}, false),
      FASTLOSS_TEST_LOSS("soft_margin", SoftMargin, fastloss::SoftMarginOptions{}, false),
      FASTLOSS_TEST_LOSS("contrastive", Contrastive, fastloss::ContrastiveOptions{}, true),
  };
}

// Device buffer of n elements of type S.
template <typename S>
struct DeviceBuffer {
  S* p = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    if (cudaMalloc(&p, sizeof(S) * (count ? count : 1)) != cudaSuccess) p = nullptr;
  }
  ~DeviceBuffer() { cudaFree(p); }
  void Upload(const std::vector<S>& h) { cudaMemcpy(p, h.data(), sizeof(S) * n, cudaMemcpyHostToDevice); }
  std::vector<S> Download() const {
    std::vector<S> h(n);
    cudaMemcpy(h.data(), p, sizeof(S) * n, cudaMemcpyDeviceToHost);
    return h;
  }
};

template <typename S> DType DTypeOf();
template <> DType DTypeOf<float>() { return DType::kFloat32; }
template <> DType DTypeOf<double>() { return DType::kFloat64; }
template <> DType DTypeOf<__half>() { return DType::kFloat16; }
template <> DType DTypeOf<__nv_bfloat16>() { return DType::kBFloat16; }

template <typename S> S FromFloat(float x) { return static_cast<S>(x); }
template <> __half FromFloat<__half>(float x) { return __float2half(x); }
template <> __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <typename S> float ToFloat(S x) { return static_cast<float>(x); }
template <> float ToFloat<__half>(__half x) { return __half2float(x); }
template <> float ToFloat<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
// A stored value as double, without rounding float64 through float.
template <typename S> double ToDouble(S x) { return ToFloat<S>(x); }
template <> double ToDouble<float>(float x) { return x; }
template <> double ToDouble<double>(double x) { return x; }

void Data(const Loss& loss, size_t n, uint32_t seed, std::vector<double>* y,
          std::vector<double>* p) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> unit(0.02, 0.98);
  y->resize(n);
  p->resize(n);
  const bool probs = std::strcmp(loss.name, "bce_probs") == 0;
  for (size_t i = 0; i < n; ++i) {
    (*y)[i] = loss.unit_y ? (i % 3 == 0 ? 1.0 : unit(rng)) : normal(rng);
    (*p)[i] = probs ? unit(rng) : (std::strcmp(loss.name, "contrastive") == 0
                                       ? std::fabs(normal(rng)) : normal(rng));
  }
}

// Allowed |got - want| for a stored element: gtol relative, plus 8 ulps of
// the array's scale (the GPU's exp/log1p and the CPU's differ by 1-2 ulp),
// plus float16's subnormal spacing.
template <typename S>
double Allowed(double want, double scale, double gtol) {
  const double ulp = std::is_same<S, double>::value ? 0x1p-52 : 0x1p-23;
  const double sub = std::is_same<S, __half>::value ? 0x1p-24 : 0.0;
  return gtol * std::fabs(want) + 8 * ulp * scale + sub;
}

double RelErr(double a, double b) {
  if (a == b) return 0.0;
  return std::fabs(a - b) / std::max(std::fabs(b), 1e-30);
}

// GPU (storage S) against the CPU (float, or double for S = double) on the
// same values; returns through gtest assertions.
template <typename S>
void Compare(const Loss& loss, size_t n, Reduction r, bool weighted, double rtol, double gtol) {
  using Host = typename std::conditional<std::is_same<S, double>::value, double, float>::type;
  std::vector<double> yd, pd;
  Data(loss, n, 7u + static_cast<uint32_t>(n), &yd, &pd);
  std::vector<S> ys(n), ps(n), ws(n);
  std::vector<Host> yh(n), ph(n), wh(n), gh(n), lh(n);
  for (size_t i = 0; i < n; ++i) {
    ys[i] = FromFloat<S>(static_cast<float>(yd[i]));
    ps[i] = FromFloat<S>(static_cast<float>(pd[i]));
    ws[i] = FromFloat<S>(0.25f + static_cast<float>(i % 7) * 0.5f);
    if (std::is_same<S, double>::value) {
      ys[i] = static_cast<S>(yd[i]);
      ps[i] = static_cast<S>(pd[i]);
    }
    yh[i] = static_cast<Host>(ToFloat<S>(ys[i]));
    ph[i] = static_cast<Host>(ToFloat<S>(ps[i]));
    wh[i] = static_cast<Host>(ToFloat<S>(ws[i]));
    if (std::is_same<S, double>::value) {
      yh[i] = static_cast<Host>(yd[i]);
      ph[i] = static_cast<Host>(pd[i]);
    }
  }
  const int64_t shape = static_cast<int64_t>(n);
  Call<Host> c;
  c.y_true = View<const Host>::Contiguous(yh.data(), {shape});
  c.y_pred = View<const Host>::Contiguous(ph.data(), {shape});
  c.reduction = r;
  c.grad = View<Host>::Contiguous(gh.data(), {shape});
  if (r == Reduction::kNone) {
    c.losses = View<Host>::Contiguous(lh.data(), {shape});
  }
  if (weighted) {
    c.weights = View<const Host>::Contiguous(wh.data(), {shape});
  }
  double want;
  if constexpr (std::is_same<Host, double>::value) {
    want = loss.cpu64(c);
  } else {
    want = loss.cpu32(c);
  }

  DeviceBuffer<S> y(n), p(n), w(n), g(n), l(n);
  using R = typename std::conditional<std::is_same<S, double>::value, double, float>::type;
  DeviceBuffer<R> result(1);
  y.Upload(ys);
  p.Upload(ps);
  w.Upload(ws);
  DeviceCall d;
  d.y_true = DeviceView::Contiguous(y.p, DTypeOf<S>(), {shape});
  d.y_pred = DeviceView::Contiguous(p.p, DTypeOf<S>(), {shape});
  d.reduction = r;
  d.grad = DeviceView::Contiguous(g.p, DTypeOf<S>(), {shape});
  if (r == Reduction::kNone) {
    d.losses = DeviceView::Contiguous(l.p, DTypeOf<S>(), {shape});
  } else {
    d.result = result.p;
  }
  if (weighted) {
    d.weights = DeviceView::Contiguous(w.p, DTypeOf<S>(), {shape});
  }
  CUDA_OK(loss.gpu(d, 0));
  CUDA_OK(cudaDeviceSynchronize());
  if (r != Reduction::kNone) {
    const double got = static_cast<double>(result.Download()[0]);
    EXPECT_LE(RelErr(got, want), rtol) << loss.name << " value " << got << " vs " << want;
  } else {
    const std::vector<S> lg = l.Download();
    double lscale = 0.0;
    for (size_t i = 0; i < n; ++i) lscale = std::max(lscale, std::fabs(static_cast<double>(lh[i])));
    for (size_t i = 0; i < n; ++i) {
      const double want_i = lh[i];
      ASSERT_LE(std::fabs(ToDouble<S>(lg[i]) - want_i), Allowed<S>(want_i, lscale, gtol))
          << loss.name << " loss at " << i;
    }
  }
  const std::vector<S> gg = g.Download();
  double scale = 0.0;
  for (size_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(static_cast<double>(gh[i])));
  for (size_t i = 0; i < n; ++i) {
    const double want_i = gh[i];
    ASSERT_LE(std::fabs(ToDouble<S>(gg[i]) - want_i), Allowed<S>(want_i, scale, gtol))
        << loss.name << " grad at " << i;
  }
}

TEST(Cuda, DeviceQuery) {
  SKIP_WITHOUT_GPU();
  EXPECT_GT(fastloss::cuda::DeviceCount(), 0);
  EXPECT_FALSE(fastloss::cuda::DeviceName(0).empty());
}

TEST(Cuda, EveryLossFloat32AndFloat64) {
  SKIP_WITHOUT_GPU();
  for (const Loss& loss : Losses()) {
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      for (bool weighted : {false, true}) {
        for (size_t n : {size_t{1}, size_t{1000}, size_t{100003}}) {
          SCOPED_TRACE(std::string(loss.name) + " n=" + std::to_string(n));
          Compare<float>(loss, n, r, weighted, 1e-6, 1e-5);
          Compare<double>(loss, n, r, weighted, 1e-12, 1e-12);
        }
      }
    }
  }
}

TEST(Cuda, HalfAndBfloat16) {
  SKIP_WITHOUT_GPU();
  for (const Loss& loss : Losses()) {
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      SCOPED_TRACE(loss.name);
      Compare<__half>(loss, 4099, r, true, 1e-5, 1e-3);
      Compare<__nv_bfloat16>(loss, 4099, r, true, 1e-5, 1e-2);
    }
  }
}

// Strided inputs (every other element of a buffer) and a scalar weight give
// the contiguous result.
TEST(Cuda, StridedAndBroadcastWeights) {
  SKIP_WITHOUT_GPU();
  const size_t n = 50001;
  std::vector<float> y(2 * n), p(2 * n), w{2.5f};
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (auto& v : y) v = normal(rng);
  for (auto& v : p) v = normal(rng);
  std::vector<float> yc(n), pc(n);
  for (size_t i = 0; i < n; ++i) {
    yc[i] = y[2 * i];
    pc[i] = p[2 * i];
  }
  DeviceBuffer<float> dy(2 * n), dp(2 * n), dw(1), dg(2 * n), dyc(n), dpc(n), dgc(n), r1(1), r2(1);
  dy.Upload(y);
  dp.Upload(p);
  dw.Upload(w);
  dyc.Upload(yc);
  dpc.Upload(pc);
  DeviceCall s;
  s.y_true.data = dy.p;
  s.y_true.rank = 1;
  s.y_true.shape[0] = static_cast<int64_t>(n);
  s.y_true.strides[0] = 2;
  s.y_pred = s.y_true;
  s.y_pred.data = dp.p;
  s.grad = s.y_true;
  s.grad->data = dg.p;
  s.weights = DeviceView::Contiguous(dw.p, DType::kFloat32, {1});
  s.result = r1.p;
  DeviceCall c = s;
  c.y_true = DeviceView::Contiguous(dyc.p, DType::kFloat32, {static_cast<int64_t>(n)});
  c.y_pred = DeviceView::Contiguous(dpc.p, DType::kFloat32, {static_cast<int64_t>(n)});
  c.grad = DeviceView::Contiguous(dgc.p, DType::kFloat32, {static_cast<int64_t>(n)});
  c.result = r2.p;
  CUDA_OK(fastloss::cuda::Huber(s, {}, 0));
  CUDA_OK(fastloss::cuda::Huber(c, {}, 0));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT_EQ(r1.Download()[0], r2.Download()[0]);
  const std::vector<float> gs = dg.Download(), gc = dgc.Download();
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(gs[2 * i], gc[i]) << i;
}

// The same n gives the same bits whatever the alignment (the 16-byte path and
// the element path sum in the same order), with or without the gradient,
// and on every run.
TEST(Cuda, BitIdenticalRuns) {
  SKIP_WITHOUT_GPU();
  const size_t n = (size_t{1} << 22) + 3;
  std::vector<float> y(n + 1), p(n + 1);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (auto& v : y) v = normal(rng);
  for (auto& v : p) v = normal(rng);
  DeviceBuffer<float> dy(n + 1), dp(n + 1), dg(n + 1), r(1);
  const auto bits = [&](float* y0, float* p0, bool grad) {
    // y0/p0 point at n elements holding y[0..n) and p[0..n).
    DeviceCall c;
    c.y_true = DeviceView::Contiguous(y0, DType::kFloat32, {static_cast<int64_t>(n)});
    c.y_pred = DeviceView::Contiguous(p0, DType::kFloat32, {static_cast<int64_t>(n)});
    c.result = r.p;
    if (grad) {
      c.grad = DeviceView::Contiguous(dg.p, DType::kFloat32, {static_cast<int64_t>(n)});
    }
    EXPECT_EQ(fastloss::cuda::LogCosh(c, {}, 0), cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const float v = r.Download()[0];
    uint32_t b;
    std::memcpy(&b, &v, 4);
    return b;
  };
  // Aligned: the data at the start of the buffers.
  std::vector<float> ya(y.begin(), y.end() - 1), pa(p.begin(), p.end() - 1);
  ya.push_back(0.0f);
  pa.push_back(0.0f);
  dy.Upload(ya);
  dp.Upload(pa);
  const uint32_t aligned = bits(dy.p, dp.p, false);
  EXPECT_EQ(bits(dy.p, dp.p, false), aligned) << "second run";
  EXPECT_EQ(bits(dy.p, dp.p, true), aligned) << "with the gradient";
  // Misaligned by one element: the same values one float later.
  std::vector<float> yu{0.0f}, pu{0.0f};
  yu.insert(yu.end(), ya.begin(), ya.end() - 1);
  pu.insert(pu.end(), pa.begin(), pa.end() - 1);
  dy.Upload(yu);
  dp.Upload(pu);
  EXPECT_EQ(bits(dy.p + 1, dp.p + 1, false), aligned) << "4-byte aligned data";
  EXPECT_EQ(bits(dy.p + 1, dp.p + 1, true), aligned) << "4-byte aligned data, with the gradient";
}

TEST(Cuda, EmptyInput) {
  SKIP_WITHOUT_GPU();
  DeviceBuffer<float> r(1);
  DeviceCall c;
  float dummy = 0.0f;
  c.y_true = DeviceView::Contiguous(&dummy, DType::kFloat32, {0});
  c.y_pred = c.y_true;
  c.result = r.p;
  CUDA_OK(fastloss::cuda::Mse(c, {}, 0));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT_TRUE(std::isnan(r.Download()[0]));
  c.reduction = Reduction::kSum;
  CUDA_OK(fastloss::cuda::Mse(c, {}, 0));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT_EQ(r.Download()[0], 0.0f);
}

// Argument errors need no device: they are found before any launch.
TEST(Cuda, ArgumentErrorsNameTheArgument) {
  float a[4] = {}, b[3] = {};
  DeviceCall c;
  c.y_true = DeviceView::Contiguous(a, DType::kFloat32, {4});
  c.y_pred = DeviceView::Contiguous(b, DType::kFloat32, {3});
  c.result = a;
  EXPECT_EQ(fastloss::cuda::Mse(c, {}, 0), cudaErrorInvalidValue);
  EXPECT_NE(std::string(fastloss::cuda::LastErrorMessage()).find("y_true"), std::string::npos);
  c.y_pred = DeviceView::Contiguous(b, DType::kFloat64, {4});
  EXPECT_EQ(fastloss::cuda::Mse(c, {}, 0), cudaErrorInvalidValue);
  EXPECT_NE(std::string(fastloss::cuda::LastErrorMessage()).find("dtype"), std::string::npos);
  c.y_pred = DeviceView::Contiguous(b, DType::kFloat32, {4});
  EXPECT_EQ(fastloss::cuda::Huber(c, fastloss::HuberOptions{-1.0}, 0), cudaErrorInvalidValue);
  EXPECT_NE(std::string(fastloss::cuda::LastErrorMessage()).find("delta"), std::string::npos);
  c.weights = DeviceView::Contiguous(a, DType::kFloat32, {3});
  EXPECT_EQ(fastloss::cuda::Mse(c, {}, 0), cudaErrorInvalidValue);
  EXPECT_NE(std::string(fastloss::cuda::LastErrorMessage()).find("weights"), std::string::npos);
  c.weights.reset();
  // A broadcast (zero-stride) gradient would have threads race on one element.
  float g[4] = {};
  c.grad = DeviceView::Contiguous(g, DType::kFloat32, {4});
  c.grad->strides[0] = 0;
  EXPECT_EQ(fastloss::cuda::Mse(c, {}, 0), cudaErrorInvalidValue);
  EXPECT_NE(std::string(fastloss::cuda::LastErrorMessage()).find("zero stride"), std::string::npos);
  c.grad.reset();
  // A pointer not aligned to the element size (a sticky CUDA error if launched).
  c.y_pred.data = reinterpret_cast<char*>(b) + 1;
  EXPECT_EQ(fastloss::cuda::Mse(c, {}, 0), cudaErrorInvalidValue);
  EXPECT_NE(std::string(fastloss::cuda::LastErrorMessage()).find("not aligned"), std::string::npos);
}

TEST(Cuda, NoDeviceIsReportedNotFatal) {
  // Whatever the machine: the query functions answer without aborting.
  const int n = fastloss::cuda::DeviceCount();
  EXPECT_EQ(fastloss::cuda::IsAvailable(), n > 0);
  if (n == 0) EXPECT_THROW(fastloss::cuda::DeviceName(0), fastloss::Error);
}

// --- The multi-sum + finalize, box, score and pos_weight entry points ---------------

// Host data of type T uploaded as is; the GPU call against the CPU call on the
// same views (value, gradient and 'none' losses).
template <typename T>
struct Shaped {
  std::vector<int64_t> shape, out_shape, w_shape;  // w_shape empty: no weights
  std::vector<T> y, p, w;
};

template <typename T>
View<const T> HostView(const T* data, const std::vector<int64_t>& shape) {
  View<const T> v;
  v.data = data;
  v.rank = static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int k = v.rank - 1; k >= 0; --k) {
    v.shape[k] = shape[k];
    v.strides[k] = stride;
    stride *= shape[k];
  }
  return v;
}
template <typename T>
View<T> HostOut(T* data, const std::vector<int64_t>& shape) {
  const View<const T> c = HostView<T>(data, shape);
  View<T> v;
  v.data = data;
  v.rank = c.rank;
  std::copy(c.shape, c.shape + c.rank, v.shape);
  std::copy(c.strides, c.strides + c.rank, v.strides);
  return v;
}
DeviceView DevView(void* data, DType t, const std::vector<int64_t>& shape) {
  DeviceView v;
  const View<const char> h = HostView<char>(static_cast<const char*>(data), shape);
  v.data = data;
  v.rank = h.rank;
  std::copy(h.shape, h.shape + h.rank, v.shape);
  std::copy(h.strides, h.strides + h.rank, v.strides);
  v.dtype = t;
  return v;
}
size_t Count(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

template <typename T>
void CompareShaped(const char* label, const Shaped<T>& d, Reduction r,
                   const std::function<double(const Call<T>&)>& cpu,
                   const std::function<cudaError_t(const DeviceCall&)>& gpu, double rtol,
                   double gtol) {
  SCOPED_TRACE(label);
  const size_t n = Count(d.shape), m = Count(d.out_shape);
  std::vector<T> gh(n), lh(m);
  Call<T> c;
  c.y_true = HostView<T>(d.y.data(), d.shape);
  c.y_pred = HostView<T>(d.p.data(), d.shape);
  c.reduction = r;
  c.grad = HostOut<T>(gh.data(), d.shape);
  if (r == Reduction::kNone) {
    c.losses = HostOut<T>(lh.data(), d.out_shape);
  }
  if (!d.w_shape.empty()) {
    c.weights = HostView<T>(d.w.data(), d.w_shape);
  }
  const double want = cpu(c);
  const DType t = DTypeOf<T>();
  DeviceBuffer<T> y(n), p(n), g(n), l(m), w(d.w.size()), res(1);
  y.Upload(d.y);
  p.Upload(d.p);
  if (!d.w.empty()) w.Upload(d.w);
  DeviceCall dc;
  dc.y_true = DevView(y.p, t, d.shape);
  dc.y_pred = DevView(p.p, t, d.shape);
  dc.reduction = r;
  dc.grad = DevView(g.p, t, d.shape);
  if (r == Reduction::kNone) {
    dc.losses = DevView(l.p, t, d.out_shape);
  } else {
    dc.result = res.p;
  }
  if (!d.w_shape.empty()) {
    dc.weights = DevView(w.p, t, d.w_shape);
  }
  CUDA_OK(gpu(dc));
  CUDA_OK(cudaDeviceSynchronize());
  if (r != Reduction::kNone) {
    const double got = static_cast<double>(res.Download()[0]);
    EXPECT_LE(RelErr(got, want), rtol) << "value " << got << " vs " << want;
  } else {
    const std::vector<T> lg = l.Download();
    double lscale = 0.0;
    for (size_t i = 0; i < m; ++i) lscale = std::max(lscale, std::fabs(static_cast<double>(lh[i])));
    for (size_t i = 0; i < m; ++i) {
      ASSERT_LE(std::fabs(static_cast<double>(lg[i]) - static_cast<double>(lh[i])),
                Allowed<T>(lh[i], lscale, gtol))
          << "loss at " << i;
    }
  }
  const std::vector<T> gg = g.Download();
  double scale = 0.0;
  for (size_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(static_cast<double>(gh[i])));
  for (size_t i = 0; i < n; ++i) {
    ASSERT_LE(std::fabs(static_cast<double>(gg[i]) - static_cast<double>(gh[i])),
              Allowed<T>(gh[i], scale, gtol))
        << "grad at " << i;
  }
}

template <typename T>
Shaped<T> Masks(std::vector<int64_t> shape, std::vector<int64_t> out_shape,
                std::vector<int64_t> w_shape, bool logits, uint32_t seed) {
  Shaped<T> d;
  d.shape = shape;
  d.out_shape = out_shape;
  d.w_shape = w_shape;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 2.0);
  const size_t n = Count(shape);
  for (size_t i = 0; i < n; ++i) {
    d.y.push_back(static_cast<T>(unit(rng) < 0.3 ? 1.0 : 0.0));
    d.p.push_back(static_cast<T>(logits ? normal(rng) : unit(rng)));
  }
  for (size_t i = 0; i < Count(w_shape) && !w_shape.empty(); ++i) {
    d.w.push_back(static_cast<T>(0.5 + 0.25 * static_cast<double>(i % 5)));
  }
  return d;
}

template <typename T>
void OverlapCases(double rtol, double gtol) {
  struct Case {
    const char* label;
    bool all_axes;
    std::vector<int> axes;
    std::vector<int64_t> out_shape, w_shape;
  };
  const std::vector<int64_t> shape{3, 2, 17, 33};
  const std::vector<Case> cases = {
      {"all axes", true, {}, {}, {}},
      {"axes (2, 3)", false, {2, 3}, {3, 2}, {2}},
      {"axis 1 (strided groups)", false, {1}, {3, 17, 33}, {3, 1, 33}},
      {"axes (0, -1), a big group", false, {0, -1}, {2, 17}, {}},
      {"no axes", false, {}, {3, 2, 17, 33}, {}},
  };
  for (const Case& k : cases) {
    for (bool squared : {false, true}) {
      for (bool logits : {false, true}) {
        fastloss::FocalTverskyOptions o;
        o.all_axes = k.all_axes;
        o.axes = k.axes;
        o.squared = squared;
        o.from_logits = logits;
        o.alpha = 0.3;
        o.beta = 0.7;
        o.gamma = 1.5;
        const Shaped<T> d = Masks<T>(shape, k.out_shape, k.w_shape, logits, 11);
        for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
          const std::string label = std::string(k.label) + (squared ? " squared" : "") +
                                    (logits ? " logits" : "") + " r=" +
                                    std::to_string(static_cast<int>(r));
          fastloss::DiceOptions dice;
          static_cast<fastloss::OverlapOptions&>(dice) = o;
          CompareShaped<T>(("dice " + label).c_str(), d, r,
                           [&](const Call<T>& c) { return fastloss::Dice(c, dice); },
                           [&](const DeviceCall& c) { return fastloss::cuda::Dice(c, dice, 0); },
                           rtol, gtol);
          fastloss::JaccardOptions jac;
          static_cast<fastloss::OverlapOptions&>(jac) = o;
          CompareShaped<T>(("jaccard " + label).c_str(), d, r,
                           [&](const Call<T>& c) { return fastloss::Jaccard(c, jac); },
                           [&](const DeviceCall& c) { return fastloss::cuda::Jaccard(c, jac, 0); },
                           rtol, gtol);
          const fastloss::TverskyOptions tv = o;
          CompareShaped<T>(("tversky " + label).c_str(), d, r,
                           [&](const Call<T>& c) { return fastloss::Tversky(c, tv); },
                           [&](const DeviceCall& c) { return fastloss::cuda::Tversky(c, tv, 0); },
                           rtol, gtol);
          CompareShaped<T>(("focal_tversky " + label).c_str(), d, r,
                           [&](const Call<T>& c) { return fastloss::FocalTversky(c, o); },
                           [&](const DeviceCall& c) {
                             return fastloss::cuda::FocalTversky(c, o, 0);
                           },
                           rtol, gtol);
        }
      }
    }
  }
}

TEST(Cuda, OverlapLossesMatchCpu) {
  SKIP_WITHOUT_GPU();
  OverlapCases<float>(1e-6, 1e-5);
  OverlapCases<double>(1e-12, 1e-12);
}

// A group of more than one chunk (2048 elements) per score, many chunks.
TEST(Cuda, DiceLargeGroups) {
  SKIP_WITHOUT_GPU();
  fastloss::DiceOptions o;
  o.all_axes = false;
  o.axes = {1, 2};
  o.from_logits = true;
  const Shaped<float> d = Masks<float>({4, 300, 257}, {4}, {4}, true, 5);
  for (Reduction r : {Reduction::kMean, Reduction::kNone}) {
    CompareShaped<float>("dice large", d, r,
                         [&](const Call<float>& c) { return fastloss::Dice(c, o); },
                         [&](const DeviceCall& c) { return fastloss::cuda::Dice(c, o, 0); },
                         1e-6, 1e-5);
  }
}

TEST(Cuda, BoxIouMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 1031;
  for (auto kind : {fastloss::BoxIouKind::kIou, fastloss::BoxIouKind::kGiou,
                    fastloss::BoxIouKind::kDiou, fastloss::BoxIouKind::kCiou}) {
    fastloss::BoxIouOptions o;
    o.kind = kind;
    Shaped<double> d;
    d.shape = {n, 4};
    d.out_shape = {n};
    d.w_shape = {n};
    std::mt19937 rng(9);
    std::uniform_real_distribution<double> u(0.0, 10.0), s(0.5, 4.0);
    for (int64_t b = 0; b < n; ++b) {
      const double x = u(rng), y = u(rng);
      const double tx = x + u(rng) * 0.3 - 1.0, ty = y + u(rng) * 0.3 - 1.0;
      for (double v : {tx, ty, tx + s(rng), ty + s(rng)}) d.y.push_back(v);
      for (double v : {x, y, x + s(rng), y + s(rng)}) d.p.push_back(v);
      d.w.push_back(0.5 + static_cast<double>(b % 3));
    }
    Shaped<float> f;
    f.shape = d.shape;
    f.out_shape = d.out_shape;
    f.w_shape = d.w_shape;
    f.y.assign(d.y.begin(), d.y.end());
    f.p.assign(d.p.begin(), d.p.end());
    f.w.assign(d.w.begin(), d.w.end());
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      SCOPED_TRACE(static_cast<int>(kind));
      CompareShaped<double>("box f64", d, r,
                            [&](const Call<double>& c) { return fastloss::BoxIou(c, o); },
                            [&](const DeviceCall& c) { return fastloss::cuda::BoxIou(c, o, 0); },
                            1e-12, 1e-11);
      CompareShaped<float>("box f32", f, r,
                           [&](const Call<float>& c) { return fastloss::BoxIou(c, o); },
                           [&](const DeviceCall& c) { return fastloss::cuda::BoxIou(c, o, 0); },
                           1e-6, 1e-5);
    }
  }
}

TEST(Cuda, BcePosWeightArray) {
  SKIP_WITHOUT_GPU();
  fastloss::BinaryCrossEntropyOptions o;
  o.from_logits = true;
  Shaped<double> d = Masks<double>({100, 7}, {100, 7}, {}, true, 3);
  std::vector<double> pw{0.5, 1.0, 2.0, 3.0, 0.25, 1.5, 4.0};
  DeviceBuffer<double> dpw(7);
  dpw.Upload(pw);
  const View<const double> hpw = HostView<double>(pw.data(), {7});
  const DeviceView gpw = DevView(dpw.p, DType::kFloat64, {7});
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    CompareShaped<double>(
        "bce pos_weight", d, r,
        [&](const Call<double>& c) { return fastloss::BinaryCrossEntropy(c, hpw, o); },
        [&](const DeviceCall& c) { return fastloss::cuda::BinaryCrossEntropy(c, gpw, o, 0); },
        1e-12, 1e-12);
  }
}

TEST(Cuda, AdversarialLossesMatchCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t nr = 1000, nf = 777;
  std::vector<double> real(nr), fake(nf), wr(nr, 2.0);
  std::mt19937 rng(4);
  std::normal_distribution<double> normal(0.0, 3.0);
  for (auto& v : real) v = normal(rng);
  for (auto& v : fake) v = normal(rng);
  DeviceBuffer<double> dr(nr), df(nf), dwr(nr), dgr(nr), dgf(nf), res(1);
  dr.Upload(real);
  df.Upload(fake);
  dwr.Upload(wr);
  std::vector<double> gr(nr), gf(nf);
  for (Reduction r : {Reduction::kMean, Reduction::kSum}) {
    fastloss::ScoreCall<double> hr, hf;
    hr.scores = HostView<double>(real.data(), {nr});
    hr.weights = HostView<double>(wr.data(), {nr});
    hr.grad = HostOut<double>(gr.data(), {nr});
    hf.scores = HostView<double>(fake.data(), {nf});
    hf.grad = HostOut<double>(gf.data(), {nf});
    fastloss::cuda::DeviceScoreCall cr, cf;
    cr.scores = DevView(dr.p, DType::kFloat64, {nr});
    cr.weights = DevView(dwr.p, DType::kFloat64, {nr});
    cr.grad = DevView(dgr.p, DType::kFloat64, {nr});
    cf.scores = DevView(df.p, DType::kFloat64, {nf});
    cf.grad = DevView(dgf.p, DType::kFloat64, {nf});
    const auto check = [&](const char* label, double want, bool both) {
      CUDA_OK(cudaDeviceSynchronize());
      EXPECT_LE(RelErr(res.Download()[0], want), 1e-12) << label;
      const std::vector<double> g1 = dgf.Download();
      for (int64_t i = 0; i < nf; ++i) ASSERT_NEAR(g1[i], gf[i], 1e-15) << label << " fake " << i;
      if (!both) return;
      const std::vector<double> g0 = dgr.Download();
      for (int64_t i = 0; i < nr; ++i) ASSERT_NEAR(g0[i], gr[i], 1e-15) << label << " real " << i;
    };
    double want = fastloss::GanDiscriminator(hr, hf, r);
    CUDA_OK(fastloss::cuda::GanDiscriminator(cr, cf, r, res.p, 0));
    check("gan_discriminator", want, true);
    want = fastloss::WassersteinCritic(hr, hf, r);
    CUDA_OK(fastloss::cuda::WassersteinCritic(cr, cf, r, res.p, 0));
    check("wasserstein_critic", want, true);
    for (bool saturating : {false, true}) {
      want = fastloss::GanGenerator(hf, r, saturating);
      CUDA_OK(fastloss::cuda::GanGenerator(cf, r, saturating, res.p, 0));
      check("gan_generator", want, false);
    }
    want = fastloss::WassersteinGenerator(hf, r);
    CUDA_OK(fastloss::cuda::WassersteinGenerator(cf, r, res.p, 0));
    check("wasserstein_generator", want, false);
  }
}

// Found before any launch: no device needed.
TEST(Cuda, StructuredArgumentErrors) {
  float a[12] = {}, b[12] = {}, g[12] = {};
  const auto message = [] { return std::string(fastloss::cuda::LastErrorMessage()); };
  DeviceCall c;
  c.y_true = DevView(a, DType::kFloat32, {3, 4});
  c.y_pred = DevView(b, DType::kFloat32, {3, 4});
  c.result = g;
  fastloss::DiceOptions dice;
  dice.all_axes = false;
  dice.axes = {2};
  EXPECT_EQ(fastloss::cuda::Dice(c, dice, 0), cudaErrorInvalidValue);
  EXPECT_NE(message().find("axis 2 is out of range"), std::string::npos) << message();
  dice.axes = {1, -1};
  EXPECT_EQ(fastloss::cuda::Dice(c, dice, 0), cudaErrorInvalidValue);
  EXPECT_NE(message().find("repeated"), std::string::npos) << message();
  dice.axes = {1};
  c.reduction = Reduction::kNone;
  c.losses = DevView(g, DType::kFloat32, {4});
  EXPECT_EQ(fastloss::cuda::Dice(c, dice, 0), cudaErrorInvalidValue);
  EXPECT_NE(message().find("losses must have the scores' shape"), std::string::npos) << message();
  c.losses.reset();
  c.reduction = Reduction::kMean;
  fastloss::TverskyOptions tv;
  tv.alpha = -1.0;
  EXPECT_EQ(fastloss::cuda::Tversky(c, tv, 0), cudaErrorInvalidValue);
  EXPECT_NE(message().find("alpha"), std::string::npos) << message();
  // 'none' losses may not alias an input the gradient pass reads (axes=()).
  fastloss::DiceOptions each;
  each.all_axes = false;
  c.reduction = Reduction::kNone;
  c.losses = c.y_pred;
  c.grad = DevView(g, DType::kFloat32, {3, 4});
  EXPECT_EQ(fastloss::cuda::Dice(c, each, 0), cudaErrorInvalidValue);
  EXPECT_NE(message().find("losses overlaps y_pred"), std::string::npos) << message();
  c.losses.reset();
  c.grad.reset();
  c.reduction = Reduction::kMean;
  // A misaligned result would be a sticky error in the final fold.
  c.result = reinterpret_cast<char*>(g) + 2;
  EXPECT_EQ(fastloss::cuda::Dice(c, {}, 0), cudaErrorInvalidValue);
  EXPECT_NE(message().find("result's data is not aligned"), std::string::npos) << message();
  c.result = g;
  // Boxes need a last axis of 4; errors say boxes_pred.
  c.y_true = DevView(a, DType::kFloat32, {4, 3});
  c.y_pred = DevView(b, DType::kFloat32, {4, 3});
  EXPECT_EQ(fastloss::cuda::BoxIou(c, {}, 0), cudaErrorInvalidValue);
  EXPECT_NE(message().find("boxes_pred must have shape (..., 4)"), std::string::npos) << message();
  // An array pos_weight that does not broadcast is named.
  c.y_true = DevView(a, DType::kFloat32, {3, 4});
  c.y_pred = DevView(b, DType::kFloat32, {3, 4});
  EXPECT_EQ(fastloss::cuda::BinaryCrossEntropy(c, DevView(g, DType::kFloat32, {3}), {}, 0),
            cudaErrorInvalidValue);
  EXPECT_NE(message().find("pos_weight"), std::string::npos) << message();
  // Score arrays: both checked before either runs, named by their argument.
  fastloss::cuda::DeviceScoreCall real, fake;
  real.scores = DevView(a, DType::kFloat32, {12});
  fake.scores = DevView(b, DType::kFloat32, {12});
  fake.weights = DevView(g, DType::kFloat32, {5});
  EXPECT_EQ(fastloss::cuda::GanDiscriminator(real, fake, Reduction::kMean, g, 0),
            cudaErrorInvalidValue);
  EXPECT_NE(message().find("fake_logits"), std::string::npos) << message();
  fake.weights.reset();
  fake.scores = DevView(b, DType::kFloat64, {6});
  EXPECT_EQ(fastloss::cuda::WassersteinCritic(real, fake, Reduction::kSum, g, 0),
            cudaErrorInvalidValue);
  EXPECT_NE(message().find("dtype"), std::string::npos) << message();
}

}  // namespace
