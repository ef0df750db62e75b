// fastloss._core: reading Python arguments into strided views (the buffer
// protocol, NumPy arrays read directly), and the checks and messages every
// entry point shares.
#ifndef FASTLOSS_PYTHON_ARGUMENTS_H_
#define FASTLOSS_PYTHON_ARGUMENTS_H_

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fastloss/fastloss.hpp"
#include "numpy_api.h"

namespace fastloss_py {

namespace py = pybind11;
using fastloss::View;

// Interned NumPy objects, leaked on purpose: they must outlive every call,
// including calls made while the interpreter shuts down.
struct NumpyRefs {
  py::object asarray, float32, float64, dtype_f32, dtype_f64;
};
const NumpyRefs& Np();

enum class Kind { kF32, kF64, kReal, kOther };

// The element kind of a buffer-protocol format string (native byte order
// only; anything else is "other" and gets converted through NumPy).
Kind KindOfFormat(const char* fmt, Py_ssize_t itemsize);
// The dtype NumPy would give obj, as text ("an unknown type" if none).
std::string DtypeName(py::handle obj);
// type(v).__name__.
std::string TypeName(py::handle v);

// A strided view of one argument, and what keeps its memory alive.
struct Arg {
  const char* name = "";
  py::object owner;  // the object the view reads (possibly a converted copy)
  Kind kind = Kind::kOther;
  char* data = nullptr;
  int rank = 0;
  int64_t shape[fastloss::kMaxRank];
  int64_t byte_strides[fastloss::kMaxRank];
  int64_t itemsize = 0;
  bool writable = false;
  Py_buffer buffer{};
  bool has_buffer = false;

  Arg() = default;
  Arg(const Arg&) = delete;
  Arg& operator=(const Arg&) = delete;
  ~Arg() { Release(); }

  void Release() {
    if (has_buffer) PyBuffer_Release(&buffer);
    has_buffer = false;
  }

  // Reads `obj`. Returns false if it is neither an ndarray nor a buffer.
  bool Load(const char* loss, py::handle obj, bool need_writable) {
    Release();
    owner = py::reinterpret_borrow<py::object>(obj);
    if (PyArray_Check(obj.ptr())) {
      PyArrayObject* a = reinterpret_cast<PyArrayObject*>(obj.ptr());
      const PyArray_Descr* descr = PyArray_DESCR(a);
      const bool native = PyArray_ISNBO(descr->byteorder);
      const int num = descr->type_num;
      const bool real = PyTypeNum_ISINTEGER(num) || PyTypeNum_ISBOOL(num) ||
                        PyTypeNum_ISFLOAT(num);
      kind = !native ? (real ? Kind::kReal : Kind::kOther)
             : num == NPY_FLOAT ? Kind::kF32
             : num == NPY_DOUBLE ? Kind::kF64
             : real ? Kind::kReal : Kind::kOther;
      rank = PyArray_NDIM(a);
      CheckRank(loss);
      itemsize = PyArray_ITEMSIZE(a);
      const npy_intp* dims = PyArray_DIMS(a);
      const npy_intp* strides = PyArray_STRIDES(a);
      for (int k = 0; k < rank; ++k) {
        shape[k] = dims[k];
        byte_strides[k] = strides[k];
      }
      data = static_cast<char*>(PyArray_DATA(a));
      writable = PyArray_ISWRITEABLE(a);
      return true;
    }
    const int flags = need_writable ? PyBUF_RECORDS : PyBUF_RECORDS_RO;
    if (PyObject_GetBuffer(obj.ptr(), &buffer, flags) != 0) {
      PyErr_Clear();
      if (need_writable && PyObject_GetBuffer(obj.ptr(), &buffer, PyBUF_RECORDS_RO) == 0) {
        PyBuffer_Release(&buffer);
        throw py::value_error(std::string(loss) + ": " + name + " must be writable");
      }
      PyErr_Clear();
      return false;
    }
    has_buffer = true;
    kind = KindOfFormat(buffer.format, buffer.itemsize);
    rank = buffer.ndim;
    CheckRank(loss);
    itemsize = buffer.itemsize;
    for (int k = 0; k < rank; ++k) {
      shape[k] = buffer.shape[k];
      byte_strides[k] = buffer.strides ? buffer.strides[k] : 0;
    }
    if (!buffer.strides) {  // C-contiguous by the protocol's rules
      int64_t s = itemsize;
      for (int k = rank - 1; k >= 0; --k) {
        byte_strides[k] = s;
        s *= shape[k];
      }
    }
    data = static_cast<char*>(buffer.buf);
    writable = !buffer.readonly;
    return true;
  }

