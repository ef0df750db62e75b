// fastloss._core: binding glue only. Python objects -> fastloss::View (NumPy
// arrays read directly, anything else through the buffer protocol), release
// the GIL, call the public C++ API, wrap the results. Every check on values
// and shapes that the C++ API makes itself is left to it, so Python and C++
// report the same errors.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

// The NumPy C API reads arrays and makes scalars several times faster than
// going through Python-level attributes (np.float32(x) alone costs ~0.8 us).
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL fastloss_ARRAY_API
#include <numpy/arrayobject.h>
#include <numpy/arrayscalars.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>
#include <string>
#include <vector>

#include "fastloss/fastloss.hpp"

namespace py = pybind11;

namespace {

using fastloss::Call;
using fastloss::Reduction;
using fastloss::View;

// Interned NumPy objects, leaked on purpose: they must outlive every call,
// including calls made while the interpreter shuts down.
struct NumpyRefs {
  py::object asarray, float32, float64, dtype_f32, dtype_f64;
};
const NumpyRefs& Np() {
  static const NumpyRefs* refs = [] {
    py::module_ np = py::module_::import("numpy");
    auto* r = new NumpyRefs;
    r->asarray = np.attr("asarray");
    r->float32 = np.attr("float32");
    r->float64 = np.attr("float64");
    r->dtype_f32 = np.attr("dtype")("float32");
    r->dtype_f64 = np.attr("dtype")("float64");
    return r;
  }();
  return *refs;
}

enum class Kind { kF32, kF64, kReal, kOther };

// The element kind of a buffer-protocol format string (native byte order
// only; anything else is "other" and gets converted through NumPy).
Kind KindOfFormat(const char* fmt, Py_ssize_t itemsize) {
  if (fmt == nullptr) return Kind::kReal;  // "B" by the buffer protocol's rules
  if (*fmt == '@' || *fmt == '=' || *fmt == '<') ++fmt;
  if (fmt[0] == '\0' || fmt[1] != '\0') return Kind::kOther;
  switch (fmt[0]) {
    case 'f': return itemsize == 4 ? Kind::kF32 : Kind::kOther;
    case 'd': return itemsize == 8 ? Kind::kF64 : Kind::kOther;
    case 'e': case 'g': case '?': case 'b': case 'B': case 'h': case 'H': case 'i':
    case 'I': case 'l': case 'L': case 'q': case 'Q': case 'n': case 'N':
      return Kind::kReal;
    default: return Kind::kOther;
  }
}

std::string DtypeName(py::handle obj) {
  try {
    return py::str(Np().asarray(obj).attr("dtype")).cast<std::string>();
  } catch (...) {
    return "an unknown type";
  }
}

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
  void ConvertTo(const char* loss, Kind target) {
    const py::object& dt = target == Kind::kF32 ? Np().dtype_f32 : Np().dtype_f64;
    py::object converted = Np().asarray(owner, py::arg("dtype") = dt);
    if (!py::isinstance<py::array>(converted) ||
        !py::reinterpret_borrow<py::array>(converted).dtype().is(dt)) {
      converted = py::array(dt, py::array(converted).request().shape, {});
    }
    py::object keep = converted;
    Load(loss, keep, false);
    if (!StridesAligned()) {
      keep = py::module_::import("numpy").attr("ascontiguousarray")(keep, py::arg("dtype") = dt);
      Load(loss, keep, false);
    }
  }
};

// y_pred: float32 or float64; lists and scalars go through numpy.asarray
// (integers become float64), other dtypes are a TypeError.
void LoadPrediction(const char* loss, py::handle obj, Arg& arg) {
  arg.name = "y_pred";
  if (!arg.Load(loss, obj, false)) {
    py::object a = Np().asarray(obj);
    const char k = py::reinterpret_borrow<py::array>(a).dtype().kind();
    if (k == 'i' || k == 'u' || k == 'b') a = Np().asarray(a, py::arg("dtype") = Np().dtype_f64);
    arg.Load(loss, a, false);
  }
  if (arg.kind != Kind::kF32 && arg.kind != Kind::kF64) {
    const std::string dt = DtypeName(obj);
    const bool floating = dt.rfind("float", 0) == 0 && dt != "float16";
    if (floating && (dt == "float32" || dt == "float64")) {
      arg.ConvertTo(loss, dt == "float32" ? Kind::kF32 : Kind::kF64);  // non-native order
    } else {
      throw py::type_error(std::string(loss) + ": y_pred must be float32 or float64, got " +
                           dt + " (convert it, e.g. y_pred.astype(np.float64))");
    }
  }
  if (!arg.StridesAligned()) arg.ConvertTo(loss, arg.kind);
}

