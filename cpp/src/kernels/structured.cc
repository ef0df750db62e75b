// SIMD kernels of the group losses (losses/structured-inl.h) on the
// multi-sum + finalize driver, for every Highway target. The elementwise and
// box ones are in structured_elementwise.cc (compiled in parallel).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/structured.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
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

FASTLOSS_GROUP_KERNELS(OverlapPlain)
FASTLOSS_GROUP_KERNELS(OverlapSquared)
FASTLOSS_GROUP_KERNELS(OverlapLogits)
FASTLOSS_GROUP_KERNELS(OverlapSquaredLogits)
FASTLOSS_GROUP_KERNELS(CosineSimilarity)
FASTLOSS_GROUP_KERNELS(CosineEmbedding)
FASTLOSS_GROUP_KERNELS(TripletL1)
FASTLOSS_GROUP_KERNELS(TripletL2)
FASTLOSS_GROUP_KERNELS(TripletLp)
FASTLOSS_GROUP_KERNELS(TripletL1Swap)
FASTLOSS_GROUP_KERNELS(TripletL2Swap)
FASTLOSS_GROUP_KERNELS(TripletLpSwap)
FASTLOSS_GROUP_KERNELS(ContrastivePairs)
FASTLOSS_GROUP_KERNELS(SquaredNorm)

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fastloss {

FASTLOSS_GROUP_EXPORT(OverlapPlain)
FASTLOSS_GROUP_EXPORT(OverlapSquared)
FASTLOSS_GROUP_EXPORT(OverlapLogits)
FASTLOSS_GROUP_EXPORT(OverlapSquaredLogits)
FASTLOSS_GROUP_EXPORT(CosineSimilarity)
FASTLOSS_GROUP_EXPORT(CosineEmbedding)
FASTLOSS_GROUP_EXPORT(TripletL1)
FASTLOSS_GROUP_EXPORT(TripletL2)
FASTLOSS_GROUP_EXPORT(TripletLp)
FASTLOSS_GROUP_EXPORT(TripletL1Swap)
FASTLOSS_GROUP_EXPORT(TripletL2Swap)
FASTLOSS_GROUP_EXPORT(TripletLpSwap)
FASTLOSS_GROUP_EXPORT(ContrastivePairs)
FASTLOSS_GROUP_EXPORT(SquaredNorm)

}  // namespace fastloss
#endif  // HWY_ONCE
