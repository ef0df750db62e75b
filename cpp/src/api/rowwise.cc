// The entry points of every row-wise loss of the registry, generated from its
// rows: check the options and the call (CheckCall), build the functor and
// its rules (losses::Build<T>, in the loss's functor file), run the row
// driver.
#include "fastloss/fastloss.hpp"
#include "internal/builders.h"
#include "losses/losses.h"

namespace fastloss {

#define FASTLOSS_DEFINE_ROW_ENTRY(Name, name, driver, aliases, true_name, pred_name)         \
  FASTLOSS_ROWS_ONLY_##driver(                                                              \
      template <typename T> double Name(const FASTLOSS_CALL_##driver<T>& call,              \
                                        const Name##Options& o) {                           \
        internal::CheckCall(#name, o, call);                                                \
        return losses::Build<T>(                                                            \
            o, internal::RowSink<T, FASTLOSS_CALL_##driver<T>>{#name, call, o.axis});       \
      }                                                                                     \
      template double Name<float>(const FASTLOSS_CALL_##driver<float>&, const Name##Options&); \
      template double Name<double>(const FASTLOSS_CALL_##driver<double>&,                   \
                                   const Name##Options&);)
FASTLOSS_LOSSES(FASTLOSS_DEFINE_ROW_ENTRY)
#undef FASTLOSS_DEFINE_ROW_ENTRY

}  // namespace fastloss
