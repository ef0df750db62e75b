// Threads (cpp/src/runtime/thread_pool.cc and the split in drivers/elementwise/): the
// thread count setting, bit-for-bit determinism of values and gradients for
// any thread count, calls from many threads at once (small calls on the
// caller's thread, large ones sharing the pool, the thread count changing
// under them), and a fresh pool in a child of fork().
#include <gtest/gtest.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <fastloss/fastloss.hpp>

#include "checks.h"
#include "reference.h"

namespace fastloss_test {
namespace {

// Restores the thread count a test changes.
class ThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = fastloss::GetNumThreads(); }
  void TearDown() override { fastloss::SetNumThreads(saved_); }

 private:
  int saved_ = 1;
};

TEST_F(ThreadsTest, DefaultIsTheHardwareConcurrency) {
  const unsigned hc = std::thread::hardware_concurrency();
  EXPECT_EQ(fastloss::GetNumThreads(), hc == 0 ? 1 : static_cast<int>(hc));
}

TEST_F(ThreadsTest, SetAndGet) {
  for (int n : {3, 1, 64, 2}) {
    fastloss::SetNumThreads(n);
    EXPECT_EQ(fastloss::GetNumThreads(), n);
  }
  for (int bad : {0, -1, -100}) {
    EXPECT_THROW(fastloss::SetNumThreads(bad), fastloss::Error) << bad;
    EXPECT_THROW(fastloss::SetNumThreads(bad), std::invalid_argument) << bad;
    EXPECT_EQ(fastloss::GetNumThreads(), 2) << "a rejected count changed the setting";
  }
}

// --- Determinism: 3e6 float elements, 1, 2, 3 and 4 threads. ---

struct DeterminismCase {
  std::string name;
  LossConfig config;
  enum { kUnweighted, kPerSample, kFull } weights = kUnweighted;
  bool strided = false;  // y_pred with stride 2, the gradient with stride -1
  // Float data sums exactly in float64 block partials whatever the order, so
  // only double data would show a fold order that depends on the split.
  bool is_double = false;
};

void PrintTo(const DeterminismCase& d, std::ostream* os) { *os << d.name; }

std::vector<DeterminismCase> DeterminismCases() {
  std::vector<DeterminismCase> out;
  for (const LossConfig& c : DefaultConfigs()) out.push_back({c.name, c});
  for (const LossConfig& c : AllConfigs()) {
    if (c.name == "huber") {
      DeterminismCase d{"huber_weighted_full", c};
      d.weights = DeterminismCase::kFull;
      out.push_back(d);
    }
    if (c.name == "log_cosh") {
      DeterminismCase d{"log_cosh_per_sample_strided", c};
      d.weights = DeterminismCase::kPerSample;
      d.strided = true;
      out.push_back(d);
      d = {"log_cosh_double", c};
      d.is_double = true;
      out.push_back(d);
    }
    if (c.name == "mse") {
      DeterminismCase d{"mse_double_weighted_strided", c};
      d.weights = DeterminismCase::kPerSample;
      d.strided = true;
      d.is_double = true;
      out.push_back(d);
    }
  }
  return out;
}

class DeterminismTest : public ::testing::TestWithParam<DeterminismCase> {
 protected:
  void SetUp() override { saved_ = fastloss::GetNumThreads(); }
  void TearDown() override { fastloss::SetNumThreads(saved_); }

 private:
  int saved_ = 1;
};

