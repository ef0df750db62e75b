// fastloss._cuda: the CUDA entry points of <fastloss/cuda.hpp> for Python.
// Built only where a CUDA compiler is found; fastloss.cuda (Python) describes
// the device arrays (CUDA array interface, DLPack), allocates the outputs
// through the arrays' own library and calls elementwise() here with the
// options fastloss._core parsed (read back through the registry's field lists). Nothing here
// synchronises with the device.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>
#include <string>

#include "fastloss/cuda.hpp"

namespace py = pybind11;
using fastloss::cuda::DeviceCall;
using fastloss::cuda::DeviceView;
using fastloss::cuda::DType;

namespace {

// (ptr, shape, strides in elements, dtype name, device) -> DeviceView.
DeviceView ToView(const char* arg, py::handle desc, int* device) {
  if (!py::isinstance<py::tuple>(desc) || py::len(desc) != 5) {
    throw py::type_error(std::string("elementwise: ") + arg +
                         " must be a tuple (ptr, shape, strides, dtype, device)");
  }
  py::tuple t = py::reinterpret_borrow<py::tuple>(desc);
  DeviceView v;
  v.data = reinterpret_cast<void*>(t[0].cast<uintptr_t>());
  py::tuple shape = t[1].cast<py::tuple>(), strides = t[2].cast<py::tuple>();
  if (shape.size() != strides.size() || shape.size() > static_cast<size_t>(fastloss::kMaxRank)) {
    throw py::value_error(std::string("elementwise: ") + arg + ": bad shape/strides");
  }
  v.rank = static_cast<int>(shape.size());
  for (int k = 0; k < v.rank; ++k) {
    v.shape[k] = shape[k].cast<int64_t>();
    v.strides[k] = strides[k].cast<int64_t>();
  }
  const std::string dtype = t[3].cast<std::string>();
  if (dtype == "float32") {
    v.dtype = DType::kFloat32;
  } else if (dtype == "float64") {
    v.dtype = DType::kFloat64;
  } else if (dtype == "float16") {
    v.dtype = DType::kFloat16;
  } else if (dtype == "bfloat16") {
    v.dtype = DType::kBFloat16;
  } else {
    throw py::type_error(std::string("elementwise: ") + arg +
                         " must be float32, float64, float16 or bfloat16, got " + dtype);
  }
  const int dev = t[4].cast<int>();
  if (*device < 0) {
    *device = dev;
  } else if (dev != *device) {
    throw py::value_error(std::string("elementwise: ") + arg + " is on device " +
                          std::to_string(dev) + ", y_pred on device " + std::to_string(*device));
  }
  return v;
}

// Reads a loss's options from the dict fastloss._core made of them (its
// FieldExporter: every field, as plain Python values, already parsed and
// checked) through the same field list (Options::Fields).
struct DictReader {
  const char* loss;
  const py::dict& d;
  bool Has(const char* f) const { return d.contains(f); }
  void Real(const char* f, double& x, fastloss::Check, const char*) {
    if (Has(f)) x = d[f].cast<double>();
  }
  void Bool(const char* f, bool& x, const char*) {
    if (Has(f)) x = d[f].cast<bool>();
  }
  void Int(const char* f, int& x, const char*) {
    if (Has(f)) x = d[f].cast<int>();
  }
  void OptionalReal(const char* f, std::optional<double>& x, fastloss::Check, const char*) {
    if (!Has(f)) return;
    py::object v = d[f];
    x.reset();
    if (!v.is_none()) x = v.cast<double>();
  }
  void OptionalInt(const char* f, std::optional<int64_t>& x, const char*) {
    if (!Has(f)) return;
    py::object v = d[f];
    x.reset();
    if (!v.is_none()) x = v.cast<int64_t>();
  }
  void Axes(const char* f, bool& all, std::vector<int>& axes, const char*) {
    if (!Has(f)) return;
    py::object v = d[f];
    all = v.is_none();
    axes.clear();
    if (!all) {
      for (py::handle a : v) axes.push_back(a.cast<int>());
    }
  }
  template <class E>
  void Choice(const char* f, E& x, const char* const* choices, const char*) {
    if (!Has(f)) return;
    py::object v = d[f];
    std::string list;
    for (int i = 0; choices[i]; ++i) {
      if (py::isinstance<py::str>(v) && v.cast<std::string>() == choices[i]) {
        x = static_cast<E>(i);
        return;
      }
      list += std::string(i ? ", " : "") + "'" + choices[i] + "'";
    }
    // The front door checked it; a direct call of the extension gets the same words.
    throw py::value_error(std::string(loss) + ": " + f + " must be one of " + list + ", got " +
                          py::repr(v).cast<std::string>());
  }
  void RealOrArray(const char* f, double& x, fastloss::Check c, const char* doc) {
    Real(f, x, c, doc);
  }
  void ClassWeights(const char*, const char*) {}
};

// The entry point of one loss: options from the dict, then the launch
// (aux: an array given for a real-or-array option, e.g. BCE's pos_weight).
using Runner = cudaError_t (*)(const py::dict& options, const DeviceCall& call,
                               const DeviceView* aux, cudaStream_t stream);

template <class O>
cudaError_t RunWithArray(const DeviceCall&, const DeviceView&, const O&, cudaStream_t) {
  throw py::type_error("this loss takes no array option");  // no such field: unreachable
}
cudaError_t RunWithArray(const DeviceCall& call, const DeviceView& aux,
                         const fastloss::BinaryCrossEntropyOptions& o, cudaStream_t stream) {
  return fastloss::cuda::BinaryCrossEntropy(call, aux, o, stream);
}

#define FASTLOSS_CUDA_RUNNER_ROW(Name, name)                                            \
  [](const py::dict& d, const DeviceCall& call, const DeviceView* aux, cudaStream_t s) { \
    fastloss::Name##Options o{};                                                        \
    fastloss::Name##Options::Fields(o, DictReader{#name, d});                           \
    if (aux) return RunWithArray(call, *aux, o, s);                                     \
    return fastloss::cuda::Name(call, o, s);                                            \
  }
#define FASTLOSS_CUDA_RUNNER(Name, name, driver, aliases, true_name, pred_name) \
  FASTLOSS_ON_GPU_##driver({#name, FASTLOSS_CUDA_RUNNER_ROW(Name, name)},)

// The registry's rows the GPU backend runs (elementwise, region and box
// losses), by name.
const std::map<std::string, Runner>& Table() {
  static const auto* table =
      new std::map<std::string, Runner>{FASTLOSS_LOSSES(FASTLOSS_CUDA_RUNNER)};
  return *table;
}

fastloss::Reduction ParseReduction(const std::string& loss, const std::string& r) {
  if (r == "mean") return fastloss::Reduction::kMean;
  if (r == "sum") return fastloss::Reduction::kSum;
  if (r == "none") return fastloss::Reduction::kNone;
  throw py::value_error(loss + ": reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}

// Makes `device` current for the call and restores the caller's device.
class DeviceGuard {
 public:
  // Without a driver there is no current device: nothing is switched, and
  // the entry point still checks its arguments before it fails to launch.
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) {
      cudaGetLastError();
      previous_ = -1;
      return;
    }
    if (device >= 0 && device != previous_) Check(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  static void Check(cudaError_t e) {
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error(std::string("CUDA error: ") + cudaGetErrorName(e) + ": " +
                               cudaGetErrorString(e));
    }
  }

 private:
  int previous_ = -1;
};

// Runs an entry point on `device`: its argument errors become ValueError
// (with the entry point's message), CUDA errors RuntimeError.
template <class F>
void Launch(int device, F&& f) {
  cudaError_t err;
  {
    DeviceGuard guard(device);
    err = f();
  }
  if (err == cudaErrorInvalidValue && *fastloss::cuda::LastErrorMessage()) {
    throw py::value_error(fastloss::cuda::LastErrorMessage());
  }
  DeviceGuard::Check(err);
}

void Elementwise(const std::string& name, py::dict options, const std::string& reduction,
                 py::object y_true, py::object y_pred, py::object weights, py::object grad,
                 py::object losses, py::object result, uintptr_t stream, py::object aux) {
  const auto it = Table().find(name);
  if (it == Table().end()) {
    throw py::type_error(name + " has no GPU implementation yet (fastloss._cuda.LOSSES lists "
                                "the losses that do)");
  }
  DeviceCall call;
  int device = -1;
  call.y_pred = ToView("y_pred", y_pred, &device);
  call.y_true = ToView("y_true", y_true, &device);
  call.reduction = ParseReduction(name, reduction);
  if (!weights.is_none()) {
    call.weights = ToView("weights", weights, &device);
  }
  if (!grad.is_none()) {
    call.grad = ToView("grad", grad, &device);
  }
  if (!losses.is_none()) {
    call.losses = ToView("losses", losses, &device);
  }
  if (!result.is_none()) {
    const DeviceView r = ToView("result", result, &device);
    const DType want = call.y_pred.dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
    if (r.rank != 0 || r.dtype != want) {
      throw py::value_error(name + ": result must be a 0-d " +
                            (want == DType::kFloat64 ? "float64" : "float32") + " device array");
    }
    call.result = r.data;
  }
  DeviceView aux_view;
  if (!aux.is_none()) aux_view = ToView("aux", aux, &device);
  Launch(device, [&] {
    return it->second(options, call, aux.is_none() ? nullptr : &aux_view,
                      reinterpret_cast<cudaStream_t>(stream));
  });
}

// (scores, weights, grad, losses) descs -> DeviceScoreCall.
fastloss::cuda::DeviceScoreCall ToScoreCall(py::handle t, int* device) {
  if (!py::isinstance<py::tuple>(t) || py::len(t) != 4) {
    throw py::type_error("scores: each call must be a tuple (scores, weights, grad, losses)");
  }
  py::tuple c = py::reinterpret_borrow<py::tuple>(t);
  fastloss::cuda::DeviceScoreCall s;
  s.scores = ToView("scores", c[0], device);
  if (!c[1].is_none()) {
    s.weights = ToView("weights", c[1], device);
  }
  if (!c[2].is_none()) {
    s.grad = ToView("grad", c[2], device);
  }
  if (!c[3].is_none()) {
    s.losses = ToView("losses", c[3], device);
  }
  return s;
}

// A score loss's options from the dict fastloss._core made of them; a key
// that is no field of O is a TypeError (a direct call of the extension).
template <class O>
O ScoreOptions(const std::string& name, const py::dict& d) {
  const std::vector<std::string> fields = fastloss::FieldNames<O>();
  for (auto item : d) {
    const std::string k = py::str(item.first);
    if (std::find(fields.begin(), fields.end(), k) == fields.end()) {
      throw py::type_error(name + "() got an unexpected keyword argument '" + k + "' (on the GPU)");
    }
  }
  O o{};
  O::Fields(o, DictReader{name.c_str(), d});
  return o;
}

// The losses of one or two score arrays: the rows of FASTLOSS_MULTI_LOSSES
// of the kinds ScorePair and Scores, by name.
struct ScoreEntry {
  size_t arrays;
  cudaError_t (*run)(const std::string& name, const py::dict& options,
                     const fastloss::cuda::DeviceScoreCall* calls, fastloss::Reduction r,
                     void* result, cudaStream_t stream);
};
#define FASTLOSS_CUDA_SCORES_ScorePair(Name)                                                \
  {2, [](const std::string& n, const py::dict& d, const fastloss::cuda::DeviceScoreCall* c,  \
         fastloss::Reduction r, void* out, cudaStream_t s) {                                 \
     return fastloss::cuda::Name(c[0], c[1], r, ScoreOptions<fastloss::Name##Options>(n, d), \
                                 out, s);                                                    \
   }}
#define FASTLOSS_CUDA_SCORES_Scores(Name)                                                   \
  {1, [](const std::string& n, const py::dict& d, const fastloss::cuda::DeviceScoreCall* c,  \
         fastloss::Reduction r, void* out, cudaStream_t s) {                                 \
     return fastloss::cuda::Name(c[0], r, ScoreOptions<fastloss::Name##Options>(n, d), out,  \
                                 s);                                                         \
   }}
#define FASTLOSS_CUDA_SCORE_ROW_ScorePair(Name, name) {#name, FASTLOSS_CUDA_SCORES_ScorePair(Name)},
#define FASTLOSS_CUDA_SCORE_ROW_Scores(Name, name) {#name, FASTLOSS_CUDA_SCORES_Scores(Name)},
#define FASTLOSS_CUDA_SCORE_ROW_Rows(Name, name)
#define FASTLOSS_CUDA_SCORE_ROW_Elements(Name, name)
#define FASTLOSS_CUDA_SCORE_ROW_Pairs(Name, name)
#define FASTLOSS_CUDA_SCORE_ROW_Samples(Name, name)
#define FASTLOSS_CUDA_SCORE_ROW_Penalty(Name, name)
#define FASTLOSS_CUDA_SCORE_ROW(Name, name, kind, aliases, args, target) \
  FASTLOSS_CUDA_SCORE_ROW_##kind(Name, name)

const std::map<std::string, ScoreEntry>& ScoreTable() {
  static const auto* table =
      new std::map<std::string, ScoreEntry>{FASTLOSS_MULTI_LOSSES(FASTLOSS_CUDA_SCORE_ROW)};
  return *table;
}

// The losses of two inputs and a target, elementwise: the rows of
// FASTLOSS_MULTI_LOSSES of the kind Elements, by name.
using ElementsRunner = cudaError_t (*)(const std::string& name, const py::dict& options,
                                       const fastloss::cuda::DeviceMultiCall& call,
                                       cudaStream_t stream);
#define FASTLOSS_CUDA_ELEMENTS_ROW(Name, name, kind, aliases, args, target)               \
  FASTLOSS_ELEMENTS_ONLY_##kind(                                                          \
      {#name, [](const std::string& n, const py::dict& d,                                 \
                 const fastloss::cuda::DeviceMultiCall& c, cudaStream_t s) {              \
         return fastloss::cuda::Name(c, ScoreOptions<fastloss::Name##Options>(n, d), s);  \
       }},)

const std::map<std::string, ElementsRunner>& ElementsTable() {
  static const auto* table = new std::map<std::string, ElementsRunner>{
      FASTLOSS_MULTI_LOSSES(FASTLOSS_CUDA_ELEMENTS_ROW)};
  return *table;
}

// inputs, grads: lists of two descs (grads' entries may be None).
void Elements(const std::string& name, py::dict options, const std::string& reduction,
              py::list inputs, py::object target, py::object weights, py::list grads,
              py::object losses, py::object result, uintptr_t stream) {
  namespace fc = fastloss::cuda;
  const auto it = ElementsTable().find(name);
  if (it == ElementsTable().end()) {
    throw py::type_error(name + " has no GPU implementation as an elementwise loss of several "
                                "inputs");
  }
  if (py::len(inputs) != 2 || py::len(grads) != 2) {
    throw py::type_error(name + ": takes two inputs and two gradient slots");
  }
  int device = -1;
  fc::DeviceMultiCall call;
  for (int k = 0; k < 2; ++k) {
    call.inputs[k] = ToView("input", inputs[k], &device);
    if (!grads[k].is_none()) call.grads[k] = ToView("grad", grads[k], &device);
  }
  call.target = ToView("target", target, &device);
  call.reduction = ParseReduction(name, reduction);
  if (!weights.is_none()) call.weights = ToView("weights", weights, &device);
  if (!losses.is_none()) call.losses = ToView("losses", losses, &device);
  if (!result.is_none()) {
    const DeviceView v = ToView("result", result, &device);
    const DType w = call.inputs[0].dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
    if (v.rank != 0 || v.dtype != w) {
      throw py::value_error(name + ": result must be a 0-d " +
                            (w == DType::kFloat64 ? "float64" : "float32") + " device array");
    }
    call.result = v.data;
  }
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  Launch(device, [&] { return it->second(name, options, call, s); });
}

void Scores(const std::string& name, py::dict options, const std::string& reduction,
            py::list calls, py::object result, uintptr_t stream) {
  namespace fc = fastloss::cuda;
  const auto it = ScoreTable().find(name);
  if (it == ScoreTable().end()) {
    std::string list;
    for (const auto& kv : ScoreTable()) list += (list.empty() ? "" : ", ") + kv.first;
    throw py::type_error(name + " has no GPU implementation as a score loss (scores() runs " +
                         list + ")");
  }
  const size_t want = it->second.arrays;
  if (py::len(calls) != want) {
    throw py::type_error(name + ": takes " + std::to_string(want) + " score array" +
                         (want == 2 ? "s" : "") + ", got " + std::to_string(py::len(calls)));
  }
  int device = -1;
  fc::DeviceScoreCall c[2];
  for (size_t i = 0; i < want; ++i) c[i] = ToScoreCall(calls[i], &device);
  const fastloss::Reduction r = ParseReduction(name, reduction);
  void* out = nullptr;
  if (!result.is_none()) {
    const DeviceView v = ToView("result", result, &device);
    const DType w = c[0].scores.dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
    if (v.rank != 0 || v.dtype != w) {
      throw py::value_error(name + ": result must be a 0-d " +
                            (w == DType::kFloat64 ? "float64" : "float32") + " device array");
    }
    out = v.data;
  }
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  Launch(device, [&] { return it->second.run(name, options, c, r, out, s); });
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastloss on CUDA devices (internal; use fastloss.cuda and the loss objects)";
  m.def("is_available", &fastloss::cuda::IsAvailable,
        "Whether a CUDA driver and at least one device are present.");
  m.def("device_count", &fastloss::cuda::DeviceCount, "The number of CUDA devices (0 without a driver).");
  m.def("device_name", [](int device) {
    try {
      return fastloss::cuda::DeviceName(device);
    } catch (const fastloss::Error& e) {
      throw py::value_error(e.what());
    }
  }, py::arg("device") = 0, "The name of CUDA device `device`.");
  m.def("elementwise", &Elementwise, py::arg("name"), py::arg("options"), py::arg("reduction"),
        py::arg("y_true"), py::arg("y_pred"), py::arg("weights"), py::arg("grad"),
        py::arg("losses"), py::arg("result"), py::arg("stream"), py::arg("aux") = py::none(),
        "Enqueues one loss of (y_true, y_pred) on `stream` (aux: BCE's pos_weight array); "
        "see fastloss.cuda.");
  m.def("scores", &Scores, py::arg("name"), py::arg("options"), py::arg("reduction"),
        py::arg("calls"), py::arg("result"), py::arg("stream"),
        "Enqueues an adversarial loss of one or two score arrays on `stream`; calls holds "
        "(scores, weights, grad, losses) descs per array.");
  m.def("elements", &Elements, py::arg("name"), py::arg("options"), py::arg("reduction"),
        py::arg("inputs"), py::arg("target"), py::arg("weights"), py::arg("grads"),
        py::arg("losses"), py::arg("result"), py::arg("stream"),
        "Enqueues an elementwise loss of two inputs and a target on `stream` (the Elements "
        "rows of the registry); grads holds a desc or None per input.");
  py::list names, elements;
  for (const auto& kv : Table()) names.append(kv.first);
  for (const auto& kv : ScoreTable()) names.append(kv.first);
  for (const auto& kv : ElementsTable()) {
    names.append(kv.first);
    elements.append(kv.first);
  }
  m.attr("LOSSES") = py::tuple(names);
  m.attr("ELEMENTS_LOSSES") = py::tuple(elements);
}
