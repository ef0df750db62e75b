// The confusion metrics' bindings (fastloss/confusion.hpp).
#ifndef FASTLOSS_PYTHON_CONFUSION_H_
#define FASTLOSS_PYTHON_CONFUSION_H_

#include <pybind11/pybind11.h>

namespace fastloss_py {

namespace py = pybind11;

// Adds confusion, confusion_score and confusion_info to the module.
void BindConfusion(py::module_& m);

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_CONFUSION_H_
