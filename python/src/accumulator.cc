// fastloss._core.Accumulator: the running, exactly mergeable state of one
// loss with fixed options and reduction (fastloss/accumulator.hpp). An update
// is the loss's own call (the same front door, parse and kernels) with its
// sums added to a LossState; merging is integer addition.
#include "accumulator.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "arguments.h"
#include "multi.h"
#include "single.h"

namespace fastloss_py {
namespace {

// numpy.NAME, a new reference kept for the process's life: released objects
// held in statics would be dropped after the interpreter has ended.
py::handle Numpy(const char* name) {
  return py::object(py::module_::import("numpy").attr(name)).release();
}

using fastloss::LossState;
using fastloss::Reduction;

class Accumulator {
 public:
  Accumulator(const std::string& name, const std::string& reduction, py::dict options)
      : name_(name), options_(std::move(options)) {
    spec_ = FindSpec(name);
    if (!spec_ && !FindMultiSpec(name)) throw py::value_error("unknown loss '" + name + "'");
    const std::string where = name + ".accumulator";
    reduction_ = ReductionOf(where.c_str(), py::str(reduction));
    if (reduction_ == Reduction::kNone) {
      throw py::value_error(where + ": reduction must be 'mean' or 'sum', got 'none'");
    }
    for (auto item : options_) {
      const std::string key = py::str(item.first);
      if (key == "reduction" || key == "weights" || key == "out") {
        throw py::type_error(where + "() got an unexpected keyword argument '" + key + "'");
      }
    }
    resolved_ = spec_ ? CheckSpecOptions(*spec_, options_) : CheckMultiSpecOptions(name, options_);
  }

  // The loss's call on args / kwargs (plus the fixed options and reduction),
  // its sums added to the state. Concurrent updates run in parallel (the
  // kernels release the GIL) and meet only to add their sums.
  void Update(py::args args, py::kwargs kwargs) {
    py::dict kw;
    for (auto item : kwargs) {
      const std::string key = py::str(item.first);
      if (key == "reduction" || key == "out" || options_.contains(item.first)) {
        throw py::type_error(name_ + ".accumulator.update() got an unexpected keyword argument '" +
                             key + "' (the reduction and options are the accumulator's own)");
      }
      kw[item.first] = item.second;
    }
    for (auto item : options_) kw[item.first] = item.second;
    kw["reduction"] = reduction_ == Reduction::kMean ? "mean" : "sum";
    LossState local;
    py::object value;
    if (spec_) {
      std::vector<PyObject*> argv;
      std::vector<py::object> keys;
      for (py::handle a : args) argv.push_back(a.ptr());
      const Py_ssize_t nargs = static_cast<Py_ssize_t>(argv.size());
      py::tuple kwnames(kw.size());
      Py_ssize_t k = 0;
      for (auto item : kw) {
        kwnames[k++] = item.first;
        argv.push_back(item.second.ptr());
      }
      value = Accumulate(*spec_, argv.data(), nargs, kwnames.ptr(), &local);
    } else {
      value = MultiAccumulate(name_, py::tuple(args), kw, &local);
    }
    // The result's dtype: float32 while every update was (as the call's).
    const bool f32 = py::type::handle_of(value).is(NumpyScalar("float32"));
    std::lock_guard<std::mutex> lock(mu_);
    state_.Merge(local);
    dtype_ = dtype_ == kF64 || !f32 ? kF64 : kF32;
  }

  void Merge(const Accumulator& other) {
    if (&other == this) {
      throw py::value_error(name_ + ".accumulator.merge: an accumulator cannot merge itself");
    }
    if (other.name_ != name_ || other.reduction_ != reduction_ || !SameOptions(other)) {
      throw py::value_error(name_ + ".accumulator.merge: other accumulates " + other.Describe() +
                            ", not " + Describe());
    }
    LossState s = other.Snapshot();
    const DType d = other.dtype();
    std::lock_guard<std::mutex> lock(mu_);
    state_.Merge(s);
    if (d != kNone) dtype_ = dtype_ == kF64 || d == kF64 ? kF64 : kF32;
  }

  // The value as the one-shot call gives it: a NumPy float32 when every
  // update was float32, else float64.
  py::object Result() const {
    const double r = Snapshot().Result(reduction_);
    return NumpyScalar(dtype() == kF32 ? "float32" : "float64")(r);
  }

  py::array_t<int64_t> State() const {
    py::array_t<int64_t> words(LossState::kWords);
    Snapshot().ToWords(words.mutable_data());
    return words;
  }

