// A multi-threaded evaluation loop: worker threads score batches of a data
// set with fastloss (each call is independent and thread-safe), each adding
// its batches' exact sums to its own fastloss::LossState; the states are
// merged at the end. Merging is exact, so the result is the same bits
// however the batches were scheduled, in whatever order the states merge,
// and equal to one call over the whole data set.
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
  const unsigned n_threads = std::max(2u, std::thread::hardware_concurrency());
  std::vector<fastloss::LossState> states(n_threads);  // one per worker: no locks
  std::atomic<int64_t> next{0};
  // Each call below is small, so fastloss keeps it on the calling thread; the
  // parallelism comes from the workers.
  auto worker = [&](unsigned t) {
    for (int64_t b; (b = next.fetch_add(1)) < batches;) {
      const int64_t r0 = b * kBatch, rows = std::min(kBatch, kRows - r0);
      fastloss::Call<float> call;
      call.y_true = fastloss::View<const float>::Contiguous(&y[r0 * kCols], {rows, kCols});
      call.y_pred = fastloss::View<const float>::Contiguous(&p[r0 * kCols], {rows, kCols});
      call.weights = fastloss::View<const float>::Contiguous(w.data(), {kCols});
      call.state = &states[t];  // adds sum(w * l), sum(w) and the count
      fastloss::LogCosh(call);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n_threads; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();

  fastloss::LossState total;  // merged in reverse: any order gives the same bits
  for (unsigned t = n_threads; t-- > 0;) total.Merge(states[t]);
  const double streamed = total.Result(fastloss::Reduction::kMean);

  // The same weighted mean in one call over the whole data set.
  fastloss::Call<float> all;
  all.y_true = fastloss::View<const float>::Contiguous(y.data(), {kRows, kCols});
  all.y_pred = fastloss::View<const float>::Contiguous(p.data(), {kRows, kCols});
  all.weights = fastloss::View<const float>::Contiguous(w.data(), {kCols});
  const double one_call = fastloss::LogCosh(all);
  std::printf("%u threads, %lld batches, %lld elements: weighted log-cosh %.17g (one call: %.17g)\n",
              n_threads, static_cast<long long>(batches), static_cast<long long>(total.count),
              streamed, one_call);
  return streamed == one_call && total.count == kRows * kCols ? 0 : 1;
}
