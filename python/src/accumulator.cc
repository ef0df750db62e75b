// fastloss._core.Accumulator: the running, exactly mergeable state of one
// loss with fixed options and reduction (fastloss/accumulator.hpp). An update
// is the loss's own call (the same front door, parse and kernels) with its
// sums added to a LossState; merging is integer addition.
#include "accumulator.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
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
  // num_segments < 0: one state; >= 0: one state per segment (updates then
  // take segment_ids= or offsets=, and results are arrays).
  // terms (not None): a fused combination, [(name, coef, options dict)]
  // (name is then "combined").
  Accumulator(const std::string& name, const std::string& reduction, py::dict options,
              int64_t num_segments, py::object terms)
      : name_(name), options_(std::move(options)), segments_(num_segments) {
    if (!terms.is_none()) {
      InitCombined(reduction, terms);
      return;
    }
    spec_ = FindSpec(name);
    if (!spec_ && !FindMultiSpec(name)) throw py::value_error("unknown loss '" + name + "'");
    const std::string where = name + ".accumulator";
    reduction_ = ReductionOf(where.c_str(), py::str(reduction));
    if (reduction_ == Reduction::kNone) {
      throw py::value_error(where + ": reduction must be 'mean' or 'sum', got 'none'");
    }
    for (auto item : options_) {
      const std::string key = py::str(item.first);
      if (key == "reduction" || key == "weights" || key == "out" || key == "offsets" ||
          key == "segment_ids") {
        throw py::type_error(where + "() got an unexpected keyword argument '" + key + "'");
      }
    }
    if (segmented() && !spec_ && !MultiSpecSegments(*FindMultiSpec(name))) {
      throw py::type_error(where + ": num_segments is for the losses reduced over elements or "
                           "rows (not this one's kind)");
    }
    if (segments_ > (int64_t{1} << 40)) throw py::value_error(where + ": num_segments too large");
    resolved_ = spec_ ? CheckSpecOptions(*spec_, options_) : CheckMultiSpecOptions(name, options_);
    states_.resize(static_cast<size_t>(segmented() ? segments_ : 1));
  }

  bool segmented() const { return segments_ >= 0; }

  // The loss's call on args / kwargs (plus the fixed options and reduction),
  // its sums added to the state. Concurrent updates run in parallel (the
  // kernels release the GIL) and meet only to add their sums.
  void Update(py::args args, py::kwargs kwargs) {
    const std::string where = name_ + ".accumulator.update()";
    py::dict kw;
    bool has_segments = false;
    for (auto item : kwargs) {
      const std::string key = py::str(item.first);
      if (key == "reduction" || key == "out" || key == "num_segments" ||
          options_.contains(item.first)) {
        throw py::type_error(where + " got an unexpected keyword argument '" + key +
                             "' (the reduction, options and segments are the accumulator's own)");
      }
      if (key == "offsets" || key == "segment_ids") {
        if (!segmented()) {
          throw py::type_error(where + ": " + key +
                               "= needs an accumulator made with num_segments=");
        }
        if (key == "offsets" && py::len(item.second) != static_cast<size_t>(segments_ + 1)) {
          throw py::value_error(where + ": offsets must have num_segments + 1 = " +
                                std::to_string(segments_ + 1) + " entries, got " +
                                std::to_string(py::len(item.second)));
        }
        has_segments = true;
      }
      kw[item.first] = item.second;
    }
    if (segmented() && !has_segments) {
      throw py::type_error(where + ": a segmented accumulator's update needs segment_ids= or "
                           "offsets=");
    }
    if (segmented() && kw.contains("segment_ids")) kw["num_segments"] = segments_;
    for (auto item : options_) kw[item.first] = item.second;
    kw["reduction"] = reduction_ == Reduction::kMean ? "mean" : "sum";
    std::vector<LossState> local(states_.size());
    py::object value;
    if (combined()) {
      value = UpdateCombined(args, kw, local.data());
    } else if (spec_) {
      std::vector<PyObject*> argv;
      for (py::handle a : args) argv.push_back(a.ptr());
      const Py_ssize_t nargs = static_cast<Py_ssize_t>(argv.size());
      py::tuple kwnames(kw.size());
      Py_ssize_t k = 0;
      for (auto item : kw) {
        kwnames[k++] = item.first;
        argv.push_back(item.second.ptr());
      }
      value = Accumulate(*spec_, argv.data(), nargs, kwnames.ptr(), local.data());
    } else {
      value = MultiAccumulate(name_, py::tuple(args), kw, local.data());
    }
    const bool f32 = IsFloat32(value);
    std::lock_guard<std::mutex> lock(mu_);
    CheckMergeable(where, states_, local);
    for (size_t s = 0; s < local.size(); ++s) states_[s].Merge(local[s]);
    dtype_ = dtype_ == kF64 || !f32 ? kF64 : kF32;
  }

  void Merge(const Accumulator& other) {
    if (&other == this) {
      throw py::value_error(name_ + ".accumulator.merge: an accumulator cannot merge itself");
    }
    if (other.name_ != name_ || other.reduction_ != reduction_ || !SameOptions(other) ||
        other.segments_ != segments_ || !terms_.equal(other.terms_)) {
      throw py::value_error(name_ + ".accumulator.merge: other accumulates " + other.Describe() +
                            ", not " + Describe());
    }
    const std::vector<LossState> s = other.Snapshot();
    const DType d = other.dtype();
    std::lock_guard<std::mutex> lock(mu_);
    CheckMergeable(name_ + ".accumulator.merge", states_, s);
    for (size_t k = 0; k < s.size(); ++k) states_[k].Merge(s[k]);
    if (d != kNone) dtype_ = dtype_ == kF64 || d == kF64 ? kF64 : kF32;
  }

  // The value as the one-shot call gives it: a NumPy float32 when every
  // update was float32, else float64; per segment, an array of S values.
  py::object Result() const {
    const std::vector<LossState> s = Snapshot();
    const bool f32 = dtype() == kF32;
    if (!segmented()) return NumpyScalar(f32 ? "float32" : "float64")(ResultOf(s[0]));
    if (f32) {
      py::array_t<float> out(static_cast<py::ssize_t>(s.size()));
      for (size_t k = 0; k < s.size(); ++k) {
        out.mutable_data()[k] = static_cast<float>(ResultOf(s[k]));
      }
      return out;
    }
    py::array_t<double> out(static_cast<py::ssize_t>(s.size()));
    for (size_t k = 0; k < s.size(); ++k) out.mutable_data()[k] = ResultOf(s[k]);
    return out;
  }

  // (W,) words, or (S, W) per segment: W = STATE_WORDS, plus
  // ExactSum::kWords per region sum for region losses whose regions span
  // updates (a segment with none yet has zeros there).
  py::array_t<int64_t> State() const {
    const std::vector<LossState> s = Snapshot();
    size_t w = LossState::kWords;
    for (const LossState& st : s) w = std::max(w, st.Words());
    std::vector<py::ssize_t> shape;
    if (segmented()) shape.push_back(static_cast<py::ssize_t>(s.size()));
    shape.push_back(static_cast<py::ssize_t>(w));
    py::array_t<int64_t> words(shape);
    std::fill(words.mutable_data(), words.mutable_data() + words.size(), int64_t{0});
    for (size_t k = 0; k < s.size(); ++k) s[k].ToWords(words.mutable_data() + k * w);
    return words;
  }

  void LoadState(py::handle words_obj) {
    const std::string where = name_ + ".accumulator.from_state";
    py::array arr = py::array::ensure(words_obj);
    const std::string base = std::to_string(LossState::kWords);
    const std::string want = segmented() ? "(" + std::to_string(segments_) + ", " + base +
                                               " + k*" +
                                               std::to_string(fastloss::ExactSum::kWords) + ")"
                                         : "(" + base + " + k*" +
                                               std::to_string(fastloss::ExactSum::kWords) + ",)";
    const bool shape_ok =
        arr && (segmented() ? arr.ndim() == 2 && arr.shape(0) == segments_ : arr.ndim() == 1);
    const py::ssize_t n = shape_ok ? arr.shape(arr.ndim() - 1) : 0;
    const bool ok = shape_ok && n >= LossState::kWords &&
                    (n - LossState::kWords) % fastloss::ExactSum::kWords == 0 &&
                    (n == LossState::kWords || (spec_ && SpecHasRegionState(*spec_)));
    if (!ok) {
      throw py::value_error(where + ": state must be an integer array of shape " + want +
                            " (acc.state(); k = 0 but for region losses)");
    }
    if (arr.dtype().kind() != 'i' && arr.dtype().kind() != 'u') {
      throw py::type_error(where + ": state must hold integers, got dtype " +
                           std::string(py::str(arr.dtype())));
    }
    py::array_t<int64_t, py::array::c_style | py::array::forcecast> w(arr);
    std::vector<LossState> s(states_.size());
    try {
      for (size_t k = 0; k < s.size(); ++k) {
        s[k] = LossState::FromWords(w.data() + k * n, static_cast<size_t>(n), where.c_str());
        // A segment that saw nothing (zero padding): no region sums.
        if (s[k].count == 0 && !s[k].sums.empty() &&
            std::all_of(w.data() + k * n + LossState::kWords, w.data() + (k + 1) * n,
                        [](int64_t x) { return x == 0; })) {
          s[k].sums.clear();
        }
      }
    } catch (const fastloss::Error& e) {
      throw py::value_error(e.what());
    }
    std::lock_guard<std::mutex> lock(mu_);
    states_ = std::move(s);
    dtype_ = kNone;
  }

  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    states_.assign(states_.size(), LossState());
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

  // Totals over every segment (items; exact sums, rounded); per segment:
  // Counts, Numerators, Denominators (None without segments).
  int64_t Count() const {
    int64_t n = 0;
    for (const LossState& s : Snapshot()) n += s.count;
    return n;
  }
  double Numerator() const { return Total().value.Round(); }
  double Denominator() const { return Total().weight.Round(); }
  py::object Counts() const {
    if (!segmented()) return py::none();
    const std::vector<LossState> s = Snapshot();
    py::array_t<int64_t> out(static_cast<py::ssize_t>(s.size()));
    for (size_t k = 0; k < s.size(); ++k) out.mutable_data()[k] = s[k].count;
    return out;
  }
  // Each segment's exact numerator (weight: false) or denominator (true),
  // rounded once to float64.
  py::object SegmentSums(bool weight) const {
    if (!segmented()) return py::none();
    const std::vector<LossState> s = Snapshot();
    py::array_t<double> out(static_cast<py::ssize_t>(s.size()));
    for (size_t k = 0; k < s.size(); ++k) {
      out.mutable_data()[k] = (weight ? s[k].weight : s[k].value).Round();
    }
    return out;
  }
  py::object NumSegments() const {
    return segmented() ? py::object(py::int_(segments_)) : py::none();
  }
  const std::string& name() const { return name_; }
  py::object terms() const { return terms_.is_none() ? terms_ : py::object(py::list(terms_)); }
  std::string reduction() const { return reduction_ == Reduction::kMean ? "mean" : "sum"; }
  py::dict options() const { return py::dict(options_); }

  // The same options once defaults are filled in (an option given at its
  // default equals one left out); array options compare by value.
  bool SameOptions(const Accumulator& other) const {
    if (py::len(resolved_) != py::len(other.resolved_)) return false;
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
    std::string s = name_ + "(reduction='" + reduction() + "'";
    if (combined()) s += ", terms=" + std::string(py::repr(terms_));
    if (segmented()) s += ", num_segments=" + std::to_string(segments_);
    for (auto item : options_) {
      s += ", " + std::string(py::str(item.first)) + "=" + std::string(py::repr(item.second));
    }
    return s + ")";
  }

 private:
  enum DType { kNone, kF32, kF64 };

  bool combined() const { return !terms_.is_none(); }

  void InitCombined(const std::string& reduction, const py::object& terms) {
    reduction_ = ReductionOf("combined.accumulator", py::str(reduction));
    if (reduction_ == Reduction::kNone) {
      throw py::value_error("combined.accumulator: reduction must be 'mean' or 'sum', got 'none'");
    }
    if (segmented() || py::len(options_) != 0) {
      throw py::type_error("combined.accumulator: takes no options or num_segments (fix options "
                           "on the terms)");
    }
    // The terms as a fused call checks them (names, options; arrays refused).
    fastloss::ElementwiseCombination check;
    py::list list;
    for (py::handle t : terms) {
      if (!py::isinstance<py::tuple>(t) || py::len(t) != 3) {
        throw py::type_error("combined.accumulator: terms must be (name, coef, options) tuples");
      }
      py::tuple tt = py::reinterpret_borrow<py::tuple>(t);
      AddTerm(check, py::str(tt[0]).cast<std::string>(),
              RealValue("combined: coef", tt[1]), tt[2].cast<py::dict>());
      list.append(tt);
    }
    terms_ = list;
    states_.resize(1);
  }

  // A fused combination's update: (y_true, y_pred[, weights=]).
  py::object UpdateCombined(const py::args& args, const py::dict& kw, LossState* state) {
    if (py::len(args) != 2) {
      throw py::type_error("combined.accumulator.update() takes 2 positional arguments "
                           "(y_true, y_pred)");
    }
    py::object weights = py::none();
    for (auto item : kw) {
      const std::string key = py::str(item.first);
      if (key == "weights") {
        weights = py::reinterpret_borrow<py::object>(item.second);
      } else if (key != "reduction") {
        throw py::type_error("combined.accumulator.update() got an unexpected keyword argument '" +
                             key + "'");
      }
    }
    return Fused(py::reinterpret_borrow<py::list>(terms_), args[0], args[1],
                 reduction(), weights, 0, py::none(), state);
  }

  // The NumPy scalar type, kept for the process's life.
  static py::handle NumpyScalar(const char* name) {
    static py::handle f32 = Numpy("float32");
    static py::handle f64 = Numpy("float64");
    return std::string(name) == "float32" ? f32 : f64;
  }
  // Whether a call's value (a NumPy scalar, or an array of segment values)
  // is float32.
  static bool IsFloat32(const py::object& value) {
    if (py::isinstance<py::array>(value)) {
      return py::reinterpret_borrow<py::array>(value).dtype().equal(py::dtype::of<float>());
    }
    return py::type::handle_of(value).is(NumpyScalar("float32"));
  }

  // The value of one state: LossState::Result, or the region loss's
  // RegionResult for a state of region sums.
  double ResultOf(const LossState& s) const {
    return spec_ ? StateResult(*spec_, options_, s, reduction_) : s.Result(reduction_);
  }

  // Whether every state of `b` can merge into the same one of `a` (region
  // sums of as many regions), checked before any is merged.
  static void CheckMergeable(const std::string& where, const std::vector<LossState>& a,
                             const std::vector<LossState>& b) {
    for (size_t k = 0; k < a.size() && k < b.size(); ++k) {
      if (!a[k].sums.empty() && !b[k].sums.empty() && a[k].sums.size() != b[k].sums.size()) {
        throw py::value_error(where + ": the regions differ: the accumulator holds the sums of " +
                              std::to_string(a[k].sums.size()) + " region terms, the other " +
                              std::to_string(b[k].sums.size()) +
                              " (y_pred's shape without axis must stay the same)");
      }
    }
  }

  std::vector<LossState> Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return states_;
  }
  LossState Total() const {
    LossState t;
    for (const LossState& s : Snapshot()) t.Merge(s);
    return t;
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
  int64_t segments_ = -1;
  py::object terms_ = py::none();  // a fused combination's terms, or None
  mutable std::mutex mu_;
  std::vector<LossState> states_;  // one, or one per segment
  DType dtype_ = kNone;
};

}  // namespace

