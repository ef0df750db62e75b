// fastloss._core: the arrays the entry points return (gradients, per-element
// losses) and the reduced value as a NumPy scalar.
#ifndef FASTLOSS_PYTHON_BUFFERS_H_
#define FASTLOSS_PYTHON_BUFFERS_H_

#include <pybind11/pybind11.h>

#include <cstdint>

#include "arguments.h"

namespace fastloss_py {

// A new C-contiguous float32/float64 array of the given shape, and a view of
// it in `view`. Large ones (1 MiB and more) come from a small cache of
// recently freed, already mapped buffers.
template <typename T>
py::object NewArray(int rank, const int64_t* shape, fastloss::OptionalView<T>& view);
// The same with `like`'s shape.
template <typename T>
py::object NewArray(const Arg& like, fastloss::OptionalView<T>& view);

// `value` as a NumPy float32 (kF32) or float64 scalar.
py::object Scalar(double value, Kind kind);

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_BUFFERS_H_
