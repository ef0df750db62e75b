// The entry points of every elementwise loss of the registry, generated from
// its rows: check the options' fields (CheckOptions), build the functor
// (losses::Build<T>, in the loss's functor file), run the elementwise driver.
// Also BCE's overload with a pos_weight array.
#include <cstring>

#include "fastloss/fastloss.hpp"
#include "internal/builders.h"
#include "drivers/checks.h"
#include "losses/losses.h"

namespace fastloss {
namespace {

// Runs `run` reporting y_true and y_pred under the loss's own names.
template <class F>
double Named(const char* true_name, const char* pred_name, F&& run) {
  if (std::strcmp(true_name, "y_true") == 0 && std::strcmp(pred_name, "y_pred") == 0) {
    return run();
  }
  return internal::WithArgumentNames(true_name, pred_name, run);
}

}  // namespace

#define FASTLOSS_DEFINE_ENTRY(Name, name, driver, aliases, true_name, pred_name)           \
  FASTLOSS_ELEMENTWISE_ONLY_##driver(                                                       \
      template <typename T> double Name(const Call<T>& call, const Name##Options& o) {      \
        internal::CheckCall(#name, o, call);                                                 \
        return Named(#true_name, #pred_name, [&] {                                           \
          return losses::Build<T>(o, internal::RunSink<T>{#name, call});                     \
        });                                                                                  \
      }                                                                                      \
      template double Name<float>(const Call<float>&, const Name##Options&);                 \
      template double Name<double>(const Call<double>&, const Name##Options&);)
FASTLOSS_LOSSES(FASTLOSS_DEFINE_ENTRY)
#undef FASTLOSS_DEFINE_ENTRY

// The BCE overload with a per-element pos_weight array (the registry's
// entry points are generated above).
template <typename T>
double BinaryCrossEntropy(const Call<T>& call, const View<const T>& pos_weight,
                          const BinaryCrossEntropyOptions& o) {
  const char* name = "binary_cross_entropy";
  internal::CheckCall(name, o, call);
  return losses::Build<T>(o, internal::RunSink<T>{name, call, &pos_weight, "pos_weight"}, true);
}
template double BinaryCrossEntropy<float>(const Call<float>&, const View<const float>&,
                                          const BinaryCrossEntropyOptions&);
template double BinaryCrossEntropy<double>(const Call<double>&, const View<const double>&,
                                           const BinaryCrossEntropyOptions&);

}  // namespace fastloss
