// fastloss: runtime configuration (threads, SIMD target).
#ifndef FASTLOSS_RUNTIME_HPP_
#define FASTLOSS_RUNTIME_HPP_

#include <string>
#include <vector>

namespace fastloss {

// Threads used by large calls (the caller's thread included). n >= 1.
void SetNumThreads(int n);
int GetNumThreads();
// Name of the SIMD instruction set the kernels dispatch to ("AVX2", ...).
std::string SimdTarget();

// Test hooks. The targets compiled in and supported by this CPU, best first;
// ForceSimdTarget(name) makes every later call use that one ("" restores the
// best). Forcing is process-wide and not synchronised with calls in flight:
// for tests, not for production.
std::vector<std::string> AvailableSimdTargets();
void ForceSimdTarget(const std::string& name);

}  // namespace fastloss

#endif  // FASTLOSS_RUNTIME_HPP_
