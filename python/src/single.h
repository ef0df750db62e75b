// fastloss._core: the losses of the registry, called as
// loss(y_true, y_pred, *, reduction, weights, out, **options). One front door
// for every row: the arguments are parsed and checked once, the options into
// the loss's typed options struct through its field list.
#ifndef FASTLOSS_PYTHON_SINGLE_H_
#define FASTLOSS_PYTHON_SINGLE_H_

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "fastloss/fastloss.hpp"

namespace fastloss_py {

namespace py = pybind11;

enum class Want { kValue, kGrad, kBoth };

struct Spec;

// The registry's rows, in registry order.
const std::vector<const Spec*>& Specs();
// The row named `name` (not an alias), or nullptr.
const Spec* FindSpec(const std::string& name);
const char* SpecName(const Spec& spec);
// Whether the row's states can hold region sums (the region losses).
bool SpecHasRegionState(const Spec& spec);
// Whether the row's losses can run in a fused ElementwiseCombination.
bool SpecFusable(const Spec& spec);
// A dict describing the row: name, driver, aliases, argument names, docs
// (summary, formula, notes) and options (a list of dicts: name, type,
// default, doc, choices).
py::dict SpecInfo(const Spec& spec);

// One call of `spec` in CPython's vectorcall layout (nargs positional
// arguments, then one value per name in kwnames).
py::object Dispatch(const Spec& spec, Want want, PyObject* const* args, Py_ssize_t nargs,
                    PyObject* kwnames);

// Dispatch's value call with the call's sums added to *state (an
// accumulator's update): host arrays only. Returns the call's value.
py::object Accumulate(const Spec& spec, PyObject* const* args, Py_ssize_t nargs,
                      PyObject* kwnames, fastloss::LossState* state);
// The value of an accumulator's state of `spec` with `options` (as given to
// it): a region loss's state of region sums (regions spanning calls) through
// its RegionResult, any other through LossState::Result.
double StateResult(const Spec& spec, const py::dict& options, const fastloss::LossState& state,
                   fastloss::Reduction reduction);
// Checks `options` (keyword -> value) as a call of `spec` checks them;
// returns every option's value (defaults filled in).
py::dict CheckSpecOptions(const Spec& spec, const py::dict& options);

// Adds the row `name` with options `options` (keyword -> value, checked as a
// call checks them) to a fused combination; an array option is a ValueError.
void AddTerm(fastloss::ElementwiseCombination& combination, const std::string& name, double coef, const py::dict& options);

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_SINGLE_H_
