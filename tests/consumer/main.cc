// Exits 0 when an installed fastloss computes a known loss and gradient.
#include <fastloss/fastloss.hpp>

#include <cmath>
#include <cstdio>

int main() {
  const float y[4] = {0.f, 1.f, 2.f, 3.f};
  const float p[4] = {0.5f, 1.f, 0.f, 3.f};
  float g[4];
  fastloss::Call<float> call;
  call.y_true = fastloss::View<const float>::Contiguous(y, {4});
  call.y_pred = fastloss::View<const float>::Contiguous(p, {4});
  call.grad = fastloss::View<float>::Contiguous(g, {4});
  const double v = fastloss::Mse(call);
  // mean of (0.25, 0, 4, 0) = 1.0625; grad = 2 r / 4.
  const bool ok = std::fabs(v - 1.0625) < 1e-7 && std::fabs(g[0] - 0.25f) < 1e-7f &&
                  std::fabs(g[2] + 1.0f) < 1e-7f && g[1] == 0.f;
  std::printf("fastloss %s (%s): mse = %g %s\n", FASTLOSS_VERSION_STRING,
              fastloss::SimdTarget().c_str(), v, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
