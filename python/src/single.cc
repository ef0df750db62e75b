// fastloss._core: the front door of the registry's losses (see single.h).
//
// Everything here is generated from the registry (fastloss/registry.hpp):
// each row gets one Spec whose entry function is Entry<Options, Driver,
// Runner>, a template over the row's options struct. Keywords are matched
// against the struct's field list (Options::Fields), written straight into a
// typed struct and checked by the C++ entry point (CheckOptions); nothing
// here knows a loss by name.
#include "single.h"

#include <pybind11/stl.h>

#include <cstring>
#include <functional>
#include <optional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "arguments.h"
#include "buffers.h"
#include "fields.h"
#include "runners.h"

namespace fastloss_py {

using fastloss::Call;
using fastloss::LabelCall;
using fastloss::Reduction;

const char* DriverName(Driver d) {
  switch (d) {
    case Driver::kElementwise: return "elementwise";
    case Driver::kDenseRows: return "dense_rows";
    case Driver::kLabelRows: return "label_rows";
    case Driver::kRegions: return "regions";
    case Driver::kBoxes: return "boxes";
  }
  return "";
}

struct Spec {
  const char* name;
  Driver driver;
  const char* aliases;  // space-separated
  const char* true_name;
  const char* pred_name;
  const char* summary;
  const char* formula;
  const char* notes;
  py::object (*entry)(const Spec&, Want, PyObject* const*, Py_ssize_t, PyObject*,
                      fastloss::LossState*);
  // With CUDA arrays (drivers the GPU backend has; nullptr for the others).
  py::object (*gpu_entry)(const Spec&, Want, PyObject* const*, Py_ssize_t, PyObject*);
  // With Dask arrays (fastloss.dask).
  py::object (*dask_entry)(const Spec&, Want, PyObject* const*, Py_ssize_t, PyObject*);
  // Checks a dict of options as a call checks them (an accumulator's);
  // returns every option's value, defaults filled in.
  py::dict (*check_options)(const Spec&, const py::dict&);
  py::list (*options)();  // the field descriptions (SpecInfo)
  void (*add)(fastloss::ElementwiseCombination&, const Spec&, double, const py::dict&);
  bool metric;  // FASTLOSS_METRIC: no gradient, no combinations
  // Region rows: the value of a state of region sums (RegionResult).
  double (*region_result)(const Spec&, const py::dict&, const fastloss::LossState&, Reduction);
};

namespace {

// Parses positional and keyword arguments; `set_option(key, value)` returns
// whether `key` names an option of the loss.
template <class SetOption>
Common ParseArguments(const Spec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                      PyObject* kwnames, SetOption&& set_option, Common c = {}) {
  const char* name = spec.name;
  if (nargs > 2) {
    throw py::type_error(std::string(name) + "() takes 2 positional arguments (" +
                         spec.true_name + ", " + spec.pred_name + ") but " +
                         std::to_string(nargs) + " were given");
  }
  if (nargs > 0) c.y_true = args[0];
  if (nargs > 1) c.y_pred = args[1];
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t kw = 0; kw < nkw; ++kw) {
    const std::string key = KeyText(name, PyTuple_GET_ITEM(kwnames, kw));
    py::handle v(args[nargs + kw]);
    if (key == "reduction") {
      c.reduction = ReductionOf(name, v);
    } else if (key == "weights") {
      c.weights = v;
    } else if (key == "out" && want != Want::kValue) {
      c.out = v;
    } else if (key == "offsets") {
      c.offsets = v;
    } else if (key == "segment_ids") {
      c.segment_ids = v;
    } else if (key == "num_segments") {
      c.num_segments = v;
    } else if (key == "hits" && spec.driver == Driver::kLabelRows && !spec.metric) {
      c.hits = v;
    } else if (key == spec.true_name || key == spec.pred_name) {
      const bool is_true = key == spec.true_name;
      py::handle& slot = is_true ? c.y_true : c.y_pred;
      if (slot) {
        throw py::type_error(std::string(name) + "() got multiple values for argument '" + key +
                             "'");
      }
      slot = v;
    } else if (!set_option(key, v, c)) {
      throw py::type_error(std::string(name) + "() got an unexpected keyword argument '" + key +
                           "'");
    }
  }
  if (!c.y_true || !c.y_pred) {
    throw py::type_error(std::string(name) + "() missing required argument '" +
                         (!c.y_true ? spec.true_name : spec.pred_name) + "'");
  }
  if (c.weights && c.weights.is_none()) c.weights = py::handle();
  if (c.out && c.out.is_none()) c.out = py::handle();
  if (c.hits && c.hits.is_none()) c.hits = py::handle();
  CheckSegmentKeywords(name, c);
  return c;
}

// The per-item losses' shape of y_pred (LossesShape, runners.h).
template <Driver D, class O>
int LossesShape(const Arg& y_pred, const O& o, int64_t* shape) {
  return fastloss_py::LossesShape<D>(y_pred.rank, y_pred.shape, o, shape);
}

// A call with offsets= or segment_ids=: one reduced value per segment (an
// array of y_pred's dtype), each segment the loss's own call on its items
// (fastloss::Segmented): elements for elementwise losses, rows (axis 0)
// for the others.
template <Driver D, class Runner, typename T, class CallT, class O>
py::object EvaluateSegments(const Spec& spec, Want want, const Common& c, const O& o,
                            const CallT& call, const Arg& y_pred, const View<const T>* aux,
                            const py::object& grad) {
  const char* name = spec.name;
  if (c.reduction == Reduction::kNone) {
    throw py::value_error(std::string(name) +
                          ": segments need reduction 'mean' or 'sum', not 'none'");
  }
  SegmentArgs sa;
  LoadSegments(name, c, sa);
  if (c.segment_ids) {
    const int64_t n_items = D == Driver::kElementwise ? y_pred.ToView<const T>().size()
                            : y_pred.rank > 0         ? y_pred.shape[0]
                                                      : 1;
    if (sa.ids.rank == 1 && sa.ids.shape[0] != n_items) {
      throw py::value_error(std::string(name) + ": segment_ids has " +
                            std::to_string(sa.ids.shape[0]) + " ids for " +
                            std::to_string(n_items) +
                            (D == Driver::kElementwise ? " elements" : " items along axis 0"));
    }
  }
  const View<const int64_t>& offsets = sa.offsets;
  const int64_t S = sa.S;
  View<T> values_view;
  py::object values;
  {
    std::optional<View<T>> vv;
    const int64_t shape[1] = {S};
    values = NewArray<T>(1, shape, vv);
    values_view = *vv;
  }
  int64_t lshape[fastloss::kMaxRank];
  const int loss_rank = LossesShape<D>(y_pred, o, lshape);
  const std::function<double(const CallT&)> run = [&](const CallT& sc) {
    return Runner::template Run<T>(sc, o, aux);
  };
  CallT unstated = call;
  unstated.state = nullptr;  // c.state: one state per segment (an accumulator's)
  if constexpr (D == Driver::kElementwise) {
    // One pass in the elementwise driver (Call::segments).
    fastloss::SegmentOutputs<T> out;
    out.offsets = offsets;
    out.values = values_view.data;
    out.states = c.state;
    unstated.segments = &out;
    py::gil_scoped_release release;
    run(unstated);
  } else {
    py::gil_scoped_release release;
    fastloss::Segmented<T, CallT>(name, unstated, offsets, values_view.data, false, loss_rank,
                                  run, c.state);
  }
  switch (want) {
    case Want::kValue: return values;
    case Want::kGrad: return grad;
    case Want::kBoth: return py::make_tuple(values, grad);
  }
  return values;
}

template <class O, Driver D, class Runner, typename T>
py::object Evaluate(const Spec& spec, Want want, const Common& c, const O& o, const Arg& y_true,
                    const Arg& y_pred, const Arg& weights, const Arg& aux, const Arg& class_weights,
                    Kind kind);

// A call with segment_ids= in any order: the items are grouped by segment
// first -- a stable argsort of the ids and a gather of every per-item input
// (weights broadcast to the items first), so each segment keeps its items in
// their order and its value is the loss's own call on them, bit for bit --
// then the sorted call runs on the gathered arrays and the gradient is
// scattered back to the items' places (in `out=` when given). Items are the
// elements (flat, C order) of an elementwise loss, axis 0 of the others.
template <class O, Driver D, class Runner, typename T>
py::object EvaluateGrouped(const Spec& spec, Want want, const Common& c, const O& o,
                           const Arg& y_true, const Arg& y_pred, const Arg& weights,
                           const Arg& aux, const Arg& class_weights, Kind kind) {
  using namespace pybind11::literals;  // NOLINT(build/namespaces)
  const char* name = spec.name;
  if (c.reduction == Reduction::kNone) {
    throw py::value_error(std::string(name) +
                          ": segments need reduction 'mean' or 'sum', not 'none'");
  }
  py::module_ np = py::module_::import("numpy");
  constexpr bool kElements = D == Driver::kElementwise;
  if (!kElements && y_pred.rank == 0) {
    throw py::value_error(std::string(name) + ": segments split axis 0 of " + spec.pred_name +
                          ", which has none");
  }
  int64_t n_items = 1;
  if (kElements) {
    for (int k = 0; k < y_pred.rank; ++k) n_items *= y_pred.shape[k];
  } else {
    n_items = y_pred.shape[0];
  }
  Arg ids;
  LoadLabels(name, c.segment_ids, ids, "segment_ids");
  if (ids.shape[0] != n_items) {
    throw py::value_error(std::string(name) + ": segment_ids has " + std::to_string(ids.shape[0]) +
                          " ids for " + std::to_string(n_items) +
                          (kElements ? " elements" : " items along axis 0"));
  }
  py::object py_pred = y_pred.owner;
  if (kElements && ShapeOf(y_true) != ShapeOf(y_pred)) {
    throw py::value_error(std::string(name) + ": " + spec.true_name + " has shape " +
                          ShapeOf(y_true) + " and " + spec.pred_name + " " + ShapeOf(y_pred) +
                          " (no broadcasting)");
  }
  Arg out;
  if (want != Want::kValue && c.out) LoadOut(name, c.out, y_pred, kind, out);
  const py::object ids_array = np.attr("asarray")(ids.owner);
  const py::object perm = np.attr("argsort")(ids_array, "kind"_a = "stable");
  const auto gather = [&](const py::object& a) -> py::object {
    if (kElements) return np.attr("ravel")(a).attr("__getitem__")(perm);
    return np.attr("take")(a, perm, "axis"_a = 0);
  };
  // Per-item arrays broadcast to the items' shape first (weights: to the
  // per-item losses; an elementwise loss's array option: to y_pred).
  const auto broadcast = [&](const Arg& a, int rank, const int64_t* shape,
                             const char* arg) -> py::object {
    py::tuple t(rank);
    for (int k = 0; k < rank; ++k) t[k] = shape[k];
    try {
      return np.attr("broadcast_to")(a.owner, t);
    } catch (const py::error_already_set&) {
      throw py::value_error(std::string(name) + ": " + arg + " of shape " + ShapeOf(a) +
                            " does not broadcast to the items' shape");
    }
  };
  int64_t lshape[fastloss::kMaxRank];
  const int lrank = LossesShape<D>(y_pred, o, lshape);
  Common g = c;
  g.out = py::handle();
  const py::object yt_g = gather(y_true.owner), yp_g = gather(py_pred);
  const py::object sorted_ids = ids_array.attr("__getitem__")(perm);
  g.y_true = yt_g;
  g.y_pred = yp_g;
  g.segment_ids = sorted_ids;
  py::object w_g, aux_g;
  if (c.weights) {
    w_g = gather(broadcast(weights, lrank, lshape, "weights"));
    g.weights = w_g;
  }
  if (c.aux) {
    if (!kElements) {
      throw py::type_error(std::string(name) + ": unsorted segment_ids with an array " +
                           c.aux_name + "; sort the items by segment or pass offsets=");
    }
    aux_g = gather(broadcast(aux, y_pred.rank, y_pred.shape, c.aux_name));
    g.aux = aux_g;
  }
  Arg yt2, yp2, w2, aux2;
  LoadPrediction(name, yp_g, yp2, spec.pred_name);
  if constexpr (D == Driver::kLabelRows) {
    LoadLabels(name, yt_g, yt2, spec.true_name);
  } else {
    LoadInput(name, spec.true_name, yt_g, kind, yt2);
  }
  if (c.weights) LoadInput(name, "weights", w_g, kind, w2);
  if (c.aux) LoadInput(name, c.aux_name, aux_g, kind, aux2);
  py::object r = Evaluate<O, D, Runner, T>(spec, want, g, o, yt2, yp2, w2, aux2, class_weights,
                                           kind);
  if (want == Want::kValue) return r;
  const py::object grad_g = want == Want::kGrad ? r : py::object(r.attr("__getitem__")(1));
  py::object grad = c.out ? py::reinterpret_borrow<py::object>(c.out)
                          : np.attr("empty_like")(py_pred);
  if (kElements) {
    grad.attr("flat").attr("__setitem__")(perm, np.attr("ravel")(grad_g));
  } else {
    grad.attr("__setitem__")(perm, grad_g);
  }
  if (want == Want::kGrad) return grad;
  return py::make_tuple(r.attr("__getitem__")(0), grad);
}

template <class O, Driver D, class Runner, typename T>
py::object Evaluate(const Spec& spec, Want want, const Common& c, const O& o, const Arg& y_true,
                    const Arg& y_pred, const Arg& weights, const Arg& aux, const Arg& class_weights,
                    Kind kind) {
  if (c.segment_ids && !c.offsets && !SortedIds(spec.name, c.segment_ids)) {
    return EvaluateGrouped<O, D, Runner, T>(spec, want, c, o, y_true, y_pred, weights, aux,
                                            class_weights, kind);
  }
  CallOf<D, T> call;
  if constexpr (D == Driver::kLabelRows) {
    call.labels = y_true.ToView<const int64_t>();
  } else {
    call.y_true = y_true.ToView<const T>();
  }
  if (c.class_weights) call.class_weights = class_weights.ToView<const T>();
  call.y_pred = y_pred.ToView<const T>();
  call.reduction = c.reduction;
  call.state = c.state;
  if (c.weights) {
    call.weights = weights.ToView<const T>();
  }
  Arg hits;
  if constexpr (D == Driver::kLabelRows) {
    if (c.hits) {
      if (c.offsets || c.segment_ids) {
        throw py::type_error(std::string(spec.name) + ": hits= is not taken with segments");
      }
      int64_t shape[fastloss::kMaxRank];
      const int rank = LossesShape<D>(y_pred, o, shape);
      LoadOutput(spec.name, "hits", c.hits, kind, "y_pred", rank, shape,
                 "the rows' shape (y_pred's shape without axis)", hits);
      call.hits = hits.ToView<T>();
    }
  }
  py::object losses, grad;
  if (c.reduction == Reduction::kNone && want != Want::kGrad) {
    int64_t shape[fastloss::kMaxRank];
    const int rank = LossesShape<D>(y_pred, o, shape);
    losses = NewArray<T>(rank, shape, call.losses);
  }
  Arg out;
  if (want != Want::kValue) {
    if (c.out) {
      LoadOut(spec.name, c.out, y_pred, kind, out);
      call.grad = out.ToView<T>();
      grad = py::reinterpret_borrow<py::object>(c.out);
    } else {
      grad = NewArray<T>(y_pred, call.grad);
    }
  }
  View<const T> aux_view;
  if (c.aux) aux_view = aux.ToView<const T>();
  Arg aux_full;
  if (c.aux && (c.offsets || c.segment_ids) && D == Driver::kElementwise) {
    // Segments slice an array option with the elements: y_pred's shape, C order.
    py::module_ np = py::module_::import("numpy");
    py::tuple shape(y_pred.rank);
    for (int k = 0; k < y_pred.rank; ++k) shape[k] = y_pred.shape[k];
    py::object full;
    try {
      full = np.attr("ascontiguousarray")(np.attr("broadcast_to")(aux.owner, shape));
    } catch (const py::error_already_set&) {
      throw py::value_error(std::string(spec.name) + ": " + c.aux_name + " of shape " +
                            ShapeOf(aux) + " cannot be broadcast to y_pred's shape " +
                            ShapeOf(y_pred));
    }
    LoadInput(spec.name, c.aux_name, full, kind, aux_full);
    aux_view = aux_full.ToView<const T>();
  }
  if (c.offsets || c.segment_ids) {
    return EvaluateSegments<D, Runner, T>(spec, want, c, o, call, y_pred, c.aux ? &aux_view : nullptr,
                                           grad);
  }
  double value;
  {
    py::gil_scoped_release release;
    value = Runner::template Run<T>(call, o, c.aux ? &aux_view : nullptr);
  }
  py::object v = c.reduction == Reduction::kNone ? losses : Scalar(value, kind);
  switch (want) {
    case Want::kValue: return v;
    case Want::kGrad: return grad;
    case Want::kBoth: return py::make_tuple(v, grad);
  }
  return v;
}

template <class O, Driver D, class Runner>
py::object Entry(const Spec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                 PyObject* kwnames, fastloss::LossState* state) {
  O o{};
  Common with_state;
  with_state.state = state;
  const Common c = ParseArguments(
      spec, want, args, nargs, kwnames,
      [&](const std::string& key, py::handle v, Common& common) {
        FieldSetter setter{spec.name, key, v, common};
        O::Fields(o, setter);
        return setter.found;
      },
      with_state);
  Arg y_pred, y_true, weights, aux, class_weights;
  LoadPrediction(spec.name, c.y_pred, y_pred, spec.pred_name);
  const Kind kind = y_pred.kind;
  if constexpr (D == Driver::kLabelRows) {
    LoadLabels(spec.name, c.y_true, y_true, spec.true_name);
  } else {
    LoadInput(spec.name, spec.true_name, c.y_true, kind, y_true);
  }
  if (c.weights) LoadInput(spec.name, "weights", c.weights, kind, weights);
  if (c.aux) LoadInput(spec.name, c.aux_name, c.aux, kind, aux);
  if (c.class_weights) LoadInput(spec.name, "class_weights", c.class_weights, kind, class_weights);
  if (kind == Kind::kF32) {
    return Evaluate<O, D, Runner, float>(spec, want, c, o, y_true, y_pred, weights, aux,
                                         class_weights, kind);
  }
  return Evaluate<O, D, Runner, double>(spec, want, c, o, y_true, y_pred, weights, aux,
                                        class_weights, kind);
}

// The parse of a call handed to a Python backend (CUDA arrays, Dask
// arrays): the same parse and option checks as a host call, the options as
// plain values (FieldExporter); `extra` names one more keyword it takes
// (`stream` for the GPU), stored in *extra_value.
template <class O>
Common ParsePlain(const Spec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                  PyObject* kwnames, const char* extra, py::handle* extra_value,
                  py::dict* options) {
  O o{};
  const Common c = ParseArguments(
      spec, want, args, nargs, kwnames, [&](const std::string& key, py::handle v, Common& common) {
        if (extra && key == extra) {
          *extra_value = v;
          return true;
        }
        FieldSetter setter{spec.name, key, v, common};
        O::Fields(o, setter);
        return setter.found;
      });
  try {
    fastloss::CheckOptions(spec.name, o);
  } catch (const fastloss::Error& e) {
    throw py::value_error(e.what());
  }
  O::Fields(o, FieldExporter{*options});
  return c;
}

py::object Handle(py::handle h) {
  return h ? py::reinterpret_borrow<py::object>(h) : py::none();
}

const char* const kReductionNames[] = {"mean", "sum", "none"};

// A call with CUDA arrays: fastloss.cuda._run (array interop, allocation,
// streams) with the parsed options; the extension fastloss._cuda reads them
// back through the same field list.
template <class O, Driver D, class Runner>
py::object GpuEntry(const Spec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                    PyObject* kwnames) {
  py::handle stream;
  py::dict options;
  const Common c = ParsePlain<O>(spec, want, args, nargs, kwnames, "stream", &stream, &options);
  if (c.class_weights) {
    throw py::type_error(std::string(spec.name) + ": class_weights is not supported on the GPU");
  }
  py::object run = py::module_::import("fastloss.cuda").attr("_run");
  return run(spec.name, static_cast<int>(want), Handle(c.y_true), Handle(c.y_pred),
             kReductionNames[static_cast<int>(c.reduction)], Handle(c.weights), Handle(c.out),
             options, Handle(c.aux), Handle(stream));
}

// A call with Dask arrays: fastloss.dask._run builds the lazy graph (blocks
// of accumulator states merged by integer addition) with the parsed options;
// array options (an array pos_weight, class_weights) travel among them.
template <class O>
py::object DaskEntry(const Spec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                     PyObject* kwnames) {
  py::dict options;
  const Common c = ParsePlain<O>(spec, want, args, nargs, kwnames, nullptr, nullptr, &options);
  if (c.out) {
    throw py::type_error(std::string(spec.name) +
                         ": out= is not supported with Dask arrays (the gradient is a lazy array)");
  }
  if (c.hits) {
    throw py::type_error(std::string(spec.name) + ": hits= is not supported with Dask arrays");
  }
  if (c.aux) options[c.aux_name] = Handle(c.aux);
  if (c.class_weights) options["class_weights"] = Handle(c.class_weights);
  py::object run = py::module_::import("fastloss.dask").attr("_run");
  py::dict segments;  // offsets= or segment_ids= with num_segments= (checked in ParseArguments)
  if (c.offsets) segments["offsets"] = Handle(c.offsets);
  if (c.segment_ids) {
    segments["segment_ids"] = Handle(c.segment_ids);
    segments["num_segments"] = Handle(c.num_segments);
  }
  return run(spec.name, static_cast<int>(want), Handle(c.y_true), Handle(c.y_pred),
             kReductionNames[static_cast<int>(c.reduction)], Handle(c.weights), options,
             py::arg("segments") = segments);
}

template <class O>
py::dict CheckOptionsDict(const Spec& spec, const py::dict& options) {
  return ResolvedOptions<O>(spec.name, options);
}

// Adds a term to a fused combination (elementwise rows).
template <class O>
void AddFused(fastloss::ElementwiseCombination& comb, const Spec& spec, double coef,
              const py::dict& options) {
  Common c;
  const O o = OptionsFromDict<O>(spec.name, options, c);
  if (c.aux || c.class_weights) {
    throw py::value_error(std::string("combined: ") + spec.name +
                          " with an array option cannot be fused");
  }
  comb.Add(coef, o);
}

template <class O, Driver D>
constexpr auto AddFor() {
  using Fn = void (*)(fastloss::ElementwiseCombination&, const Spec&, double, const py::dict&);
  if constexpr (D == Driver::kElementwise && !fastloss::IsMetric<O>::value) {
    return static_cast<Fn>(&AddFused<O>);
  } else {
    return static_cast<Fn>(nullptr);
  }
}

template <class O, Driver D, class Runner>
constexpr auto GpuEntryFor() {
  using Fn = py::object (*)(const Spec&, Want, PyObject* const*, Py_ssize_t, PyObject*);
  if constexpr (D == Driver::kElementwise || D == Driver::kRegions || D == Driver::kBoxes) {
    return static_cast<Fn>(&GpuEntry<O, D, Runner>);
  } else {
    return static_cast<Fn>(nullptr);
  }
}

template <class O>
double RegionResultOf(const Spec& spec, const py::dict& options, const fastloss::LossState& state,
                      Reduction reduction) {
  Common c;
  const O o = OptionsFromDict<O>(spec.name, options, c);
  return fastloss::RegionResult(state, o, reduction);
}

template <class O, Driver D>
constexpr auto RegionResultFor() {
  using Fn = double (*)(const Spec&, const py::dict&, const fastloss::LossState&, Reduction);
  if constexpr (D == Driver::kRegions) {
    return static_cast<Fn>(&RegionResultOf<O>);
  } else {
    return static_cast<Fn>(nullptr);
  }
}

#define FASTLOSS_PY_SPEC(Name, name, driver, aliases, true_name, pred_name)                   \
  const Spec k##Name##Spec{                                                                   \
      #name,                                                                                  \
      FASTLOSS_PY_DRIVER_##driver,                                                            \
      aliases,                                                                                \
      #true_name,                                                                             \
      #pred_name,                                                                             \
      fastloss::Name##Options::kSummary,                                                      \
      fastloss::Name##Options::kFormula,                                                      \
      fastloss::Name##Options::kNotes,                                                        \
      &Entry<fastloss::Name##Options, FASTLOSS_PY_DRIVER_##driver, Run##Name>,                \
      GpuEntryFor<fastloss::Name##Options, FASTLOSS_PY_DRIVER_##driver, Run##Name>(),        \
      &DaskEntry<fastloss::Name##Options>,                                                    \
      &CheckOptionsDict<fastloss::Name##Options>,                                             \
      &DescribeOptions<fastloss::Name##Options>,                                              \
      AddFor<fastloss::Name##Options, FASTLOSS_PY_DRIVER_##driver>(),                        \
      fastloss::IsMetric<fastloss::Name##Options>::value,                                     \
      RegionResultFor<fastloss::Name##Options, FASTLOSS_PY_DRIVER_##driver>()};
FASTLOSS_LOSSES(FASTLOSS_PY_SPEC)
#undef FASTLOSS_PY_SPEC

}  // namespace

