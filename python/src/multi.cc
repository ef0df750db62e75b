// fastloss._core: the front door of the losses of several inputs (see
// multi.h), and fused combinations.
//
// Everything here is generated from the rows of FASTLOSS_MULTI_LOSSES
// (fastloss/registry.hpp): each row gets one MultiSpec whose entry is
// MultiEntry<Options, Kind, Runner>. The call's arguments are bound to the
// row's argument names, its keyword options parsed into the typed options
// struct by the same FieldSetter as the single-input losses (fields.h), and
// `reduction` by ReductionOf; nothing here knows a loss by name.
#include "multi.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arguments.h"
#include "buffers.h"
#include "fields.h"
#include "runners.h"
#include "single.h"

namespace fastloss_py {

using fastloss::Reduction;

const char* KindName(MultiKind k) {
  switch (k) {
    case MultiKind::kRows: return "rows";
    case MultiKind::kElements: return "elements";
    case MultiKind::kPairs: return "pairs";
    case MultiKind::kScorePair: return "score_pair";
    case MultiKind::kScores: return "scores";
    case MultiKind::kSamples: return "samples";
    case MultiKind::kPenalty: return "penalty";
  }
  return "";
}

struct MultiSpec {
  const char* name;
  MultiKind kind;
  const char* aliases;  // space-separated
  const char* args;     // the positional arguments, space-separated
  const char* target;   // the non-differentiable one, or ""
  const char* summary;
  const char* formula;
  const char* notes;
  py::object (*entry)(const MultiSpec&, int, const py::tuple&, const py::dict&,
                      fastloss::LossState*);
  py::list (*options)();  // the field descriptions (MultiSpecInfo)
  // Checks a dict of options as a call checks them (an accumulator's);
  // returns every option's value, defaults filled in.
  py::dict (*check_options)(const MultiSpec&, const py::dict&);
};

namespace {

std::vector<std::string> Words(const char* text) {
  std::vector<std::string> words;
  std::string all = text, word;
  for (size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || all[i] == ' ') {
      if (!word.empty()) words.push_back(word);
      word.clear();
    } else {
      word += all[i];
    }
  }
  return words;
}

// What a kind's calls accept besides the arguments and options.
bool TakesWeights(MultiKind k) { return k != MultiKind::kPairs && k != MultiKind::kPenalty; }
bool TakesReduction(MultiKind k) { return k != MultiKind::kPenalty; }
// Per-segment values (offsets= / segment_ids=): the kinds reduced over
// elements (kElements) or rows along axis 0 (kRows).
bool TakesSegments(MultiKind k) { return k == MultiKind::kElements || k == MultiKind::kRows; }
// The kinds of fastloss.cuda._dispatch_multi (the GPU backend's score
// losses and elementwise losses of two inputs).
bool OnGpu(MultiKind k) {
  return k == MultiKind::kScorePair || k == MultiKind::kScores || k == MultiKind::kElements;
}

// A call's arguments, bound to the row's names.
struct MultiArgs {
  std::vector<std::string> names;   // the row's positional arguments
  std::vector<py::object> values;   // their values (options among them stay unset here)
  std::vector<std::string> inputs;  // the differentiable ones, in order
  py::object weights = py::none(), out = py::none(), stream = py::none();
  Common common;  // reduction, and a groups array (FieldSetter's)

