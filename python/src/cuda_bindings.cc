// fastloss._cuda: the CUDA entry points of <fastloss/cuda.hpp> for Python.
// Built only where a CUDA compiler is found; fastloss.cuda (Python) describes
// the device arrays (CUDA array interface, DLPack), allocates the outputs
// through the arrays' own library and calls elementwise() here. Nothing here
// synchronises with the device.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
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

// Reads the options a loss knows from a dict; an unknown key is a TypeError.
class Options {
 public:
  Options(const std::string& loss, py::dict d) : loss_(loss), d_(d) {}
  void Get(const char* key, double& v) { if (Has(key)) v = d_[key].cast<double>(); }
  void Get(const char* key, bool& v) { if (Has(key)) v = d_[key].cast<bool>(); }
  // alpha=None: no balancing.
  void GetOptional(const char* key, double& v, bool& has) {
    if (!Has(key)) return;
    py::object o = d_[key];
    has = !o.is_none();
    if (has) v = o.cast<double>();
  }
  // axes: None (every axis) or a sequence of ints.
  void GetAxes(const char* key, fastloss::OverlapOptions& o) {
    if (!Has(key)) return;
    py::object v = d_[key];
    o.all_axes = v.is_none();
    o.axes.clear();
    if (!o.all_axes) {
      for (py::handle a : v) o.axes.push_back(a.cast<int>());
    }
  }
  void GetString(const char* key, std::string& v) { if (Has(key)) v = d_[key].cast<std::string>(); }
  void Finish() {
    for (auto item : d_) {
      const std::string k = py::str(item.first);
      if (!seen_.count(k)) {
        throw py::type_error(loss_ + "() got an unexpected keyword argument '" + k +
                             "' (on the GPU)");
      }
    }
  }

 private:
  bool Has(const char* key) {
    seen_.insert(key);
    return d_.contains(key);
  }
  std::string loss_;
  py::dict d_;
  std::set<std::string> seen_;
};

void ReadOverlap(Options& o, fastloss::OverlapOptions& x) {
  o.Get("smooth", x.smooth);
  o.GetAxes("axes", x);
  o.Get("squared", x.squared);
  o.Get("from_logits", x.from_logits);
}

using Runner = std::function<cudaError_t(Options&, const DeviceCall&, cudaStream_t)>;