const std::vector<const Spec*>& Specs() {
#define FASTLOSS_PY_SPEC_PTR(Name, ...) &k##Name##Spec,
  static const std::vector<const Spec*> specs{FASTLOSS_LOSSES(FASTLOSS_PY_SPEC_PTR)};
#undef FASTLOSS_PY_SPEC_PTR
  return specs;
}

const Spec* FindSpec(const std::string& name) {
  for (const Spec* s : Specs()) {
    if (name == s->name) return s;
  }
  return nullptr;
}

const char* SpecName(const Spec& spec) { return spec.name; }

bool SpecFusable(const Spec& spec) { return spec.add != nullptr; }

bool SpecHasRegionState(const Spec& spec) { return spec.region_result != nullptr; }

py::dict SpecInfo(const Spec& spec) {
  py::dict d;
  d["name"] = spec.name;
  d["driver"] = DriverName(spec.driver);
  py::list aliases;
  std::string all = spec.aliases, word;
  for (size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || all[i] == ' ') {
      if (!word.empty()) aliases.append(word);
      word.clear();
    } else {
      word += all[i];
    }
  }
  d["aliases"] = py::tuple(aliases);
  d["true_name"] = spec.true_name;
  d["pred_name"] = spec.pred_name;
  d["summary"] = spec.summary;
  d["formula"] = spec.formula;
  d["notes"] = spec.notes;
  d["options"] = spec.options();
  d["fusable"] = spec.add != nullptr;
  d["gpu"] = spec.gpu_entry != nullptr;
  d["metric"] = spec.metric;
  return d;
}

