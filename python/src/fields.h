// fastloss._core: the visitors that read and describe an options struct's
// fields (Options::Fields, fastloss/options.hpp) for Python: the keyword
// parser (FieldSetter), the descriptions of loss_info and fl.NAME.options
// (FieldDescriber) and the parsed options as plain values for the GPU
// backend (FieldExporter). Shared by the front doors of the single-input
// losses (single.cc) and of the losses of several inputs (multi.cc).
#ifndef FASTLOSS_PYTHON_FIELDS_H_
#define FASTLOSS_PYTHON_FIELDS_H_

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arguments.h"
#include "fastloss/fastloss.hpp"

namespace fastloss_py {

// The parsed arguments other than the typed options.
struct Common {
  py::handle y_true, y_pred, weights, out;
  fastloss::Reduction reduction = fastloss::Reduction::kMean;
  py::handle aux;  // an array given for a real-or-array option
  const char* aux_name = nullptr;
  py::handle class_weights;
  py::handle groups;  // a groups array (the losses of several inputs: pairwise_ranking)
  // An accumulator's update: the call's sums are added here (CPU arrays
  // only); with segments, to state[s] for segment s (S states).
  fastloss::LossState* state = nullptr;
  // Per-segment values: CSR offsets, or sorted ids with their count.
  py::handle offsets, segment_ids, num_segments;
  // Per-row top-1 hits out (label rows: LabelCall::hits).
  py::handle hits;
};

// A call's segment keywords after parsing: None is absent; offsets= or
// segment_ids= with num_segments= (a TypeError naming them otherwise).
inline void CheckSegmentKeywords(const char* name, Common& c) {
  for (py::handle* h : {&c.offsets, &c.segment_ids, &c.num_segments}) {
    if (*h && h->is_none()) *h = py::handle();
  }
  if (c.offsets && (c.segment_ids || c.num_segments)) {
    throw py::type_error(std::string(name) +
                         "(): give offsets= or segment_ids= (with num_segments=), not both");
  }
  if (c.segment_ids && !c.num_segments) {
    throw py::type_error(std::string(name) + "(): segment_ids= needs num_segments=");
  }
  if (c.num_segments && !c.segment_ids) {
    throw py::type_error(std::string(name) + "(): num_segments= goes with segment_ids=");
  }
}

// The visitor that sets the field named `key` from the keyword value `v`.
struct FieldSetter {
  const char* loss;
  const std::string& key;
  py::handle v;
  Common& c;
  bool found = false;

  bool Is(const char* field) {
    if (found || key != field) return false;
    found = true;
    return true;
  }
  std::string Where(const char* field) const { return std::string(loss) + ": " + field; }

