// C++ benchmarks of the elementwise driver through the public API:
// value, value+gradient, across sizes, float and double, 1 thread and all.
// Reports items/s and bytes/s (inputs read + gradient written) and the SIMD
// target in the context.
//
//   cmake -S . -B build -DFASTLOSS_BUILD_BENCHMARKS=ON && cmake --build build
//   build/bench/cpp/bench_drivers --benchmark_filter=Mse
#include <benchmark/benchmark.h>
#include <fastloss/fastloss.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

template <typename T>
struct Data {
  std::vector<T> y, p, g;
  explicit Data(int64_t n) : y(n), p(n), g(n) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<double> u(0.1, 3.0);
    for (int64_t i = 0; i < n; ++i) {
      y[i] = static_cast<T>(u(rng));
      p[i] = static_cast<T>(u(rng));
    }
  }
};

// Classification inputs, as bench/impls_classification.py makes them:
// binary targets y in {0, 1} with logits x ~ N(0, 2^2) (kLogits), or
// probabilities sigmoid(x) (kProbs); soft_margin's y in {-1, 1} with
// p ~ N(0, 1) + y / 2 (kMargin).
enum class Kind { kRegression, kLogits, kProbs, kMargin };

template <typename T>
void MakeClassification(Data<T>& d, Kind kind) {
  std::mt19937 rng(1);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::bernoulli_distribution coin(0.5);
  for (size_t i = 0; i < d.y.size(); ++i) {
    const double y = coin(rng) ? 1.0 : 0.0;
    const double z = normal(rng);
    switch (kind) {
      case Kind::kLogits: d.y[i] = T(y); d.p[i] = T(2.0 * z); break;
      case Kind::kProbs: d.y[i] = T(y); d.p[i] = T(1.0 / (1.0 + std::exp(-2.0 * z))); break;
      case Kind::kMargin: d.y[i] = T(2 * y - 1); d.p[i] = T(z + 0.5 * (2 * y - 1)); break;
      case Kind::kRegression: break;
    }
  }
}

template <typename T, double (*Loss)(const fastloss::Call<T>&), Kind kKind = Kind::kRegression>
void Run(benchmark::State& state, bool grad, int threads) {
  const int64_t n = state.range(0);
  Data<T> d(n);
  if (kKind != Kind::kRegression) MakeClassification(d, kKind);
  fastloss::SetNumThreads(threads);
  fastloss::Call<T> call;
  call.y_true = fastloss::View<const T>::Contiguous(d.y.data(), {n});
  call.y_pred = fastloss::View<const T>::Contiguous(d.p.data(), {n});
  call.grad = fastloss::View<T>::Contiguous(d.g.data(), {n});
  if (!(grad)) call.grad.reset();
  for (auto _ : state) benchmark::DoNotOptimize(Loss(call));
  state.SetItemsProcessed(state.iterations() * n);
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(T)) *
                          (grad ? 3 : 2));
  state.counters["threads"] = threads;
}

template <typename T> double Mse(const fastloss::Call<T>& c) { return fastloss::Mse(c); }
template <typename T> double Huber(const fastloss::Call<T>& c) { return fastloss::Huber(c); }
template <typename T> double LogCosh(const fastloss::Call<T>& c) { return fastloss::LogCosh(c); }
template <typename T> double Poisson(const fastloss::Call<T>& c) { return fastloss::PoissonNll(c); }
template <typename T> double BceLogits(const fastloss::Call<T>& c) {
  fastloss::BinaryCrossEntropyOptions o;
  o.from_logits = true;
  return fastloss::BinaryCrossEntropy(c, o);
}
template <typename T> double BceProbs(const fastloss::Call<T>& c) {
  return fastloss::BinaryCrossEntropy(c);
}
template <typename T> double FocalLogits(const fastloss::Call<T>& c) {
  fastloss::BinaryFocalOptions o;
  o.from_logits = true;
  return fastloss::BinaryFocal(c, o);
}
template <typename T> double SoftMargin(const fastloss::Call<T>& c) {
  return fastloss::SoftMargin(c);
}