// y_true and weights: any real dtype, converted to y_pred's.
void LoadInput(const char* loss, const char* name, py::handle obj, Kind target, Arg& arg) {
  arg.name = name;
  if (!arg.Load(loss, obj, false)) {
    py::object a = Np().asarray(obj);
    arg.Load(loss, a, false);
  }
  if (arg.kind == Kind::kOther) {
    throw py::type_error(std::string(loss) + ": " + name +
                         " must hold real numbers, got " + DtypeName(obj));
  }
  if (arg.kind != target || !arg.StridesAligned()) arg.ConvertTo(loss, target);
}

std::string ShapeOf(const Arg& a) {
  std::string s = "(";
  for (int k = 0; k < a.rank; ++k) {
    if (k) s += ", ";
    s += std::to_string(a.shape[k]);
  }
  return s + (a.rank == 1 ? ",)" : ")");
}

// --- The loss table: names, options, entry points. ---

struct OptionSpec {
  const char* name;
  bool is_bool;
  double default_value;
};

constexpr int kMaxOptions = 4;

struct LossSpec {
  const char* name;
  std::vector<OptionSpec> options;
  double (*run)(const void* call, bool f64, const double* opts);
};

template <class Opt, double (*F32)(const Call<float>&, const Opt&),
          double (*F64)(const Call<double>&, const Opt&), Opt (*Make)(const double*)>
double RunWith(const void* call, bool f64, const double* o) {
  const Opt opt = Make(o);
  return f64 ? F64(*static_cast<const Call<double>*>(call), opt)
             : F32(*static_cast<const Call<float>*>(call), opt);
}

template <class Opt>
Opt NoOptions(const double*) {
  return Opt{};
}
fastloss::HuberOptions MakeHuber(const double* o) {
  fastloss::HuberOptions r;
  r.delta = o[0];
  return r;
}
fastloss::SmoothL1Options MakeSmoothL1(const double* o) {
  fastloss::SmoothL1Options r;
  r.beta = o[0];
  return r;
}
fastloss::MapeOptions MakeMape(const double* o) {
  fastloss::MapeOptions r;
  r.eps = o[0];
  return r;
}
fastloss::PoissonNllOptions MakePoisson(const double* o) {
  fastloss::PoissonNllOptions r;
  r.log_input = o[0] != 0;
  r.full = o[1] != 0;
  r.eps = o[2];
  return r;
}
fastloss::QuantileOptions MakeQuantile(const double* o) {
  fastloss::QuantileOptions r;
  r.q = o[0];
  return r;
}

#define FASTLOSS_RUN(Name, Make)                                                      \
  &RunWith<fastloss::Name##Options, &fastloss::Name<float>, &fastloss::Name<double>, \
           Make>

const std::vector<LossSpec>& Table() {
  static const std::vector<LossSpec>* table = new std::vector<LossSpec>{
      {"mse", {}, FASTLOSS_RUN(Mse, NoOptions<fastloss::MseOptions>)},
      {"mae", {}, FASTLOSS_RUN(Mae, NoOptions<fastloss::MaeOptions>)},
      {"huber", {{"delta", false, 1.0}}, FASTLOSS_RUN(Huber, MakeHuber)},
      {"smooth_l1", {{"beta", false, 1.0}}, FASTLOSS_RUN(SmoothL1, MakeSmoothL1)},
      {"log_cosh", {}, FASTLOSS_RUN(LogCosh, NoOptions<fastloss::LogCoshOptions>)},
      {"msle", {}, FASTLOSS_RUN(Msle, NoOptions<fastloss::MsleOptions>)},
      {"mape", {{"eps", false, fastloss::MapeOptions{}.eps}}, FASTLOSS_RUN(Mape, MakeMape)},
      {"poisson_nll",
       {{"log_input", true, 1.0}, {"full", true, 0.0}, {"eps", false, 1e-8}},
       FASTLOSS_RUN(PoissonNll, MakePoisson)},
      {"quantile", {{"q", false, 0.5}}, FASTLOSS_RUN(Quantile, MakeQuantile)},
  };
  return *table;
}

// --- One Python call. ---

enum class Want { kValue, kGrad, kBoth };

