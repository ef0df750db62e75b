// fastloss._core: XLA FFI handlers of the registry's single-input losses
// (fastloss.jax). See jax_ffi.cc.
#ifndef FASTLOSS_PYTHON_JAX_FFI_H_
#define FASTLOSS_PYTHON_JAX_FFI_H_

#include <pybind11/pybind11.h>

namespace fastloss_py {

namespace py = pybind11;

// name -> a PyCapsule of the row's XLA_FFI_Handler (jax.ffi.register_ffi_target).
py::dict JaxHandlers();

}  // namespace fastloss_py

#endif  // FASTLOSS_PYTHON_JAX_FFI_H_
