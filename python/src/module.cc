// fastloss._core: the module. Binding glue only: the loss objects
// (fastloss.Loss, one per registry row), the functions of several inputs and
// the runtime settings. Argument reading is in arguments.cc, result arrays in
// buffers.cc, the registry's front door in single.cc, the losses of several
// inputs in multi.cc.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#define FASTLOSS_IMPORT_NUMPY
#include "accumulator.h"
#include "confusion.h"
#include "arguments.h"
#include "fastloss/fastloss.hpp"
#include "jax_ffi.h"
#include "multi.h"
#include "single.h"

namespace py = pybind11;

namespace fastloss_py {
namespace {

// The C++ side of fastloss.Loss: the registry row it calls. A Loss made
// without __init__ (Loss.__new__(Loss)) has none, and every entry point
// refuses it with a TypeError.
class Loss {
 public:
  explicit Loss(const std::string& name) : spec_(FindSpec(name)) {
    if (!spec_) throw py::value_error("unknown loss '" + name + "'");
  }
  const Spec& spec() const { return *spec_; }

 private:
  const Spec* spec_ = nullptr;
};

// The row of `self`, or a TypeError if `self` is not an initialised Loss.
const Spec& SpecOf(py::handle self) {
  // An instance whose __init__ never ran has no C++ object: its holder is not
  // constructed (pybind11's status flags, zeroed at allocation), and its
  // value pointer must not be read.
  const Loss* loss = nullptr;
  static const py::detail::type_info* const loss_type =
      py::detail::get_type_info(typeid(Loss));
  if (loss_type != nullptr && PyObject_TypeCheck(self.ptr(), loss_type->type)) {
    auto* inst = reinterpret_cast<py::detail::instance*>(self.ptr());
    const py::detail::value_and_holder v_h = inst->get_value_and_holder(loss_type, false);
    if (v_h && v_h.holder_constructed()) loss = static_cast<const Loss*>(v_h.value_ptr());
  }
  if (loss == nullptr) {
    throw py::type_error("this fastloss.Loss object was not initialised with a loss name "
                         "(use the losses in the fastloss namespace, e.g. fastloss.mse)");
  }
  return loss->spec();
}

// The three entry points are plain METH_FASTCALL | METH_KEYWORDS methods, not
// pybind11 functions: a small call is dominated by argument handling, and
// pybind11's dispatcher (argument vectors, a tuple and a dict per call) costs
// several hundred nanoseconds more than reading CPython's argument array.
template <Want kWant>
PyObject* FastEntry(PyObject* self, PyObject* const* args, Py_ssize_t nargsf, PyObject* kwnames) {
  try {
    return Dispatch(SpecOf(self), kWant, args, PyVectorcall_NARGS(nargsf), kwnames)
        .release()
        .ptr();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (py::builtin_exception& e) {
    e.set_error();
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

PyMethodDef kEntryPoints[] = {
    {"__call__",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(&FastEntry<Want::kValue>)),
     METH_FASTCALL | METH_KEYWORDS,
     "loss(y_true, y_pred, *, reduction='mean', weights=None, **options): the loss value"},
    {"grad",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(&FastEntry<Want::kGrad>)),
     METH_FASTCALL | METH_KEYWORDS,
     "loss.grad(y_true, y_pred, *, reduction='mean', weights=None, out=None, **options): "
     "d value / d y_pred"},
    {"value_and_grad",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(&FastEntry<Want::kBoth>)),
     METH_FASTCALL | METH_KEYWORDS,
     "loss.value_and_grad(y_true, y_pred, *, reduction='mean', weights=None, out=None, "
     "**options): (value, gradient) in one pass"},
};

// The row of a loss of either registry list (SpecInfo, MultiSpecInfo).
py::dict Info(const std::string& name) {
  if (const Spec* spec = FindSpec(name)) return SpecInfo(*spec);
  if (const MultiSpec* spec = FindMultiSpec(name)) return MultiSpecInfo(*spec);
  throw py::value_error("unknown loss '" + name + "'");
}

}  // namespace
}  // namespace fastloss_py