struct Parsed {
  py::handle y_true, y_pred, weights, out;
  Reduction reduction = Reduction::kMean;
  double opts[kMaxOptions];
};

bool KeyIs(PyObject* key, const char* s) {
  Py_ssize_t len = 0;
  const char* k = PyUnicode_AsUTF8AndSize(key, &len);
  return k != nullptr && static_cast<size_t>(len) == std::strlen(s) &&
         std::memcmp(k, s, len) == 0;
}

double OptionValue(const LossSpec& spec, const OptionSpec& o, py::handle v) {
  if (PyFloat_CheckExact(v.ptr())) return PyFloat_AS_DOUBLE(v.ptr());
  const std::string where = std::string(spec.name) + ": " + o.name;
  if (o.is_bool) {
    if (PyBool_Check(v.ptr())) return v.ptr() == Py_True ? 1.0 : 0.0;
    if (PyLong_Check(v.ptr())) {
      const long x = PyLong_AsLong(v.ptr());
      if (x == 0 || x == 1) return static_cast<double>(x);
    }
    const std::string tname = py::str(py::type::handle_of(v).attr("__name__"));
    if (tname == "bool" || tname == "bool_") return PyObject_IsTrue(v.ptr()) ? 1.0 : 0.0;
    throw py::type_error(where + " must be a bool, got " + tname);
  }
  if (PyUnicode_Check(v.ptr()) || PyBytes_Check(v.ptr()) || v.is_none()) {
    throw py::type_error(where + " must be a real number, got " +
                         py::str(py::type::handle_of(v).attr("__name__")).cast<std::string>());
  }
  const double x = PyFloat_AsDouble(v.ptr());
  if (x == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::type_error(where + " must be a real number, got " +
                         py::str(py::type::handle_of(v).attr("__name__")).cast<std::string>());
  }
  return x;
}

// Arguments in CPython's vectorcall layout: `nargs` positional ones in
// args[0..nargs), then one value per name in `kwnames` (a tuple, or null).
Parsed Parse(const LossSpec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
             PyObject* kwnames) {
  Parsed p;
  const char* name = spec.name;
  for (size_t i = 0; i < spec.options.size(); ++i) p.opts[i] = spec.options[i].default_value;
  if (nargs > 2) {
    throw py::type_error(std::string(name) +
                         "() takes 2 positional arguments (y_true, y_pred) but " +
                         std::to_string(nargs) + " were given");
  }
  if (nargs > 0) p.y_true = args[0];
  if (nargs > 1) p.y_pred = args[1];
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t kw = 0; kw < nkw; ++kw) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, kw);
    PyObject* value = args[nargs + kw];
    py::handle v(value);
    if (KeyIs(key, "reduction")) {
      Py_ssize_t len = 0;
      const char* r = PyUnicode_Check(value) ? PyUnicode_AsUTF8AndSize(value, &len) : nullptr;
      const std::string s = r ? std::string(r, len) : std::string();
      if (s == "mean") {
        p.reduction = Reduction::kMean;
      } else if (s == "sum") {
        p.reduction = Reduction::kSum;
      } else if (s == "none") {
        p.reduction = Reduction::kNone;
      } else {
        throw py::value_error(std::string(name) +
                              ": reduction must be 'mean', 'sum' or 'none', got " +
                              py::repr(v).cast<std::string>());
      }
      continue;
    }
    if (KeyIs(key, "weights")) {
      p.weights = v;
      continue;
    }
    if (KeyIs(key, "out") && want != Want::kValue) {
      p.out = v;
      continue;
    }
    if (KeyIs(key, "y_true") || KeyIs(key, "y_pred")) {
      const bool is_true = KeyIs(key, "y_true");
      py::handle& slot = is_true ? p.y_true : p.y_pred;
      if (slot) {
        throw py::type_error(std::string(name) + "() got multiple values for argument '" +
                             (is_true ? "y_true" : "y_pred") + "'");
      }
      slot = v;
      continue;
    }
    bool known = false;
    for (size_t i = 0; i < spec.options.size() && !known; ++i) {
      if (KeyIs(key, spec.options[i].name)) {
        p.opts[i] = OptionValue(spec, spec.options[i], v);
        known = true;
      }
    }
    if (!known) {
      throw py::type_error(std::string(name) + "() got an unexpected keyword argument '" +
                           py::str(key).cast<std::string>() + "'");
    }
  }
  if (!p.y_true || !p.y_pred) {
    throw py::type_error(std::string(name) + "() missing required argument '" +
                         (!p.y_true ? "y_true" : "y_pred") + "'");
  }
  if (p.weights && p.weights.is_none()) p.weights = py::handle();
  if (p.out && p.out.is_none()) p.out = py::handle();
  return p;
}

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

