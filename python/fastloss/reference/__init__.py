"""NumPy float64 reference of every fastloss loss: the executable specification.

Each loss is written here once, the plain way, in float64 NumPy, straight from
its formula: the value and the gradient (by hand, by the chain rule; never by
differencing). fastloss's tests compare the library against these functions,
``python -m fastloss`` times them against the library, and the benchmarks check
every implementation they time against them. Nothing here imports the compiled
extension: the package needs NumPy only.

How to read it
--------------
- **Arguments** come in fastloss's order: ``(y_true, y_pred, **options)`` for
  the losses of ``fastloss.LOSSES`` (``y_pred`` is the differentiable input);
  the losses of ``fastloss.OTHER_LOSSES`` take their inputs in the order of
  ``fl.NAME`` (e.g. ``(anchor, positive, negative)``). Options have the
  library's names and defaults.
- **Float64 throughout.** Inputs are converted to float64 first and every
  result is float64, whatever the input dtype. Computations run under
  ``np.errstate(all="ignore")``: the specification is the IEEE result (inf,
  NaN; NaN in gives NaN out), not a warning.
- **Per-sample losses, then a reduction.** A loss first gives per-sample losses
  ``l`` (per element for elementwise losses, per row for the row-wise
  classification losses, per score for the dice family, ...) and the gradient
  of ``sum(l)`` with respect to each differentiable input. The reduction with
  per-sample weights ``w`` (default all ones) is then

      "sum"   value = sum(w * l)            grad = w * dl
      "mean"  value = sum(w * l) / sum(w)   grad = w * dl / sum(w)
      "none"  value = w * l                 grad = w * dl (the gradient of sum(value))

  where ``sum(w)`` counts only the rows that take part (sparse losses:
  ``ignore_index`` rows drop out and class weights scale a row) and a mean
  over nothing is NaN with a zero gradient.
- **The gradient** is that of the reduced value with respect to each
  differentiable input, of that input's shape: the number ``fl.NAME.grad``
  returns. At a kink the subgradient follows the library's documentation
  (e.g. 0 at the hinge's corner, half of it at a tie of min/max).
- **Magnitudes.** Besides value and gradient, most functions return the size
  of the terms they are made of (``magnitude`` / ``Terms.ml`` /
  ``Result.ml``): where terms cancel, a kernel computing in float32 is wrong by
  a few ulp of those, not of the result. The tests derive their error
  allowances from them; they are not part of the loss.

Layout
------
- ``regression``: the elementwise losses given as per-element (loss,
  derivative) pairs (``loss``, ``magnitude``, ``reduce``);
- ``classification``: binary and row-wise losses (``terms``, ``loss``,
  ``reduce``);
- ``structured``: segmentation, detection, metric learning, ranking,
  adversarial losses, penalties, combined losses, and every loss of several
  inputs (``result``, ``reduced``, ``combined``); the formulas are in
  ``segmentation``, ``detection``, ``metric``, ``adversarial`` and, for the
  regression losses of several inputs (``regression.OTHER_LOSSES``),
  ``regression``.

``value_and_grad(name, *inputs, weights=None, reduction="mean", **options)``
is the one entry point over all of them: the float64 ``(value, gradient)`` of
``fl.NAME.value_and_grad(*inputs, ...)``. ``LOSSES`` and ``OTHER_LOSSES`` map
every name of ``fastloss.LOSSES`` / ``fastloss.OTHER_LOSSES`` to its function.
"""

import numpy as np

from . import classification, regression, structured
from . import confusion  # noqa: F401  (confusion counts and their scores)

#: Other names fastloss accepts for a loss.
ALIASES = {
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    **classification.ALIASES,
}

#: The losses of several inputs (fastloss.OTHER_LOSSES) -> their reference.
OTHER_LOSSES = {
    **regression.OTHER_LOSSES,
    "cosine_embedding": structured.cosine_embedding,
    "triplet_margin": structured.triplet_margin,
    "contrastive_pairs": structured.contrastive_pairs,
    "margin_ranking": structured.margin_ranking,
    "pairwise_ranking": structured.pairwise_ranking_reduced,
    "gan_discriminator": structured.gan_discriminator_reduced,
    "gan_generator": structured.gan_generator,
    "wasserstein_critic": structured.wasserstein_critic_reduced,
    "wasserstein_generator": structured.wasserstein_generator,
    "gradient_penalty": structured.gradient_penalty,
    "l2_penalty": structured.l2_penalty,
}

#: The (y_true, y_pred, **options) losses (fastloss.LOSSES) -> their reference.
LOSSES = {
    **regression.LOSSES,
    **classification.LOSSES,
    **{name: fn for name, fn in structured.LOSSES.items() if name not in OTHER_LOSSES},
}

#: The evaluation metrics (fastloss.METRICS) -> their reference: hits with a
#: zero gradient (``value_and_grad`` works on them as on the losses).
METRICS = dict(classification.METRICS)


def canonical(name):
    """The loss's name in ``LOSSES`` / ``OTHER_LOSSES`` (aliases resolved)."""
    return ALIASES.get(name, name)


def family(name):
    """The module holding loss ``name``: regression, classification or structured."""
    name = canonical(name)
    if name in OTHER_LOSSES:
        return structured
    if name in regression.LOSSES:
        return regression
    if name in classification.LOSSES or name in METRICS:
        return classification
    if name in LOSSES or name in OTHER_LOSSES:
        return structured
    raise KeyError(f"no reference for loss {name!r}")


def value_and_grad(name, *inputs, weights=None, reduction="mean", **options):
    """float64 ``(value, grad)`` of ``fl.NAME.value_and_grad(*inputs, ...)``.

    ``value`` is a float for "mean" / "sum" and an array of the per-sample
    losses for "none". For the losses of ``LOSSES`` ``grad`` is one array of
    y_pred's shape; for those of ``OTHER_LOSSES`` it is the tuple of the
    gradients fastloss returns (pairwise_ranking and the generator losses:
    one array; l2_penalty: the list ``[2 lam w_k]``, called as
    ``value_and_grad("l2_penalty", arrays, lam)``).
    """
    name = canonical(name)
    mod = family(name)
    if name == "l2_penalty":
        return structured.l2_penalty(*inputs, **options)
    if mod is regression:
        y_true, y_pred = inputs
        l, dl = regression.loss(name, y_true, y_pred, **options)
        shape = np.broadcast_shapes(np.shape(y_true), np.shape(y_pred))
        return regression.reduce(l, dl, weights, reduction, shape)
    if mod is classification:
        t = classification.terms(name, *inputs, **options)
        value, grad, _, _ = classification.reduce(t, weights, reduction)
        return value, grad
    value, grads, _, _ = structured.reduced(name, *inputs, weights=weights, reduction=reduction, **options)
    if name in LOSSES or len(grads) == 1:
        return value, grads[0]
    return value, tuple(grads)