  void LoadState(py::handle words_obj) {
    const std::string where = name_ + ".accumulator.from_state";
    py::array arr = py::array::ensure(words_obj);
    if (!arr || arr.ndim() != 1 || arr.shape(0) != LossState::kWords) {
      throw py::value_error(where + ": state must be a 1-D array of " +
                            std::to_string(LossState::kWords) + " integers (acc.state())");
    }
    if (!py::isinstance<py::array_t<int64_t>>(arr) && arr.dtype().kind() != 'i' &&
        arr.dtype().kind() != 'u') {
      throw py::type_error(where + ": state must hold integers, got dtype " +
                           std::string(py::str(arr.dtype())));
    }
    py::array_t<int64_t, py::array::c_style | py::array::forcecast> w(arr);
    LossState s;
    try {
      s = LossState::FromWords(w.data(), where.c_str());
    } catch (const fastloss::Error& e) {
      throw py::value_error(e.what());
    }
    std::lock_guard<std::mutex> lock(mu_);
    state_ = s;
    dtype_ = kNone;
  }

  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = LossState();
    dtype_ = kNone;
  }

  // "float32", "float64", or None before any update (a state's words do
  // not carry it).
  py::object DTypeName() const {
    const DType d = dtype();
    if (d == kNone) return py::none();
    return py::str(d == kF32 ? "float32" : "float64");
  }
  void SetDType(py::handle name) {
    DType d = kNone;
    if (!name.is_none()) {
      const std::string s = py::str(name);
      if (s != "float32" && s != "float64") {
        throw py::value_error(name_ + ".accumulator: dtype must be 'float32', 'float64' or None");
      }
      d = s == "float32" ? kF32 : kF64;
    }
    std::lock_guard<std::mutex> lock(mu_);
    dtype_ = d;
  }

  int64_t Count() const { return Snapshot().count; }
  double Numerator() const { return Snapshot().value.Round(); }
  double Denominator() const { return Snapshot().weight.Round(); }
  const std::string& name() const { return name_; }
  std::string reduction() const { return reduction_ == Reduction::kMean ? "mean" : "sum"; }
  py::dict options() const { return py::dict(options_); }

  // The same options once defaults are filled in (an option given at its
  // default equals one left out); array options compare by value.
  bool SameOptions(const Accumulator& other) const {
    if (py::len(resolved_) != py::len(other.resolved_)) return false;
    // Kept for the process's life (never released after the interpreter's end).
    static py::handle array_equal = Numpy("array_equal");
    static py::handle ndarray = Numpy("ndarray");
    for (auto item : resolved_) {
      if (!other.resolved_.contains(item.first)) return false;
      py::object a = py::reinterpret_borrow<py::object>(item.second);
      py::object b = other.resolved_[item.first];
      const bool arrays = py::isinstance(a, ndarray) || py::isinstance(b, ndarray) ||
                          py::hasattr(a, "__array_interface__") ||
                          py::hasattr(b, "__array_interface__");
      if (arrays ? !array_equal(a, b).cast<bool>() : !a.equal(b)) return false;
    }
    return true;
  }

  std::string Describe() const {
    std::string s = name_ + "(reduction='" + reduction();
    s += "'";
    for (auto item : options_) {
      s += ", " + std::string(py::str(item.first)) + "=" + std::string(py::repr(item.second));
    }
    return s + ")";
  }

 private:
  enum DType { kNone, kF32, kF64 };

  // The NumPy scalar type, kept for the process's life (never released
  // after the interpreter's end).
  static py::handle NumpyScalar(const char* name) {
    static py::handle f32 = Numpy("float32");
    static py::handle f64 = Numpy("float64");
    return std::string(name) == "float32" ? f32 : f64;
  }

  LossState Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  DType dtype() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dtype_;
  }

  std::string name_;
  const Spec* spec_ = nullptr;
  Reduction reduction_ = Reduction::kMean;
  py::dict options_;   // as given (pickling, from_state)
  py::dict resolved_;  // every option, defaults filled in (merge checks)
  mutable std::mutex mu_;
  LossState state_;
  DType dtype_ = kNone;
};

}  // namespace

void BindAccumulator(py::module_& m) {
  py::class_<Accumulator>(m, "Accumulator")
      .def(py::init<const std::string&, const std::string&, py::dict>(), py::arg("name"),
           py::arg("reduction") = "mean", py::arg("options") = py::dict())
      .def("update", &Accumulator::Update)
      .def("_merge_one", &Accumulator::Merge, py::arg("other"))
      .def("result", &Accumulator::Result)
      .def("state", &Accumulator::State)
      .def("_load_state", &Accumulator::LoadState, py::arg("state"))
      .def("reset", &Accumulator::Reset)
      .def_property("dtype", &Accumulator::DTypeName, &Accumulator::SetDType)
      .def_property_readonly("count", &Accumulator::Count)
      .def_property_readonly("numerator", &Accumulator::Numerator)
      .def_property_readonly("denominator", &Accumulator::Denominator)
      .def_property_readonly("name", &Accumulator::name)
      .def_property_readonly("reduction", &Accumulator::reduction)
      .def_property_readonly("options", &Accumulator::options)
      .def("_describe", &Accumulator::Describe);
  m.attr("STATE_WORDS") = LossState::kWords;
}

}  // namespace fastloss_py
