// SIMD kernels of the binary classification losses
// (losses/classification-inl.h) on the elementwise driver, for every Highway
// target. The row-wise ones are in classification_rows.cc (a separate file so
// that the two compile in parallel).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "classification.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "internal/elementwise-inl.h"
#include "losses/losses.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {
namespace losses {
// This target's copy of the functors (see losses/common-inl.h).
#include "losses/common-inl.h"          // NOLINT(build/include)
#include "losses/classification-inl.h"  // NOLINT(build/include)
}  // namespace losses

FASTLOSS_ELEMENTWISE_KERNELS(BceLogits)
FASTLOSS_ELEMENTWISE_KERNELS(BceLogitsPw)
FASTLOSS_ELEMENTWISE_KERNELS(BceProbs)
FASTLOSS_ELEMENTWISE_KERNELS(BceProbsPw)
FASTLOSS_ELEMENTWISE_KERNELS(BinaryFocalLogits)
FASTLOSS_ELEMENTWISE_KERNELS(BinaryFocalProbs)
FASTLOSS_ELEMENTWISE_KERNELS(Hinge)
FASTLOSS_ELEMENTWISE_KERNELS(SquaredHinge)
FASTLOSS_ELEMENTWISE_KERNELS(SoftMargin)

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fastloss {

FASTLOSS_ELEMENTWISE_EXPORT(BceLogits)
FASTLOSS_ELEMENTWISE_EXPORT(BceLogitsPw)
FASTLOSS_ELEMENTWISE_EXPORT(BceProbs)
FASTLOSS_ELEMENTWISE_EXPORT(BceProbsPw)
FASTLOSS_ELEMENTWISE_EXPORT(BinaryFocalLogits)
FASTLOSS_ELEMENTWISE_EXPORT(BinaryFocalProbs)
FASTLOSS_ELEMENTWISE_EXPORT(Hinge)
FASTLOSS_ELEMENTWISE_EXPORT(SquaredHinge)
FASTLOSS_ELEMENTWISE_EXPORT(SoftMargin)

}  // namespace fastloss
#endif  // HWY_ONCE
