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

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
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
void LoadPrediction(const char* loss, py::handle obj, Arg& arg, const char* name = "y_pred") {
  arg.name = name;
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
      throw py::type_error(std::string(loss) + ": " + name + " must be float32 or float64, got " +
                           dt + " (convert it, e.g. " + name + ".astype(np.float64))");
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

enum class OptType {
  kFloat,         // a real number
  kBool,          // True / False
  kInt,           // an integer (operator.index)
  kOptionalFloat, // a real number or None
  kOptionalInt,   // an integer or None
  kWeightArray,   // None, a real number or an array (pos_weight)
  kArray,         // None or an array (class_weights)
  kAxes,          // None (every axis), an int or a sequence of ints
  kChoice,        // one of the strings in OptionSpec::choices (stored as its index)
};

struct OptionSpec {
  const char* name;
  OptType type;
  double default_value;  // NaN with has_default = false: None
  bool has_default = true;
  const char* const* choices = nullptr;  // kChoice: null-terminated
};

constexpr int kMaxOptions = 8;

// How a loss reads its arguments.
enum class LossKind {
  kElementwise,  // y_true like y_pred; per-element losses
  kDenseRows,    // y_true like y_pred; one loss per row along `axis`
  kLabelRows,    // y_true integer labels of the rows' shape
  kRegions,      // y_true like y_pred; one loss per index of the axes not in `axis`
  kBoxes,        // y_true like y_pred (..., 4); one loss per box
};

// The option values of one call. Arrays are views in y_pred's dtype.
struct Opts {
  double v[kMaxOptions];
  bool has[kMaxOptions];
  const void* array[kMaxOptions];  // View<const T>* for array options, or nullptr
};

struct LossSpec {
  const char* name;
  LossKind kind;
  std::vector<OptionSpec> options;
  // `call` points to a Call<T> (elementwise, dense rows) or a LabelCall<T>.
  double (*run)(const void* call, bool f64, const Opts& o);
  int axis_option = -1;  // index of the "axis" option, if any
  int class_weights_option = -1;
  int axes_option = -1;  // index of a kAxes option, if any
  // Elementwise losses: adds a term to a fused combination (nullptr: not fusable).
  void (*add)(fastloss::ElementwiseCombination& c, double coef, const Opts& o) = nullptr;
  // The two arguments' names in Python (keywords, errors): the core's Call
  // calls them y_true and y_pred whatever the loss.
  const char* true_name = "y_true";
  const char* pred_name = "y_pred";
};

// Calls f with the typed call (Call<T> or LabelCall<T>) and T's tag.
template <template <typename> class CallT, class F>
double Typed(const void* call, bool f64, F f) {
  if (f64) return f(*static_cast<const CallT<double>*>(call), double{});
  return f(*static_cast<const CallT<float>*>(call), float{});
}

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
constexpr OptionSpec kFromLogits{"from_logits", OptType::kBool, 0.0};
constexpr OptionSpec kEps{"eps", OptType::kFloat, 1e-7};
constexpr OptionSpec kSmoothing{"label_smoothing", OptType::kFloat, 0.0};
constexpr OptionSpec kAxis{"axis", OptType::kInt, -1.0};
constexpr OptionSpec kClassWeights{"class_weights", OptType::kArray, kNone, false};
constexpr OptionSpec kIgnoreIndex{"ignore_index", OptType::kOptionalInt, kNone, false};
constexpr OptionSpec kAlpha{"alpha", OptType::kOptionalFloat, 0.25};
constexpr OptionSpec kGamma{"gamma", OptType::kFloat, 2.0};
constexpr OptionSpec kSmooth{"smooth", OptType::kFloat, 1e-6};
constexpr OptionSpec kAxes{"axis", OptType::kAxes, kNone, false};
constexpr OptionSpec kSquared{"squared", OptType::kBool, 0.0};

int AsInt(double x) { return static_cast<int>(x); }

template <class Opt, double (*F32)(const Call<float>&, const Opt&),
          double (*F64)(const Call<double>&, const Opt&), Opt (*Make)(const Opts&)>
double RunWith(const void* call, bool f64, const Opts& o) {
  const Opt opt = Make(o);
  return f64 ? F64(*static_cast<const Call<double>*>(call), opt)
             : F32(*static_cast<const Call<float>*>(call), opt);
}

template <class Opt>
Opt NoOptions(const Opts&) {
  return Opt{};
}
fastloss::HuberOptions MakeHuber(const Opts& o) {
  fastloss::HuberOptions r;
  r.delta = o.v[0];
  return r;
}
fastloss::SmoothL1Options MakeSmoothL1(const Opts& o) {
  fastloss::SmoothL1Options r;
  r.beta = o.v[0];
  return r;
}
fastloss::MapeOptions MakeMape(const Opts& o) {
  fastloss::MapeOptions r;
  r.eps = o.v[0];
  return r;
}
fastloss::PoissonNllOptions MakePoisson(const Opts& o) {
  fastloss::PoissonNllOptions r;
  r.log_input = o.v[0] != 0;
  r.full = o.v[1] != 0;
  r.eps = o.v[2];
  return r;
}
fastloss::QuantileOptions MakeQuantile(const Opts& o) {
  fastloss::QuantileOptions r;
  r.q = o.v[0];
  return r;
}
fastloss::BinaryFocalOptions MakeBinaryFocal(const Opts& o) {
  fastloss::BinaryFocalOptions r;
  r.alpha = o.v[0];
  r.has_alpha = o.has[0];
  r.gamma = o.v[1];
  r.from_logits = o.v[2] != 0;
  r.eps = o.v[3];
  r.label_smoothing = o.v[4];
  return r;
}
fastloss::CategoricalCrossEntropyOptions MakeCce(const Opts& o) {
  fastloss::CategoricalCrossEntropyOptions r;
  r.from_logits = o.v[0] != 0;
  r.label_smoothing = o.v[1];
  r.eps = o.v[2];
  r.axis = AsInt(o.v[3]);
  return r;
}
fastloss::CategoricalFocalOptions MakeCategoricalFocal(const Opts& o) {
  fastloss::CategoricalFocalOptions r;
  r.alpha = o.v[0];
  r.has_alpha = o.has[0];
  r.gamma = o.v[1];
  r.from_logits = o.v[2] != 0;
  r.label_smoothing = o.v[3];
  r.eps = o.v[4];
  r.axis = AsInt(o.v[5]);
  return r;
}
fastloss::CategoricalHingeOptions MakeCategoricalHinge(const Opts& o) {
  fastloss::CategoricalHingeOptions r;
  r.axis = AsInt(o.v[0]);
  return r;
}
fastloss::KlDivergenceOptions MakeKl(const Opts& o) {
  fastloss::KlDivergenceOptions r;
  r.log_input = o.v[0] != 0;
  r.log_target = o.v[1] != 0;
  r.axis = AsInt(o.v[2]);
  return r;
}
fastloss::JensenShannonOptions MakeJsd(const Opts& o) {
  fastloss::JensenShannonOptions r;
  r.beta = o.v[0];
  r.log_input = o.v[1] != 0;
  r.axis = AsInt(o.v[2]);
  return r;
}

fastloss::BinaryCrossEntropyOptions MakeBce(const Opts& o) {
  fastloss::BinaryCrossEntropyOptions r;
  r.from_logits = o.v[0] != 0;
  r.eps = o.v[1];
  r.label_smoothing = o.v[3];
  if (o.has[2] && !o.array[2]) r.pos_weight = o.v[2];
  return r;
}
double RunBce(const void* call, bool f64, const Opts& o) {
  const fastloss::BinaryCrossEntropyOptions r = MakeBce(o);
  return Typed<Call>(call, f64, [&](const auto& c, auto t) {
    using T = decltype(t);
    if (o.array[2]) {
      return fastloss::BinaryCrossEntropy<T>(c, *static_cast<const View<const T>*>(o.array[2]),
                                             r);
    }
    return fastloss::BinaryCrossEntropy<T>(c, r);
  });
}
double RunSparseCce(const void* call, bool f64, const Opts& o) {
  fastloss::SparseCategoricalCrossEntropyOptions r;
  r.from_logits = o.v[0] != 0;
  r.has_ignore_index = o.has[1];
  r.ignore_index = o.has[1] ? static_cast<int64_t>(o.v[1]) : 0;
  r.label_smoothing = o.v[2];
  r.eps = o.v[4];
  r.axis = AsInt(o.v[5]);
  return Typed<fastloss::LabelCall>(call, f64, [&](const auto& c, auto t) {
    return fastloss::SparseCategoricalCrossEntropy<decltype(t)>(c, r);
  });
}
double RunMultiMargin(const void* call, bool f64, const Opts& o) {
  fastloss::MultiMarginOptions r;
  r.p = AsInt(o.v[0]);
  r.margin = o.v[1];
  r.axis = AsInt(o.v[3]);
  return Typed<fastloss::LabelCall>(call, f64, [&](const auto& c, auto t) {
    return fastloss::MultiMargin<decltype(t)>(c, r);
  });
}
double RunNll(const void* call, bool f64, const Opts& o) {
  fastloss::NllOptions r;
  r.has_ignore_index = o.has[0];
  r.ignore_index = o.has[0] ? static_cast<int64_t>(o.v[0]) : 0;
  r.axis = AsInt(o.v[2]);
  return Typed<fastloss::LabelCall>(call, f64, [&](const auto& c, auto t) {
    return fastloss::Nll<decltype(t)>(c, r);
  });
}


// --- Issue #4 losses on the (y_true, y_pred) fast path. ---
template <class Opt>
Opt MakeOverlapBase(const Opts& o, int axes_index) {
  Opt r;
  r.smooth = o.v[0];
  r.all_axes = o.array[axes_index] == nullptr;
  if (!r.all_axes) r.axes = *static_cast<const std::vector<int>*>(o.array[axes_index]);
  r.squared = o.v[2] != 0;
  r.from_logits = o.v[3] != 0;
  return r;
}
fastloss::DiceOptions MakeDice(const Opts& o) { return MakeOverlapBase<fastloss::DiceOptions>(o, 1); }
fastloss::JaccardOptions MakeJaccard(const Opts& o) {
  return MakeOverlapBase<fastloss::JaccardOptions>(o, 1);
}
fastloss::TverskyOptions MakeTversky(const Opts& o) {
  fastloss::TverskyOptions r = MakeOverlapBase<fastloss::TverskyOptions>(o, 1);
  r.alpha = o.v[4];
  r.beta = o.v[5];
  return r;
}
fastloss::FocalTverskyOptions MakeFocalTversky(const Opts& o) {
  fastloss::FocalTverskyOptions r = MakeOverlapBase<fastloss::FocalTverskyOptions>(o, 1);
  r.alpha = o.v[4];
  r.beta = o.v[5];
  r.gamma = o.v[6];
  return r;
}
fastloss::BoxIouOptions MakeBoxIou(const Opts& o) {
  fastloss::BoxIouOptions r;
  r.kind = static_cast<fastloss::BoxIouKind>(AsInt(o.v[0]));
  r.eps = o.v[1];
  return r;
}
fastloss::CosineSimilarityOptions MakeCosine(const Opts& o) {
  fastloss::CosineSimilarityOptions r;
  r.axis = AsInt(o.v[0]);
  r.eps = o.v[1];
  return r;
}
fastloss::ContrastiveOptions MakeContrastive(const Opts& o) {
  fastloss::ContrastiveOptions r;
  r.margin = o.v[0];
  return r;
}
constexpr const char* kBoxKinds[] = {"iou", "giou", "diou", "ciou", nullptr};

template <class Opt, Opt (*Make)(const Opts&)>
void AddWith(fastloss::ElementwiseCombination& c, double coef, const Opts& o) {
  c.Add(coef, Make(o));
}
void AddBce(fastloss::ElementwiseCombination& c, double coef, const Opts& o) {
  if (o.array[2]) {
    throw py::value_error("binary_cross_entropy: an array pos_weight cannot be fused");
  }
  c.Add(coef, MakeBce(o));
}
using AddFn = void (*)(fastloss::ElementwiseCombination&, double, const Opts&);
AddFn AddFor(const std::string& name) {
  using fastloss::ElementwiseCombination;
#define FASTLOSS_ADD(N, Opt, Make) \
  if (name == N) return &AddWith<fastloss::Opt, Make>;
  FASTLOSS_ADD("mse", MseOptions, NoOptions<fastloss::MseOptions>)
  FASTLOSS_ADD("mae", MaeOptions, NoOptions<fastloss::MaeOptions>)
  FASTLOSS_ADD("huber", HuberOptions, MakeHuber)
  FASTLOSS_ADD("smooth_l1", SmoothL1Options, MakeSmoothL1)
  FASTLOSS_ADD("log_cosh", LogCoshOptions, NoOptions<fastloss::LogCoshOptions>)
  FASTLOSS_ADD("msle", MsleOptions, NoOptions<fastloss::MsleOptions>)
  FASTLOSS_ADD("mape", MapeOptions, MakeMape)
  FASTLOSS_ADD("poisson_nll", PoissonNllOptions, MakePoisson)
  FASTLOSS_ADD("quantile", QuantileOptions, MakeQuantile)
  FASTLOSS_ADD("binary_focal", BinaryFocalOptions, MakeBinaryFocal)
  FASTLOSS_ADD("hinge", HingeOptions, NoOptions<fastloss::HingeOptions>)
  FASTLOSS_ADD("squared_hinge", SquaredHingeOptions, NoOptions<fastloss::SquaredHingeOptions>)
  FASTLOSS_ADD("soft_margin", SoftMarginOptions, NoOptions<fastloss::SoftMarginOptions>)
  FASTLOSS_ADD("contrastive", ContrastiveOptions, MakeContrastive)
#undef FASTLOSS_ADD
  if (name == "binary_cross_entropy") return &AddBce;
  return nullptr;
}

#define FASTLOSS_RUN(Name, Make)                                                      \
  &RunWith<fastloss::Name##Options, &fastloss::Name<float>, &fastloss::Name<double>, \
           Make>

const std::vector<LossSpec>& Table() {
  using K = LossKind;
  using O = OptType;
  static const std::vector<LossSpec>* table = [] {
    auto* t = new std::vector<LossSpec>{
        {"mse", K::kElementwise, {}, FASTLOSS_RUN(Mse, NoOptions<fastloss::MseOptions>)},
        {"mae", K::kElementwise, {}, FASTLOSS_RUN(Mae, NoOptions<fastloss::MaeOptions>)},
        {"huber", K::kElementwise, {{"delta", O::kFloat, 1.0}}, FASTLOSS_RUN(Huber, MakeHuber)},
        {"smooth_l1", K::kElementwise, {{"beta", O::kFloat, 1.0}},
         FASTLOSS_RUN(SmoothL1, MakeSmoothL1)},
        {"log_cosh", K::kElementwise, {},
         FASTLOSS_RUN(LogCosh, NoOptions<fastloss::LogCoshOptions>)},
        {"msle", K::kElementwise, {}, FASTLOSS_RUN(Msle, NoOptions<fastloss::MsleOptions>)},
        {"mape", K::kElementwise, {{"eps", O::kFloat, fastloss::MapeOptions{}.eps}},
         FASTLOSS_RUN(Mape, MakeMape)},
        {"poisson_nll", K::kElementwise,
         {{"log_input", O::kBool, 1.0}, {"full", O::kBool, 0.0}, {"eps", O::kFloat, 1e-8}},
         FASTLOSS_RUN(PoissonNll, MakePoisson)},
        {"quantile", K::kElementwise, {{"q", O::kFloat, 0.5}},
         FASTLOSS_RUN(Quantile, MakeQuantile)},
        {"binary_cross_entropy", K::kElementwise,
         {kFromLogits, kEps, {"pos_weight", O::kWeightArray, kNone, false}, kSmoothing},
         &RunBce},
        {"binary_focal", K::kElementwise, {kAlpha, kGamma, kFromLogits, kEps, kSmoothing},
         FASTLOSS_RUN(BinaryFocal, MakeBinaryFocal)},
        {"hinge", K::kElementwise, {}, FASTLOSS_RUN(Hinge, NoOptions<fastloss::HingeOptions>)},
        {"squared_hinge", K::kElementwise, {},
         FASTLOSS_RUN(SquaredHinge, NoOptions<fastloss::SquaredHingeOptions>)},
        {"soft_margin", K::kElementwise, {},
         FASTLOSS_RUN(SoftMargin, NoOptions<fastloss::SoftMarginOptions>)},
        {"categorical_cross_entropy", K::kDenseRows, {kFromLogits, kSmoothing, kEps, kAxis},
         FASTLOSS_RUN(CategoricalCrossEntropy, MakeCce)},
        {"sparse_categorical_cross_entropy", K::kLabelRows,
         {kFromLogits, kIgnoreIndex, kSmoothing, kClassWeights, kEps, kAxis}, &RunSparseCce},
        {"categorical_focal", K::kDenseRows,
         {kAlpha, kGamma, kFromLogits, kSmoothing, kEps, kAxis},
         FASTLOSS_RUN(CategoricalFocal, MakeCategoricalFocal)},
        {"categorical_hinge", K::kDenseRows, {kAxis},
         FASTLOSS_RUN(CategoricalHinge, MakeCategoricalHinge)},
        {"multi_margin", K::kLabelRows,
         {{"p", O::kInt, 1.0}, {"margin", O::kFloat, 1.0}, kClassWeights, kAxis},
         &RunMultiMargin},
        {"nll", K::kLabelRows, {kIgnoreIndex, kClassWeights, kAxis}, &RunNll},
        {"kl_divergence", K::kDenseRows,
         {{"log_input", O::kBool, 0.0}, {"log_target", O::kBool, 0.0}, kAxis},
         FASTLOSS_RUN(KlDivergence, MakeKl)},
        {"jensen_shannon", K::kDenseRows,
         {{"beta", O::kFloat, 0.5}, {"log_input", O::kBool, 0.0}, kAxis},
         FASTLOSS_RUN(JensenShannon, MakeJsd)},
        {"dice", K::kRegions, {kSmooth, kAxes, kSquared, kFromLogits}, FASTLOSS_RUN(Dice, MakeDice)},
        {"jaccard", K::kRegions, {kSmooth, kAxes, kSquared, kFromLogits},
         FASTLOSS_RUN(Jaccard, MakeJaccard)},
        {"tversky", K::kRegions,
         {kSmooth, kAxes, kSquared, kFromLogits, {"alpha", O::kFloat, 0.5}, {"beta", O::kFloat, 0.5}},
         FASTLOSS_RUN(Tversky, MakeTversky)},
        {"focal_tversky", K::kRegions,
         {kSmooth, kAxes, kSquared, kFromLogits, {"alpha", O::kFloat, 0.5},
          {"beta", O::kFloat, 0.5}, {"gamma", O::kFloat, 0.75}},
         FASTLOSS_RUN(FocalTversky, MakeFocalTversky)},
        {"box_iou", K::kBoxes, {{"kind", O::kChoice, 0.0, true, kBoxKinds}, {"eps", O::kFloat, 1e-7}},
         FASTLOSS_RUN(BoxIou, MakeBoxIou)},
        {"cosine_similarity", K::kDenseRows, {kAxis, {"eps", O::kFloat, 1e-8}},
         FASTLOSS_RUN(CosineSimilarity, MakeCosine)},
        {"contrastive", K::kElementwise, {{"margin", O::kFloat, 1.0}},
         FASTLOSS_RUN(Contrastive, MakeContrastive)},
    };
    for (LossSpec& spec : *t) {
      if (std::strcmp(spec.name, "box_iou") == 0) {
        spec.true_name = "boxes_true";
        spec.pred_name = "boxes_pred";
      } else if (std::strcmp(spec.name, "contrastive") == 0) {
        spec.pred_name = "distance";
      }
      if (spec.kind == LossKind::kElementwise) spec.add = AddFor(spec.name);
      for (size_t i = 0; i < spec.options.size(); ++i) {
        if (std::strcmp(spec.options[i].name, "axis") == 0) spec.axis_option = static_cast<int>(i);
        if (std::strcmp(spec.options[i].name, "class_weights") == 0) {
          spec.class_weights_option = static_cast<int>(i);
        }
        if (spec.options[i].type == OptType::kAxes) spec.axes_option = static_cast<int>(i);
      }
    }
    return t;
  }();
  return *table;
}

// --- One Python call. ---

enum class Want { kValue, kGrad, kBoth };

struct Parsed {
  py::handle y_true, y_pred, weights, out;
  Reduction reduction = Reduction::kMean;
  double opts[kMaxOptions];
  bool has[kMaxOptions];
  py::handle arrays[kMaxOptions];  // array-valued options
};

bool KeyIs(PyObject* key, const char* s) {
  Py_ssize_t len = 0;
  const char* k = PyUnicode_AsUTF8AndSize(key, &len);
  return k != nullptr && static_cast<size_t>(len) == std::strlen(s) &&
         std::memcmp(k, s, len) == 0;
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

// Sets p.opts[i] / p.has[i] / p.arrays[i] from the keyword value v.
void SetOption(const LossSpec& spec, size_t i, py::handle v, Parsed& p) {
  const OptionSpec& o = spec.options[i];
  const std::string where = std::string(spec.name) + ": " + o.name;
  p.has[i] = true;
  p.arrays[i] = py::handle();
  switch (o.type) {
    case OptType::kFloat:
      p.opts[i] = RealValue(where, v);
      return;
    case OptType::kBool: {
      if (PyBool_Check(v.ptr())) {
        p.opts[i] = v.ptr() == Py_True ? 1.0 : 0.0;
        return;
      }
      if (PyLong_Check(v.ptr())) {
        const long x = PyLong_AsLong(v.ptr());
        if (x == 0 || x == 1) {
          p.opts[i] = static_cast<double>(x);
          return;
        }
        PyErr_Clear();
      }
      const std::string tname = TypeName(v);
      if (tname == "bool" || tname == "bool_") {
        p.opts[i] = PyObject_IsTrue(v.ptr()) ? 1.0 : 0.0;
        return;
      }
      throw py::type_error(where + " must be a bool, got " + tname);
    }
    case OptType::kOptionalInt:
    case OptType::kInt: {
      if (v.is_none() && o.type == OptType::kOptionalInt) {
        p.has[i] = false;
        return;
      }
      if (PyBool_Check(v.ptr()) || PyFloat_Check(v.ptr())) {
        throw py::type_error(where + " must be an integer, got " + TypeName(v));
      }
      PyObject* index = PyNumber_Index(v.ptr());
      if (!index) {
        PyErr_Clear();
        throw py::type_error(where + " must be an integer, got " + TypeName(v));
      }
      int overflow = 0;
      const long long x = PyLong_AsLongLongAndOverflow(index, &overflow);
      Py_DECREF(index);
      const long long limit = o.type == OptType::kInt ? (1LL << 31) : (1LL << 53);
      if (overflow || x >= limit || x < -limit) {
        throw py::value_error(where + " is out of range");
      }
      p.opts[i] = static_cast<double>(x);
      return;
    }
    case OptType::kOptionalFloat:
      if (v.is_none()) {
        p.has[i] = false;
        return;
      }
      p.opts[i] = RealValue(where, v);
      return;
    case OptType::kWeightArray:
      if (v.is_none()) {
        p.has[i] = false;
        return;
      }
      if (PyFloat_Check(v.ptr()) || (PyLong_Check(v.ptr()) && !PyBool_Check(v.ptr()))) {
        p.opts[i] = RealValue(where, v);
        return;
      }
      p.arrays[i] = v;
      return;
    case OptType::kArray:
      if (v.is_none()) {
        p.has[i] = false;
        return;
      }
      p.arrays[i] = v;
      return;
    case OptType::kAxes:
      if (v.is_none()) {
        p.has[i] = false;
        return;
      }
      p.arrays[i] = v;  // read by AxesOf
      return;
    case OptType::kChoice: {
      std::string list;
      if (PyUnicode_Check(v.ptr())) {
        const std::string sv = py::str(v).cast<std::string>();
        for (int c = 0; o.choices[c]; ++c) {
          if (sv == o.choices[c]) {
            p.opts[i] = c;
            return;
          }
        }
      }
      for (int c = 0; o.choices[c]; ++c) {
        list += std::string(c ? ", " : "") + "'" + o.choices[c] + "'";
      }
      throw py::value_error(where + " must be one of " + list + ", got " +
                            py::repr(v).cast<std::string>());
    }
  }
}

// The axes of a kAxes option: an int or a sequence of ints.
std::vector<int> AxesOf(const char* loss, py::handle v) {
  const std::string where = std::string(loss) + ": axis";
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

// Arguments in CPython's vectorcall layout: `nargs` positional ones in
// args[0..nargs), then one value per name in `kwnames` (a tuple, or null).
Parsed Parse(const LossSpec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
             PyObject* kwnames) {
  Parsed p;
  const char* name = spec.name;
  for (size_t i = 0; i < spec.options.size(); ++i) {
    p.opts[i] = spec.options[i].default_value;
    p.has[i] = spec.options[i].has_default;
  }
  if (nargs > 2) {
    throw py::type_error(std::string(name) + "() takes 2 positional arguments (" +
                         spec.true_name + ", " + spec.pred_name + ") but " +
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
    if (KeyIs(key, spec.true_name) || KeyIs(key, spec.pred_name)) {
      const bool is_true = KeyIs(key, spec.true_name);
      py::handle& slot = is_true ? p.y_true : p.y_pred;
      if (slot) {
        throw py::type_error(std::string(name) + "() got multiple values for argument '" +
                             (is_true ? spec.true_name : spec.pred_name) + "'");
      }
      slot = v;
      continue;
    }
    bool known = false;
    for (size_t i = 0; i < spec.options.size() && !known; ++i) {
      if (KeyIs(key, spec.options[i].name)) {
        SetOption(spec, i, v, p);
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
                         (!p.y_true ? spec.true_name : spec.pred_name) + "'");
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

// A new C-contiguous array of the given shape, and a view of it.
template <typename T>
py::object NewArray(int rank, const int64_t* shape, View<T>& view) {
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
py::object NewArray(const Arg& like, View<T>& view) {
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

// y_true as integer class labels: any integer dtype, converted to int64.
void LoadLabels(const char* loss, py::handle obj, Arg& arg, const char* name = "y_true") {
  arg.name = name;
  py::object a = PyArray_Check(obj.ptr()) ? py::reinterpret_borrow<py::object>(obj)
                                          : Np().asarray(obj);
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

// The position of the class axis in y_pred, or -1 if out of range (the C++
// API reports that).
int AxisOf(const LossSpec& spec, const Parsed& parsed, const Arg& y_pred) {
  const int axis = static_cast<int>(parsed.opts[spec.axis_option]);
  const int a = axis < 0 ? axis + y_pred.rank : axis;
  return a >= 0 && a < y_pred.rank ? a : -1;
}

// `out=`: a writable ndarray of `like`'s shape and dtype (NumPy ufunc rules).
void LoadOut(const char* name, py::handle obj, const Arg& like, Kind kind, Arg& out) {
  out.name = "out";
  if (!PyArray_Check(obj.ptr())) {
    throw py::type_error(std::string(name) + ": out must be a numpy.ndarray, got " +
                         TypeName(obj));
  }
  out.Load(name, obj, true);
  if (!out.writable) throw py::value_error(std::string(name) + ": out must be writable");
  if (out.kind != kind) {
    throw py::value_error(std::string(name) + ": out must have " + like.name + "'s dtype " +
                          std::string(kind == Kind::kF32 ? "float32" : "float64"));
  }
  bool same = out.rank == like.rank;
  for (int k = 0; same && k < out.rank; ++k) same = out.shape[k] == like.shape[k];
  if (!same) {
    throw py::value_error(std::string(name) + ": out must have " + like.name + "'s shape " +
                          ShapeOf(like) + ", got " + ShapeOf(out));
  }
  if (!out.StridesAligned()) {
    throw py::value_error(std::string(name) + ": out's strides must be multiples of its item size");
  }
}

template <typename T>
py::object Evaluate(const LossSpec& spec, Want want, Parsed& parsed, Arg& y_true, Arg& y_pred,
                    Arg& weights, Arg* option_arrays, Kind kind) {
  const char* name = spec.name;
  const bool labels = spec.kind == LossKind::kLabelRows;
  Call<T> call;
  fastloss::LabelCall<T> lcall;
  View<T>* losses_view = labels ? &lcall.losses : &call.losses;
  View<T>* grad_view = labels ? &lcall.grad : &call.grad;
  if (labels) {
    lcall.labels = y_true.ToView<const int64_t>();
    lcall.y_pred = y_pred.ToView<const T>();
    lcall.reduction = parsed.reduction;
    if (parsed.weights) {
      lcall.has_weights = true;
      lcall.weights = weights.ToView<const T>();
    }
    if (spec.class_weights_option >= 0 && parsed.arrays[spec.class_weights_option]) {
      lcall.has_class_weights = true;
      lcall.class_weights = option_arrays[spec.class_weights_option].ToView<const T>();
    }
  } else {
    call.y_true = y_true.ToView<const T>();
    call.y_pred = y_pred.ToView<const T>();
    call.reduction = parsed.reduction;
    if (parsed.weights) {
      call.has_weights = true;
      call.weights = weights.ToView<const T>();
    }
  }
  Opts opts;
  View<const T> array_views[kMaxOptions];
  std::vector<int> axes;
  for (size_t i = 0; i < spec.options.size(); ++i) {
    opts.v[i] = parsed.opts[i];
    opts.has[i] = parsed.has[i];
    opts.array[i] = nullptr;
    if (spec.options[i].type == OptType::kAxes) {
      if (parsed.has[i]) {
        axes = AxesOf(name, parsed.arrays[i]);
        opts.array[i] = &axes;
      }
      continue;
    }
    if (parsed.arrays[i]) {
      array_views[i] = option_arrays[i].ToView<const T>();
      opts.array[i] = &array_views[i];
    }
  }
  py::object losses;
  if (parsed.reduction == Reduction::kNone && want != Want::kGrad) {
    if (spec.kind == LossKind::kElementwise) {
      losses = NewArray<T>(y_pred, *losses_view);
    } else if (spec.kind == LossKind::kRegions || spec.kind == LossKind::kBoxes) {
      // One loss per index of the kept axes (regions) or per box.
      bool reduced[fastloss::kMaxRank] = {};
      if (spec.kind == LossKind::kBoxes) {
        if (y_pred.rank > 0) reduced[y_pred.rank - 1] = true;
      } else if (!opts.array[spec.axes_option]) {
        for (int k = 0; k < y_pred.rank; ++k) reduced[k] = true;
      } else {
        for (int a : axes) {
          const int k = a < 0 ? a + y_pred.rank : a;
          if (k >= 0 && k < y_pred.rank) reduced[k] = true;
        }
      }
      int64_t shape[fastloss::kMaxRank];
      int rank = 0;
      for (int k = 0; k < y_pred.rank; ++k) {
        if (!reduced[k]) shape[rank++] = y_pred.shape[k];
      }
      losses = NewArray<T>(rank, shape, *losses_view);
    } else {
      // One loss per row: y_pred's shape without the class axis.
      const int axis = AxisOf(spec, parsed, y_pred);
      int64_t shape[fastloss::kMaxRank];
      int rank = 0;
      for (int k = 0; k < y_pred.rank; ++k) {
        if (k != axis) shape[rank++] = y_pred.shape[k];
      }
      if (axis < 0) rank = 0;  // the C++ API raises for the axis first
      losses = NewArray<T>(rank, shape, *losses_view);
    }
    (labels ? lcall.has_losses : call.has_losses) = true;
  }
  py::object grad;
  Arg out;
  out.name = "out";
  if (want != Want::kValue) {
    if (parsed.out) {
      LoadOut(name, parsed.out, y_pred, kind, out);
      *grad_view = out.ToView<T>();
      grad = parsed.out.cast<py::object>();
    } else {
      grad = NewArray<T>(y_pred, *grad_view);
    }
    (labels ? lcall.has_grad : call.has_grad) = true;
  }
  double value;
  {
    py::gil_scoped_release release;
    value = spec.run(labels ? static_cast<const void*>(&lcall) : static_cast<const void*>(&call),
                     std::is_same<T, double>::value, opts);
  }
  py::object v = parsed.reduction == Reduction::kNone ? losses : Scalar(value, kind);
  switch (want) {
    case Want::kValue: return v;
    case Want::kGrad: return grad;
    case Want::kBoth: return py::make_tuple(v, grad);
  }
  return v;
}

// --- GPU arrays: handed to fastloss.cuda (the fastloss._cuda extension). ---

// Whether `obj` is an array in CUDA device memory: it exports the CUDA array
// interface, or DLPack with a CUDA device (kDLCUDA 2, kDLCUDAHost 3 is host
// memory, kDLCUDAManaged 13). NumPy arrays and buffers answer no at once.
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

// y_true / y_pred of the call, positional or by keyword (null if absent).
void FindInputs(const LossSpec& spec, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                PyObject** y_true, PyObject** y_pred) {
  *y_true = nargs > 0 ? args[0] : nullptr;
  *y_pred = nargs > 1 ? args[1] : nullptr;
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t kw = 0; kw < nkw; ++kw) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, kw);
    if (KeyIs(key, spec.true_name)) *y_true = args[nargs + kw];
    if (KeyIs(key, spec.pred_name)) *y_pred = args[nargs + kw];
  }
}

py::object GpuDispatch(const LossSpec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                       PyObject* kwnames) {
  py::tuple pos(nargs);
  for (Py_ssize_t i = 0; i < nargs; ++i) pos[i] = py::reinterpret_borrow<py::object>(args[i]);
  py::dict kwargs;
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t kw = 0; kw < nkw; ++kw) {
    kwargs[PyTuple_GET_ITEM(kwnames, kw)] = py::reinterpret_borrow<py::object>(args[nargs + kw]);
  }
  py::object dispatch = py::module_::import("fastloss.cuda").attr("_dispatch");
  return dispatch(spec.name, static_cast<int>(want), pos, kwargs);
}

py::object Dispatch(const LossSpec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                    PyObject* kwnames) {
  {
    PyObject *t = nullptr, *p = nullptr;
    FindInputs(spec, args, nargs, kwnames, &t, &p);
    if (IsDeviceArray(p) || IsDeviceArray(t)) return GpuDispatch(spec, want, args, nargs, kwnames);
  }
  Parsed parsed = Parse(spec, want, args, nargs, kwnames);
  Arg y_pred, y_true, weights;
  Arg option_arrays[kMaxOptions];
  LoadPrediction(spec.name, parsed.y_pred, y_pred, spec.pred_name);
  const Kind kind = y_pred.kind;
  if (spec.kind == LossKind::kLabelRows) {
    LoadLabels(spec.name, parsed.y_true, y_true, spec.true_name);
  } else {
    LoadInput(spec.name, spec.true_name, parsed.y_true, kind, y_true);
  }
  if (parsed.weights) LoadInput(spec.name, "weights", parsed.weights, kind, weights);
  for (size_t i = 0; i < spec.options.size(); ++i) {
    if (parsed.arrays[i] && spec.options[i].type != OptType::kAxes) {
      LoadInput(spec.name, spec.options[i].name, parsed.arrays[i], kind, option_arrays[i]);
    }
  }
  if (kind == Kind::kF32) {
    return Evaluate<float>(spec, want, parsed, y_true, y_pred, weights, option_arrays, kind);
  }
  return Evaluate<double>(spec, want, parsed, y_true, y_pred, weights, option_arrays, kind);
}


// --- Losses of several inputs (fastloss._structured builds the Python
// objects around these). ---

Reduction ReductionOf(const std::string& name, const std::string& r) {
  if (r == "mean") return Reduction::kMean;
  if (r == "sum") return Reduction::kSum;
  if (r == "none") return Reduction::kNone;
  throw py::value_error(name + ": reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}

double OptFloat(const std::string& name, const py::dict& o, const char* key, double def) {
  if (!o.contains(key)) return def;
  return RealValue(name + ": " + key, o[key]);
}
bool OptBool(const std::string& name, const py::dict& o, const char* key, bool def) {
  if (!o.contains(key)) return def;
  py::handle v = o[key];
  if (PyBool_Check(v.ptr())) return v.ptr() == Py_True;
  const std::string t = TypeName(v);
  // numpy.bool_ (named "bool" under NumPy 2).
  if (t == "bool_" || t == "bool") return PyObject_IsTrue(v.ptr());
  throw py::type_error(name + ": " + key + " must be a bool, got " + t);
}

// One call: `inputs` (named `names`) of which `ngrad` leading ones... (see
// Multi below); the first input decides the dtype.
template <typename T>
py::object MultiTyped(const std::string& lname, int want, py::list inputs, py::list names,
                      py::object target, const char* target_name, py::object weights,
                      Reduction red, const py::dict& o, py::object out_obj, Kind kind,
                      std::vector<Arg>& args) {
  const char* name = lname.c_str();
  const size_t n = inputs.size();
  const bool value = want != 1, grads = want != 0;
  const bool none = red == Reduction::kNone;
  py::object result_value, result_grads;
  // Score losses: each input is reduced on its own (weights: a pair).
  const bool scores = lname == "gan_discriminator" || lname == "wasserstein_critic" ||
                      lname == "gan_generator" || lname == "wasserstein_generator";
  if (scores) {
    std::vector<fastloss::ScoreCall<T>> calls(n);
    std::vector<Arg> wargs(n);
    py::list losses_out, grads_out;
    for (size_t k = 0; k < n; ++k) {
      calls[k].scores = args[k].ToView<const T>();
      py::object w = py::none();
      if (!weights.is_none()) {
        if (n == 1) {
          w = weights;
        } else {
          if (!py::isinstance<py::tuple>(weights) && !py::isinstance<py::list>(weights)) {
            throw py::type_error(lname + ": weights must be None or a pair (w_real, w_fake)");
          }
          py::sequence seq = weights;
          if (seq.size() != 2) throw py::value_error(lname + ": weights must be a pair (w_real, w_fake)");
          w = seq[k];
        }
      }
      if (!w.is_none()) {
        LoadInput(name, "weights", w, kind, wargs[k]);
        calls[k].weights = wargs[k].ToView<const T>();
        calls[k].has_weights = true;
      }
      if (none && value) {
        losses_out.append(NewArray<T>(args[k], calls[k].losses));
        calls[k].has_losses = true;
      }
      if (grads) {
        if (!out_obj.is_none() && n == 1) {
          Arg out;
          LoadOut(name, out_obj, args[k], kind, out);
          calls[k].grad = out.ToView<T>();
          grads_out.append(out_obj);
        } else {
          grads_out.append(NewArray<T>(args[k], calls[k].grad));
        }
        calls[k].has_grad = true;
      }
    }
    const bool saturating =
        lname == "gan_generator" && OptBool(lname, o, "saturating", false);
    double v;
    {
      py::gil_scoped_release release;
      if (lname == "gan_discriminator") {
        v = fastloss::GanDiscriminator<T>(calls[0], calls[1], red);
      } else if (lname == "wasserstein_critic") {
        v = fastloss::WassersteinCritic<T>(calls[0], calls[1], red);
      } else if (lname == "gan_generator") {
        v = fastloss::GanGenerator<T>(calls[0], red, saturating);
      } else {
        v = fastloss::WassersteinGenerator<T>(calls[0], red);
      }
    }
    if (value) {
      result_value = none ? (n == 1 ? losses_out[0] : py::object(py::tuple(losses_out)))
                          : Scalar(v, kind);
    }
    if (grads) {
      result_grads = n == 1 ? py::object(grads_out[0]) : py::object(py::tuple(grads_out));
    }
  } else {
    Arg targ, warg;
    fastloss::MultiCall<T> call;
    for (size_t k = 0; k < n; ++k) call.inputs[k] = args[k].ToView<const T>();
    const bool pairwise = lname == "pairwise_ranking";
    if (target_name && !pairwise) {
      LoadInput(name, target_name, target, kind, targ);
      call.target = targ.ToView<const T>();
    }
    if (!weights.is_none()) {
      LoadInput(name, "weights", weights, kind, warg);
      call.weights = warg.ToView<const T>();
      call.has_weights = true;
    }
    call.reduction = red;
    // The losses' shape: rows (inputs without the last axis), elements
    // (margin ranking), or samples (gradient penalty).
    const Arg& a0 = args[0];
    int64_t lshape[fastloss::kMaxRank];
    int lrank = 0;
    if (lname == "margin_ranking") {
      lrank = a0.rank;
      std::copy(a0.shape, a0.shape + a0.rank, lshape);
    } else if (lname == "gradient_penalty") {
      lrank = a0.rank > 0 ? 1 : 0;
      if (lrank) lshape[0] = a0.shape[0];
    } else {
      lrank = a0.rank > 0 ? a0.rank - 1 : 0;
      std::copy(a0.shape, a0.shape + lrank, lshape);
    }
    py::object losses;
    if (none && value && !pairwise) {
      losses = NewArray<T>(lrank, lshape, call.losses);
      call.has_losses = true;
    }
    py::list grads_out;
    if (grads) {
      for (size_t k = 0; k < n; ++k) {
        if (!out_obj.is_none() && n == 1) {
          Arg out;
          LoadOut(name, out_obj, args[k], kind, out);
          call.grads[k] = out.ToView<T>();
          grads_out.append(out_obj);
        } else {
          grads_out.append(NewArray<T>(args[k], call.grads[k]));
        }
        call.has_grads[k] = true;
      }
    }
    double v = 0.0;
    if (lname == "cosine_embedding") {
      fastloss::CosineEmbeddingOptions r;
      r.margin = OptFloat(lname, o, "margin", 0.0);
      py::gil_scoped_release release;
      v = fastloss::CosineEmbedding<T>(call, r);
    } else if (lname == "triplet_margin") {
      fastloss::TripletMarginOptions r;
      r.margin = OptFloat(lname, o, "margin", 1.0);
      r.p = OptFloat(lname, o, "p", 2.0);
      r.eps = OptFloat(lname, o, "eps", 1e-6);
      r.swap = OptBool(lname, o, "swap", false);
      r.squared = OptBool(lname, o, "squared", false);
      py::gil_scoped_release release;
      v = fastloss::TripletMargin<T>(call, r);
    } else if (lname == "contrastive_pairs") {
      fastloss::ContrastiveOptions r;
      r.margin = OptFloat(lname, o, "margin", 1.0);
      r.eps = OptFloat(lname, o, "eps", 1e-6);
      py::gil_scoped_release release;
      v = fastloss::ContrastivePairs<T>(call, r);
    } else if (lname == "margin_ranking") {
      fastloss::MarginRankingOptions r;
      r.margin = OptFloat(lname, o, "margin", 0.0);
      py::gil_scoped_release release;
      v = fastloss::MarginRanking<T>(call, r);
    } else if (lname == "gradient_penalty") {
      fastloss::ScoreCall<T> sc;
      sc.scores = call.inputs[0];
      sc.weights = call.weights;
      sc.has_weights = call.has_weights;
      sc.grad = call.grads[0];
      sc.has_grad = call.has_grads[0];
      sc.losses = call.losses;
      sc.has_losses = call.has_losses;
      const double tgt = OptFloat(lname, o, "target", 1.0);
      py::gil_scoped_release release;
      v = fastloss::GradientPenalty<T>(sc, red, tgt);
    } else if (pairwise) {
      Arg rel, groups;
      LoadInput(name, "relevance", target, kind, rel);
      fastloss::Call<T> c;
      c.y_true = rel.ToView<const T>();
      c.y_pred = call.inputs[0];
      c.has_weights = call.has_weights;
      c.weights = call.weights;
      c.reduction = red;
      c.grad = call.grads[0];
      c.has_grad = call.has_grads[0];
      fastloss::PairwiseRankingOptions r;
      r.margin = OptFloat(lname, o, "margin", 1.0);
      View<const int64_t> gview;
      const View<const int64_t>* gp = nullptr;
      if (o.contains("groups") && !py::object(o["groups"]).is_none()) {
        LoadLabels(name, o["groups"], groups, "groups");
        gview = groups.ToView<const int64_t>();
        gp = &gview;
      }
      if (o.contains("normalization")) {
        const std::string norm = py::str(o["normalization"]).cast<std::string>();
        if (!PyUnicode_Check(py::object(o["normalization"]).ptr()) ||
            (norm != "all_pairs" && norm != "ordered_pairs")) {
          throw py::value_error(lname + ": normalization must be 'all_pairs' or 'ordered_pairs', got " +
                                py::repr(o["normalization"]).cast<std::string>());
        }
        r.normalization = norm == "all_pairs" ? fastloss::PairNormalization::kAllPairs
                                              : fastloss::PairNormalization::kOrderedPairs;
      }
      py::gil_scoped_release release;
      v = fastloss::PairwiseRanking<T>(c, gp, r);
    } else {
      throw py::value_error("unknown loss '" + lname + "'");
    }
    result_value = none ? losses : Scalar(v, kind);
    if (grads) {
      result_grads = n == 1 ? py::object(grads_out[0]) : py::object(py::tuple(grads_out));
    }
  }
  if (want == 0) return result_value;
  if (want == 1) return result_grads;
  return py::make_tuple(result_value, result_grads);
}

// want: 0 value, 1 gradient(s), 2 both. inputs: the differentiable inputs in
// argument order (the first decides the dtype); target: the non-
// differentiable one (or None); options: keyword options.
py::object Multi(const std::string& lname, int want, py::list inputs, py::list names,
                 py::object target, py::object target_name, py::object weights,
                 const std::string& reduction, py::dict options, py::object out) {
  const Reduction red = ReductionOf(lname, reduction);
  const char* name = lname.c_str();
  std::vector<Arg> args(inputs.size());
  std::vector<std::string> name_store;
  for (size_t k = 0; k < inputs.size(); ++k) name_store.push_back(py::str(names[k]));
  LoadPrediction(name, inputs[0], args[0], name_store[0].c_str());
  const Kind kind = args[0].kind;
  for (size_t k = 1; k < inputs.size(); ++k) {
    LoadInput(name, name_store[k].c_str(), inputs[k], kind, args[k]);
  }
  std::string tname = target_name.is_none() ? "" : py::str(target_name).cast<std::string>();
  const char* tn = target_name.is_none() ? nullptr : tname.c_str();
  if (kind == Kind::kF32) {
    return MultiTyped<float>(lname, want, inputs, names, target, tn, weights, red, options, out,
                             kind, args);
  }
  return MultiTyped<double>(lname, want, inputs, names, target, tn, weights, red, options, out,
                            kind, args);
}

// l2_penalty: lam * sum_k |w_k|^2 over arrays of any float dtype each.
py::object L2(py::list arrays, double lam, int want) {
  double total = 0.0;
  py::list grads;
  for (size_t k = 0; k < arrays.size(); ++k) {
    Arg a;
    LoadPrediction("l2_penalty", arrays[k], a, "arrays");
    auto run = [&](auto t) {
      using T = decltype(t);
      const View<const T> w = a.ToView<const T>();
      View<T> g;
      py::object garr;
      if (want != 0) garr = NewArray<T>(a, g);
      double v;
      {
        py::gil_scoped_release release;
        v = fastloss::L2Penalty<T>(w, lam, want != 0 ? &g : nullptr);
      }
      total += v;
      if (want != 0) grads.append(garr);
    };
    if (a.kind == Kind::kF32) {
      run(float{});
    } else {
      run(double{});
    }
  }
  if (arrays.size() == 0 && !(lam >= 0)) {
    throw py::value_error("l2_penalty: lam must be a finite number >= 0");
  }
  py::object v = Scalar(total, Kind::kF64);
  if (want == 0) return v;
  if (want == 1) return grads;
  return py::make_tuple(v, grads);
}

// A fused sum of elementwise losses: terms = [(name, coef, options dict)].
py::object Fused(py::list terms, py::handle y_true_obj, py::handle y_pred_obj,
                 const std::string& reduction, py::object weights, int want, py::object out_obj) {
  const char* name = "combined";
  fastloss::ElementwiseCombination comb;
  for (py::handle t : terms) {
    py::tuple tt = py::reinterpret_borrow<py::tuple>(t);
    const std::string lname = py::str(tt[0]);
    const double coef = py::cast<double>(tt[1]);
    py::dict opts = py::reinterpret_borrow<py::dict>(tt[2]);
    const LossSpec* spec = nullptr;
    for (const LossSpec& s : Table()) {
      if (lname == s.name) spec = &s;
    }
    if (!spec || !spec->add) throw py::value_error("combined: " + lname + " cannot be fused");
    Parsed p;
    for (size_t i = 0; i < spec->options.size(); ++i) {
      p.opts[i] = spec->options[i].default_value;
      p.has[i] = spec->options[i].has_default;
    }
    for (auto item : opts) {
      const std::string key = py::str(item.first);
      bool known = false;
      for (size_t i = 0; i < spec->options.size() && !known; ++i) {
        if (key == spec->options[i].name) {
          SetOption(*spec, i, item.second, p);
          known = true;
        }
      }
      if (!known) {
        throw py::type_error(lname + "() got an unexpected keyword argument '" + key + "'");
      }
    }
    Opts o;
    for (size_t i = 0; i < spec->options.size(); ++i) {
      o.v[i] = p.opts[i];
      o.has[i] = p.has[i];
      o.array[i] = nullptr;
      if (p.arrays[i]) throw py::value_error("combined: " + lname + " with an array option cannot be fused");
    }
    spec->add(comb, coef, o);
  }
  const Reduction red = ReductionOf(name, reduction);
  Arg y_pred, y_true, w;
  LoadPrediction(name, y_pred_obj, y_pred);
  const Kind kind = y_pred.kind;
  LoadInput(name, "y_true", y_true_obj, kind, y_true);
  if (!weights.is_none()) LoadInput(name, "weights", weights, kind, w);
  auto run = [&](auto t) -> py::object {
    using T = decltype(t);
    fastloss::Call<T> call;
    call.y_true = y_true.ToView<const T>();
    call.y_pred = y_pred.ToView<const T>();
    call.reduction = red;
    if (!weights.is_none()) {
      call.weights = w.ToView<const T>();
      call.has_weights = true;
    }
    py::object losses, grad;
    if (red == Reduction::kNone && want != 1) {
      losses = NewArray<T>(y_pred, call.losses);
      call.has_losses = true;
    }
    if (want != 0) {
      if (!out_obj.is_none()) {
        Arg out;
        LoadOut(name, out_obj, y_pred, kind, out);
        call.grad = out.ToView<T>();
        grad = out_obj;
      } else {
        grad = NewArray<T>(y_pred, call.grad);
      }
      call.has_grad = true;
    }
    double v;
    {
      py::gil_scoped_release release;
      v = fastloss::Combined<T>(call, comb);
    }
    py::object value = red == Reduction::kNone ? losses : Scalar(v, kind);
    if (want == 0) return value;
    if (want == 1) return grad;
    return py::make_tuple(value, grad);
  };
  if (kind == Kind::kF32) return run(float{});
  return run(double{});
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
                                 if (!o.has_default) {
                                   d[o.name] = py::none();
                                 } else if (o.type == OptType::kChoice) {
                                   d[o.name] = py::str(o.choices[static_cast<int>(o.default_value)]);
                                 } else if (o.type == OptType::kBool) {
                                   d[o.name] = py::bool_(o.default_value != 0);
                                 } else if (o.type == OptType::kInt) {
                                   d[o.name] = py::int_(static_cast<long>(o.default_value));
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
  m.def("_multi", &Multi);
  m.def("_l2", &L2);
  m.def("_fused", &Fused);
  m.def("fusable", [](const std::string& name) {
    for (const LossSpec& s : Table()) {
      if (name == s.name) return s.add != nullptr;
    }
    return false;
  });
  m.def("loss_kind", [](const std::string& name) {
    for (const LossSpec& s : Table()) {
      if (name == s.name) {
        switch (s.kind) {
          case LossKind::kElementwise: return std::string("elementwise");
          case LossKind::kDenseRows: return std::string("dense_rows");
          case LossKind::kLabelRows: return std::string("label_rows");
          case LossKind::kRegions: return std::string("regions");
          case LossKind::kBoxes: return std::string("boxes");
        }
      }
    }
    throw py::value_error("unknown loss '" + name + "'");
  });
  m.def("set_num_threads", &fastloss::SetNumThreads, py::arg("n"));
  m.def("get_num_threads", &fastloss::GetNumThreads);
  m.def("simd_target", &fastloss::SimdTarget);
  m.def("available_simd_targets", &fastloss::AvailableSimdTargets);
  m.def("force_simd_target", &fastloss::ForceSimdTarget, py::arg("name"));
}
