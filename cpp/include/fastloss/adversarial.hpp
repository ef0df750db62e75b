// fastloss: adversarial losses and penalties: losses of scores alone (ScoreCall).
#ifndef FASTLOSS_ADVERSARIAL_HPP_
#define FASTLOSS_ADVERSARIAL_HPP_

#include "fastloss/core.hpp"
#include "fastloss/options.hpp"

namespace fastloss {

struct GanDiscriminatorOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("The standard GAN discriminator loss: BCE of real logits against 1 and of fake "
      "ones against 0.",
      "``l = R(softplus(-real)) + R(softplus(fake))``, the reduction ``R`` applied to each "
      "array on its own (they may have different shapes). ``weights`` is None or a pair "
      "``(w_real, w_fake)`` (either may be None), each broadcast to its array. "
      "``'none'`` returns the pair of per-element loss arrays.",
      "")
};
// softplus(-real) + softplus(fake), each reduced over its own array (a
// discriminator's BCE against labels 1 and 0). Returns the sum. Both calls
// are checked before either runs: an Error leaves every output untouched.
template <typename T>
double GanDiscriminator(const ScoreCall<T>& real, const ScoreCall<T>& fake, Reduction reduction,
                        const GanDiscriminatorOptions& = {});

struct GanGeneratorOptions {
  bool saturating = false;
  FASTLOSS_FIELDS(FASTLOSS_BOOL(saturating, "The original minimax form log(1 - sigmoid(x)) "
                                            "instead of the non-saturating softplus(-x)."))
  FASTLOSS_DOC("GAN generator loss.",
      "Non-saturating (default): ``l = softplus(-x) = -log sigmoid(x)``; "
      "``saturating=True``: ``l = log(1 - sigmoid(x)) = -softplus(x)`` (the original "
      "minimax form).",
      "")
};
// softplus(-fake) (non-saturating), or log(1 - sigmoid(fake)) = -softplus(fake).
template <typename T>
double GanGenerator(const ScoreCall<T>& fake, Reduction reduction,
                    const GanGeneratorOptions& = {});
template <typename T>
double GanGenerator(const ScoreCall<T>& fake, Reduction reduction, bool saturating) {
  GanGeneratorOptions o;
  o.saturating = saturating;
  return GanGenerator(fake, reduction, o);
}

struct WassersteinCriticOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("WGAN critic loss.",
      "``l = R(fake) - R(real)``; per-element losses ``-real`` and ``fake``; ``weights`` as "
      "for gan_discriminator.",
      "")
};
// R(fake) - R(real), R the reduction.
template <typename T>
double WassersteinCritic(const ScoreCall<T>& real, const ScoreCall<T>& fake, Reduction reduction,
                         const WassersteinCriticOptions& = {});

struct WassersteinGeneratorOptions {
  FASTLOSS_FIELDS()
  FASTLOSS_DOC("WGAN generator loss.", "``l = -R(fake)``.", "")
};
// -R(fake).
template <typename T>
double WassersteinGenerator(const ScoreCall<T>& fake, Reduction reduction,
                            const WassersteinGeneratorOptions& = {});

struct GradientPenaltyOptions {
  double target = 1.0;
  FASTLOSS_FIELDS(FASTLOSS_REAL(target, kFinite, "The norm the gradients are pulled to."))
  FASTLOSS_DOC("WGAN-GP gradient penalty on given per-sample gradients.",
      "Rows are samples (axis 0), the other axes flattened: "
      "``l_i = (||g_i||_2 - target)**2``. The gradient with respect to ``gradients`` "
      "(what the double-backward step needs) is ``2 (||g_i|| - target) g_i / ||g_i||``, "
      "and 0 where ``g_i = 0``.",
      "")
};
// (|g_i|_2 - target)^2 for each sample i (axis 0; the other axes flattened);
// losses and weights of shape (N,). Gradient 2 (|g_i| - target) g_i / |g_i|, 0 at g_i = 0.
template <typename T>
double GradientPenalty(const ScoreCall<T>& gradients, Reduction reduction,
                       const GradientPenaltyOptions& = {});
template <typename T>
double GradientPenalty(const ScoreCall<T>& gradients, Reduction reduction, double target) {
  GradientPenaltyOptions o;
  o.target = target;
  return GradientPenalty(gradients, reduction, o);
}

struct L2PenaltyOptions {
  double lam = 0.0;
  FASTLOSS_FIELDS(FASTLOSS_REAL(lam, kNonNegative, "The penalty's coefficient, >= 0."))
  FASTLOSS_DOC("L2 penalty of a list of arrays.",
      "``value = lam * sum_k sum(w_k**2)`` as a numpy.float64 (accumulated in float64); "
      "the gradients ``2 * lam * w_k``, each in its array's dtype (float32 or float64; "
      "other dtypes are a TypeError). ``arrays`` is one array or a list/tuple of arrays "
      "of any shapes.",
      "")
};
// lam * sum(w^2) of one array; grad (optional) = 2 lam w.
template <typename T>
double L2Penalty(const View<const T>& w, const L2PenaltyOptions& o,
                 const View<T>* grad = nullptr);
template <typename T>
double L2Penalty(const View<const T>& w, double lam, const View<T>* grad = nullptr) {
  L2PenaltyOptions o;
  o.lam = lam;
  return L2Penalty(w, o, grad);
}

}  // namespace fastloss

// The rows of the losses of several inputs (see FASTLOSS_MULTI_LOSSES in
// registry.hpp).
#define FASTLOSS_ADVERSARIAL_MULTI_LOSSES(X)                                           \
  X(GanDiscriminator, gan_discriminator, ScorePair, "", "real_logits fake_logits", "") \
  X(GanGenerator, gan_generator, Scores, "", "fake_logits", "")                        \
  X(WassersteinCritic, wasserstein_critic, ScorePair, "", "real_scores fake_scores", "") \
  X(WassersteinGenerator, wasserstein_generator, Scores, "", "fake_scores", "")        \
  X(GradientPenalty, gradient_penalty, Samples, "", "gradients", "")                   \
  X(L2Penalty, l2_penalty, Penalty, "", "arrays lam", "")

#endif  // FASTLOSS_ADVERSARIAL_HPP_