void AddTerm(fastloss::ElementwiseCombination& combination, const std::string& name, double coef,
             const py::dict& options) {
  const Spec* spec = FindSpec(name);
  if (!spec || !spec->add) throw py::value_error("combined: " + name + " cannot be fused");
  spec->add(combination, *spec, coef, options);
}

// --- GPU arrays: handed to fastloss.cuda (the fastloss._cuda extension). ---
namespace {

// y_true / y_pred of the call, positional or by keyword (null if absent).
void FindInputs(const Spec& spec, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
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

// The dtype of a float16 or bfloat16 (ml_dtypes) NumPy array, else None.
py::object HalfDtype(PyObject* obj) {
  if (obj && PyArray_Check(obj)) {
    // An ndarray answers from its descriptor: no attribute lookups on the
    // common path (float32/float64), a name only for user dtypes (bfloat16).
    PyArray_Descr* descr = PyArray_DESCR(reinterpret_cast<PyArrayObject*>(obj));
    if (descr->type_num == NPY_HALF) {
      return py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(descr));
    }
    if (descr->type_num < NPY_USERDEF) return py::none();
  }
  if (!obj || !PyObject_HasAttrString(obj, "dtype") || !PyObject_HasAttrString(obj, "shape")) {
    return py::none();
  }
  py::object dt = py::reinterpret_borrow<py::object>(obj).attr("dtype");
  if (!py::hasattr(dt, "name")) return py::none();
  const std::string name = py::str(dt.attr("name"));
  return name == "float16" || name == "bfloat16" ? dt : py::none();
}

// A call whose y_pred is float16 or bfloat16 (NumPy has no arithmetic for
// the kernels to use): y_pred and every other argument of that dtype are
// converted to float32 once, the call runs in float32 with the same
// drivers, and its value, losses and gradient come back in the input's
// dtype (the value reduced in float64, as always, then rounded); an out=
// of that dtype receives the gradient.
py::object HalfCall(const Spec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                    PyObject* kwnames, PyObject* y_pred, const py::object& half) {
  using namespace pybind11::literals;  // NOLINT(build/namespaces)
  py::module_ np = py::module_::import("numpy");
  const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  std::vector<PyObject*> a(args, args + nargs + nkw);
  std::vector<py::object> keep;
  py::object out;
  for (Py_ssize_t k = 0; k < nargs + nkw; ++k) {
    if (k >= nargs && want != Want::kValue && KeyIs(PyTuple_GET_ITEM(kwnames, k - nargs), "out") &&
        args[k] != Py_None) {
      out = py::reinterpret_borrow<py::object>(args[k]);
      a[k] = Py_None;
      continue;
    }
    if (!HalfDtype(args[k]).is_none()) {
      // asanyarray: a masked array stays one, for the loader to refuse.
      keep.push_back(np.attr("asanyarray")(py::handle(args[k]), "dtype"_a = "float32"));
      a[k] = keep.back().ptr();
    }
  }
  if (out) {
    // Checked before anything runs: an array of y_pred's dtype and shape.
    const py::object pred_shape = py::reinterpret_borrow<py::object>(y_pred).attr("shape");
    if (!py::hasattr(out, "dtype") || !py::hasattr(out, "flags") ||
        !py::object(out.attr("dtype")).equal(half)) {
      throw py::type_error(std::string(spec.name) + ": out must be an array of y_pred's dtype (" +
                           std::string(py::str(half)) + "), got " +
                           std::string(py::str(py::type::of(out))));
    }
    if (!py::object(out.attr("shape")).equal(pred_shape)) {
      throw py::value_error(std::string(spec.name) + ": out has shape " +
                            std::string(py::str(out.attr("shape"))) + ", y_pred has shape " +
                            std::string(py::str(pred_shape)));
    }
    if (!out.attr("flags").attr("writeable").cast<bool>()) {
      throw py::value_error(std::string(spec.name) + ": out is read-only");
    }
  }
  py::object r = spec.entry(spec, want, a.data(), nargs, kwnames, nullptr);
  const auto back = [&](const py::object& x) -> py::object {
    if (py::hasattr(x, "astype")) return x.attr("astype")(half);  // arrays, NumPy scalars
    return half.attr("type")(x);
  };
  const auto grad_back = [&](const py::object& g) -> py::object {
    if (!out) return back(g);
    np.attr("copyto")(out, g, "casting"_a = "same_kind");  // checks out's shape and dtype
    return out;
  };
  switch (want) {
    case Want::kValue: return back(r);
    case Want::kGrad: return grad_back(r);
    case Want::kBoth: {
      py::tuple t = r;
      return py::make_tuple(back(t[0]), grad_back(t[1]));
    }
  }
  return r;
}

}  // namespace

