#include "runtime/thread_pool.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "fastloss/fastloss.hpp"

namespace fastloss {
namespace internal {
namespace {

struct Job {
  void (*fn)(void*, int64_t);
  void* ctx;
  int64_t n;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable finished;

  // Claims and runs indices until none are left.
  void Work() {
    for (;;) {
      const int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      fn(ctx, i);
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::lock_guard<std::mutex> lock(mu);
        finished.notify_all();
      }
    }
  }
};

class Pool {
 public:
  void Run(int64_t n, int threads, void (*fn)(void*, int64_t), void* ctx) {
    auto job = std::make_shared<Job>();
    job->fn = fn;
    job->ctx = ctx;
    job->n = n;
    const int helpers = static_cast<int>(std::min<int64_t>(threads - 1, n - 1));
    if (helpers > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      while (static_cast<int>(workers_.size()) < helpers) {
        workers_.emplace_back([this] { WorkerLoop(); });
      }
      for (int k = 0; k < helpers; ++k) queue_.push_back(job);
    }
    if (helpers > 0) wake_.notify_all();
    job->Work();
    std::unique_lock<std::mutex> lock(job->mu);
    job->finished.wait(lock, [&] { return job->done.load() == n; });
  }

 private:
  void WorkerLoop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return !queue_.empty(); });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->Work();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  // Workers live as long as the process: the pool is never destroyed, so
  // interpreter shutdown never waits on (or tears down under) a worker.
  std::vector<std::thread> workers_;
};

std::atomic<int> g_num_threads{0};

int DefaultThreads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

// The process's pool. A child of fork() has none of its parent's workers, so
// it gets a fresh pool (the parent's is abandoned, not destroyed).
Pool& GlobalPool() {
  static std::atomic<Pool*> pool{nullptr};
  static std::atomic<pid_t> owner{0};
  const pid_t pid = getpid();
  Pool* p = pool.load(std::memory_order_acquire);
  if (p == nullptr || owner.load(std::memory_order_acquire) != pid) {
    static std::mutex create_mu;
    std::lock_guard<std::mutex> lock(create_mu);
    p = pool.load(std::memory_order_acquire);
    if (p == nullptr || owner.load(std::memory_order_acquire) != pid) {
      p = new Pool;
      pool.store(p, std::memory_order_release);
      owner.store(pid, std::memory_order_release);
    }
  }
  return *p;
}

}  // namespace

void ParallelFor(int64_t n, int threads, void (*fn)(void*, int64_t), void* ctx) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(ctx, i);
    return;
  }
  GlobalPool().Run(n, threads, fn, ctx);
}

}  // namespace internal

void SetNumThreads(int n) {
  if (n < 1) throw Error("num_threads must be >= 1, got " + std::to_string(n));
  internal::g_num_threads.store(n);
}

int GetNumThreads() {
  const int n = internal::g_num_threads.load();
  return n > 0 ? n : internal::DefaultThreads();
}

}  // namespace fastloss