  py::object Value(const std::string& name) const {
    for (size_t k = 0; k < names.size(); ++k) {
      if (names[k] == name) return values[k];
    }
    return py::none();
  }
};

// The names of the options a row describes (its options struct's fields).
std::vector<std::string> OptionNames(const MultiSpec& spec) {
  std::vector<std::string> names;
  for (py::handle o : spec.options()) names.push_back(py::str(o["name"]));
  return names;
}

// The differentiable inputs among the row's arguments: neither its target
// nor an option given positionally (l2_penalty's lam).
std::vector<std::string> InputNames(const MultiSpec& spec, const std::vector<std::string>& options) {
  std::vector<std::string> inputs;
  for (const std::string& n : Words(spec.args)) {
    if (n != spec.target && std::find(options.begin(), options.end(), n) == options.end()) {
      inputs.push_back(n);
    }
  }
  return inputs;
}

// Binds the positional arguments and keywords of a call of `spec` (whose
// differentiable inputs are `inputs`); `set_option(key, value, common)`
// returns whether `key` names an option. The words are Python's own
// (TypeError for a missing, repeated or unknown argument).
template <class SetOption>
MultiArgs ParseMulti(const MultiSpec& spec, const std::vector<std::string>& inputs, int want,
                     const py::tuple& args, const py::dict& kwargs, SetOption&& set_option) {
  const std::string name = spec.name;
  MultiArgs a;
  a.names = Words(spec.args);
  a.inputs = inputs;
  const size_t n = a.names.size();
  if (args.size() > n) {
    std::string list;
    for (size_t k = 0; k < n; ++k) list += (k ? ", " : "") + a.names[k];
    throw py::type_error(name + "() takes " + std::to_string(n) + " positional arguments (" +
                         list + ") but " + std::to_string(args.size()) + " were given");
  }
  a.values.resize(n);
  std::vector<bool> bound(n, false);
  auto bind = [&](size_t k, py::handle v) {
    if (!set_option(a.names[k], v, a.common)) a.values[k] = py::reinterpret_borrow<py::object>(v);
    bound[k] = true;
  };
  for (size_t k = 0; k < args.size(); ++k) bind(k, args[k]);
  const bool one_input = a.inputs.size() == 1 && spec.kind != MultiKind::kPenalty;
  for (auto item : kwargs) {
    const std::string key = KeyText(spec.name, item.first.ptr());
    py::handle v = item.second;
    const auto it = std::find(a.names.begin(), a.names.end(), key);
    if (it != a.names.end()) {
      const size_t k = static_cast<size_t>(it - a.names.begin());
      if (bound[k]) {
        throw py::type_error(name + "() got multiple values for argument '" + key + "'");
      }
      bind(k, v);
    } else if (key == "reduction" && TakesReduction(spec.kind)) {
      a.common.reduction = ReductionOf(spec.name, v);
    } else if (key == "weights" && TakesWeights(spec.kind)) {
      a.weights = py::reinterpret_borrow<py::object>(v);
    } else if (key == "out" && one_input && want != 0) {
      a.out = py::reinterpret_borrow<py::object>(v);
    } else if (key == "stream" && TakesReduction(spec.kind)) {  // device arrays only
      a.stream = py::reinterpret_borrow<py::object>(v);
    } else if (key == "offsets" || key == "segment_ids" || key == "num_segments") {
      if (!TakesSegments(spec.kind)) {
        throw py::type_error(name + "() got an unexpected keyword argument '" + key +
                             "' (segments are for the losses reduced over elements or rows)");
      }
      (key == "offsets" ? a.common.offsets
                        : key == "segment_ids" ? a.common.segment_ids : a.common.num_segments) = v;
    } else if (!set_option(key, v, a.common)) {
      throw py::type_error(name + "() got an unexpected keyword argument '" + key + "'");
    }
  }
  for (size_t k = 0; k < n; ++k) {
    if (!bound[k]) throw py::type_error(name + "() missing required argument '" + a.names[k] + "'");
  }
  CheckSegmentKeywords(spec.name, a.common);
  return a;
}

// A differentiable input's gradient: `out` where the call gave one (one
// input), else a new array.
template <typename T>
py::object GradArray(const char* name, const MultiArgs& a, const Arg& like, Kind kind,
                     fastloss::OptionalView<T>& grad, Arg& out) {
  if (!a.out.is_none()) {
    LoadOut(name, a.out, like, kind, out);
    grad = out.ToView<T>();
    return a.out;
  }
  return NewArray<T>(like, grad);
}

py::object Result(int want, py::object value, py::object grads) {
  if (want == 0) return value;
  if (want == 1) return grads;
  return py::make_tuple(value, grads);
}

py::object OneOrTuple(const py::list& items) {
  return items.size() == 1 ? py::object(items[0]) : py::object(py::tuple(items));
}

// Score losses (kScorePair, kScores): each input reduced on its own, weights
// one per input (a pair for two).
template <class O, MultiKind K, class Runner, typename T>
py::object RunScores(const MultiSpec& spec, int want, const MultiArgs& a, const O& o,
                     std::vector<Arg>& args, Kind kind) {
  const char* name = spec.name;
  const size_t n = args.size();
  const Reduction red = a.common.reduction;
  const bool none = red == Reduction::kNone;
  std::vector<fastloss::ScoreCall<T>> calls(n);
  calls[0].state = a.common.state;  // one score array: an accumulator's (MultiEntry)
  std::vector<Arg> wargs(n), outs(n);
  py::list losses_out, grads_out;
  for (size_t k = 0; k < n; ++k) {
    calls[k].scores = args[k].ToView<const T>();
    py::object w = py::none();
    if (!a.weights.is_none()) {
      if (n == 1) {
        w = a.weights;
      } else {
        if (!py::isinstance<py::tuple>(a.weights) && !py::isinstance<py::list>(a.weights)) {
          throw py::type_error(std::string(name) + ": weights must be None or a pair (w_real, w_fake)");
        }
        py::sequence seq = a.weights;
        if (seq.size() != 2) {
          throw py::value_error(std::string(name) + ": weights must be a pair (w_real, w_fake)");
        }
        w = seq[k];
      }
    }
    if (!w.is_none()) {
      LoadInput(name, "weights", w, kind, wargs[k]);
      calls[k].weights = wargs[k].ToView<const T>();
    }
    if (none && want != 1) losses_out.append(NewArray<T>(args[k], calls[k].losses));
    if (want != 0) grads_out.append(GradArray<T>(name, a, args[k], kind, calls[k].grad, outs[k]));
  }
  double v;
  {
    py::gil_scoped_release release;
    if constexpr (K == MultiKind::kScorePair) {
      v = Runner::template Run<T>(calls[0], calls[1], red, o);
    } else {
      v = Runner::template Run<T>(calls[0], red, o);
    }
  }
  py::object value = none ? OneOrTuple(losses_out) : Scalar(v, kind);
  return Result(want, value, want != 0 ? OneOrTuple(grads_out) : py::object());
}

// The losses of a MultiCall (kRows, kElements), of per-sample gradients
// (kSamples) and of pairs (kPairs).
// A call with offsets= or segment_ids= (sorted): one reduced value per
// segment (an array of the inputs' dtype), each the loss's own call on its
// items (fastloss::Segmented): elements, or rows along axis 0.
template <MultiKind K, class Runner, typename T, class O>
py::object RunSegments(const MultiSpec& spec, int want, const MultiArgs& a, const O& o,
                       const fastloss::MultiCall<T>& call, int loss_rank, py::object grads) {
  const char* name = spec.name;
  if (a.common.reduction == Reduction::kNone) {
    throw py::value_error(std::string(name) +
                          ": segments need reduction 'mean' or 'sum', not 'none'");
  }
  SegmentArgs sa;
  LoadSegments(name, a.common, sa);
  if (a.common.segment_ids) {
    const View<const T>& x0 = call.inputs[0];
    const int64_t items = K == MultiKind::kElements ? x0.size() : x0.rank > 0 ? x0.shape[0] : 1;
    if (sa.ids.rank == 1 && sa.ids.shape[0] != items) {
      throw py::value_error(std::string(name) + ": segment_ids has " +
                            std::to_string(sa.ids.shape[0]) + " ids for " + std::to_string(items) +
                            (K == MultiKind::kElements ? " elements" : " items along axis 0"));
    }
  }
  View<T> values_view;
  py::object values;
  {
    std::optional<View<T>> vv;
    const int64_t shape[1] = {sa.S};
    values = NewArray<T>(1, shape, vv);
    values_view = *vv;
  }
  fastloss::MultiCall<T> unstated = call;
  unstated.state = nullptr;  // one state per segment (an accumulator's)
  const std::function<double(const fastloss::MultiCall<T>&)> run =
      [&](const fastloss::MultiCall<T>& sc) { return Runner::template Run<T>(sc, o); };
  try {
    py::gil_scoped_release release;
    fastloss::Segmented<T, fastloss::MultiCall<T>>(name, unstated, sa.offsets, values_view.data,
                                                   K == MultiKind::kElements, loss_rank, run,
                                                   a.common.state);
  } catch (const fastloss::Error& e) {
    // The segmenter names the operands "input k" and "target": the loss's own names.
    std::string msg = e.what();
    for (size_t k = 0; k < a.inputs.size(); ++k) {
      const std::string from = "input " + std::to_string(k + 1);
      for (size_t at = msg.find(from); at != std::string::npos; at = msg.find(from, at + 1)) {
        msg.replace(at, from.size(), a.inputs[k]);
      }
    }
    throw py::value_error(msg);
  }
  return Result(want, values, grads);
}

template <class O, MultiKind K, class Runner, typename T>
py::object RunInputs(const MultiSpec& spec, int want, const MultiArgs& a, const O& o,
                     std::vector<Arg>& args, Kind kind) {
  const char* name = spec.name;
  const size_t n = args.size();
  const Reduction red = a.common.reduction;
  const bool none = red == Reduction::kNone;
  Arg targ, warg, groups;
  std::vector<Arg> outs(n);
  fastloss::MultiCall<T> call;
  for (size_t k = 0; k < n; ++k) call.inputs[k] = args[k].ToView<const T>();
  if (*spec.target && K != MultiKind::kPairs) {
    LoadInput(name, spec.target, a.Value(spec.target), kind, targ);
    call.target = targ.ToView<const T>();
  }
  if (!a.weights.is_none()) {
    LoadInput(name, "weights", a.weights, kind, warg);
    call.weights = warg.ToView<const T>();
  }
  call.reduction = red;
  call.state = a.common.state;
  // The losses' shape: rows (the inputs without their last axis), elements,
  // or samples (axis 0); pairs have none.
  const Arg& a0 = args[0];
  int64_t lshape[fastloss::kMaxRank];
  int lrank = 0;
  if constexpr (K == MultiKind::kElements) {
    lrank = a0.rank;
    std::copy(a0.shape, a0.shape + a0.rank, lshape);
  } else if constexpr (K == MultiKind::kSamples) {
    lrank = a0.rank > 0 ? 1 : 0;
    if (lrank) lshape[0] = a0.shape[0];
  } else {
    lrank = a0.rank > 0 ? a0.rank - 1 : 0;
    std::copy(a0.shape, a0.shape + lrank, lshape);
  }
  py::object losses;
  if (none && want != 1 && K != MultiKind::kPairs) losses = NewArray<T>(lrank, lshape, call.losses);
  py::list grads_out;
  if (want != 0) {
    for (size_t k = 0; k < n; ++k) {
      grads_out.append(GradArray<T>(name, a, args[k], kind, call.grads[k], outs[k]));
    }
  }
  if constexpr (K == MultiKind::kElements || K == MultiKind::kRows) {
    if (a.common.offsets || a.common.segment_ids) {
      return RunSegments<K, Runner, T>(spec, want, a, o, call, lrank,
                                       want != 0 ? OneOrTuple(grads_out) : py::object());
    }
  }
  double v = 0.0;
  if constexpr (K == MultiKind::kSamples) {
    fastloss::ScoreCall<T> sc;
    sc.scores = call.inputs[0];
    sc.weights = call.weights;
    sc.grad = call.grads[0];
    sc.losses = call.losses;
    sc.state = call.state;
    py::gil_scoped_release release;
    v = Runner::template Run<T>(sc, red, o);
  } else if constexpr (K == MultiKind::kPairs) {
    Arg rel;
    LoadInput(name, spec.target, a.Value(spec.target), kind, rel);
    fastloss::Call<T> c;
    c.y_true = rel.ToView<const T>();
    c.y_pred = call.inputs[0];
    c.weights = call.weights;
    c.reduction = red;
    c.grad = call.grads[0];
    c.state = call.state;
    View<const int64_t> gview;
    const View<const int64_t>* gp = nullptr;
    if (a.common.groups) {
      LoadLabels(name, a.common.groups, groups, "groups");
      gview = groups.ToView<const int64_t>();
      gp = &gview;
    }
    py::gil_scoped_release release;
    v = Runner::template Run<T>(c, gp, o);
  } else {
    py::gil_scoped_release release;
    v = Runner::template Run<T>(call, o);
  }
  return Result(want, none ? losses : Scalar(v, kind),
                want != 0 ? OneOrTuple(grads_out) : py::object());
}

// kPenalty: a sum over one array or a list of arrays, each of its own float
// dtype; the value is float64, the gradients a list.
template <class O, class Runner>
py::object RunPenalty(const MultiSpec& spec, int want, const MultiArgs& a, const O& o) {
  const char* name = spec.name;
  const std::string arrays_name = a.inputs.at(0);
  py::object arrays = a.Value(arrays_name);
  py::list list;
  if (py::isinstance<py::list>(arrays) || py::isinstance<py::tuple>(arrays)) {
    for (py::handle x : arrays) list.append(x);
  } else {
    list.append(arrays);
  }
  double total = 0.0;
  py::list grads;
  for (py::handle x : list) {
    Arg w;
    LoadPrediction(name, x, w, arrays_name.c_str());
    auto run = [&](auto t) {
      using T = decltype(t);
      const View<const T> view = w.ToView<const T>();
      fastloss::OptionalView<T> g;
      py::object garr;
      if (want != 0) garr = NewArray<T>(w, g);
      double v;
      {
        py::gil_scoped_release release;
        v = Runner::template Run<T>(view, o, g ? &*g : nullptr);
      }
      total += v;
      if (want != 0) grads.append(garr);
    };
    if (w.kind == Kind::kF32) {
      run(float{});
    } else {
      run(double{});
    }
  }
  return Result(want, Scalar(total, Kind::kF64), grads);
}

// Hands a call with device arrays to fastloss.cuda._dispatch_multi, with the
// options parsed and checked here (as plain values: FieldExporter).
template <class O>
py::object RunOnGpu(const MultiSpec& spec, int want, const MultiArgs& a, const O& o) {
  try {
    fastloss::CheckOptions(spec.name, o);
  } catch (const fastloss::Error& e) {
    throw py::value_error(e.what());
  }
  py::dict options;
  O::Fields(o, FieldExporter{options});
  py::list inputs, names;
  for (const std::string& in : a.inputs) {
    inputs.append(a.Value(in));
    names.append(in);
  }
  static const char* const kReductions[] = {"mean", "sum", "none"};
  py::object target = *spec.target ? a.Value(spec.target) : py::none();
  py::object target_name = *spec.target ? py::object(py::str(spec.target)) : py::none();
  py::object dispatch = py::module_::import("fastloss.cuda").attr("_dispatch_multi");
  return dispatch(spec.name, want, inputs, names, target, target_name, a.weights,
                  kReductions[static_cast<int>(a.common.reduction)], options, a.out, a.stream);
}

template <class O, MultiKind K, class Runner>
py::object RunParsed(const MultiSpec& spec, int want, const MultiArgs& a, const O& o);

template <class O, MultiKind K, class Runner>
py::object MultiEntry(const MultiSpec& spec, int want, const py::tuple& pargs,
                      const py::dict& kwargs, fastloss::LossState* state) {
  if (want < 0 || want > 2) {
    throw py::value_error(std::string(spec.name) + ": want must be 0, 1 or 2");
  }
  if (state && (K == MultiKind::kPenalty || K == MultiKind::kScorePair)) {
    throw py::type_error(std::string(spec.name) +
                         ": no accumulator (its value is not one reduction: " +
                         (K == MultiKind::kPenalty ? "a penalty over a list of arrays"
                                                   : "the sum of two means") +
                         ")");
  }
  static const std::vector<std::string> inputs = InputNames(spec, OptionNames(spec));
  O o{};
  MultiArgs a = ParseMulti(spec, inputs, want, pargs, kwargs,
                                 [&](const std::string& key, py::handle v, Common& c) {
                                   FieldSetter setter{spec.name, key, v, c};
                                   O::Fields(o, setter);
                                   return setter.found;
                                 });
  a.common.state = state;
  return RunParsed<O, K, Runner>(spec, want, a, o);
}

// A call with segment_ids= in any order: the items grouped by segment first
// (a stable argsort of the ids, a gather of every per-item argument, the
// weights broadcast to the items first), so each segment keeps its items in
// their order and its value is the loss's own call on them; then the sorted
// call, and each gradient scattered back to its items' places.
template <class O, MultiKind K, class Runner>
py::object RunGrouped(const MultiSpec& spec, int want, const MultiArgs& a, const O& o) {
  using namespace pybind11::literals;  // NOLINT(build/namespaces)
  const char* name = spec.name;
  if (a.common.reduction == Reduction::kNone) {
    throw py::value_error(std::string(name) +
                          ": segments need reduction 'mean' or 'sum', not 'none'");
  }
  py::module_ np = py::module_::import("numpy");
  constexpr bool kElements = K == MultiKind::kElements;
  const py::object x0 = np.attr("asarray")(a.Value(a.inputs[0]));
  const py::tuple shape = x0.attr("shape");
  if (!kElements && shape.size() == 0) {
    throw py::value_error(std::string(name) + ": segments split axis 0 of " + a.inputs[0] +
                          ", which has none");
  }
  const int64_t items = kElements ? x0.attr("size").cast<int64_t>() : shape[0].cast<int64_t>();
  Arg ids;
  LoadLabels(name, a.common.segment_ids, ids, "segment_ids");
  if (ids.shape[0] != items) {
    throw py::value_error(std::string(name) + ": segment_ids has " + std::to_string(ids.shape[0]) +
                          " ids for " + std::to_string(items) +
                          (kElements ? " elements" : " items along axis 0"));
  }
  const py::object ids_array = np.attr("asarray")(ids.owner);
  const py::object perm = np.attr("argsort")(ids_array, "kind"_a = "stable");
  const auto gather = [&](const py::object& v, const py::object& to_shape) -> py::object {
    py::object x = np.attr("asarray")(v);
    if (!to_shape.is_none()) {
      try {
        x = np.attr("broadcast_to")(x, to_shape);
      } catch (const py::error_already_set&) {
        throw py::value_error(std::string(name) + ": an argument of shape " +
                              std::string(py::str(x.attr("shape"))) +
                              " does not broadcast to the items' shape " +
                              std::string(py::str(to_shape)));
      }
    }
    if (kElements) return np.attr("ravel")(x).attr("__getitem__")(perm);
    return np.attr("take")(x, perm, "axis"_a = 0);
  };
  MultiArgs g = a;
  g.out = py::none();
  for (size_t k = 0; k < g.names.size(); ++k) {
    const std::string& arg = g.names[k];
    const bool input = std::find(g.inputs.begin(), g.inputs.end(), arg) != g.inputs.end();
    if (!input && !(*spec.target && arg == spec.target)) continue;
    // Every per-item argument has the items: the same shape (elements) or
    // as many rows along axis 0; nothing is broadcast.
    const py::object x = np.attr("asarray")(g.values[k]);
    const py::tuple xs = x.attr("shape");
    const bool ok = kElements ? xs.equal(shape)
                              : xs.size() > 0 && xs[0].cast<int64_t>() == items;
    if (!ok) {
      throw py::value_error(std::string(name) + ": " + arg + " has shape " +
                            std::string(py::str(xs)) + "; with segments it needs " +
                            (kElements ? "the shape " + std::string(py::str(shape)) + " of " +
                                             a.inputs[0]
                                       : std::to_string(items) + " rows along axis 0, as " +
                                             a.inputs[0] + " has"));
    }
    g.values[k] = gather(x, py::none());
  }
  if (!a.weights.is_none()) {
    // Per-item weights: broadcast to the losses' shape (the elements, or
    // the rows: the inputs less their last axis).
    py::object lshape = shape;
    if (!kElements) lshape = shape[py::slice(0, static_cast<py::ssize_t>(shape.size()) - 1, 1)];
    g.weights = gather(a.weights, lshape);
  }
  const py::object sorted_ids = ids_array.attr("__getitem__")(perm);
  g.common.segment_ids = sorted_ids;
  const py::object r = RunParsed<O, K, Runner>(spec, want, g, o);
  if (want == 0) return r;
  const py::object grads_g = want == 1 ? r : py::object(r.attr("__getitem__")(1));
  const bool one = g.inputs.size() == 1;
  py::list grads;
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const py::object gk = one ? grads_g : py::object(grads_g.attr("__getitem__")(k));
    const py::object xk = np.attr("asarray")(a.Value(a.inputs[k]));
    py::object full = one && !a.out.is_none() ? a.out : np.attr("empty_like")(gk.attr("reshape")(xk.attr("shape")));
    if (kElements) {
      full.attr("flat").attr("__setitem__")(perm, np.attr("ravel")(gk));
    } else {
      full.attr("__setitem__")(perm, gk);
    }
    grads.append(full);
  }
  const py::object grads_out = OneOrTuple(grads);
  if (want == 1) return grads_out;
  return py::make_tuple(r.attr("__getitem__")(0), grads_out);
}