py::object Dispatch(const Spec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                    PyObject* kwnames) {
  if (spec.metric && want != Want::kValue) {
    throw py::type_error(std::string(spec.name) +
                         " is a metric (piecewise constant): it has no gradient; call "
                         "fastloss." + spec.name + "(y_true, y_pred) for its value");
  }
  {
    PyObject *t = nullptr, *p = nullptr;
    FindInputs(spec, args, nargs, kwnames, &t, &p);
    if (IsDeviceArray(p) || IsDeviceArray(t)) {
      if (!spec.gpu_entry) {
        std::string on_gpu;
        for (const Spec* s : Specs()) {
          if (s->gpu_entry) on_gpu += std::string(on_gpu.empty() ? "" : ", ") + s->name;
        }
        throw py::type_error(std::string(spec.name) +
                             ": CUDA arrays are not supported by this loss yet (on the GPU: " +
                             on_gpu + "); pass NumPy arrays");
      }
      return spec.gpu_entry(spec, want, args, nargs, kwnames);
    }
    // Any Dask argument (inputs, weights, an array option): the lazy path.
    const Py_ssize_t nall = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    for (Py_ssize_t k = 0; k < nall; ++k) {
      if (IsDaskArray(args[k])) return spec.dask_entry(spec, want, args, nargs, kwnames);
    }
    const py::object half = HalfDtype(p);
    if (!half.is_none()) return HalfCall(spec, want, args, nargs, kwnames, p, half);
  }
  return spec.entry(spec, want, args, nargs, kwnames, nullptr);
}

