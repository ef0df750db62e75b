// fastloss._core: result arrays (see buffers.h).
#include "buffers.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace fastloss_py {
namespace {

// Large result arrays come from a small cache of recently freed buffers.
// A fresh multi-megabyte allocation is mapped page by page as the kernel first
// writes it, and the operating system zeroes every page: for a 1e7-element
// float32 gradient that costs more than computing it. A training or
// evaluation loop that drops last step's gradient gets its memory back here,
// already mapped. Bounded: at most kMaxCached buffers and kMaxCachedBytes.
class BufferCache {
 public:
  static constexpr size_t kMinBytes = size_t{1} << 20;
  static constexpr size_t kGranule = size_t{2} << 20;  // a huge page
  static constexpr size_t kMaxCached = 8;
  static constexpr size_t kMaxCachedBytes = size_t{1} << 30;

  static BufferCache& Get() {
    static BufferCache* cache = new BufferCache;  // lives as long as the process
    return *cache;
  }

  // A buffer of at least `bytes` (rounded up to kGranule), 64-byte aligned.
  void* Take(size_t bytes, size_t* capacity) {
    const size_t cap = (bytes + kGranule - 1) / kGranule * kGranule;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < free_.size(); ++i) {
        if (free_[i].second == cap) {
          void* p = free_[i].first;
          cached_bytes_ -= cap;
          free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
          *capacity = cap;
          return p;
        }
      }
    }
    *capacity = cap;
    return std::aligned_alloc(kGranule, cap);
  }

  void Give(void* p, size_t cap) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.size() < kMaxCached && cached_bytes_ + cap <= kMaxCachedBytes) {
        free_.emplace_back(p, cap);
        cached_bytes_ += cap;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<void*, size_t>> free_;
  size_t cached_bytes_ = 0;
};

}  // namespace

static void ReleaseCachedBuffer(PyObject* capsule) {
  void* p = PyCapsule_GetPointer(capsule, "fastloss.buffer");
  const size_t cap = reinterpret_cast<size_t>(PyCapsule_GetContext(capsule));
  BufferCache::Get().Give(p, cap);
}

// A new C-contiguous array of the given shape, and a view of it (the
// optional view is set).
template <typename T>
py::object NewArray(int rank, const int64_t* shape, fastloss::OptionalView<T>& out) {
  npy_intp dims[fastloss::kMaxRank];
  size_t bytes = sizeof(T);
  for (int k = 0; k < rank; ++k) {
    dims[k] = static_cast<npy_intp>(shape[k]);
    bytes *= static_cast<size_t>(shape[k]);
  }
  constexpr int type_num = std::is_same<T, float>::value ? NPY_FLOAT : NPY_DOUBLE;
  PyObject* a;
  if (bytes < BufferCache::kMinBytes) {
    a = PyArray_SimpleNew(rank, dims, type_num);
    if (!a) throw py::error_already_set();
  } else {
    size_t cap = 0;
    void* data = BufferCache::Get().Take(bytes, &cap);
    if (!data) throw std::bad_alloc();
    PyObject* capsule = PyCapsule_New(data, "fastloss.buffer", ReleaseCachedBuffer);
    if (!capsule) {
      BufferCache::Get().Give(data, cap);
      throw py::error_already_set();
    }
    PyCapsule_SetContext(capsule, reinterpret_cast<void*>(cap));
    a = PyArray_New(&PyArray_Type, rank, dims, type_num, nullptr, data, 0,
                    NPY_ARRAY_CARRAY, nullptr);
    if (!a) {
      Py_DECREF(capsule);
      throw py::error_already_set();
    }
    if (PyArray_SetBaseObject(reinterpret_cast<PyArrayObject*>(a), capsule) < 0) {
      Py_DECREF(a);
      throw py::error_already_set();
    }
  }
  View<T>& view = out.emplace();
  view.data = static_cast<T*>(PyArray_DATA(reinterpret_cast<PyArrayObject*>(a)));
  view.rank = rank;
  int64_t stride = 1;
  for (int k = rank - 1; k >= 0; --k) {
    view.shape[k] = shape[k];
    view.strides[k] = stride;
    stride *= shape[k];
  }
  return py::reinterpret_steal<py::object>(a);
}

template <typename T>
py::object NewArray(const Arg& like, fastloss::OptionalView<T>& view) {
  return NewArray<T>(like.rank, like.shape, view);
}

py::object Scalar(double value, Kind kind) {
  // PyArray_Scalar borrows the descriptor: keep one reference for good.
  static PyArray_Descr* const f32 = PyArray_DescrFromType(NPY_FLOAT);
  static PyArray_Descr* const f64 = PyArray_DescrFromType(NPY_DOUBLE);
  PyObject* r;
  if (kind == Kind::kF32) {
    float v = static_cast<float>(value);
    r = PyArray_Scalar(&v, f32, nullptr);
  } else {
    r = PyArray_Scalar(&value, f64, nullptr);
  }
  if (!r) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(r);
}


template py::object NewArray<float>(int, const int64_t*, fastloss::OptionalView<float>&);
template py::object NewArray<double>(int, const int64_t*, fastloss::OptionalView<double>&);
template py::object NewArray<float>(const Arg&, fastloss::OptionalView<float>&);
template py::object NewArray<double>(const Arg&, fastloss::OptionalView<double>&);

}  // namespace fastloss_py