template <typename T>
void CheckDeterminism(const DeterminismCase& dc) {
  const LossConfig& c = dc.config;
  const int64_t rows = 300000, cols = 10, n = rows * cols;  // 3e6, > 2048 blocks
  // Random data is slow to draw: tile a few blocks' worth of it, with a
  // period that is no multiple of the block size.
  const int64_t period = 3 * fastloss::kReductionBlock + 17;
  std::vector<double> y64, p64;
  MakeData(c, period, 99, &y64, &p64);
  std::vector<T> y(static_cast<size_t>(n)), pv(static_cast<size_t>(n));
  for (size_t i = 0; i < y.size(); ++i) {
    // Double data: vary every element a little, so partial sums round.
    const double jitter = std::is_same<T, double>::value ? 1.0 + 1e-9 * static_cast<double>(i % 9973) : 1.0;
    y[i] = static_cast<T>(y64[i % y64.size()]);
    pv[i] = static_cast<T>(p64[i % p64.size()] * jitter);
  }
  StridedArray<T> p({rows, cols}, dc.strided ? std::vector<int64_t>{2 * cols, 2}
                                             : std::vector<int64_t>{cols, 1});
  p.Fill(pv);
  pv = std::vector<T>();
  std::vector<T> w_rows, w_full;
  if (dc.weights == DeterminismCase::kPerSample) w_rows = Cast<T>(MakeWeights(rows, 99));
  if (dc.weights == DeterminismCase::kFull) w_full = Cast<T>(MakeWeights(n, 99));

  auto make_call = [&](Reduction r) {
    Call<T> call;
    call.y_true = View<const T>::Contiguous(y.data(), {rows, cols});
    call.y_pred = p.cview();
    call.reduction = r;
    if (dc.weights == DeterminismCase::kPerSample) {
      call.weights = View<const T>::Contiguous(w_rows.data(), {rows, 1});
    } else if (dc.weights == DeterminismCase::kFull) {
      call.weights = View<const T>::Contiguous(w_full.data(), {rows, cols});
    }
    return call;
  };
  const std::vector<int64_t> grad_strides =
      dc.strided ? std::vector<int64_t>{-cols, -1} : std::vector<int64_t>{cols, 1};

  double value1 = 0;
  std::vector<T> grad1, none_grad1, none_losses1;
  for (int threads : {1, 2, 3, 4}) {
    SCOPED_TRACE("threads=" + std::to_string(threads));
    fastloss::SetNumThreads(threads);
    // Mean, value and gradient.
    StridedArray<T> grad({rows, cols}, grad_strides);
    Call<T> call = make_call(Reduction::kMean);
    call.grad = grad.view();
    if (threads == 1) {
      const Expected e = Reference(c, call);
      value1 = RunLoss(c, call);
      EXPECT_TRUE(MatchesReference(e, call, value1));
      grad1 = grad.Values();
    } else {
      const double v = RunLoss(c, call);
      EXPECT_EQ(std::memcmp(&v, &value1, sizeof v), 0)
          << std::hexfloat << v << " vs " << value1 << " with 1 thread";
      const std::vector<T> g = grad.Values();
      EXPECT_EQ(std::memcmp(g.data(), grad1.data(), g.size() * sizeof(T)), 0);
    }
    // Sum of the same, value only.
    Call<T> sum_call = make_call(Reduction::kSum);
    const double s = RunLoss(c, sum_call);
    if (dc.weights == DeterminismCase::kUnweighted) {
      // mean = sum / n exactly, whatever the split.
      EXPECT_EQ(s / static_cast<double>(n), value1);
    }
    // None: per-element losses and gradient.
    StridedArray<T> ng({rows, cols}, grad_strides), nl({rows, cols}, {cols, 1});
    Call<T> none = make_call(Reduction::kNone);
    none.grad = ng.view();
    none.losses = nl.view();
    EXPECT_EQ(RunLoss(c, none), 0.0);
    if (threads == 1) {
      none_grad1 = ng.Values();
      none_losses1 = nl.Values();
    } else {
      const std::vector<T> g = ng.Values(), l = nl.Values();
      EXPECT_EQ(std::memcmp(g.data(), none_grad1.data(), g.size() * sizeof(T)), 0);
      EXPECT_EQ(std::memcmp(l.data(), none_losses1.data(), l.size() * sizeof(T)), 0);
    }
  }
}