PYBIND11_MODULE(_core, m) {
  using namespace fastloss_py;  // NOLINT(build/namespaces)
  if (_import_array() < 0) throw py::error_already_set();
  m.doc() = "fastloss C++ core (binding glue; use the fastloss package).";
  m.attr("__version__") = FASTLOSS_VERSION_STRING;

  py::class_<Loss>(m, "Loss", py::dynamic_attr())
      .def(py::init<const std::string&>(), py::arg("name"))
      .def_property_readonly("name",
                             [](py::handle self) { return std::string(SpecName(SpecOf(self))); })
      .def_property_readonly("options",
                             [](py::handle self) {
                               py::dict d;
                               const py::dict info = SpecInfo(SpecOf(self));
                               const py::list options = info["options"];
                               for (py::handle o : options) {
                                 d[o["name"]] = o["default"];
                               }
                               return d;
                             })
      .def("__repr__", [](py::handle self) {
        try {
          return std::string("<fastloss.") + SpecName(SpecOf(self)) + ">";
        } catch (const py::type_error&) {
          return std::string("<fastloss.Loss (uninitialised)>");
        }
      });
  {
    PyTypeObject* type = reinterpret_cast<PyTypeObject*>(m.attr("Loss").ptr());
    for (PyMethodDef& def : kEntryPoints) {
      py::object method = py::reinterpret_steal<py::object>(PyDescr_NewMethod(type, &def));
      if (!method) throw py::error_already_set();
      // Setting __call__ on the (heap) type also updates its tp_call slot.
      if (PyObject_SetAttrString(reinterpret_cast<PyObject*>(type), def.ml_name, method.ptr()) <
          0) {
        throw py::error_already_set();
      }
    }
  }

  m.def("loss_names", [] {
    std::vector<std::string> names;
    for (const Spec* s : Specs()) names.push_back(SpecName(*s));
    return names;
  });
  m.def("multi_loss_names", [] {
    std::vector<std::string> names;
    for (const MultiSpec* s : MultiSpecs()) names.push_back(MultiSpecName(*s));
    return names;
  });
  m.def("loss_info", &Info, py::arg("name"),
        "The registry row of a loss: driver, aliases, argument names, docs, options.");
  m.def("fusable", [](const std::string& name) {
    const Spec* s = FindSpec(name);
    return s != nullptr && SpecFusable(*s);
  });
  m.def("loss_kind", [](const std::string& name) {
    return Info(name)["driver"].cast<std::string>();
  });
  m.def("_multi", &Multi);
  m.def(
      "resolve_options",
      [](const std::string& name, const py::dict& options) {
        if (const Spec* spec = FindSpec(name)) return CheckSpecOptions(*spec, options);
        if (FindMultiSpec(name)) return CheckMultiSpecOptions(name, options);
        throw py::value_error("unknown loss '" + name + "'");
      },
      py::arg("name"), py::arg("options"),
      "A call's options checked as the call checks them (ValueError/TypeError naming the "
      "option), every option's value returned with defaults filled in.");
  m.def("jax_handlers", &JaxHandlers,
        "name -> a PyCapsule of the loss's XLA FFI handler on the CPU (fastloss.jax).");
  m.def(
      "_fused",
      [](py::list terms, py::handle y_true, py::handle y_pred, const std::string& reduction,
         py::object weights, int want, py::object out, py::dict segments) {
        return Fused(terms, y_true, y_pred, reduction, weights, want, out, nullptr, segments);
      },
      py::arg("terms"), py::arg("y_true"), py::arg("y_pred"), py::arg("reduction"),
      py::arg("weights"), py::arg("want"), py::arg("out"), py::arg("segments") = py::dict());
  BindAccumulator(m);
  BindConfusion(m);
  m.def("set_num_threads", &fastloss::SetNumThreads, py::arg("n"));
  m.def("get_num_threads", &fastloss::GetNumThreads);
  m.def("simd_target", &fastloss::SimdTarget);
  m.def("available_simd_targets", &fastloss::AvailableSimdTargets);
  m.def("force_simd_target", &fastloss::ForceSimdTarget, py::arg("name"));
}
