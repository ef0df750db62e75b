// Host-side pieces shared by the CUDA drivers (common.cuh), and the device
// queries of <fastloss/cuda.hpp>.
#include <string>

#include "common.cuh"

namespace fastloss {
namespace cuda {
namespace detail {

std::string& LastError() {
  thread_local std::string message;
  return message;
}

size_t ItemSize(DType t) {
  switch (t) {
    case DType::kFloat64: return 8;
    case DType::kFloat32: return 4;
    default: return 2;
  }
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kFloat64: return "float64";
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    default: return "bfloat16";
  }
}

View<const char> AsView(const DeviceView& v) {
  View<const char> r;
  r.data = static_cast<const char*>(v.data);
  r.rank = v.rank;
  for (int k = 0; k < v.rank && k < kMaxRank; ++k) {
    r.shape[k] = v.shape[k];
    r.strides[k] = v.strides[k];
  }
  return r;
}

void CheckDType(const char* name, const char* arg, const DeviceView& v, DType t) {
  if (v.dtype != t) {
    throw Error(std::string(name) + ": " + arg + " must have y_pred's dtype " + DTypeName(t) +
                ", got " + DTypeName(v.dtype));
  }
}

void CheckOperands(const char* name, size_t item, const Operand* ops, int n) {
  for (int i = 0; i < n; ++i) {
    if (ops[i].data && reinterpret_cast<uintptr_t>(ops[i].data) % item != 0) {
      throw Error(std::string(name) + ": " + ops[i].name + "'s data is not aligned to its " +
                  std::to_string(item) + "-byte element size");
    }
  }
  for (int o = 0; o < n; ++o) {
    const Operand& out = ops[o];
    if (!out.data || !out.output) continue;
    for (int k = 0; k < out.rank; ++k) {
      if (out.strides[k] == 0 && out.shape[k] > 1) {
        throw Error(std::string(name) + ": " + out.name +
                    " has a zero stride (a broadcast view): its elements would overlap");
      }
    }
    // Strides under which two elements coincide (the CPU drivers' check).
    internal::CheckDistinctElements(name, out.name, out.rank, out.shape, out.strides);
    const internal::Extent eo = internal::ExtentOf(out.data, item, out.shape, out.strides, out.rank);
    if (eo.lo == eo.hi) continue;
    for (int i = 0; i < n; ++i) {
      const Operand& in = ops[i];
      if (i == o || !in.data || (in.output && i > o)) continue;
      const internal::Extent ei = internal::ExtentOf(in.data, item, in.shape, in.strides, in.rank);
      if (ei.lo == ei.hi || eo.hi <= ei.lo || ei.hi <= eo.lo) continue;
      bool same = out.data == in.data && out.rank == in.rank;
      for (int k = 0; same && k < out.rank; ++k) {
        same = out.shape[k] == in.shape[k] &&
               (out.shape[k] == 1 || out.strides[k] == in.strides[k]);
      }
      if (!same || in.output) {
        throw Error(std::string(name) + ": " + out.name + " overlaps " + in.name +
                    " in memory (only an exact in-place alias of an input is allowed)");
      }
    }
  }
}

}  // namespace detail

const char* LastErrorMessage() { return detail::LastError().c_str(); }

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

bool IsAvailable() { return DeviceCount() > 0; }

std::string DeviceName(int device) {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    throw Error("device_name: no CUDA device " + std::to_string(device));
  }
  return prop.name;
}

}  // namespace cuda
}  // namespace fastloss
