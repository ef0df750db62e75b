// Shared definitions for the loss functors: host/device annotations.
#ifndef FASTLOSS_SRC_INTERNAL_BASE_H_
#define FASTLOSS_SRC_INTERNAL_BASE_H_

// Functors are compiled as host code by the C++ compiler and as host+device
// code by nvcc, so one definition serves the CPU and the GPU.
#if defined(__CUDACC__)
#define FASTLOSS_HD __host__ __device__ __forceinline__
#else
#define FASTLOSS_HD inline __attribute__((always_inline))
#endif

#endif  // FASTLOSS_SRC_INTERNAL_BASE_H_