  void Real(const char* f, double& x, fastloss::Check, const char*) {
    if (Is(f)) x = RealValue(Where(f), v);
  }
  void Bool(const char* f, bool& x, const char*) {
    if (!Is(f)) return;
    if (PyBool_Check(v.ptr())) {
      x = v.ptr() == Py_True;
      return;
    }
    if (PyLong_Check(v.ptr())) {
      const long b = PyLong_AsLong(v.ptr());
      if (b == 0 || b == 1) {
        x = b == 1;
        return;
      }
      PyErr_Clear();
    }
    const std::string t = TypeName(v);
    if (t == "bool" || t == "bool_") {  // numpy.bool_ (named "bool" under NumPy 2)
      x = PyObject_IsTrue(v.ptr()) == 1;
      return;
    }
    throw py::type_error(Where(f) + " must be a bool, got " + t);
  }
  long long Integer(const char* f, long long limit) {
    if (PyBool_Check(v.ptr()) || PyFloat_Check(v.ptr())) {
      throw py::type_error(Where(f) + " must be an integer, got " + TypeName(v));
    }
    PyObject* index = PyNumber_Index(v.ptr());
    if (!index) {
      PyErr_Clear();
      throw py::type_error(Where(f) + " must be an integer, got " + TypeName(v));
    }
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (overflow || x >= limit || x < -limit) throw py::value_error(Where(f) + " is out of range");
    return x;
  }
  void Int(const char* f, int& x, const char*) {
    if (Is(f)) x = static_cast<int>(Integer(f, 1LL << 31));
  }
  void OptionalReal(const char* f, std::optional<double>& x, fastloss::Check, const char*) {
    if (!Is(f)) return;
    x.reset();
    if (!v.is_none()) x = RealValue(Where(f), v);
  }
  void OptionalInt(const char* f, std::optional<int64_t>& x, const char*) {
    if (!Is(f)) return;
    x.reset();
    if (!v.is_none()) x = Integer(f, 1LL << 53);
  }
  void Axes(const char* f, bool& all, std::vector<int>& axes, const char*) {
    if (!Is(f)) return;
    all = v.is_none();
    axes.clear();
    if (!all) axes = AxesOf(loss, f, v);
  }
  template <class E>
  void Choice(const char* f, E& x, const char* const* choices, const char*) {
    if (!Is(f)) return;
    if (PyUnicode_Check(v.ptr())) {
      Py_ssize_t len = 0;
      const char* s = PyUnicode_AsUTF8AndSize(v.ptr(), &len);
      if (s == nullptr) PyErr_Clear();
      for (int i = 0; s != nullptr && choices[i]; ++i) {
        if (std::strlen(choices[i]) == static_cast<size_t>(len) &&
            std::memcmp(choices[i], s, static_cast<size_t>(len)) == 0) {
          x = static_cast<E>(i);
          return;
        }
      }
    }
    std::string list;
    for (int i = 0; choices[i]; ++i) list += std::string(i ? ", " : "") + "'" + choices[i] + "'";
    throw py::value_error(Where(f) + " must be one of " + list + ", got " +
                          py::repr(v).cast<std::string>());
  }
  void RealOrArray(const char* f, double& x, fastloss::Check, const char*) {
    if (!Is(f) || v.is_none()) return;
    if (PyFloat_Check(v.ptr()) || (PyLong_Check(v.ptr()) && !PyBool_Check(v.ptr()))) {
      x = RealValue(Where(f), v);
      return;
    }
    c.aux = v;
    c.aux_name = f;
  }
  void ClassWeights(const char* f, const char*) {
    if (Is(f) && !v.is_none()) c.class_weights = v;
  }
  void Groups(const char* f, const char*) {
    if (Is(f) && !v.is_none()) c.groups = v;
  }
};

// The visitor that describes each field for Python (SpecInfo).
struct FieldDescriber {
  py::list& out;
  void Add(const char* f, const char* type, py::object def, const char* doc,
           py::object choices = py::none()) {
    py::dict d;
    d["name"] = f;
    d["type"] = type;
    d["default"] = std::move(def);
    d["doc"] = doc;
    d["choices"] = std::move(choices);
    out.append(d);
  }
  void Real(const char* f, double x, fastloss::Check, const char* doc) {
    Add(f, "float", py::float_(x), doc);
  }
  void Bool(const char* f, bool x, const char* doc) { Add(f, "bool", py::bool_(x), doc); }
  void Int(const char* f, int x, const char* doc) { Add(f, "int", py::int_(x), doc); }
  void OptionalReal(const char* f, const std::optional<double>& x, fastloss::Check,
                    const char* doc) {
    Add(f, "float or None", x ? py::object(py::float_(*x)) : py::none(), doc);
  }
  void OptionalInt(const char* f, const std::optional<int64_t>& x, const char* doc) {
    Add(f, "int or None", x ? py::object(py::int_(*x)) : py::none(), doc);
  }
  void Axes(const char* f, bool all, const std::vector<int>& axes, const char* doc) {
    py::object def = py::none();
    if (!all) def = py::tuple(py::cast(axes));
    Add(f, "None, int or tuple of ints", def, doc);
  }
  template <class E>
  void Choice(const char* f, E x, const char* const* choices, const char* doc) {
    py::list names;
    for (int i = 0; choices[i]; ++i) names.append(choices[i]);
    Add(f, "str", py::str(choices[static_cast<int>(x)]), doc, py::tuple(names));
  }
  void RealOrArray(const char* f, double x, fastloss::Check, const char* doc) {
    Add(f, "float or array_like", py::float_(x), doc);
  }
  void ClassWeights(const char* f, const char* doc) {
    Add(f, "array_like or None", py::none(), doc);
  }
  void Groups(const char* f, const char* doc) {
    Add(f, "array_like of int or None", py::none(), doc);
  }
};

// The visitor that exports the parsed options as plain Python values (for
// the GPU backend, which reads them with the same field list): floats,
// bools, ints, None, a tuple of axes or None, a choice's name.
struct FieldExporter {
  py::dict& out;
  void Real(const char* f, double x, fastloss::Check, const char*) { out[f] = x; }
  void Bool(const char* f, bool x, const char*) { out[f] = py::bool_(x); }
  void Int(const char* f, int x, const char*) { out[f] = x; }
  void OptionalReal(const char* f, const std::optional<double>& x, fastloss::Check,
                    const char*) {
    out[f] = x ? py::object(py::float_(*x)) : py::none();
  }
  void OptionalInt(const char* f, const std::optional<int64_t>& x, const char*) {
    out[f] = x ? py::object(py::int_(*x)) : py::none();
  }
  void Axes(const char* f, bool all, const std::vector<int>& axes, const char*) {
    out[f] = all ? py::object(py::none()) : py::object(py::tuple(py::cast(axes)));
  }
  template <class E>
  void Choice(const char* f, E x, const char* const* choices, const char*) {
    out[f] = choices[static_cast<int>(x)];
  }
  void RealOrArray(const char* f, double x, fastloss::Check, const char*) { out[f] = x; }
  void ClassWeights(const char*, const char*) {}
  void Groups(const char*, const char*) {}
};

// The descriptions of O's fields, with their defaults (a value-initialized O).
template <class O>
py::list DescribeOptions() {
  py::list out;
  const O defaults{};
  O::Fields(defaults, FieldDescriber{out});
  return out;
}

// The options struct from a dict of keyword values, each set as a call's
// keyword is (arrays given for array options go to c).
template <class O>
O OptionsFromDict(const char* loss, const py::dict& options, Common& c) {
  O o{};
  for (auto item : options) {
    const std::string key = KeyText(loss, item.first.ptr());
    FieldSetter setter{loss, key, item.second, c};
    O::Fields(o, setter);
    if (!setter.found) {
      throw py::type_error(std::string(loss) + "() got an unexpected keyword argument '" + key +
                           "'");
    }
  }
  return o;
}

// Checks a dict of options as a call checks them; returns every option's
// value, defaults filled in (arrays given for array options under their
// names): an accumulator's options.
template <class O>
py::dict ResolvedOptions(const char* loss, const py::dict& options) {
  Common c;
  const O o = OptionsFromDict<O>(loss, options, c);
  try {
    fastloss::CheckOptions(loss, o);
  } catch (const fastloss::Error& e) {
    throw py::value_error(e.what());
  }
  py::dict all;
  O::Fields(o, FieldExporter{all});
  if (c.aux) all[c.aux_name] = c.aux;
  if (c.class_weights) all["class_weights"] = c.class_weights;
  return all;
}

// The segments of a call: offsets= as given, or offsets made from sorted
// segment_ids= and num_segments= (errors name the argument).
// Whether a call's segment_ids= are sorted (non-decreasing); ids that are
// not a 1-D integer array count as sorted: the sorted path reports them.
inline bool SortedIds(const char* name, py::handle ids_obj) {
  Arg ids;
  LoadLabels(name, ids_obj, ids, "segment_ids");
  if (ids.rank != 1) return true;
  const View<const int64_t> v = ids.ToView<const int64_t>();
  for (int64_t i = 1; i < v.shape[0]; ++i) {
    if (v.data[i * v.strides[0]] < v.data[(i - 1) * v.strides[0]]) return false;
  }
  return true;
}

struct SegmentArgs {
  Arg ids;
  std::vector<int64_t> from_ids;
  View<const int64_t> offsets;
  int64_t S = 0;
};
inline void LoadSegments(const char* name, const Common& c, SegmentArgs& sa) {
  if (c.offsets) {
    LoadLabels(name, c.offsets, sa.ids, "offsets");
    sa.offsets = sa.ids.ToView<const int64_t>();
  } else {
    LoadLabels(name, c.segment_ids, sa.ids, "segment_ids");
    const std::string key = "num_segments";
    Common unused;
    FieldSetter reader{name, key, c.num_segments, unused};
    const int64_t S = reader.Integer("num_segments", 1LL << 62);
    if (S < 0) throw py::value_error(std::string(name) + ": num_segments must be >= 0");
    sa.from_ids.resize(static_cast<size_t>(S) + 1);
    try {
      fastloss::OffsetsFromSortedIds(sa.ids.ToView<const int64_t>(), S, sa.from_ids.data());
    } catch (const fastloss::Error& e) {
      throw py::value_error(std::string(name) + ": " + e.what());
    }
    sa.offsets = View<const int64_t>::Contiguous(sa.from_ids.data(), {sa.from_ids.size()});
  }
  if (sa.offsets.rank != 1 || sa.offsets.shape[0] < 1) {
    throw py::value_error(std::string(name) + ": offsets must be 1-D with S + 1 >= 1 entries");
  }
  sa.S = sa.offsets.shape[0] - 1;
}

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_FIELDS_H_
