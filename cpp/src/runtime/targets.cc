// Which SIMD target the dispatched kernels run, and the test hook that
// forces one. Dispatched so that HWY_TARGET names the chosen target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/targets.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace fastloss {
namespace HWY_NAMESPACE {

const char* ChosenTargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace fastloss
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <string>
#include <vector>

#include "fastloss/fastloss.hpp"

namespace fastloss {

HWY_EXPORT(ChosenTargetName);

std::string SimdTarget() { return HWY_DYNAMIC_DISPATCH(ChosenTargetName)(); }

std::vector<std::string> AvailableSimdTargets() {
  std::vector<std::string> names;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) names.push_back(hwy::TargetName(t));
  return names;
}

void ForceSimdTarget(const std::string& name) {
  if (name.empty()) {
    hwy::SetSupportedTargetsForTest(0);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    return;
  }
  hwy::SetSupportedTargetsForTest(0);
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
    if (name == hwy::TargetName(t)) {
      hwy::SetSupportedTargetsForTest(t);
      hwy::GetChosenTarget().Update(hwy::SupportedTargets());
      return;
    }
  }
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  throw Error("unknown or unsupported SIMD target '" + name + "'");
}

}  // namespace fastloss
#endif  // HWY_ONCE
