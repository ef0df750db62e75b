"""Segmentation losses: dice, jaccard, tversky, focal_tversky.

Each takes ``(y_true, y_pred, smooth, axis, squared, from_logits, ...)`` and
returns a ``Result`` with one score per sample (the axes ``axis`` are summed
into a score; ``axis=None``: one score for the whole array).
"""

import numpy as np

from ._common import _f64, sigmoid
from ._result import Result, normalize_axes


# ---------------------------------------------------------------------------
# Segmentation: dice, jaccard, tversky, focal_tversky
# ---------------------------------------------------------------------------


def _overlap(y_true, y_pred, axis, squared, from_logits):
    """Sums over the reduced axes (kept as size-1 dims) and their derivatives.

    Returns (y, p, I, Sy, Sp, dSp (dSp/dp_i), chain (dp_i/dy_pred_i), axes,
    (aI, aSy, aSp) the sums of |terms|)."""
    x = _f64(y_pred)
    y = np.broadcast_to(_f64(y_true), x.shape)
    axes = normalize_axes(axis, x.ndim)
    if from_logits:
        p = sigmoid(x)
        chain = p * (1.0 - p)
    else:
        p = x
        chain = np.ones_like(x)
    k = dict(axis=axes, keepdims=True)
    I = np.sum(y * p, **k)
    aI = np.sum(np.abs(y * p), **k)
    if squared:
        Sy, Sp, dSp = np.sum(y * y, **k), np.sum(p * p, **k), 2.0 * p
        aSy, aSp = Sy, Sp
    else:
        Sy, Sp, dSp = np.sum(y, **k), np.sum(p, **k), np.ones_like(p)
        aSy, aSp = np.sum(np.abs(y), **k), np.sum(np.abs(p), **k)
    return y, p, I, Sy, Sp, dSp, chain, axes, (aI, aSy, aSp)


def _overlap_result(y, dSp, chain, axes, l, dI, dSy, dSp_coef, sums_abs, kappa, extra_ml=0.0):
    """Result of a loss l(I, Sy, Sp) with partials dI, dSy, dSp_coef (kept dims).

    kappa: the relative error amplification of the partials (the conditioning of
    the fractions they are made of)."""
    aI, aSy, aSp = sums_abs
    g = (dI * y + dSp_coef * dSp) * chain
    ml = np.abs(l) + np.abs(dI) * aI + np.abs(dSy) * aSy + np.abs(dSp_coef) * aSp + extra_ml
    mg = (np.abs(dI * y) + np.abs(dSp_coef * dSp)) * np.abs(chain) * (1.0 + kappa)
    ml = np.squeeze(ml, axis=axes)
    return Result(np.squeeze(l, axis=axes), (g,), axes, ml, (mg,))


def dice(y_true, y_pred, smooth=1e-6, axis=None, squared=False, from_logits=False):
    y, p, I, Sy, Sp, dSp, chain, axes, sa = _overlap(y_true, y_pred, axis, squared, from_logits)
    N = 2.0 * I + smooth
    D = Sy + Sp + smooth
    l = 1.0 - N / D
    dI = -2.0 / D
    dSy = N / D**2
    dSp_coef = N / D**2
    kappa = (2.0 * sa[0] + smooth) / np.abs(N) + (sa[1] + sa[2] + smooth) / np.abs(D)
    return _overlap_result(y, dSp, chain, axes, l, dI, dSy, dSp_coef, sa, kappa)


def jaccard(y_true, y_pred, smooth=1e-6, axis=None, squared=False, from_logits=False):
    y, p, I, Sy, Sp, dSp, chain, axes, sa = _overlap(y_true, y_pred, axis, squared, from_logits)
    A = I + smooth
    U = Sy + Sp - I
    B = U + smooth
    l = 1.0 - A / B
    # dU/dI = -1, dU/dSy = dU/dSp = 1
    dI = -(1.0 / B + A / B**2)
    dSy = A / B**2
    dSp_coef = A / B**2
    kappa = (sa[0] + smooth) / np.abs(A) + (sa[0] + sa[1] + sa[2] + smooth) / np.abs(B)
    return _overlap_result(y, dSp, chain, axes, l, dI, dSy, dSp_coef, sa, kappa)


def _tversky_parts(I, Sy, Sp, smooth, alpha, beta):
    FP = Sp - I
    FN = Sy - I
    D = I + alpha * FP + beta * FN + smooth
    TI = (I + smooth) / D
    # dD/dI = 1 - alpha - beta, dD/dSp = alpha, dD/dSy = beta
    dTI_dI = 1.0 / D - (I + smooth) * (1.0 - alpha - beta) / D**2
    dTI_dSp = -(I + smooth) * alpha / D**2
    dTI_dSy = -(I + smooth) * beta / D**2
    return TI, dTI_dI, dTI_dSy, dTI_dSp, D


def tversky(y_true, y_pred, smooth=1e-6, axis=None, squared=False, from_logits=False, alpha=0.5, beta=0.5):
    y, p, I, Sy, Sp, dSp, chain, axes, sa = _overlap(y_true, y_pred, axis, squared, from_logits)
    TI, dI, dSy, dSp_c, D = _tversky_parts(I, Sy, Sp, smooth, alpha, beta)
    l = 1.0 - TI
    aD = (1.0 + alpha + beta) * sa[0] + alpha * sa[2] + beta * sa[1] + smooth
    kappa = (sa[0] + smooth) / np.abs(I + smooth) + aD / np.abs(D)
    return _overlap_result(y, dSp, chain, axes, l, -dI, -dSy, -dSp_c, sa, kappa)


def focal_tversky(y_true, y_pred, smooth=1e-6, axis=None, squared=False, from_logits=False, alpha=0.5, beta=0.5, gamma=0.75):
    t = tversky(y_true, y_pred, smooth=smooth, axis=axis, squared=squared, from_logits=from_logits, alpha=alpha, beta=beta)
    axes = t.axes
    one_m = t.l  # 1 - TI, per score
    l = one_m**gamma
    # gamma (1 - TI)^(gamma - 1); where 1 - TI == 0 that is inf for gamma < 1
    # (the spec's inf * 0) and the gradient is 0; for gamma > 1 it is 0 anyway;
    # for gamma == 1 (focal_tversky == tversky) it is 0**0 = 1: the tversky
    # gradient, as IEEE pow gives.
    F = np.where(one_m == 0, 1.0 if gamma == 1 else 0.0, gamma * np.abs(one_m) ** (gamma - 1.0) * np.sign(one_m))
    F = np.where(np.isnan(one_m), np.nan, F)
    Fk = np.expand_dims(F, axes)
    g = Fk * t.grads[0]
    # an error e in 1 - TI moves l by F e and F by F (gamma - 1) e / (1 - TI)
    rel = np.where(one_m == 0, 0.0, np.abs(gamma - 1.0) / np.abs(one_m))
    ml = np.abs(l) + np.abs(F) * t.ml
    mg = np.abs(Fk) * (t.mg[0] + np.expand_dims(rel * t.ml, axes) * np.abs(t.grads[0]))
    return Result(l, (g,), axes, ml, (mg,))


#: The region losses -> their reference.
LOSSES = {"dice": dice, "jaccard": jaccard, "tversky": tversky, "focal_tversky": focal_tversky}
