// fastloss on the GPU: the elementwise losses of fastloss.hpp over device
// memory, through the same loss functors as the CPU (one formula per loss).
//
//   #include <fastloss/cuda.hpp>
//   fastloss::cuda::DeviceCall call;
//   call.y_true = fastloss::cuda::DeviceView::Contiguous(d_y, DType::kFloat32, {n});
//   call.y_pred = fastloss::cuda::DeviceView::Contiguous(d_p, DType::kFloat32, {n});
//   call.grad = fastloss::cuda::DeviceView::Contiguous(d_g, DType::kFloat32, {n});  // optional
//   call.result = d_value;            // one float on the device
//   cudaError_t err = fastloss::cuda::SmoothL1(call, {/*beta=*/2.0}, stream);
//
// Conventions (CUB's): every entry point enqueues its work on `stream` and
// returns without waiting for it; the reduced value is written to device
// memory (`result`), never copied to the host. The return value is
// cudaSuccess, cudaErrorInvalidValue for bad arguments (nothing is launched;
// LastErrorMessage() says which argument and why), or the CUDA error of a
// failed allocation or launch.
//
// Reductions are deterministic: each block folds its elements in a fixed
// order into float64, and one final block folds the block partials in index
// order. The partition depends only on the element count, so the bits are
// the same on every run and every device with the same count.
//
// float16 and bfloat16 inputs are computed in float32 with float32 loss
// functors and float64 partials; the gradient and per-element losses are
// stored in the input's dtype, the reduced value as float32.
#ifndef FASTLOSS_CUDA_HPP_
#define FASTLOSS_CUDA_HPP_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

#include "fastloss/fastloss.hpp"

namespace fastloss {
namespace cuda {

enum class DType { kFloat32, kFloat64, kFloat16, kBFloat16 };

// A strided view of device memory (View's fields, data untyped) and the
// element type; strides in elements (may be 0 or negative).
struct DeviceView : View<void> {
  DType dtype = DType::kFloat32;

