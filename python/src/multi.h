// fastloss._core: the losses of several inputs (the rows of
// FASTLOSS_MULTI_LOSSES, fastloss/registry.hpp) and fused combinations (see
// multi.cc).
#ifndef FASTLOSS_PYTHON_MULTI_H_
#define FASTLOSS_PYTHON_MULTI_H_

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "fastloss/fastloss.hpp"

namespace fastloss_py {

namespace py = pybind11;

struct MultiSpec;

// The rows of the losses of several inputs, in registry order.
const std::vector<const MultiSpec*>& MultiSpecs();
// The row named `name`, or nullptr.
const MultiSpec* FindMultiSpec(const std::string& name);
const char* MultiSpecName(const MultiSpec& spec);
// Whether the row takes offsets= / segment_ids= (losses reduced over
// elements or rows).
bool MultiSpecSegments(const MultiSpec& spec);
// A dict describing the row, with SpecInfo's keys (driver: the row's kind)
// and args (the positional arguments), inputs (the differentiable ones),
// target (or None), and whether calls take reduction, weights and out.
py::dict MultiSpecInfo(const MultiSpec& spec);

// One call of the loss `name`: want 0 value, 1 gradient(s), 2 both; args and
// kwargs as the Python call gave them (parsed and checked here, options
// through the row's field list).
py::object Multi(const std::string& name, int want, py::tuple args, py::dict kwargs);
// Multi's value call with the call's sums added to *state (an
// accumulator's update): host arrays, one reduction. Returns the call's value.
py::object MultiAccumulate(const std::string& name, py::tuple args, py::dict kwargs,
                           fastloss::LossState* state);
// Checks `options` (keyword -> value) as a call of the loss `name` checks
// them; returns every option's value (defaults filled in).
py::dict CheckMultiSpecOptions(const std::string& name, const py::dict& options);
// A fused sum of elementwise losses: terms = [(name, coef, options dict)];
// with `state`, the call's sums are added to it; `segments` may hold
// offsets / segment_ids / num_segments (one value per segment).
py::object Fused(py::list terms, py::handle y_true_obj, py::handle y_pred_obj,
                 const std::string& reduction, py::object weights, int want, py::object out_obj,
                 fastloss::LossState* state = nullptr, const py::dict& segments = py::dict());

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_MULTI_H_