const std::map<std::string, Runner>& Table() {
  namespace fc = fastloss::cuda;
  static const auto* table = new std::map<std::string, Runner>{
      {"mse", [](Options& o, const DeviceCall& c, cudaStream_t s) { o.Finish(); return fc::Mse(c, {}, s); }},
      {"mae", [](Options& o, const DeviceCall& c, cudaStream_t s) { o.Finish(); return fc::Mae(c, {}, s); }},
      {"huber",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::HuberOptions x;
         o.Get("delta", x.delta);
         o.Finish();
         return fc::Huber(c, x, s);
       }},
      {"smooth_l1",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::SmoothL1Options x;
         o.Get("beta", x.beta);
         o.Finish();
         return fc::SmoothL1(c, x, s);
       }},
      {"quantile",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::QuantileOptions x;
         o.Get("q", x.q);
         o.Finish();
         return fc::Quantile(c, x, s);
       }},
      {"log_cosh",
       [](Options& o, const DeviceCall& c, cudaStream_t s) { o.Finish(); return fc::LogCosh(c, {}, s); }},
      {"msle", [](Options& o, const DeviceCall& c, cudaStream_t s) { o.Finish(); return fc::Msle(c, {}, s); }},
      {"poisson_nll",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::PoissonNllOptions x;
         o.Get("log_input", x.log_input);
         o.Get("full", x.full);
         o.Get("eps", x.eps);
         o.Finish();
         return fc::PoissonNll(c, x, s);
       }},
      {"mape",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::MapeOptions x;
         o.Get("eps", x.eps);
         o.Finish();
         return fc::Mape(c, x, s);
       }},
      {"binary_cross_entropy",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::BinaryCrossEntropyOptions x;
         o.Get("from_logits", x.from_logits);
         o.Get("eps", x.eps);
         o.Get("pos_weight", x.pos_weight);
         o.Get("label_smoothing", x.label_smoothing);
         o.Finish();
         return fc::BinaryCrossEntropy(c, x, s);
       }},
      {"binary_focal",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::BinaryFocalOptions x;
         o.GetOptional("alpha", x.alpha, x.has_alpha);
         o.Get("gamma", x.gamma);
         o.Get("from_logits", x.from_logits);
         o.Get("eps", x.eps);
         o.Get("label_smoothing", x.label_smoothing);
         o.Finish();
         return fc::BinaryFocal(c, x, s);
       }},
      {"hinge", [](Options& o, const DeviceCall& c, cudaStream_t s) { o.Finish(); return fc::Hinge(c, {}, s); }},
      {"squared_hinge",
       [](Options& o, const DeviceCall& c, cudaStream_t s) { o.Finish(); return fc::SquaredHinge(c, {}, s); }},
      {"soft_margin",
       [](Options& o, const DeviceCall& c, cudaStream_t s) { o.Finish(); return fc::SoftMargin(c, {}, s); }},
      {"dice",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::DiceOptions x;
         ReadOverlap(o, x);
         o.Finish();
         return fc::Dice(c, x, s);
       }},
      {"jaccard",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::JaccardOptions x;
         ReadOverlap(o, x);
         o.Finish();
         return fc::Jaccard(c, x, s);
       }},
      {"tversky",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::TverskyOptions x;
         ReadOverlap(o, x);
         o.Get("alpha", x.alpha);
         o.Get("beta", x.beta);
         o.Finish();
         return fc::Tversky(c, x, s);
       }},
      {"focal_tversky",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::FocalTverskyOptions x;
         ReadOverlap(o, x);
         o.Get("alpha", x.alpha);
         o.Get("beta", x.beta);
         o.Get("gamma", x.gamma);
         o.Finish();
         return fc::FocalTversky(c, x, s);
       }},
      {"box_iou",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::BoxIouOptions x;
         std::string kind = "iou";
         o.GetString("kind", kind);
         o.Get("eps", x.eps);
         o.Finish();
         if (kind == "iou") {
           x.kind = fastloss::BoxIouKind::kIou;
         } else if (kind == "giou") {
           x.kind = fastloss::BoxIouKind::kGiou;
         } else if (kind == "diou") {
           x.kind = fastloss::BoxIouKind::kDiou;
         } else if (kind == "ciou") {
           x.kind = fastloss::BoxIouKind::kCiou;
         } else {
           throw py::value_error("box_iou: kind must be one of 'iou', 'giou', 'diou', 'ciou', got '" +
                                 kind + "'");
         }
         return fc::BoxIou(c, x, s);
       }},
      {"contrastive",
       [](Options& o, const DeviceCall& c, cudaStream_t s) {
         fastloss::ContrastiveOptions x;
         o.Get("margin", x.margin);
         o.Finish();
         return fc::Contrastive(c, x, s);
       }},
  };
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
  const std::string key = name == "bce" ? "binary_cross_entropy" : name;
  const auto it = Table().find(key);
  if (it == Table().end()) {
    throw py::type_error(name + " has no GPU implementation yet (fastloss._cuda.LOSSES lists "
                                "the losses that do)");
  }
  Options opts(name, options);
  DeviceCall call;
  int device = -1;
  call.y_pred = ToView("y_pred", y_pred, &device);
  call.y_true = ToView("y_true", y_true, &device);
  call.reduction = ParseReduction(name, reduction);
  if (!weights.is_none()) {
    call.weights = ToView("weights", weights, &device);
    call.has_weights = true;
  }
  if (!grad.is_none()) {
    call.grad = ToView("grad", grad, &device);
    call.has_grad = true;
  }
  if (!losses.is_none()) {
    call.losses = ToView("losses", losses, &device);
    call.has_losses = true;
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
  DeviceView pos_weight;
  const bool has_aux = !aux.is_none();
  if (has_aux) {
    if (key != "binary_cross_entropy") {
      throw py::type_error(name + ": aux (an array pos_weight) is for binary_cross_entropy only");
    }
    pos_weight = ToView("pos_weight", aux, &device);
  }
  Launch(device, [&] {
    if (!has_aux) {
      // The runner reads its options and calls opts.Finish() (unknown keys:
      // TypeError) before it launches anything.
      return it->second(opts, call, reinterpret_cast<cudaStream_t>(stream));
    }
    fastloss::BinaryCrossEntropyOptions x;
    opts.Get("from_logits", x.from_logits);
    opts.Get("eps", x.eps);
    opts.Get("label_smoothing", x.label_smoothing);
    opts.Finish();
    return fastloss::cuda::BinaryCrossEntropy(call, pos_weight, x,
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
    s.has_weights = true;
  }
  if (!c[2].is_none()) {
    s.grad = ToView("grad", c[2], device);
    s.has_grad = true;
  }
  if (!c[3].is_none()) {
    s.losses = ToView("losses", c[3], device);
    s.has_losses = true;
  }
  return s;
}

void Scores(const std::string& name, py::dict options, const std::string& reduction,
            py::list calls, py::object result, uintptr_t stream) {
  namespace fc = fastloss::cuda;
  const bool pair = name == "gan_discriminator" || name == "wasserstein_critic";
  const bool single = name == "gan_generator" || name == "wasserstein_generator";
  if (!pair && !single) {
    throw py::type_error(name + " has no GPU implementation as a score loss (scores() runs "
                         "gan_discriminator, gan_generator, wasserstein_critic, wasserstein_generator)");
  }
  const size_t want = pair ? 2 : 1;
  if (py::len(calls) != want) {
    throw py::type_error(name + ": takes " + std::to_string(want) + " score array" +
                         (want == 2 ? "s" : "") + ", got " + std::to_string(py::len(calls)));
  }
  Options opts(name, options);
  bool saturating = false;
  if (name == "gan_generator") opts.Get("saturating", saturating);
  opts.Finish();
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
  Launch(device, [&] {
    if (name == "gan_discriminator") return fc::GanDiscriminator(c[0], c[1], r, out, s);
    if (name == "wasserstein_critic") return fc::WassersteinCritic(c[0], c[1], r, out, s);
    if (name == "gan_generator") return fc::GanGenerator(c[0], r, saturating, out, s);
    return fc::WassersteinGenerator(c[0], r, out, s);
  });
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
  py::list names;
  for (const auto& kv : Table()) names.append(kv.first);
  names.append("bce");
  for (const char* n : {"gan_discriminator", "gan_generator", "wasserstein_critic",
                        "wasserstein_generator"}) {
    names.append(n);
  }
  m.attr("LOSSES") = py::tuple(names);
}