template <class O, MultiKind K, class Runner>
py::object RunParsed(const MultiSpec& spec, int want, const MultiArgs& a, const O& o) {
  const char* name = spec.name;
  if constexpr (K == MultiKind::kPenalty) {
    // The options first: a bad one is an error even with no arrays.
    try {
      fastloss::CheckOptions(name, o);
    } catch (const fastloss::Error& e) {
      throw py::value_error(e.what());
    }
    return RunPenalty<O, Runner>(spec, want, a, o);
  } else {
    // No silent compute of a lazy array (NumPy would read it through __array__).
    for (const py::object& v : a.values) {
      if (IsDaskArray(v.ptr())) {
        throw py::type_error(std::string(name) + ": Dask arrays are not supported by this loss "
                             "yet (the losses of fastloss.LOSSES take them); compute them first");
      }
    }
    if (IsDaskArray(a.weights.ptr())) {
      throw py::type_error(std::string(name) + ": Dask weights are not supported by this loss yet");
    }
    bool device = *spec.target && IsDeviceArray(a.Value(spec.target).ptr());
    for (const std::string& in : a.inputs) device = device || IsDeviceArray(a.Value(in).ptr());
    if (device && a.common.state) {
      throw py::type_error(std::string(name) +
                           ": accumulators take host arrays (NumPy, buffers), not CUDA arrays");
    }
    if (device && (a.common.offsets || a.common.segment_ids)) {
      throw py::type_error(std::string(name) + ": segments take host arrays (NumPy, buffers), "
                           "not CUDA arrays");
    }
    if (device) return RunOnGpu(spec, want, a, o);
    if (!a.stream.is_none()) {
      throw py::type_error(std::string(name) + "() got an unexpected keyword argument 'stream'");
    }
    if constexpr (K == MultiKind::kElements || K == MultiKind::kRows) {
      if (a.common.segment_ids && !SortedIds(name, a.common.segment_ids)) {
        return RunGrouped<O, K, Runner>(spec, want, a, o);
      }
    }
    std::vector<Arg> args(a.inputs.size());
    LoadPrediction(name, a.Value(a.inputs[0]), args[0], a.inputs[0].c_str());
    const Kind kind = args[0].kind;
    for (size_t k = 1; k < args.size(); ++k) {
      LoadInput(name, a.inputs[k].c_str(), a.Value(a.inputs[k]), kind, args[k]);
    }
    constexpr bool scores = K == MultiKind::kScorePair || K == MultiKind::kScores;
    if (kind == Kind::kF32) {
      if constexpr (scores) return RunScores<O, K, Runner, float>(spec, want, a, o, args, kind);
      else return RunInputs<O, K, Runner, float>(spec, want, a, o, args, kind);
    }
    if constexpr (scores) return RunScores<O, K, Runner, double>(spec, want, a, o, args, kind);
    else return RunInputs<O, K, Runner, double>(spec, want, a, o, args, kind);
  }
}