py::object Accumulate(const Spec& spec, PyObject* const* args, Py_ssize_t nargs,
                      PyObject* kwnames, fastloss::LossState* state) {
  PyObject *t = nullptr, *p = nullptr;
  FindInputs(spec, args, nargs, kwnames, &t, &p);
  if (IsDeviceArray(p) || IsDeviceArray(t)) {
    throw py::type_error(std::string(spec.name) +
                         ": accumulators take host arrays (NumPy, buffers), not CUDA arrays");
  }
  if (!HalfDtype(p).is_none()) {
    // float16 / bfloat16 batches add their float32 sums (the state is exact either way).
    const Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    std::vector<PyObject*> a(args, args + nargs + nkw);
    std::vector<py::object> keep;
    for (Py_ssize_t k = 0; k < nargs + nkw; ++k) {
      if (!HalfDtype(args[k]).is_none()) {
        keep.push_back(py::module_::import("numpy").attr("asanyarray")(
            py::handle(args[k]), py::arg("dtype") = "float32"));
        a[k] = keep.back().ptr();
      }
    }
    return spec.entry(spec, Want::kValue, a.data(), nargs, kwnames, state);
  }
  return spec.entry(spec, Want::kValue, args, nargs, kwnames, state);
}

double StateResult(const Spec& spec, const py::dict& options, const fastloss::LossState& state,
                   Reduction reduction) {
  try {
    if (!state.sums.empty()) {
      if (!spec.region_result) {
        throw py::value_error(std::string(spec.name) + ": the state holds region sums");
      }
      return spec.region_result(spec, options, state, reduction);
    }
    return state.Result(reduction);
  } catch (const fastloss::Error& e) {
    throw py::value_error(e.what());
  }
}

py::dict CheckSpecOptions(const Spec& spec, const py::dict& options) {
  return spec.check_options(spec, options);
}

}  // namespace fastloss_py
