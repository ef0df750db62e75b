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

template <typename T, double (*Loss)(const fastloss::Call<T>&)>
void Run(benchmark::State& state, bool grad, int threads) {
  const int64_t n = state.range(0);
  Data<T> d(n);
  fastloss::SetNumThreads(threads);
  fastloss::Call<T> call;
  call.y_true = fastloss::View<const T>::Contiguous(d.y.data(), {n});
  call.y_pred = fastloss::View<const T>::Contiguous(d.p.data(), {n});
  call.grad = fastloss::View<T>::Contiguous(d.g.data(), {n});
  call.has_grad = grad;
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

}  // namespace

int main(int argc, char** argv) {
  Register<float, Mse<float>>("mse", "float32");
  Register<double, Mse<double>>("mse", "float64");
  Register<float, Huber<float>>("huber", "float32");
  Register<float, LogCosh<float>>("log_cosh", "float32");
  Register<float, Poisson<float>>("poisson_nll", "float32");
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("simd_target", fastloss::SimdTarget());
  benchmark::AddCustomContext("fastloss", FASTLOSS_VERSION_STRING);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