template <class O>
py::dict CheckMultiOptions(const MultiSpec& spec, const py::dict& options) {
  return ResolvedOptions<O>(spec.name, options);
}


#define FASTLOSS_PY_MULTI_SPEC(Name, name, kind, aliases, args, target)                    \
  const MultiSpec k##Name##MultiSpec{                                                      \
      #name,                                                                               \
      MultiKind::k##kind,                                                                  \
      aliases,                                                                             \
      args,                                                                                \
      target,                                                                              \
      fastloss::Name##Options::kSummary,                                                   \
      fastloss::Name##Options::kFormula,                                                   \
      fastloss::Name##Options::kNotes,                                                     \
      &MultiEntry<fastloss::Name##Options, MultiKind::k##kind, RunMulti##Name>,            \
      &DescribeOptions<fastloss::Name##Options>,                                           \
      &CheckMultiOptions<fastloss::Name##Options>};
FASTLOSS_MULTI_LOSSES(FASTLOSS_PY_MULTI_SPEC)
#undef FASTLOSS_PY_MULTI_SPEC

}  // namespace

const std::vector<const MultiSpec*>& MultiSpecs() {
#define FASTLOSS_PY_MULTI_SPEC_PTR(Name, ...) &k##Name##MultiSpec,
  static const std::vector<const MultiSpec*> specs{
      FASTLOSS_MULTI_LOSSES(FASTLOSS_PY_MULTI_SPEC_PTR)};
#undef FASTLOSS_PY_MULTI_SPEC_PTR
  return specs;
}

