// The loss functors in plain C++ (namespace fastloss::losses): their options
// builders (options -> functor),
// and the scalar instantiation of their math
// (ScalarMath). The SIMD kernels include the same -inl.h files once per
// Highway target inside that target's namespace (see kernels/regression.cc).
#ifndef FASTLOSS_SRC_LOSSES_LOSSES_H_
#define FASTLOSS_SRC_LOSSES_LOSSES_H_

#include <limits>

#include "fastloss/registry.hpp"
#include "internal/base.h"
#include "internal/option_checks.h"
#include "math/scalar_math.h"

namespace fastloss {
namespace losses {

#include "losses/common-inl.h"      // NOLINT(build/include)
#include "losses/regression-inl.h"  // NOLINT(build/include)
#include "losses/classification-inl.h"  // NOLINT(build/include)
#include "losses/structured-inl.h"  // NOLINT(build/include)

}  // namespace losses
}  // namespace fastloss

#endif  // FASTLOSS_SRC_LOSSES_LOSSES_H_
