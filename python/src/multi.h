// fastloss._core: losses of several inputs, the L2 penalty and fused
// combinations (see multi.cc).
#ifndef FASTLOSS_PYTHON_MULTI_H_
#define FASTLOSS_PYTHON_MULTI_H_

#include <pybind11/pybind11.h>

#include <string>

namespace fastloss_py {

namespace py = pybind11;

// want: 0 value, 1 gradient(s), 2 both. inputs: the differentiable inputs in
// argument order (the first decides the dtype), named `names`; target: the
// non-differentiable one (or None); options: keyword options.
py::object Multi(const std::string& lname, int want, py::list inputs, py::list names,
                 py::object target, py::object target_name, py::object weights,
                 const std::string& reduction, py::dict options, py::object out);
// l2_penalty: lam * sum_k |w_k|^2 over arrays of any float dtype each.
py::object L2(py::list arrays, double lam, int want);
// A fused sum of elementwise losses: terms = [(name, coef, options dict)].
py::object Fused(py::list terms, py::handle y_true_obj, py::handle y_pred_obj,
                 const std::string& reduction, py::object weights, int want, py::object out_obj);

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_MULTI_H_