  // Extents of any integer type, as View::Contiguous.
  template <typename I, typename = std::enable_if_t<std::is_integral<I>::value>>
  static DeviceView Contiguous(void* data, DType dtype, std::initializer_list<I> shape) {
    DeviceView v;
    static_cast<View<void>&>(v) = View<void>::Contiguous(data, shape);
    v.dtype = dtype;
    return v;
  }
  static DeviceView Contiguous(void* data, DType dtype, std::initializer_list<Extent> shape) {
    DeviceView v;
    static_cast<View<void>&>(v) = View<void>::Contiguous(data, shape);
    v.dtype = dtype;
    return v;
  }
};

// One loss evaluation on the device: Call<T>'s fields with device views.
// y_true, weights, grad and losses have y_pred's dtype; weights broadcast to
// y_pred (NumPy rules), the others have its shape exactly.
struct DeviceCall {
  DeviceView y_true;
  DeviceView y_pred;
  std::optional<DeviceView> weights;
  Reduction reduction = Reduction::kMean;
  std::optional<DeviceView> grad;  // gradient of the reduced value with respect to y_pred
  std::optional<DeviceView> losses;  // kNone: w * l per element
  // kMean / kSum: where the reduced value goes (device memory): a double when
  // y_pred is float64, else a float. May be null when only the gradient is
  // wanted. Mean of nothing is NaN, sum of nothing 0.
  void* result = nullptr;
};

// The elementwise losses (options and formulas as in fastloss.hpp). On the
// GPU, y_true range checks that the CPU reports as an Error (binary cross
// entropy on probabilities: y_true in [0, 1]) cannot stop the call without a
// host synchronisation: an out-of-range y_true gives a NaN loss and gradient
// at that element, so the reduced value is NaN too.
// The stream's device must be the current device (cudaSetDevice), and every
// pointer must be aligned to its element size.
#define FASTLOSS_CUDA_DECLARE(Name, name, driver, aliases, true_name, pred_name) \
  FASTLOSS_ELEMENTWISE_ONLY_##driver(                                           \
      cudaError_t Name(const DeviceCall& call, const Name##Options& = {}, cudaStream_t stream = 0);)
FASTLOSS_LOSSES(FASTLOSS_CUDA_DECLARE)

// BCE with a per-element pos_weight array broadcast to y_pred (y_pred's
// dtype; the options' scalar pos_weight is then ignored), as the CPU overload.
cudaError_t BinaryCrossEntropy(const DeviceCall& call, const DeviceView& pos_weight,
                               const BinaryCrossEntropyOptions& = {}, cudaStream_t stream = 0);

// --- Losses of several inputs, elementwise (the Elements rows of
// FASTLOSS_MULTI_LOSSES) ---------------------------------------------------------
// MultiCall's fields with device views: two differentiable inputs and a
// target, all of one shape and one dtype; weights broadcast to them;
// grads[k] (optional) of inputs[k]'s shape; losses (kNone) of that shape;
// the value to `result` as in DeviceCall. Errors use the row's argument
// names; a target (or input) outside the loss's domain gives NaN at that
// element, as for the elementwise losses.
struct DeviceMultiCall {
  DeviceView inputs[2];
  DeviceView target;
  std::optional<DeviceView> weights;
  Reduction reduction = Reduction::kMean;
  std::optional<DeviceView> grads[2];
  std::optional<DeviceView> losses;
  void* result = nullptr;
};
#define FASTLOSS_CUDA_DECLARE_ELEMENTS(Name, name, kind, aliases, args, target)     \
  FASTLOSS_ELEMENTS_ONLY_##kind(cudaError_t Name(const DeviceMultiCall& call,        \
                                                 const Name##Options& = {},          \
                                                 cudaStream_t stream = 0);)
FASTLOSS_MULTI_LOSSES(FASTLOSS_CUDA_DECLARE_ELEMENTS)

// --- Segmentation (the multi-sum + finalize driver) --------------------------------
// Options, axes and formulas as in fastloss.hpp: per score (y_pred's shape
// without the reduced axes), the sums I, Sy, Sp over the reduced axes in
// float64, then the score. `losses` (kNone) has the scores' shape, `weights`
// broadcast to it, `grad` has y_pred's shape. The work: one pass for the
// sums (a warp per chunk of 2048 elements of a score, folded in chunk order
// per score), one thread per score for the finalize, one pass for the
// gradient; nothing depends on the grid size, so the bits are fixed.
#define FASTLOSS_CUDA_DECLARE_REGIONS(Name, name, driver, aliases, true_name, pred_name) \
  FASTLOSS_REGIONS_ONLY_##driver(                                                       \
      cudaError_t Name(const DeviceCall& call, const Name##Options& = {}, cudaStream_t stream = 0);)
FASTLOSS_LOSSES(FASTLOSS_CUDA_DECLARE_REGIONS)

// --- Detection ------------------------------------------------------------------
// Boxes (x1, y1, x2, y2) along a last axis of 4 (any strides); `losses` and
// `weights` over the boxes' shape (y_pred's without the last axis). Errors
// name y_true and y_pred boxes_true and boxes_pred.
cudaError_t BoxIou(const DeviceCall& call, const BoxIouOptions& = {}, cudaStream_t stream = 0);

// --- Adversarial losses: score arrays reduced on their own and added ----------------
// One array of scores (logits for the GAN losses) with its own weights
// (broadcast to it), gradient and per-element losses (kNone).
struct DeviceScoreCall {
  DeviceView scores;
  std::optional<DeviceView> weights;
  std::optional<DeviceView> grad;
  std::optional<DeviceView> losses;
};
// As fastloss.hpp's: the value (sum of the arrays' reductions) goes to
// `result` (device memory: a double for float64 scores, else a float; may
// be null when only gradients or losses are wanted). Both arrays are checked
// before either is launched; they must have the same dtype.
cudaError_t GanDiscriminator(const DeviceScoreCall& real, const DeviceScoreCall& fake,
                             Reduction reduction, void* result, cudaStream_t stream = 0);
cudaError_t GanGenerator(const DeviceScoreCall& fake, Reduction reduction, bool saturating,
                         void* result, cudaStream_t stream = 0);
cudaError_t WassersteinCritic(const DeviceScoreCall& real, const DeviceScoreCall& fake,
                              Reduction reduction, void* result, cudaStream_t stream = 0);
cudaError_t WassersteinGenerator(const DeviceScoreCall& fake, Reduction reduction, void* result,
                                 cudaStream_t stream = 0);
// The same with the options structs of the rows (fastloss/adversarial.hpp):
// every row of FASTLOSS_MULTI_LOSSES of a score kind has one.
inline cudaError_t GanDiscriminator(const DeviceScoreCall& real, const DeviceScoreCall& fake,
                                    Reduction reduction, const GanDiscriminatorOptions&,
                                    void* result, cudaStream_t stream = 0) {
  return GanDiscriminator(real, fake, reduction, result, stream);
}
inline cudaError_t GanGenerator(const DeviceScoreCall& fake, Reduction reduction,
                                const GanGeneratorOptions& o, void* result,
                                cudaStream_t stream = 0) {
  return GanGenerator(fake, reduction, o.saturating, result, stream);
}
inline cudaError_t WassersteinCritic(const DeviceScoreCall& real, const DeviceScoreCall& fake,
                                     Reduction reduction, const WassersteinCriticOptions&,
                                     void* result, cudaStream_t stream = 0) {
  return WassersteinCritic(real, fake, reduction, result, stream);
}
inline cudaError_t WassersteinGenerator(const DeviceScoreCall& fake, Reduction reduction,
                                        const WassersteinGeneratorOptions&, void* result,
                                        cudaStream_t stream = 0) {
  return WassersteinGenerator(fake, reduction, result, stream);
}

// Why the last entry point called on this thread returned
// cudaErrorInvalidValue ("" after a success).
const char* LastErrorMessage();

// Devices: 0 (and IsAvailable() false) without a driver or a device.
int DeviceCount();
bool IsAvailable();
std::string DeviceName(int device);

}  // namespace cuda
}  // namespace fastloss

#endif  // FASTLOSS_CUDA_HPP_
