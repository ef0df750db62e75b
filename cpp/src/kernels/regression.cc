// SIMD kernels of the regression family (losses/regression-inl.h) and of the
// blocked sum the weighted mean uses, for every Highway target compiled in;
// one dispatched file, as Highway's skeleton.cc.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/regression.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "drivers/elementwise/elementwise-inl.h"
#include "losses/losses.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {
namespace losses {
// This target's copy of the functors (see losses/common-inl.h).
#include "losses/common-inl.h"      // NOLINT(build/include)
#include "losses/regression-inl.h"  // NOLINT(build/include)
}  // namespace losses

FASTLOSS_REGRESSION_FUNCTORS(FASTLOSS_ELEMENTWISE_KERNELS)

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fastloss {

FASTLOSS_REGRESSION_FUNCTORS(FASTLOSS_ELEMENTWISE_EXPORT)

}  // namespace fastloss
#endif  // HWY_ONCE
