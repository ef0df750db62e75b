// fastloss._core.Accumulator: streaming, exactly mergeable loss state (see
// accumulator.cc and fastloss/accumulator.hpp).
#ifndef FASTLOSS_PYTHON_ACCUMULATOR_H_
#define FASTLOSS_PYTHON_ACCUMULATOR_H_

#include <pybind11/pybind11.h>

namespace fastloss_py {

namespace py = pybind11;

// Adds the Accumulator class and STATE_WORDS to the module.
void BindAccumulator(py::module_& m);

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_ACCUMULATOR_H_
