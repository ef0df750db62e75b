// fastloss: adversarial losses and penalties: losses of scores alone (ScoreCall).
#ifndef FASTLOSS_ADVERSARIAL_HPP_
#define FASTLOSS_ADVERSARIAL_HPP_

#include "fastloss/core.hpp"

namespace fastloss {

// softplus(-real) + softplus(fake), each reduced over its own array (a
// discriminator's BCE against labels 1 and 0). Returns the sum. Both calls
// are checked before either runs: an Error leaves every output untouched.
template <typename T>
double GanDiscriminator(const ScoreCall<T>& real, const ScoreCall<T>& fake, Reduction reduction);
// softplus(-fake) (non-saturating), or log(1 - sigmoid(fake)) = -softplus(fake).
template <typename T>
double GanGenerator(const ScoreCall<T>& fake, Reduction reduction, bool saturating = false);
// R(fake) - R(real), R the reduction.
template <typename T>
double WassersteinCritic(const ScoreCall<T>& real, const ScoreCall<T>& fake, Reduction reduction);
// -R(fake).
template <typename T>
double WassersteinGenerator(const ScoreCall<T>& fake, Reduction reduction);
// (|g_i|_2 - target)^2 for each sample i (axis 0; the other axes flattened);
// losses and weights of shape (N,). Gradient 2 (|g_i| - target) g_i / |g_i|, 0 at g_i = 0.
template <typename T>
double GradientPenalty(const ScoreCall<T>& gradients, Reduction reduction, double target = 1.0);
// lam * sum(w^2) of one array; grad (optional) = 2 lam w.
template <typename T>
double L2Penalty(const View<const T>& w, double lam, const View<T>* grad = nullptr);

}  // namespace fastloss

#endif  // FASTLOSS_ADVERSARIAL_HPP_