const MultiSpec* FindMultiSpec(const std::string& name) {
  for (const MultiSpec* s : MultiSpecs()) {
    if (name == s->name) return s;
  }
  return nullptr;
}

bool MultiSpecSegments(const MultiSpec& spec) { return TakesSegments(spec.kind); }

const char* MultiSpecName(const MultiSpec& spec) { return spec.name; }

py::dict MultiSpecInfo(const MultiSpec& spec) {
  py::dict d;
  d["name"] = spec.name;
  d["driver"] = KindName(spec.kind);
  py::list aliases, args, inputs;
  for (const std::string& w : Words(spec.aliases)) aliases.append(w);
  for (const std::string& w : Words(spec.args)) args.append(w);
  for (const std::string& w : InputNames(spec, OptionNames(spec))) inputs.append(w);
  d["aliases"] = py::tuple(aliases);
  d["args"] = py::tuple(args);
  d["inputs"] = py::tuple(inputs);
  d["target"] = *spec.target ? py::object(py::str(spec.target)) : py::none();
  d["summary"] = spec.summary;
  d["formula"] = spec.formula;
  d["notes"] = spec.notes;
  d["options"] = spec.options();
  d["reduction"] = TakesReduction(spec.kind);
  d["weights"] = TakesWeights(spec.kind);
  d["out"] = TakesReduction(spec.kind) && inputs.size() == 1;
  d["fusable"] = false;
  d["gpu"] = OnGpu(spec.kind);
  d["kind"] = KindName(spec.kind);
  d["segments"] = TakesSegments(spec.kind);
  return d;
}