template <typename T, double (*Loss)(const fastloss::Call<T>&)>
void Register(const char* name, const char* dtype) {
  const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string base = std::string(name) + "/" + dtype;
  benchmark::RegisterBenchmark((base + "/value/threads:1").c_str(),
                               [](benchmark::State& s) { Run<T, Loss>(s, false, 1); })
      ->RangeMultiplier(100)->Range(8, 10000000);
  benchmark::RegisterBenchmark((base + "/value_and_grad/threads:1").c_str(),
                               [](benchmark::State& s) { Run<T, Loss>(s, true, 1); })
      ->RangeMultiplier(100)->Range(8, 10000000);
  benchmark::RegisterBenchmark((base + "/value_and_grad/threads:all").c_str(),
                               [all](benchmark::State& s) { Run<T, Loss>(s, true, all); })
      ->Arg(100000)->Arg(10000000);
}

// The transcendental classification losses at 1e7 elements (value and
// value+grad on 1 thread, value+grad on all).
template <typename T, double (*Loss)(const fastloss::Call<T>&), Kind kKind>
void RegisterClassification(const char* name, const char* dtype) {
  const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::string base = std::string(name) + "/" + dtype;
  benchmark::RegisterBenchmark((base + "/value/threads:1").c_str(),
                               [](benchmark::State& s) { Run<T, Loss, kKind>(s, false, 1); })
      ->Arg(10000000)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark((base + "/value_and_grad/threads:1").c_str(),
                               [](benchmark::State& s) { Run<T, Loss, kKind>(s, true, 1); })
      ->Arg(10000000)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark((base + "/value_and_grad/threads:all").c_str(),
                               [all](benchmark::State& s) { Run<T, Loss, kKind>(s, true, all); })
      ->Arg(10000000)->Unit(benchmark::kMillisecond);
}

// Sparse categorical cross-entropy from logits, (rows, C) float32 with
// logits ~ N(0, 2^2) and uniform labels, as bench/impls_classification.py.
template <typename T>
void RunSparseCe(benchmark::State& state, bool grad) {
  const int64_t rows = state.range(0), C = state.range(1), n = rows * C;
  std::vector<T> x(static_cast<size_t>(n)), g(static_cast<size_t>(n));
  std::vector<int64_t> labels(static_cast<size_t>(rows));
  std::mt19937 rng(1);
  std::normal_distribution<double> normal(0.0, 2.0);
  for (auto& v : x) v = static_cast<T>(normal(rng));
  for (auto& t : labels) t = static_cast<int64_t>(rng() % static_cast<uint32_t>(C));
  fastloss::SetNumThreads(1);
  fastloss::LabelCall<T> call;
  call.labels = fastloss::View<const int64_t>::Contiguous(labels.data(), {rows});
  call.y_pred = fastloss::View<const T>::Contiguous(x.data(), {rows, C});
  call.grad = fastloss::View<T>::Contiguous(g.data(), {rows, C});
  if (!(grad)) call.grad.reset();
  fastloss::SparseCategoricalCrossEntropyOptions o;
  o.from_logits = true;
  for (auto _ : state) benchmark::DoNotOptimize(fastloss::SparseCategoricalCrossEntropy(call, o));
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["threads"] = 1;
}

}  // namespace

int main(int argc, char** argv) {
  Register<float, Mse<float>>("mse", "float32");
  Register<double, Mse<double>>("mse", "float64");
  Register<float, Huber<float>>("huber", "float32");
  Register<float, LogCosh<float>>("log_cosh", "float32");
  Register<float, Poisson<float>>("poisson_nll", "float32");
  RegisterClassification<float, BceLogits<float>, Kind::kLogits>("bce_logits", "float32");
  RegisterClassification<double, BceLogits<double>, Kind::kLogits>("bce_logits", "float64");
  RegisterClassification<float, BceProbs<float>, Kind::kProbs>("bce_probs", "float32");
  RegisterClassification<double, BceProbs<double>, Kind::kProbs>("bce_probs", "float64");
  RegisterClassification<float, SoftMargin<float>, Kind::kMargin>("soft_margin", "float32");
  RegisterClassification<double, SoftMargin<double>, Kind::kMargin>("soft_margin", "float64");
  RegisterClassification<float, FocalLogits<float>, Kind::kLogits>("binary_focal", "float32");
  RegisterClassification<double, FocalLogits<double>, Kind::kLogits>("binary_focal", "float64");
  for (bool grad : {false, true}) {
    benchmark::RegisterBenchmark(
        grad ? "sparse_cce/float32/value_and_grad/threads:1" : "sparse_cce/float32/value/threads:1",
        [grad](benchmark::State& s) { RunSparseCe<float>(s, grad); })
        ->Args({4096, 1000})->Args({512, 32000})->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("simd_target", fastloss::SimdTarget());
  benchmark::AddCustomContext("fastloss", FASTLOSS_VERSION_STRING);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
