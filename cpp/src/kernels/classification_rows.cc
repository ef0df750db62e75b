// SIMD kernels of the row-wise classification losses (FASTLOSS_ROW_FUNCTORS
// in losses/classification-inl.h) on the row driver
// (drivers/rowwise/rowwise-inl.h), for every Highway target.
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

#define FASTLOSS_ROW_KERNELS_OF(Name, Kind) FASTLOSS_ROW_KERNELS(Name, Kind##RowKernel<losses::Name)
FASTLOSS_ROW_FUNCTORS(FASTLOSS_ROW_KERNELS_OF)
#undef FASTLOSS_ROW_KERNELS_OF

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace fastloss {

#define FASTLOSS_ROW_EXPORT_OF(Name, Kind) FASTLOSS_ROW_EXPORT(Name)
FASTLOSS_ROW_FUNCTORS(FASTLOSS_ROW_EXPORT_OF)
#undef FASTLOSS_ROW_EXPORT_OF

}  // namespace fastloss
#endif  // HWY_ONCE