void BindAccumulator(py::module_& m) {
  py::class_<Accumulator>(m, "Accumulator")
      .def(py::init<const std::string&, const std::string&, py::dict, int64_t, py::object>(),
           py::arg("name"), py::arg("reduction") = "mean", py::arg("options") = py::dict(),
           py::arg("num_segments") = -1, py::arg("terms") = py::none())
      .def_property_readonly("terms", [](const Accumulator& a) { return a.terms(); })
      .def("update", &Accumulator::Update)
      .def("_merge_one", &Accumulator::Merge, py::arg("other"))
      .def("result", &Accumulator::Result)
      .def("state", &Accumulator::State)
      .def("_load_state", &Accumulator::LoadState, py::arg("state"))
      .def("reset", &Accumulator::Reset)
      .def_property("dtype", &Accumulator::DTypeName, &Accumulator::SetDType)
      .def_property_readonly("count", &Accumulator::Count)
      .def_property_readonly("counts", &Accumulator::Counts)
      .def_property_readonly("num_segments", &Accumulator::NumSegments)
      .def_property_readonly("numerator", &Accumulator::Numerator)
      .def_property_readonly("denominator", &Accumulator::Denominator)
      .def_property_readonly("numerators",
                             [](const Accumulator& a) { return a.SegmentSums(false); })
      .def_property_readonly("denominators",
                             [](const Accumulator& a) { return a.SegmentSums(true); })
      .def_property_readonly("name", &Accumulator::name)
      .def_property_readonly("reduction", &Accumulator::reduction)
      .def_property_readonly("options", &Accumulator::options)
      .def("_describe", &Accumulator::Describe);
  m.attr("STATE_WORDS") = LossState::kWords;
}

}  // namespace fastloss_py
