// fastloss: fused sums of elementwise losses.
#ifndef FASTLOSS_COMBINATION_HPP_
#define FASTLOSS_COMBINATION_HPP_

#include "fastloss/registry.hpp"

namespace fastloss {

// --- Fused sums of elementwise losses. --------------------------------------
// sum_k c_k loss_k(y_true, y_pred) for elementwise losses with the same
// inputs, in one pass: each element is read once and the gradient written
// once. Add a term per loss (its options' type names the loss):
//   fastloss::ElementwiseCombination c;
//   c.Add(0.5, fastloss::MseOptions{}).Add(0.5, fastloss::HuberOptions{2.0});
//   double v = fastloss::Combined(call, c);
// Options are checked by Add (an Error, as the loss would raise).
class ElementwiseCombination {
 public:
  ElementwiseCombination();
  ~ElementwiseCombination();
  ElementwiseCombination(const ElementwiseCombination&);
  ElementwiseCombination& operator=(const ElementwiseCombination&);
  // One overload per elementwise loss of the registry (registry.hpp).
#define FASTLOSS_COMBINATION_ADD(Name, name, driver, aliases, true_name, pred_name) \
  FASTLOSS_ELEMENTWISE_ONLY_##driver(ElementwiseCombination& Add(double coef, const Name##Options& o);)
  FASTLOSS_LOSSES(FASTLOSS_COMBINATION_ADD)
#undef FASTLOSS_COMBINATION_ADD
  int size() const;
  struct Impl;  // opaque

 private:
  template <typename T>
  friend double Combined(const Call<T>& call, const ElementwiseCombination& terms);
  Impl* impl_;
};
template <typename T>
double Combined(const Call<T>& call, const ElementwiseCombination& terms);

}  // namespace fastloss

#endif  // FASTLOSS_COMBINATION_HPP_
