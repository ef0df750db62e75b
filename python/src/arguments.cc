// fastloss._core: argument reading (see arguments.h).
#include "arguments.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace fastloss_py {

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


void Arg::ConvertTo(const char* loss, Kind target) {
  const py::object& dt = target == Kind::kF32 ? Np().dtype_f32 : Np().dtype_f64;
  py::object converted = Np().asarray(owner, py::arg("dtype") = dt);
  if (!py::isinstance<py::array>(converted) ||
      !py::reinterpret_borrow<py::array>(converted).dtype().is(dt)) {
    converted = py::array(dt, py::array(converted).request().shape, {});
  }
  py::object keep = converted;
  Load(loss, keep, false);
  if (!StridesAligned()) {
    // An aligned copy of the same shape (np.ascontiguousarray would turn a
    // 0-d array into a 1-d one).
    keep = py::module_::import("numpy").attr("array")(keep, py::arg("dtype") = dt,
                                                       py::arg("copy") = true);
    Load(loss, keep, false);
  }
}

// Arguments that would be misread, refused with a TypeError naming them.
// Text is never an array: bytes, bytearray and str would be read as
// characters or parsed as numbers by numpy.asarray. A NumPy masked array's
// mask would be ignored (the buffer holds the masked values too), a silent
// wrong number; the message says how to give the mask as weights instead.
// Only ndarray subclasses pay for the masked-array check.
void RejectMisread(const char* loss, const char* name, py::handle obj) {
  PyObject* o = obj.ptr();
  if (PyBytes_Check(o) || PyByteArray_Check(o) || PyUnicode_Check(o)) {
    throw py::type_error(std::string(loss) + ": " + name + " must be an array of numbers, got " +
                         TypeName(obj));
  }
  if (PyArray_Check(o) && !PyArray_CheckExact(o)) {
    static PyObject* masked = [] {
      PyObject* ma = PyImport_ImportModule("numpy.ma");
      PyObject* cls = ma ? PyObject_GetAttrString(ma, "MaskedArray") : nullptr;
      Py_XDECREF(ma);
      if (!cls) PyErr_Clear();
      return cls;  // leaked on purpose, as Np()'s objects
    }();
    if (masked && PyObject_IsInstance(o, masked) == 1) {
      throw py::type_error(std::string(loss) + ": " + name + " is a masked array, whose mask " +
                           "would be ignored; pass " + name + ".filled(v) (or " + name +
                           ".data), and the mask as weights=~" + name + ".mask (mask honoured " +
                           "as zero weight)");
    }
  }
}

// numpy.asarray(obj), its failures as a TypeError naming the argument (a
// torch tensor that requires grad, an object NumPy cannot read).
py::object AsArray(const char* loss, const char* name, py::handle obj) {
  try {
    return Np().asarray(obj);
  } catch (py::error_already_set& e) {
    throw py::type_error(std::string(loss) + ": " + name + " could not be read as an array (" +
                         TypeName(obj) + ": " + e.what() + ")");
  }
}

void LoadPrediction(const char* loss, py::handle obj, Arg& arg, const char* name) {
  arg.name = name;
  RejectMisread(loss, name, obj);
  if (!arg.Load(loss, obj, false)) {
    py::object a = AsArray(loss, name, obj);
    const char k = py::reinterpret_borrow<py::array>(a).dtype().kind();
    if (k == 'i' || k == 'u' || k == 'b') a = Np().asarray(a, py::arg("dtype") = Np().dtype_f64);
    arg.Load(loss, a, false);
  }
  if (arg.kind != Kind::kF32 && arg.kind != Kind::kF64) {
    // Byte-swapped float32/float64: that precision in native order. Integers
    // and bools: float64, as lists of them are and as NumPy's mean computes
    // them (one rule for arrays, buffers and lists). Anything else
    // (float16 reaching here, long double, complex, objects): TypeError.
    const py::dtype dt = py::reinterpret_borrow<py::array>(Np().asarray(arg.owner)).dtype();
    const char k = dt.kind();
    if (k == 'f' && (dt.itemsize() == 4 || dt.itemsize() == 8)) {
      arg.ConvertTo(loss, dt.itemsize() == 4 ? Kind::kF32 : Kind::kF64);
    } else if (k == 'i' || k == 'u' || k == 'b') {
      arg.ConvertTo(loss, Kind::kF64);
    } else {
      throw py::type_error(std::string(loss) + ": " + name + " must be real numbers (float32 " +
                           "or float64 are used as they are, integers converted to float64), " +
                           "got " + DtypeName(obj) + " (convert it, e.g. " + name +
                           ".astype(np.float64))");
    }
  }
  if (!arg.StridesAligned()) arg.ConvertTo(loss, arg.kind);
}

