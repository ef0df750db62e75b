// SIMD kernels of the binary classification losses
// (losses/classification-inl.h) on the elementwise driver, for every Highway
// target. The row-wise ones are in classification_rows.cc (a separate file so
// that the two compile in parallel).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/classification.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "drivers/elementwise/elementwise-inl.h"
#include "losses/losses.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {
namespace losses {
// This target's copy of the functors (see losses/common-inl.h).
#include "losses/common-inl.h"          // NOLINT(build/include)
#include "losses/classification-inl.h"  // NOLINT(build/include)
}  // namespace losses

FASTLOSS_BINARY_FUNCTORS(FASTLOSS_ELEMENTWISE_KERNELS)

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fastloss {

FASTLOSS_BINARY_FUNCTORS(FASTLOSS_ELEMENTWISE_EXPORT)

}  // namespace fastloss
#endif  // HWY_ONCE
