// A multi-threaded evaluation loop: worker threads score batches of a data
// set with fastloss (each call is independent and thread-safe) and the
// per-batch sums are merged in batch order, so the total is the same however
// the batches were scheduled.
#include <fastloss/fastloss.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

int main() {
  const int64_t kRows = 200000, kCols = 16, kBatch = 4096;
  std::vector<float> y(kRows * kCols), p(kRows * kCols);
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = normal(rng);
    p[i] = y[i] + 0.3f * normal(rng);
  }
  // Per-column weights, broadcast over rows (shape (kCols,) against (rows, kCols)).
  std::vector<float> w(kCols);
  for (int64_t c = 0; c < kCols; ++c) w[c] = 1.0f + 0.1f * static_cast<float>(c);

  const int64_t batches = (kRows + kBatch - 1) / kBatch;
  std::vector<double> batch_sum(batches), batch_weight(batches);
  std::atomic<int64_t> next{0};
  // Each call below is small, so fastloss keeps it on the calling thread; the
  // parallelism comes from the workers.
  auto worker = [&] {
    for (int64_t b; (b = next.fetch_add(1)) < batches;) {
      const int64_t r0 = b * kBatch, rows = std::min(kBatch, kRows - r0);
      fastloss::Call<float> call;
      call.y_true = fastloss::View<const float>::Contiguous(&y[r0 * kCols], {rows, kCols});
      call.y_pred = fastloss::View<const float>::Contiguous(&p[r0 * kCols], {rows, kCols});
      call.weights = fastloss::View<const float>::Contiguous(w.data(), {kCols});
      call.reduction = fastloss::Reduction::kSum;
      batch_sum[b] = fastloss::LogCosh(call);
      double wsum = 0;
      for (float x : w) wsum += x;
      batch_weight[b] = wsum * static_cast<double>(rows);
    }
  };
  const unsigned n_threads = std::max(2u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();

  double total = 0, weight = 0;
  for (int64_t b = 0; b < batches; ++b) {  // merge in batch order: deterministic
    total += batch_sum[b];
    weight += batch_weight[b];
  }

  // The same weighted mean in one call over the whole data set.
  fastloss::Call<float> all;
  all.y_true = fastloss::View<const float>::Contiguous(y.data(), {kRows, kCols});
  all.y_pred = fastloss::View<const float>::Contiguous(p.data(), {kRows, kCols});
  all.weights = fastloss::View<const float>::Contiguous(w.data(), {kCols});
  const double one_call = fastloss::LogCosh(all);
  std::printf("%u threads, %lld batches: weighted log-cosh %.9f (one call: %.9f)\n", n_threads,
              static_cast<long long>(batches), total / weight, one_call);
  return std::fabs(total / weight - one_call) <= 1e-6 * std::fabs(one_call) ? 0 : 1;
}
