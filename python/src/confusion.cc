// fastloss._core.confusion / confusion_score / confusion_info: the confusion
// counts (fastloss/confusion.hpp) and the scores made from them, for the
// Python objects of fastloss._confusion (fl.confusion_counts, fl.precision,
// ...). Arguments are parsed here, through the options' field lists.
#include "confusion.h"

#include <pybind11/numpy.h>

#include <cstring>
#include <string>
#include <vector>

#include "arguments.h"
#include "fastloss/confusion.hpp"
#include "fields.h"

namespace fastloss_py {
namespace {

using fastloss::ConfusionCounts;
using fastloss::ConfusionOptions;
using fastloss::ConfusionTask;
using fastloss::ScoreOptions;

// The scores (FASTLOSS_CONFUSION_SCORES): their Python names and kinds.
struct ScoreRow {
  const char* name;
  fastloss::Score score;
  bool takes_beta;
  const char* summary;
};
const ScoreRow kScoreRows[] = {
#define FASTLOSS_PY_SCORE_ROW(Kind, name, beta, summary) \
  {#name, fastloss::Score::Kind, beta, summary},
    FASTLOSS_CONFUSION_SCORES(FASTLOSS_PY_SCORE_ROW)
#undef FASTLOSS_PY_SCORE_ROW
};

const ScoreRow* FindScore(const std::string& name) {
  for (const ScoreRow& r : kScoreRows) {
    if (name == r.name) return &r;
  }
  return nullptr;
}

bool IsIntegerArray(py::handle obj, py::object* as_array) {
  py::object a = py::reinterpret_borrow<py::object>(obj);
  if (!PyArray_Check(obj.ptr()) && !PyObject_CheckBuffer(obj.ptr())) {
    a = py::module_::import("numpy").attr("asarray")(obj);
  }
  *as_array = a;
  if (!py::hasattr(a, "dtype")) return false;
  const std::string kind = py::str(a.attr("dtype").attr("kind"));
  return kind == "i" || kind == "u";
}

// Splits keyword options between the confusion options, the score options
// (when `score` is set) and the segment arguments; an unknown key is a
// TypeError naming the metric.
void ParseOptions(const char* name, const py::dict& kwargs, ConfusionOptions& o,
                  ScoreOptions* so, bool takes_beta, Common& c) {
  for (auto item : kwargs) {
    const std::string key = py::str(item.first);
    py::handle v = item.second;
    if (key == "offsets") {
      c.offsets = v.is_none() ? py::handle() : v;
      continue;
    }
    if (key == "segment_ids") {
      c.segment_ids = v.is_none() ? py::handle() : v;
      continue;
    }
    if (key == "num_segments") {
      c.num_segments = v.is_none() ? py::handle() : v;
      continue;
    }
    FieldSetter setter{name, key, v, c};
    ConfusionOptions::Fields(o, setter);
    if (!setter.found && so && (takes_beta || key != "beta")) ScoreOptions::Fields(*so, setter);
    if (!setter.found) {
      throw py::type_error(std::string(name) + "() got an unexpected keyword argument '" + key +
                           "'");
    }
  }
  if (c.segment_ids && !c.num_segments) {
    throw py::type_error(std::string(name) + ": segment_ids needs num_segments");
  }
  if (c.num_segments && !c.segment_ids) {
    throw py::type_error(std::string(name) + ": num_segments goes with segment_ids");
  }
  if (c.offsets && c.segment_ids) {
    throw py::type_error(std::string(name) + ": pass offsets or segment_ids, not both");
  }
}

template <typename T>
void Count(const char* name, const ConfusionOptions& o, const Arg& y_true, const Arg& y_pred,
           bool predicted_labels, const View<const int64_t>* offsets, ConfusionCounts& counts) {
  fastloss::ConfusionCall<T> call;
  if (o.task == ConfusionTask::kMulticlass) {
    call.labels = y_true.ToView<const int64_t>();
  } else {
    call.y_true = y_true.ToView<const T>();
  }
  if (predicted_labels) {
    call.predicted = y_pred.ToView<const int64_t>();
  } else {
    call.y_pred = y_pred.ToView<const T>();
  }
  if (offsets) call.offsets = *offsets;
  py::gil_scoped_release release;
  fastloss::Confusion<T>(call, o, counts);
}

// The counts as an int64 array: (C, 4), or (S, C, 4) with segments.
py::array_t<int64_t> CountsArray(const ConfusionCounts& counts, bool segmented) {
  std::vector<py::ssize_t> shape;
  if (segmented) shape.push_back(counts.segments);
  shape.push_back(counts.classes);
  shape.push_back(4);
  py::array_t<int64_t> a(shape);
  if (!counts.counts.empty()) {
    std::memcpy(a.mutable_data(), counts.counts.data(), counts.counts.size() * sizeof(int64_t));
  }
  return a;
}

// Counts from an int64 array of (C, 4) or (S, C, 4) (an accumulator's).
ConfusionCounts CountsOf(const char* name, py::handle obj) {
  const py::object kind = py::module_::import("numpy").attr("asarray")(obj).attr("dtype").attr("kind");
  const std::string k = py::str(kind);
  if (k != "i" && k != "u") {
    throw py::type_error(std::string(name) + ": counts must be integers, got dtype kind '" + k +
                         "'");
  }
  py::array_t<int64_t, py::array::c_style | py::array::forcecast> a =
      py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a || (a.ndim() != 2 && a.ndim() != 3) || a.shape(a.ndim() - 1) != 4) {
    throw py::value_error(std::string(name) + ": counts must be an int64 array of shape (C, 4) "
                          "or (S, C, 4)");
  }
  ConfusionCounts counts;
  counts.segments = a.ndim() == 3 ? a.shape(0) : 1;
  counts.classes = a.shape(a.ndim() - 2);
  counts.counts.assign(a.data(), a.data() + a.size());
  for (int64_t v : counts.counts) {
    if (v < 0) throw py::value_error(std::string(name) + ": counts must be >= 0");
  }
  return counts;
}

py::object Scores(const char* name, const ConfusionCounts& counts, bool segmented,
                  const ScoreRow& row, const ScoreOptions& so) {
  const bool per_class = so.average == fastloss::Average::kNone;
  std::vector<py::ssize_t> shape;
  if (segmented) shape.push_back(counts.segments);
  if (per_class) shape.push_back(counts.classes);
  py::array_t<double> out(shape);
  try {
    fastloss::ConfusionScore(counts, row.score, so, out.mutable_data());
  } catch (const fastloss::Error& e) {
    throw py::value_error(std::string(name) + ": " + e.what());
  }
  if (!segmented && !per_class) return py::module_::import("numpy").attr("float64")(out.data()[0]);
  return std::move(out);
}

// The score row named by `score` (None: the counts themselves); the keyword
// options parsed into o / so / c and checked (ValueError naming the option).
const ScoreRow* ParseChecked(const char* name, py::handle score, const py::dict& kwargs,
                             ConfusionOptions& o, ScoreOptions& so, Common& c) {
  const ScoreRow* row = nullptr;
  if (!score.is_none()) {
    row = FindScore(py::str(score));
    if (!row) throw py::value_error("unknown score '" + std::string(py::str(score)) + "'");
  }
  ParseOptions(name, kwargs, o, row ? &so : nullptr, row && row->takes_beta, c);
  try {
    fastloss::CheckOptions(name, o);
    if (row) fastloss::CheckOptions(name, so);
  } catch (const fastloss::Error& e) {
    throw py::value_error(e.what());
  }
  return row;
}

// The score options of `row` (none without a row; beta only where it takes
// one) as plain values.
py::dict ScoreOptionsOf(const ScoreRow* row, const ScoreOptions& so) {
  py::dict out;
  if (!row) return out;
  py::dict scores;
  ScoreOptions::Fields(so, FieldExporter{scores});
  for (auto item : scores) {
    if (row->takes_beta || std::string(py::str(item.first)) != "beta") out[item.first] = item.second;
  }
  return out;
}

// fl.NAME(y_true, y_pred, **options): the counts (score None) or a score.
py::object Confusion(const std::string& name_s, py::object score, py::handle y_true_obj,
                     py::handle y_pred_obj, const py::dict& kwargs) {
  const char* name = name_s.c_str();
  ConfusionOptions o;
  ScoreOptions so;
  Common c;
  const ScoreRow* row = ParseChecked(name, score, kwargs, o, so, c);
  if (IsDaskArray(y_true_obj.ptr()) || IsDaskArray(y_pred_obj.ptr()) ||
      (c.segment_ids && IsDaskArray(c.segment_ids.ptr())) ||
      (c.offsets && IsDaskArray(c.offsets.ptr()))) {
    // A lazy graph of per-chunk counts (fastloss.dask), with the options parsed here.
    py::dict count_options;
    ConfusionOptions::Fields(o, FieldExporter{count_options});
    const py::dict score_options = ScoreOptionsOf(row, so);
    py::dict segments;
    if (c.offsets) segments["offsets"] = py::reinterpret_borrow<py::object>(c.offsets);
    if (c.segment_ids) {
      segments["segment_ids"] = py::reinterpret_borrow<py::object>(c.segment_ids);
      segments["num_segments"] = py::reinterpret_borrow<py::object>(c.num_segments);
    }
    return py::module_::import("fastloss.dask")
        .attr("_confusion")(name_s, score, y_true_obj, y_pred_obj, count_options, score_options,
                            py::arg("segments") = segments);
  }
  Arg y_true, y_pred;
  py::object pred_array;
  const bool predicted_labels =
      o.task == ConfusionTask::kMulticlass && IsIntegerArray(y_pred_obj, &pred_array);
  Kind kind = Kind::kF64;
  if (predicted_labels) {
    LoadLabels(name, pred_array, y_pred, "y_pred");
  } else {
    LoadPrediction(name, y_pred_obj, y_pred);
    kind = y_pred.kind;
  }
  if (o.task == ConfusionTask::kMulticlass) {
    LoadLabels(name, y_true_obj, y_true, "y_true");
  } else {
    LoadInput(name, "y_true", y_true_obj, kind, y_true);
  }
  const bool segmented = c.offsets || c.segment_ids;
  SegmentArgs sa;
  if (segmented) LoadSegments(name, c, sa);
  ConfusionCounts counts;
  try {
    if (kind == Kind::kF32) {
      Count<float>(name, o, y_true, y_pred, predicted_labels, segmented ? &sa.offsets : nullptr,
                   counts);
    } else {
      Count<double>(name, o, y_true, y_pred, predicted_labels, segmented ? &sa.offsets : nullptr,
                    counts);
    }
  } catch (const fastloss::Error& e) {
    std::string msg = e.what();
    const std::string prefix = "confusion: ";
    if (msg.compare(0, prefix.size(), prefix) == 0) msg = std::string(name) + ": " + msg.substr(prefix.size());
    throw py::value_error(msg);
  }
  if (!row) return CountsArray(counts, segmented);
  return Scores(name, counts, segmented, *row, so);
}

// A score of given counts ((C, 4) or (S, C, 4)): an accumulator's result.
py::object ConfusionScoreOf(const std::string& name_s, const std::string& score, py::handle counts_obj,
                            const py::dict& kwargs) {
  const char* name = name_s.c_str();
  const ScoreRow* row = FindScore(score);
  if (!row) throw py::value_error("unknown score '" + score + "'");
  ScoreOptions so;
  Common c;
  for (auto item : kwargs) {
    const std::string key = py::str(item.first);
    FieldSetter setter{name, key, item.second, c};
    if (row->takes_beta || key != "beta") ScoreOptions::Fields(so, setter);
    if (!setter.found) {
      throw py::type_error(std::string(name) + "() got an unexpected keyword argument '" + key +
                           "'");
    }
  }
  try {
    fastloss::CheckOptions(name, so);
  } catch (const fastloss::Error& e) {
    throw py::value_error(e.what());
  }
  const ConfusionCounts counts = CountsOf(name, counts_obj);
  return Scores(name, counts, py::array(py::reinterpret_borrow<py::object>(counts_obj)).ndim() == 3,
                *row, so);
}

// The options of a metric (confusion options, and score options for a
// score) checked as a call checks them, every one with its value (defaults
// filled in): an accumulator's, checked when it is made and compared when
// accumulators merge. Segment arguments are not options here.
py::dict ResolvedOptionsOf(const std::string& name_s, py::object score, const py::dict& kwargs) {
  const char* name = name_s.c_str();
  for (auto item : kwargs) {
    const std::string key = py::str(item.first);
    if (key == "offsets" || key == "segment_ids" || key == "num_segments") {
      throw py::type_error(std::string(name) + ".accumulator() got an unexpected keyword "
                           "argument '" + key + "'");
    }
  }
  ConfusionOptions o;
  ScoreOptions so;
  Common c;
  const ScoreRow* row = ParseChecked(name, score, kwargs, o, so, c);
  py::dict all;
  ConfusionOptions::Fields(o, FieldExporter{all});
  for (auto item : ScoreOptionsOf(row, so)) all[item.first] = item.second;
  return all;
}

// The registry of the confusion metrics: the counts' options, the scores'
// options and each score's row.
py::dict Info() {
  py::dict d;
  d["options"] = DescribeOptions<ConfusionOptions>();
  d["score_options"] = DescribeOptions<ScoreOptions>();
  py::list scores;
  for (const ScoreRow& r : kScoreRows) {
    py::dict s;
    s["name"] = r.name;
    s["takes_beta"] = r.takes_beta;
    s["summary"] = r.summary;
    scores.append(s);
  }
  d["scores"] = scores;
  return d;
}

}  // namespace

void BindConfusion(py::module_& m) {
  m.def("confusion", &Confusion, py::arg("name"), py::arg("score"), py::arg("y_true"),
        py::arg("y_pred"), py::arg("options"),
        "Confusion counts (score None) or a score of them (fastloss._confusion).");
  m.def("confusion_score", &ConfusionScoreOf, py::arg("name"), py::arg("score"),
        py::arg("counts"), py::arg("options"), "A score of given confusion counts.");
  m.def("confusion_info", &Info, "The options and scores of the confusion metrics.");
  m.def("confusion_options", &ResolvedOptionsOf, py::arg("name"), py::arg("score"),
        py::arg("options"), "A metric's options, checked, with their defaults filled in.");
}

}  // namespace fastloss_py
