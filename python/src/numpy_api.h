// The NumPy C API for the extension's translation units: one of them
// (module.cc) defines FASTLOSS_IMPORT_NUMPY and calls import_array(); the
// others share its function table.
#ifndef FASTLOSS_PYTHON_NUMPY_API_H_
#define FASTLOSS_PYTHON_NUMPY_API_H_

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL fastloss_ARRAY_API
#ifndef FASTLOSS_IMPORT_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>
#include <numpy/arrayscalars.h>

#endif  // FASTLOSS_PYTHON_NUMPY_API_H_