// y_true and weights: any real dtype, converted to y_pred's.
void LoadInput(const char* loss, const char* name, py::handle obj, Kind target, Arg& arg) {
  arg.name = name;
  RejectMisread(loss, name, obj);
  if (!arg.Load(loss, obj, false)) {
    py::object a = AsArray(loss, name, obj);
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

void LoadLabels(const char* loss, py::handle obj, Arg& arg, const char* name) {
  arg.name = name;
  RejectMisread(loss, name, obj);
  py::object a = PyArray_Check(obj.ptr()) ? py::reinterpret_borrow<py::object>(obj)
                                          : AsArray(loss, name, obj);
  PyArrayObject* arr = reinterpret_cast<PyArrayObject*>(a.ptr());
  const int num = PyArray_DESCR(arr)->type_num;
  if (!PyTypeNum_ISINTEGER(num)) {
    throw py::type_error(std::string(loss) + ": " + name + " must hold integer labels, got " +
                         DtypeName(a) + " (convert it, e.g. " + name + ".astype(np.int64))");
  }
  if (PyTypeNum_ISUNSIGNED(num) && PyArray_ITEMSIZE(arr) == 8 && PyArray_SIZE(arr) > 0) {
    // uint64 labels of 2^63 or more do not fit int64: report the first one
    // rather than let it wrap to a negative (possibly ignore_index) label.
    py::module_ np = py::module_::import("numpy");
    py::object big = np.attr("greater")(a, py::int_(static_cast<long long>(INT64_MAX)));
    if (py::cast<bool>(big.attr("any")())) {
      py::object pos = np.attr("unravel_index")(np.attr("argmax")(big), a.attr("shape"));
      throw py::value_error(std::string(loss) + ": " + name + " has a label of 2**63 or more at "
                            "position " + py::str(pos).cast<std::string>() +
                            ", outside the class range");
    }
  }
  if (num != NPY_INT64 || !PyArray_ISNBO(PyArray_DESCR(arr)->byteorder)) {
    a = Np().asarray(a, py::arg("dtype") = py::module_::import("numpy").attr("int64"));
  }
  arg.Load(loss, a, false);
  if (!arg.StridesAligned()) {
    a = py::module_::import("numpy").attr("ascontiguousarray")(a);
    arg.Load(loss, a, false);
  }
}

// `out=`: a writable ndarray of `like`'s shape and dtype (NumPy ufunc rules).
void LoadOutput(const char* name, const char* arg, py::handle obj, Kind kind, const char* like,
                int rank, const int64_t* shape, const std::string& shape_desc, Arg& out) {
  out.name = arg;
  const std::string where = std::string(name) + ": " + arg;
  if (!PyArray_Check(obj.ptr())) {
    throw py::type_error(where + " must be a numpy.ndarray, got " + TypeName(obj));
  }
  out.Load(name, obj, true);
  if (!out.writable) throw py::value_error(where + " must be writable");
  if (out.kind != kind) {
    throw py::value_error(where + " must have " + like + "'s dtype " +
                          std::string(kind == Kind::kF32 ? "float32" : "float64"));
  }
  bool same = out.rank == rank;
  for (int k = 0; same && k < out.rank; ++k) same = out.shape[k] == shape[k];
  if (!same) throw py::value_error(where + " must have " + shape_desc + ", got " + ShapeOf(out));
  if (!out.StridesAligned()) {
    throw py::value_error(where + "'s strides must be multiples of its item size");
  }
}

void LoadOut(const char* name, py::handle obj, const Arg& like, Kind kind, Arg& out) {
  LoadOutput(name, "out", obj, kind, like.name, like.rank, like.shape,
             std::string(like.name) + "'s shape " + ShapeOf(like), out);
}

std::string KeyText(const char* loss, PyObject* key) {
  Py_ssize_t len = 0;
  const char* k = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &len) : nullptr;
  if (k == nullptr) {
    PyErr_Clear();
    throw py::type_error(std::string(loss) + "() keywords must be valid UTF-8 strings");
  }
  return std::string(k, static_cast<size_t>(len));
}

bool KeyIs(PyObject* key, const char* s) {
  Py_ssize_t len = 0;
  const char* k = PyUnicode_AsUTF8AndSize(key, &len);
  if (k == nullptr) {
    PyErr_Clear();
    return false;
  }
  return static_cast<size_t>(len) == std::strlen(s) && std::memcmp(k, s, len) == 0;
}

fastloss::Reduction ReductionOf(const char* loss, py::handle v) {
  Py_ssize_t len = 0;
  const char* r = PyUnicode_Check(v.ptr()) ? PyUnicode_AsUTF8AndSize(v.ptr(), &len) : nullptr;
  if (r == nullptr) PyErr_Clear();
  const std::string s = r ? std::string(r, static_cast<size_t>(len)) : std::string();
  if (s == "mean") return fastloss::Reduction::kMean;
  if (s == "sum") return fastloss::Reduction::kSum;
  if (s == "none") return fastloss::Reduction::kNone;
  throw py::value_error(std::string(loss) + ": reduction must be 'mean', 'sum' or 'none', got " +
                        py::repr(v).cast<std::string>());
}

std::string TypeName(py::handle v) {
  return py::str(py::type::handle_of(v).attr("__name__")).cast<std::string>();
}

double RealValue(const std::string& where, py::handle v) {
  if (PyFloat_CheckExact(v.ptr())) return PyFloat_AS_DOUBLE(v.ptr());
  if (PyUnicode_Check(v.ptr()) || PyBytes_Check(v.ptr()) || v.is_none() ||
      PyBool_Check(v.ptr())) {
    throw py::type_error(where + " must be a real number, got " + TypeName(v));
  }
  const double x = PyFloat_AsDouble(v.ptr());
  if (x == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::type_error(where + " must be a real number, got " + TypeName(v));
  }
  return x;
}

std::vector<int> AxesOf(const char* loss, const char* option, py::handle v) {
  const std::string where = std::string(loss) + ": " + option;
  auto one = [&](py::handle x) {
    if (PyBool_Check(x.ptr()) || PyFloat_Check(x.ptr())) {
      throw py::type_error(where + " must be None, an int or a tuple of ints, got " + TypeName(x));
    }
    PyObject* index = PyNumber_Index(x.ptr());
    if (!index) {
      PyErr_Clear();
      throw py::type_error(where + " must be None, an int or a tuple of ints, got " + TypeName(x));
    }
    int overflow = 0;
    const long long a = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (overflow || a > 1000 || a < -1000) throw py::value_error(where + " is out of range");
    return static_cast<int>(a);
  };
  std::vector<int> axes;
  if (PyTuple_Check(v.ptr()) || PyList_Check(v.ptr())) {
    for (py::handle x : v) axes.push_back(one(x));
  } else {
    axes.push_back(one(v));
  }
  return axes;
}

bool IsDeviceArray(PyObject* obj) {
  if (obj == nullptr || PyArray_Check(obj) || PyFloat_Check(obj) || PyLong_Check(obj) ||
      PyList_Check(obj) || PyTuple_Check(obj)) {
    return false;
  }
  py::handle h(obj);
  if (py::hasattr(h, "__cuda_array_interface__")) return true;
  if (!py::hasattr(h, "__dlpack_device__")) return false;
  // A host object whose __dlpack_device__ fails is left to the CPU path.
  try {
    py::object dev = h.attr("__dlpack_device__")();
    const int type = py::cast<int>(py::reinterpret_borrow<py::tuple>(dev)[0]);
    return type == 2 || type == 13;
  } catch (const py::error_already_set&) {
    return false;
  } catch (const py::cast_error&) {
    return false;
  }
}

bool IsDaskArray(PyObject* obj) {
  if (obj == nullptr || PyArray_Check(obj) || PyFloat_Check(obj) || PyLong_Check(obj) ||
      PyList_Check(obj) || PyTuple_Check(obj) || obj == Py_None) {
    return false;
  }
  py::handle h(obj);
  return py::hasattr(h, "__dask_graph__") && py::hasattr(h, "chunks");
}

}  // namespace fastloss_py
