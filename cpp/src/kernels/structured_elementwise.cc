// SIMD kernels of the elementwise losses of metric learning (contrastive, margin
// ranking, GAN and Wasserstein) on the elementwise driver, and of the box
// losses on the box driver, for every Highway target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/structured_elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "drivers/elementwise/elementwise-inl.h"
#include "drivers/groups/groups-inl.h"
#include "losses/losses.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {
namespace losses {
#include "losses/common-inl.h"          // NOLINT(build/include)
#include "losses/classification-inl.h"  // NOLINT(build/include)
#include "losses/structured-inl.h"      // NOLINT(build/include)
}  // namespace losses

FASTLOSS_ELEMENTWISE_KERNELS(Contrastive)
FASTLOSS_ELEMENTWISE_KERNELS(MarginRanking)
FASTLOSS_ELEMENTWISE_KERNELS(ScaledSoftplus)
FASTLOSS_ELEMENTWISE_KERNELS(Linear)
FASTLOSS_BOX_KERNELS(BoxIou)
FASTLOSS_BOX_KERNELS(BoxGiou)
FASTLOSS_BOX_KERNELS(BoxDiou)
FASTLOSS_BOX_KERNELS(BoxCiou)

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fastloss {

FASTLOSS_ELEMENTWISE_EXPORT(Contrastive)
FASTLOSS_ELEMENTWISE_EXPORT(MarginRanking)
FASTLOSS_ELEMENTWISE_EXPORT(ScaledSoftplus)
FASTLOSS_ELEMENTWISE_EXPORT(Linear)
FASTLOSS_BOX_EXPORT(BoxIou)
FASTLOSS_BOX_EXPORT(BoxGiou)
FASTLOSS_BOX_EXPORT(BoxDiou)
FASTLOSS_BOX_EXPORT(BoxCiou)

}  // namespace fastloss
#endif  // HWY_ONCE
