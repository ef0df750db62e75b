"""Structured losses: segmentation (dice family), detection (box_iou),
metric learning, ranking, adversarial losses and penalties, and combined
losses.

Everything is written the plain way, straight from the formulas of the
structured spec, in float64, under ``np.errstate(all="ignore")`` (the spec
wants the IEEE results: NaN in gives NaN out). The gradients are written by
hand (chain rule), never by differencing; tests/python/test_structured.py
checks them against central finite differences and
tests/python/torch_crosscheck.py against PyTorch's autograd.

Each loss ``NAME(*inputs, **options)`` takes its inputs in the order of
``fl.NAME`` and returns a ``Result``:

- ``l``: the per-sample losses (the spec's "losses shape");
- ``grads``: a tuple with the gradient of ``sum(l)`` with respect to each
  differentiable input, in argument order;
- ``axes``: the axes of a differentiable input that are reduced into one
  sample (``np.expand_dims(w, axes)`` broadcasts per-sample weights ``w`` to
  the input; every input element belongs to exactly one sample);
- ``ml`` / ``mg``: the size of the terms that make up ``l`` and each gradient
  (first-order error propagation of a few-ulp error in every sum, product and
  difference). A kernel computing in a dtype with machine epsilon ``u`` is
  wrong by about ``u * ml`` (resp. ``u * mg``) where terms cancel, not by a
  few ulp of the result. Always >= the magnitude of the result itself.

``reduce(result, weights, reduction)`` applies the spec's weighted reduction:
"sum" = sum(w*l), "mean" = sum(w*l)/sum(w) (NaN with a zero gradient over zero
samples), "none" = w*l with the gradient of sum(w*l). It returns
``(value, grads, value_mag, grad_mags)``.

The losses that do not fit that frame have their own entry points:
``pairwise_ranking_reduced`` (pairs, no weights, no "none"),
``gan_discriminator_reduced`` / ``wasserstein_critic_reduced`` (two arrays,
each reduced on its own), ``l2_penalty`` and ``combined``.

The formulas live in segmentation.py, detection.py, metric.py and
adversarial.py; this module gathers them.
"""

import numpy as np

from . import classification as ref_classification
from . import regression as ref_regression
from ._common import _f64, sigmoid, softplus  # noqa: F401 (part of this module's interface)
from ._result import Result, dmax, dmin, normalize_axes, reduce  # noqa: F401
from .adversarial import (  # noqa: F401
    gan_discriminator_reduced,
    gan_fake,
    gan_generator,
    gan_real,
    gradient_penalty,
    l2_penalty,
    wasserstein_critic_reduced,
    wasserstein_generator,
)
from .detection import box_iou, ciou_alpha  # noqa: F401
from .metric import (  # noqa: F401
    contrastive,
    contrastive_pairs,
    cosine_embedding,
    cosine_similarity,
    margin_ranking,
    pairwise_ranking_all_active,
    pairwise_ranking_reduced,
    triplet_margin,
)
from . import segmentation
from .segmentation import dice, jaccard  # noqa: F401


LOSSES = {
    **ref_regression.OTHER_LOSSES,
    **segmentation.LOSSES,
    "box_iou": box_iou,
    "cosine_similarity": cosine_similarity,
    "cosine_embedding": cosine_embedding,
    "triplet_margin": triplet_margin,
    "contrastive": contrastive,
    "contrastive_pairs": contrastive_pairs,
    "margin_ranking": margin_ranking,
    "gan_generator": gan_generator,
    "wasserstein_generator": wasserstein_generator,
    "gradient_penalty": gradient_penalty,
}


def result(name, *inputs, **options):
    """Result of loss ``name`` in float64."""
    with np.errstate(all="ignore"):
        return LOSSES[name](*inputs, **options)


def reduced(name, *inputs, weights=None, reduction="mean", **options):
    """(value, grads, value_mag, grad_mags) of a call of fl.NAME."""
    with np.errstate(all="ignore"):
        if name == "pairwise_ranking":
            v, g, vm, gm = pairwise_ranking_reduced(*inputs, reduction=reduction, **options)
            return v, (g,), vm, (gm,)
        if name == "gan_discriminator":
            return gan_discriminator_reduced(*inputs, weights=weights, reduction=reduction, **options)
        if name == "wasserstein_critic":
            return wasserstein_critic_reduced(*inputs, weights=weights, reduction=reduction, **options)
        return reduce(LOSSES[name](*inputs, **options), weights, reduction)


# ---------------------------------------------------------------------------
# Combined losses: sum_k c_k loss_k(y_true, y_pred, reduction, weights)
# ---------------------------------------------------------------------------


def term_result(name, y_true, y_pred, **options):
    """A Result for any (y_true, y_pred) loss: regression and binary
    classification losses from the existing references, the rest from here."""
    with np.errstate(all="ignore"):
        if name in ref_regression.LOSSES:
            l, dl = ref_regression.loss(name, y_true, y_pred, **options)
            ml, mdl = ref_regression.magnitude(name, y_true, y_pred, **options)
            return Result(l, (dl,), (), ml, (mdl,))
        cname = ref_classification.canonical(name)
        if cname in ref_classification.BINARY:
            t = ref_classification.terms(cname, y_true, y_pred, **options)
            return Result(t.l, (t.dl,), (), t.ml, (t.mdl,))
        if cname in ref_classification.DENSE_ROWS:
            t = ref_classification.terms(cname, y_true, y_pred, **options)
            return Result(t.l, (t.dl,), (t.axis,), t.ml, (t.mdl,))
        return LOSSES[name](y_true, y_pred, **options)


def combined(terms, y_true, y_pred, weights=None, reduction="mean"):
    """terms: [(coef, name, options)]. Returns (value, grad, value_mag, grad_mag)
    of sum_k coef_k * fl.name_k(y_true, y_pred, reduction, weights, **options_k)."""
    value, grad, vm, gm = 0.0, 0.0, 0.0, 0.0
    for c, name, opts in terms:
        v, (g,), m, (mg,) = reduce(term_result(name, y_true, y_pred, **opts), weights, reduction)
        value = value + c * v
        grad = grad + c * g
        vm = vm + abs(c) * m
        gm = gm + abs(c) * mg
    return value, grad, vm, gm
