// The smallest fastloss program: a Huber loss and its gradient over two
// std::vector buffers, then the per-element losses of a strided view.
#include <fastloss/fastloss.hpp>

#include <cstdio>
#include <vector>

int main() {
  std::vector<double> y_true = {0.0, 1.0, 2.0, 3.0, 4.0, 5.0};
  std::vector<double> y_pred = {0.1, 0.7, 3.5, 3.0, 4.2, 1.0};
  std::vector<double> grad(y_pred.size());
  const int64_t n = static_cast<int64_t>(y_pred.size());

  fastloss::Call<double> call;
  call.y_true = fastloss::View<const double>::Contiguous(y_true.data(), {n});
  call.y_pred = fastloss::View<const double>::Contiguous(y_pred.data(), {n});
  call.grad = fastloss::View<double>::Contiguous(grad.data(), {n});
  // value and gradient in one pass

  fastloss::HuberOptions options;
  options.delta = 1.0;
  const double value = fastloss::Huber(call, options);
  std::printf("huber (mean) = %.6f on %s\ngrad =", value, fastloss::SimdTarget().c_str());
  for (double g : grad) std::printf(" %.4f", g);
  std::printf("\n");

  // Every other element, as a 3-element view with stride 2, per element.
  std::vector<double> losses(3);
  fastloss::Call<double> strided;
  strided.y_true = call.y_true;
  strided.y_pred = call.y_pred;
  strided.y_true.shape[0] = strided.y_pred.shape[0] = 3;
  strided.y_true.strides[0] = strided.y_pred.strides[0] = 2;
  strided.reduction = fastloss::Reduction::kNone;
  strided.losses = fastloss::View<double>::Contiguous(losses.data(), {3});
  fastloss::Huber(strided, options);
  std::printf("losses[::2] = %.4f %.4f %.4f\n", losses[0], losses[1], losses[2]);

  // Invalid arguments throw fastloss::Error (a std::invalid_argument).
  try {
    options.delta = -1.0;
    fastloss::Huber(call, options);
  } catch (const fastloss::Error& e) {
    std::printf("error: %s\n", e.what());
  }
  return 0;
}
