// A small pool of worker threads for the large calls. The caller's thread
// always works on its own job too, so a call completes even when every worker
// is busy with other callers' jobs (or, after fork(), when there are none).
#ifndef FASTLOSS_SRC_RUNTIME_THREAD_POOL_H_
#define FASTLOSS_SRC_RUNTIME_THREAD_POOL_H_

#include <cstdint>

namespace fastloss {
namespace internal {

// Calls fn(i) for every i in [0, n), using up to `threads` threads including
// the caller's. Returns when every call has returned. Thread-safe; calls from
// several threads at once share the workers.
void ParallelFor(int64_t n, int threads, void (*fn)(void* ctx, int64_t i), void* ctx);

template <class F>
void ParallelFor(int64_t n, int threads, F&& f) {
  ParallelFor(
      n, threads, [](void* ctx, int64_t i) { (*static_cast<F*>(ctx))(i); },
      static_cast<void*>(&f));
}

}  // namespace internal
}  // namespace fastloss

#endif  // FASTLOSS_SRC_RUNTIME_THREAD_POOL_H_
