"""Adversarial losses and penalties: gan_generator, the two halves of
gan_discriminator, the Wasserstein losses, gradient_penalty and l2_penalty."""

import numpy as np

from ._common import _f64, sigmoid, softplus
from ._result import Result, reduce


# ---------------------------------------------------------------------------
# Adversarial losses and penalties
# ---------------------------------------------------------------------------


def gan_generator(fake_logits, saturating=False):
    x = _f64(fake_logits)
    if saturating:
        return Result(-softplus(x), (-sigmoid(x),), ())
    return Result(softplus(-x), (-sigmoid(-x),), ())


def gan_real(real_logits):
    """The real half of the discriminator loss: softplus(-real)."""
    x = _f64(real_logits)
    return Result(softplus(-x), (-sigmoid(-x),), ())


def gan_fake(fake_logits):
    """The fake half of the discriminator loss: softplus(fake)."""
    x = _f64(fake_logits)
    return Result(softplus(x), (sigmoid(x),), ())


def wasserstein_generator(fake_scores):
    x = _f64(fake_scores)
    return Result(-x, (-np.ones_like(x) + 0.0 * x,), ())


def _identity_result(x, sign):
    x = _f64(x)
    return Result(sign * x, (sign * np.ones_like(x) + 0.0 * x,), ())


def _pair_reduced(r_real, r_fake, weights, reduction):
    wr, wf = (None, None) if weights is None else weights
    vr, (gr,), mr, (mgr,) = reduce(r_real, wr, reduction)
    vf, (gf,), mf, (mgf,) = reduce(r_fake, wf, reduction)
    if reduction == "none":
        return (vr, vf), (gr, gf), (mr, mf), (mgr, mgf)
    return vr + vf, (gr, gf), mr + mf, (mgr, mgf)


def gan_discriminator_reduced(real_logits, fake_logits, weights=None, reduction="mean"):
    """R(softplus(-real)) + R(softplus(fake)); "none": the pair of arrays."""
    return _pair_reduced(gan_real(real_logits), gan_fake(fake_logits), weights, reduction)


def wasserstein_critic_reduced(real_scores, fake_scores, weights=None, reduction="mean"):
    """R(fake) - R(real); "none": the pair (-w_real*real, w_fake*fake)."""
    return _pair_reduced(_identity_result(real_scores, -1.0), _identity_result(fake_scores, 1.0), weights, reduction)


def gradient_penalty(gradients, target=1.0):
    g = _f64(gradients)
    N = g.shape[0]
    rows = g.reshape(N, int(np.prod(g.shape[1:], dtype=np.int64)))
    n = np.sqrt(np.sum(rows * rows, axis=1))
    l = (n - target) ** 2
    nk = n.reshape((N,) + (1,) * (g.ndim - 1))
    safe = np.where(nk > 0, nk, 1.0)
    grad = np.where(nk > 0, 2.0 * (nk - target) * g / safe, 0.0)
    grad = np.where(np.isnan(nk), np.nan, grad)
    ml = np.abs(l) + 2.0 * np.abs(n - target) * (n + abs(target))
    mg = np.abs(grad) + 2.0 * (nk + abs(target)) * np.abs(g) / safe * 2.0
    return Result(l, (grad,), tuple(range(1, g.ndim)), ml, (mg,))


def l2_penalty(arrays, lam):
    """(value, [grad_k]) of lam * sum_k sum(w_k^2)."""
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    arrs = [_f64(a) for a in arrays]
    value = lam * sum(float(np.sum(a * a)) for a in arrs)
    return value, [2.0 * lam * a for a in arrs]