  void CheckRank(const char* loss) const {
    if (rank > fastloss::kMaxRank) {
      throw py::value_error(std::string(loss) + ": " + name + " has " + std::to_string(rank) +
                            " dimensions, the limit is " +
                            std::to_string(fastloss::kMaxRank));
    }
  }

  bool StridesAligned() const {
    for (int k = 0; k < rank; ++k) {
      if (byte_strides[k] % itemsize != 0) return false;
    }
    return reinterpret_cast<uintptr_t>(data) % itemsize == 0;
  }

  template <typename T>
  View<T> ToView() const {
    View<T> v;
    v.data = reinterpret_cast<T*>(data);
    v.rank = rank;
    for (int k = 0; k < rank; ++k) {
      v.shape[k] = shape[k];
      v.strides[k] = byte_strides[k] / static_cast<int64_t>(sizeof(T));
    }
    return v;
  }

  // Converts (copies) the argument to float32/float64 through NumPy.
  void ConvertTo(const char* loss, Kind target);
};

// y_pred (and the differentiable inputs of multi-input losses): float32 or
// float64 (byte-swapped: converted to native order); integers and bools of
// arrays, buffers, lists and scalars become float64 (as NumPy's mean); other
// dtypes are a TypeError naming `name`.
void LoadPrediction(const char* loss, py::handle obj, Arg& arg, const char* name = "y_pred");
// y_true, weights and array options: any real dtype, converted to `target`.
void LoadInput(const char* loss, const char* name, py::handle obj, Kind target, Arg& arg);
// Integer class labels (any integer dtype), converted to int64.
void LoadLabels(const char* loss, py::handle obj, Arg& arg, const char* name = "y_true");
// `out=`: a writable ndarray of `like`'s shape and dtype (NumPy ufunc rules).
void LoadOut(const char* name, py::handle obj, const Arg& like, Kind kind, Arg& out);
// An output named `arg` (hits=): a writable ndarray of `kind`'s dtype (that
// of `like`, named in messages) and the given shape (`shape_desc` says it).
void LoadOutput(const char* name, const char* arg, py::handle obj, Kind kind, const char* like,
                int rank, const int64_t* shape, const std::string& shape_desc, Arg& out);
// "(2, 3)", "(4,)", "()".
std::string ShapeOf(const Arg& a);

// A keyword's text; a key that is not valid UTF-8 is a TypeError (with no
// Python error left set).
std::string KeyText(const char* loss, PyObject* key);
// Whether the keyword `key` is `s`.
bool KeyIs(PyObject* key, const char* s);
// A real number (not a bool, a string or None) as a double.
double RealValue(const std::string& where, py::handle v);
// "mean", "sum" or "none"; anything else is a ValueError naming the loss.
fastloss::Reduction ReductionOf(const char* loss, py::handle v);
// The axes of an axis option: an int or a sequence of ints.
std::vector<int> AxesOf(const char* loss, const char* option, py::handle v);
// Whether `obj` is an array in CUDA device memory: it exports the CUDA array
// interface, or DLPack with a CUDA device (kDLCUDA 2, kDLCUDAHost 3 is host
// memory, kDLCUDAManaged 13). NumPy arrays and buffers answer no at once.
bool IsDeviceArray(PyObject* obj);
// Whether obj is a Dask array (the Dask collection protocol and chunks).
bool IsDaskArray(PyObject* obj);

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_ARGUMENTS_H_