py::object Multi(const std::string& name, int want, py::tuple args, py::dict kwargs) {
  const MultiSpec* spec = FindMultiSpec(name);
  if (!spec) throw py::value_error("unknown loss '" + name + "'");
  return spec->entry(*spec, want, args, kwargs, nullptr);
}

py::object MultiAccumulate(const std::string& name, py::tuple args, py::dict kwargs,
                           fastloss::LossState* state) {
  const MultiSpec* spec = FindMultiSpec(name);
  if (!spec) throw py::value_error("unknown loss '" + name + "'");
  return spec->entry(*spec, 0, args, kwargs, state);
}

py::dict CheckMultiSpecOptions(const std::string& name, const py::dict& options) {
  const MultiSpec* spec = FindMultiSpec(name);
  if (!spec) throw py::value_error("unknown loss '" + name + "'");
  return spec->check_options(*spec, options);
}

// A fused sum of elementwise losses: terms = [(name, coef, options dict)].
py::object Fused(py::list terms, py::handle y_true_obj, py::handle y_pred_obj,
                 const std::string& reduction, py::object weights, int want, py::object out_obj,
                 fastloss::LossState* state, const py::dict& segments) {
  if (want < 0 || want > 2) throw py::value_error("combined: want must be 0, 1 or 2");
  const char* name = "combined";
  fastloss::ElementwiseCombination comb;
  for (py::handle t : terms) {
    if (!py::isinstance<py::tuple>(t) || py::len(t) != 3) {
      throw py::type_error("combined: terms must be (name, coef, options) tuples");
    }
    py::tuple tt = py::reinterpret_borrow<py::tuple>(t);
    AddTerm(comb, py::str(tt[0]).cast<std::string>(), RealValue("combined: coef", tt[1]),
            tt[2].cast<py::dict>());
  }
  const Reduction red = ReductionOf(name, py::str(reduction));
  if (IsDaskArray(y_true_obj.ptr()) || IsDaskArray(y_pred_obj.ptr()) ||
      IsDaskArray(weights.ptr())) {
    throw py::type_error("combined: Dask arrays are not supported by fused combinations yet; "
                         "call each term on them (each is a lazy Dask value) and add");
  }
  Arg y_pred, y_true, w;
  LoadPrediction(name, y_pred_obj, y_pred);
  const Kind kind = y_pred.kind;
  LoadInput(name, "y_true", y_true_obj, kind, y_true);
  if (!weights.is_none()) LoadInput(name, "weights", weights, kind, w);
  // offsets= / segment_ids= with num_segments=: one value per segment
  // (Call::segments), checked as a single loss's call checks them.
  Common seg;
  for (auto item : segments) {
    const std::string key = py::str(item.first);
    py::handle v = item.second;
    if (v.is_none()) continue;
    if (key == "offsets") {
      seg.offsets = v;
    } else if (key == "segment_ids") {
      seg.segment_ids = v;
    } else if (key == "num_segments") {
      seg.num_segments = v;
    }
  }
  if (seg.offsets && (seg.segment_ids || seg.num_segments)) {
    throw py::type_error("combined(): give offsets= or segment_ids= (with num_segments=), not both");
  }
  if (static_cast<bool>(seg.segment_ids) != static_cast<bool>(seg.num_segments)) {
    throw py::type_error("combined(): segment_ids= and num_segments= go together");
  }
  const bool segmented = seg.offsets || seg.segment_ids;
  SegmentArgs sa;
  if (segmented) {
    if (red == Reduction::kNone) {
      throw py::value_error("combined: segments need reduction 'mean' or 'sum', not 'none'");
    }
    LoadSegments(name, seg, sa);
  }
  auto run = [&](auto t) -> py::object {
    using T = decltype(t);
    fastloss::Call<T> call;
    call.y_true = y_true.ToView<const T>();
    call.y_pred = y_pred.ToView<const T>();
    call.reduction = red;
    call.state = state;
    if (!weights.is_none()) {
      call.weights = w.ToView<const T>();
    }
    py::object losses, grad, values;
    if (red == Reduction::kNone && want != 1) {
      losses = NewArray<T>(y_pred, call.losses);
    }
    fastloss::SegmentOutputs<T> out;
    if (segmented) {
      fastloss::OptionalView<T> vv;
      const int64_t shape[1] = {sa.S};
      values = NewArray<T>(1, shape, vv);
      out.offsets = sa.offsets;
      out.values = vv->data;
      call.segments = &out;
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
    }
    double v;
    {
      py::gil_scoped_release release;
      v = fastloss::Combined<T>(call, comb);
    }
    py::object value = segmented ? values : red == Reduction::kNone ? losses : Scalar(v, kind);
    if (want == 0) return value;
    if (want == 1) return grad;
    return py::make_tuple(value, grad);
  };
  if (kind == Kind::kF32) return run(float{});
  return run(double{});
}

}  // namespace fastloss_py
