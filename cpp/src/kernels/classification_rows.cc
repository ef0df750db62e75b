// SIMD kernels of the row-wise classification losses
// (losses/classification-inl.h) on the row driver (drivers/rowwise/rowwise-inl.h):
// softmax cross-entropy and focal, KL and JSD, multi_margin; for every
// Highway target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/classification_rows.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "losses/losses.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {
namespace losses {
// This target's copy of the functors (see losses/common-inl.h).
#include "losses/common-inl.h"          // NOLINT(build/include)
#include "losses/classification-inl.h"  // NOLINT(build/include)
}  // namespace losses
}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

// The row kernels name this target's losses::SoftmaxRows: after the functors.
#include "drivers/rowwise/rowwise-inl.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {

FASTLOSS_ROW_KERNELS(CceRows, SoftmaxKernelImpl<losses::CceTerm)
FASTLOSS_ROW_KERNELS(FocalRows, SoftmaxKernelImpl<losses::FocalTerm)
FASTLOSS_ROW_KERNELS(KlDivergence, ElementSumKernelImpl<losses::KlDivergence)
FASTLOSS_ROW_KERNELS(JensenShannon, ElementSumKernelImpl<losses::JensenShannon)
FASTLOSS_ROW_KERNELS(MultiMarginTerm, TargetSumKernelImpl<losses::MultiMarginTerm)

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fastloss {

FASTLOSS_ROW_EXPORT(CceRows)
FASTLOSS_ROW_EXPORT(FocalRows)
FASTLOSS_ROW_EXPORT(KlDivergence)
FASTLOSS_ROW_EXPORT(JensenShannon)
FASTLOSS_ROW_EXPORT(MultiMarginTerm)

}  // namespace fastloss
#endif  // HWY_ONCE