TEST_P(DeterminismTest, BitIdenticalForAnyThreadCount) {
  if (GetParam().is_double) {
    CheckDeterminism<double>(GetParam());
  } else {
    CheckDeterminism<float>(GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Losses, DeterminismTest, ::testing::ValuesIn(DeterminismCases()),
    [](const ::testing::TestParamInfo<DeterminismCase>& info) { return info.param.name; });

// --- Concurrency. ---

// One precomputed call: inputs, and the value / outputs it gave when run
// alone.
template <typename T>
struct Job {
  LossConfig config;
  Reduction reduction = Reduction::kMean;
  bool weighted = false;
  int64_t p_stride = 1;  // > 1: y_pred strided, through the driver's gather path
  std::vector<T> y, p, w;
  double value = 0;
  std::vector<T> grad, losses;

  Call<T> MakeCall(T* grad_out, T* losses_out) const {
    const int64_t n = static_cast<int64_t>(y.size());
    Call<T> call;
    call.y_true = View<const T>::Contiguous(y.data(), {n});
    call.y_pred = MakeView<const T>(p.data(), {n}, {p_stride});
    if (weighted) {
      call.weights = View<const T>::Contiguous(w.data(), {n});
    }
    call.reduction = reduction;
    call.grad = View<T>::Contiguous(grad_out, {n});
    call.losses = View<T>::Contiguous(losses_out, {n});
    if (!(reduction == Reduction::kNone)) call.losses.reset();
    return call;
  }
  // Runs the call into the given buffers (sized n) and says whether it
  // reproduced the stored results bit for bit.
  bool Reproduces(std::vector<T>* g, std::vector<T>* l) const {
    const size_t n = y.size();
    g->resize(n);
    l->resize(n);
    const double v = RunLoss(config, MakeCall(g->data(), l->data()));
    bool same = std::memcmp(&v, &value, sizeof v) == 0;
    same = same && std::memcmp(g->data(), grad.data(), n * sizeof(T)) == 0;
    if (reduction == Reduction::kNone) {
      same = same && std::memcmp(l->data(), losses.data(), n * sizeof(T)) == 0;
    }
    return same;
  }
};

template <typename T>
std::vector<Job<T>> MakeJobs(int count, int64_t min_n, int64_t max_n, uint64_t seed) {
  const std::vector<LossConfig> configs = AllConfigs();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> size(min_n, max_n);
  std::vector<Job<T>> jobs(static_cast<size_t>(count));
  for (int k = 0; k < count; ++k) {
    Job<T>& j = jobs[static_cast<size_t>(k)];
    j.config = configs[static_cast<size_t>(k) % configs.size()];
    j.reduction = static_cast<Reduction>(k % 3);
    j.weighted = (k / 3) % 2 == 1;
    const int64_t n = size(rng);
    std::vector<double> y64, p64;
    MakeData(j.config, n, seed + static_cast<uint64_t>(k), &y64, &p64);
    j.y = Cast<T>(y64);
    j.p_stride = k % 4 == 3 ? 3 : 1;
    j.p.assign(static_cast<size_t>(n * j.p_stride), T(0));
    for (int64_t i = 0; i < n; ++i) {
      j.p[static_cast<size_t>(i * j.p_stride)] = static_cast<T>(p64[static_cast<size_t>(i)]);
    }
    j.w = Cast<T>(MakeWeights(n, static_cast<uint64_t>(k)));
    j.grad.resize(static_cast<size_t>(n));
    j.losses.resize(static_cast<size_t>(n));
    j.value = RunLoss(j.config, j.MakeCall(j.grad.data(), j.losses.data()));
  }
  return jobs;
}

// 16 threads x 1000 calls (a mix of losses, dtypes, reductions, weights,
// sizes 1..5000) reproduce the sequential results exactly.
TEST_F(ThreadsTest, ManyThreadsSmallCalls) {
  const std::vector<Job<float>> jobs_f = MakeJobs<float>(40, 1, 5000, 1);
  const std::vector<Job<double>> jobs_d = MakeJobs<double>(40, 1, 5000, 2);
  constexpr int kThreads = 16, kCalls = 1000;
  std::atomic<int> mismatches{0}, exceptions{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> gf, lf;
      std::vector<double> gd, ld;
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < kCalls; ++i) {
        const size_t k = rng() % jobs_f.size();
        try {
          const bool ok = (i % 2) ? jobs_f[k].Reproduces(&gf, &lf)
                                  : jobs_d[k].Reproduces(&gd, &ld);
          if (!ok) ++mismatches;
        } catch (...) {
          ++exceptions;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0) << "of " << kThreads * kCalls << " calls";
  EXPECT_EQ(exceptions.load(), 0);
}

// Large calls from several threads at once share the pool, while another
// thread keeps changing the thread count: every result is still the one
// computed alone.
TEST_F(ThreadsTest, ConcurrentLargeCallsShareThePool) {
  fastloss::SetNumThreads(4);
  const std::vector<Job<float>> jobs = MakeJobs<float>(6, 300000, 600000, 3);
  std::atomic<bool> stop{false};
  std::thread toggler([&] {
    int k = 0;
    while (!stop.load()) {
      fastloss::SetNumThreads(1 + (k++ % 4));
      std::this_thread::yield();
    }
  });
  constexpr int kThreads = 6, kCalls = 8;
  std::atomic<int> mismatches{0}, exceptions{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> g, l;
      for (int i = 0; i < kCalls; ++i) {
        try {
          if (!jobs[static_cast<size_t>(t + i) % jobs.size()].Reproduces(&g, &l)) ++mismatches;
        } catch (...) {
          ++exceptions;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  stop = true;
  toggler.join();
  EXPECT_EQ(mismatches.load(), 0) << "of " << kThreads * kCalls << " calls";
  EXPECT_EQ(exceptions.load(), 0);
}

// A child of fork() (after the parent's pool has started its workers) gets a
// working pool of its own: a large call there neither hangs nor changes.
TEST_F(ThreadsTest, WorksInAForkedChild) {
  fastloss::SetNumThreads(4);
  const std::vector<Job<float>> jobs = MakeJobs<float>(1, 1000000, 1000000, 4);
  std::vector<float> g, l;
  ASSERT_TRUE(jobs[0].Reproduces(&g, &l));  // the parent's workers now exist
  fflush(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(30);  // a hang fails the test instead of blocking it
    std::vector<float> cg, cl;
    const bool ok = jobs[0].Reproduces(&cg, &cl) && jobs[0].Reproduces(&cg, &cl);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's result differed";
  EXPECT_TRUE(jobs[0].Reproduces(&g, &l));
}

}  // namespace
}  // namespace fastloss_test
