// fastloss._core: losses of several inputs (fastloss._structured builds the
// Python objects around them), the L2 penalty, and fused combinations.
#include "multi.h"

#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "arguments.h"
#include "buffers.h"
#include "single.h"

namespace fastloss_py {

using fastloss::Reduction;

namespace {
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
      }
      if (none && value) {
        losses_out.append(NewArray<T>(args[k], calls[k].losses));
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
      sc.grad = call.grads[0];
      sc.losses = call.losses;
      const double tgt = OptFloat(lname, o, "target", 1.0);
      py::gil_scoped_release release;
      v = fastloss::GradientPenalty<T>(sc, red, tgt);
    } else if (pairwise) {
      Arg rel, groups;
      LoadInput(name, "relevance", target, kind, rel);
      fastloss::Call<T> c;
      c.y_true = rel.ToView<const T>();
      c.y_pred = call.inputs[0];
      c.weights = call.weights;
      c.reduction = red;
      c.grad = call.grads[0];
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

}  // namespace

// want: 0 value, 1 gradient(s), 2 both. inputs: the differentiable inputs in
// argument order (the first decides the dtype); target: the non-
// differentiable one (or None); options: keyword options.
py::object Multi(const std::string& lname, int want, py::list inputs, py::list names,
                 py::object target, py::object target_name, py::object weights,
                 const std::string& reduction, py::dict options, py::object out) {
  // The number of differentiable inputs each loss takes: the core's calls
  // hold at most MultiCall::kMaxInputs, and nothing here may trust the list.
  static const std::pair<const char*, size_t> kInputs[] = {
      {"cosine_embedding", 2}, {"triplet_margin", 3}, {"contrastive_pairs", 2},
      {"margin_ranking", 2}, {"pairwise_ranking", 1}, {"gan_discriminator", 2},
      {"gan_generator", 1}, {"wasserstein_critic", 2}, {"wasserstein_generator", 1},
      {"gradient_penalty", 1}};
  size_t expected = 0;
  for (const auto& e : kInputs) {
    if (lname == e.first) expected = e.second;
  }
  if (expected == 0) throw py::value_error("unknown loss '" + lname + "'");
  if (inputs.size() != expected || names.size() != expected) {
    throw py::value_error(lname + ": expected " + std::to_string(expected) +
                          " inputs and as many names, got " + std::to_string(inputs.size()) +
                          " and " + std::to_string(names.size()));
  }
  if (want < 0 || want > 2) throw py::value_error(lname + ": want must be 0, 1 or 2");
  const Reduction red = ReductionOf(lname.c_str(), py::str(reduction));
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
  if (want < 0 || want > 2) throw py::value_error("l2_penalty: want must be 0, 1 or 2");
  double total = 0.0;
  py::list grads;
  for (size_t k = 0; k < arrays.size(); ++k) {
    Arg a;
    LoadPrediction("l2_penalty", arrays[k], a, "arrays");
    auto run = [&](auto t) {
      using T = decltype(t);
      const View<const T> w = a.ToView<const T>();
      fastloss::OptionalView<T> g;
      py::object garr;
      if (want != 0) garr = NewArray<T>(a, g);
      double v;
      {
        py::gil_scoped_release release;
        v = fastloss::L2Penalty<T>(w, lam, g ? &*g : nullptr);
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
    }
    py::object losses, grad;
    if (red == Reduction::kNone && want != 1) {
      losses = NewArray<T>(y_pred, call.losses);
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
    py::object value = red == Reduction::kNone ? losses : Scalar(v, kind);
    if (want == 0) return value;
    if (want == 1) return grad;
    return py::make_tuple(value, grad);
  };
  if (kind == Kind::kF32) return run(float{});
  return run(double{});
}

}  // namespace fastloss_py