void ReleaseCachedBuffer(PyObject* capsule) {
  void* p = PyCapsule_GetPointer(capsule, "fastloss.buffer");
  const size_t cap = reinterpret_cast<size_t>(PyCapsule_GetContext(capsule));
  BufferCache::Get().Give(p, cap);
}

// A new C-contiguous array of y_pred's shape, and a view of it.
template <typename T>
py::object NewArray(const Arg& like, View<T>& view) {
  npy_intp dims[fastloss::kMaxRank];
  size_t bytes = sizeof(T);
  for (int k = 0; k < like.rank; ++k) {
    dims[k] = static_cast<npy_intp>(like.shape[k]);
    bytes *= static_cast<size_t>(like.shape[k]);
  }
  constexpr int type_num = std::is_same<T, float>::value ? NPY_FLOAT : NPY_DOUBLE;
  PyObject* a;
  if (bytes < BufferCache::kMinBytes) {
    a = PyArray_SimpleNew(like.rank, dims, type_num);
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
    a = PyArray_New(&PyArray_Type, like.rank, dims, type_num, nullptr, data, 0,
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
  view.data = static_cast<T*>(PyArray_DATA(reinterpret_cast<PyArrayObject*>(a)));
  view.rank = like.rank;
  int64_t stride = 1;
  for (int k = like.rank - 1; k >= 0; --k) {
    view.shape[k] = like.shape[k];
    view.strides[k] = stride;
    stride *= like.shape[k];
  }
  return py::reinterpret_steal<py::object>(a);
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

template <typename T>
py::object Evaluate(const LossSpec& spec, Want want, Parsed& parsed, Arg& y_true, Arg& y_pred,
                    Arg& weights, Kind kind) {
  const char* name = spec.name;
  Call<T> call;
  call.y_true = y_true.ToView<const T>();
  call.y_pred = y_pred.ToView<const T>();
  call.reduction = parsed.reduction;
  if (parsed.weights) {
    call.has_weights = true;
    call.weights = weights.ToView<const T>();
  }
  py::object losses;
  if (parsed.reduction == Reduction::kNone && want != Want::kGrad) {
    losses = NewArray<T>(y_pred, call.losses);
    call.has_losses = true;
  }
  py::object grad;
  Arg out;
  out.name = "out";
  if (want != Want::kValue) {
    if (parsed.out) {
      // As NumPy's ufuncs: out is an ndarray (a view of anything is fine).
      if (!PyArray_Check(parsed.out.ptr())) {
        throw py::type_error(std::string(name) + ": out must be a numpy.ndarray, got " +
                             py::str(py::type::handle_of(parsed.out).attr("__name__"))
                                 .cast<std::string>());
      }
      out.Load(name, parsed.out, true);
      if (!out.writable) throw py::value_error(std::string(name) + ": out must be writable");
      if (out.kind != kind) {
        throw py::value_error(std::string(name) + ": out must have y_pred's dtype " +
                              std::string(kind == Kind::kF32 ? "float32" : "float64"));
      }
      bool same = out.rank == y_pred.rank;
      for (int k = 0; same && k < out.rank; ++k) same = out.shape[k] == y_pred.shape[k];
      if (!same) {
        throw py::value_error(std::string(name) + ": out must have y_pred's shape " +
                              ShapeOf(y_pred) + ", got " + ShapeOf(out));
      }
      if (!out.StridesAligned()) {
        throw py::value_error(std::string(name) +
                              ": out's strides must be multiples of its item size");
      }
      call.grad = out.ToView<T>();
      grad = parsed.out.cast<py::object>();
    } else {
      grad = NewArray<T>(y_pred, call.grad);
    }
    call.has_grad = true;
  }
  double value;
  {
    py::gil_scoped_release release;
    value = spec.run(&call, std::is_same<T, double>::value, parsed.opts);
  }
  py::object v = parsed.reduction == Reduction::kNone ? losses : Scalar(value, kind);
  switch (want) {
    case Want::kValue: return v;
    case Want::kGrad: return grad;
    case Want::kBoth: return py::make_tuple(v, grad);
  }
  return v;
}

py::object Dispatch(const LossSpec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                    PyObject* kwnames) {
  Parsed parsed = Parse(spec, want, args, nargs, kwnames);
  Arg y_pred, y_true, weights;
  LoadPrediction(spec.name, parsed.y_pred, y_pred);
  const Kind kind = y_pred.kind;
  LoadInput(spec.name, "y_true", parsed.y_true, kind, y_true);
  if (parsed.weights) LoadInput(spec.name, "weights", parsed.weights, kind, weights);
  if (kind == Kind::kF32) {
    return Evaluate<float>(spec, want, parsed, y_true, y_pred, weights, kind);
  }
  return Evaluate<double>(spec, want, parsed, y_true, y_pred, weights, kind);
}

class Loss {
 public:
  explicit Loss(const std::string& name) {
    for (const LossSpec& s : Table()) {
      if (name == s.name) spec_ = &s;
    }
    if (!spec_) throw py::value_error("unknown loss '" + name + "'");
  }
  const LossSpec& spec() const { return *spec_; }

 private:
  const LossSpec* spec_ = nullptr;
};

// The three entry points are plain METH_FASTCALL | METH_KEYWORDS methods, not
// pybind11 functions: a small call is dominated by argument handling, and
// pybind11's dispatcher (argument vectors, a tuple and a dict per call) costs
// several hundred nanoseconds more than reading CPython's argument array.
template <Want kWant>
PyObject* FastEntry(PyObject* self, PyObject* const* args, Py_ssize_t nargsf,
                    PyObject* kwnames) {
  try {
    const Loss& loss = py::handle(self).cast<const Loss&>();
    return Dispatch(loss.spec(), kWant, args, PyVectorcall_NARGS(nargsf), kwnames).release().ptr();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (py::builtin_exception& e) {
    e.set_error();
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

PyMethodDef kEntryPoints[] = {
    {"__call__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(
                     &FastEntry<Want::kValue>)),
     METH_FASTCALL | METH_KEYWORDS,
     "loss(y_true, y_pred, *, reduction='mean', weights=None, **options): the loss value"},
    {"grad", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(
                 &FastEntry<Want::kGrad>)),
     METH_FASTCALL | METH_KEYWORDS,
     "loss.grad(y_true, y_pred, *, reduction='mean', weights=None, out=None, **options): "
     "d value / d y_pred"},
    {"value_and_grad", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(
                           &FastEntry<Want::kBoth>)),
     METH_FASTCALL | METH_KEYWORDS,
     "loss.value_and_grad(y_true, y_pred, *, reduction='mean', weights=None, out=None, "
     "**options): (value, gradient) in one pass"},
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  if (_import_array() < 0) throw py::error_already_set();
  m.doc() = "fastloss C++ core (binding glue; use the fastloss package).";
  m.attr("__version__") = FASTLOSS_VERSION_STRING;

  py::class_<Loss>(m, "Loss", py::dynamic_attr())
      .def(py::init<const std::string&>(), py::arg("name"))
      .def_property_readonly("name", [](const Loss& l) { return std::string(l.spec().name); })
      .def_property_readonly("options",
                             [](const Loss& l) {
                               py::dict d;
                               for (const OptionSpec& o : l.spec().options) {
                                 if (o.is_bool) {
                                   d[o.name] = py::bool_(o.default_value != 0);
                                 } else {
                                   d[o.name] = o.default_value;
                                 }
                               }
                               return d;
                             })
      .def("__repr__", [](const Loss& l) {
        return std::string("<fastloss.") + l.spec().name + ">";
      });

  {
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(m.attr("Loss").ptr());
    for (PyMethodDef& def : kEntryPoints) {
      py::object method = py::reinterpret_steal<py::object>(PyDescr_NewMethod(type, &def));
      if (!method) throw py::error_already_set();
      // Setting __call__ on the (heap) type also updates its tp_call slot.
      if (PyObject_SetAttrString(reinterpret_cast<PyObject*>(type), def.ml_name, method.ptr()) < 0) {
        throw py::error_already_set();
      }
    }
  }

  m.def("loss_names", [] {
    std::vector<std::string> names;
    for (const LossSpec& s : Table()) names.push_back(s.name);
    return names;
  });
  m.def("set_num_threads", &fastloss::SetNumThreads, py::arg("n"));
  m.def("get_num_threads", &fastloss::GetNumThreads);
  m.def("simd_target", &fastloss::SimdTarget);
  m.def("available_simd_targets", &fastloss::AvailableSimdTargets);
  m.def("force_simd_target", &fastloss::ForceSimdTarget, py::arg("name"));
}
