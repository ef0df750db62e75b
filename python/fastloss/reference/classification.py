"""Classification losses: binary (elementwise) and row-wise (class axis).

Every loss is written the plain way, straight from the formulas of the
classification spec, in float64 and under ``np.errstate(all="ignore")`` (the
spec wants exactly the IEEE results: inf, NaN).

Elementwise ("binary") losses take ``(y_true, y_pred, **options)``; row-wise
losses take ``(y_true, y_pred, axis=-1, **options)``. ``loss(name, ...)``
returns ``(l, dl)``: the per-element loss (elementwise losses) or the per-row
loss of the rows shape R (row losses), and the derivative of ``l`` (of
``sum(l)``) with respect to ``y_pred``, of y_pred's shape.

``terms(name, ...)`` returns a ``Terms`` record with, besides ``l`` and ``dl``:

- ``mult``: the per-row factor of the mean's denominator (the class weight of
  the label for sparse_cce / nll, 0 for an ignored row, else 1);
- ``active``: which rows count ("mean over nothing" is NaN with a zero
  gradient when no row is active);
- ``ml``/``mdl``: the size of the terms that make up l and dl (a kernel that
  rounds each term to a few ulp is wrong by a few ulp of these, not of the
  result, where terms cancel);
- ``al``/``adl``: absolute allowances for roundings that are inherent to the
  computation dtype (a quantity near 1 such as ``1 - p`` or a sum of
  exponentials known only to ``ulp``), given ``ulp`` = the machine epsilon of
  the dtype the library computes in.

``reduce(terms, weights, reduction, rtol=..., floor=...)`` applies the weighted
reduction of the spec and returns ``(value, grad, value_tol, grad_tol)``.
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import _f64, sigmoid, softplus

LOG2 = math.log(2.0)

BINARY = ["binary_cross_entropy", "binary_focal", "hinge", "squared_hinge", "soft_margin"]
DENSE_ROWS = [
    "categorical_cross_entropy",
    "categorical_focal",
    "categorical_hinge",
    "kl_divergence",
    "jensen_shannon",
    "poly1_cross_entropy",
    "multilabel_soft_margin",
]
LABEL_ROWS = ["sparse_categorical_cross_entropy", "nll", "multi_margin", "generalized_cross_entropy"]
# What y_pred holds for the label-row losses whose predictions are not
# logits (by default, or whatever their options say): the domain a caller
# (python -m fastloss's self-check) draws their inputs from.
LABEL_ROW_PREDICTIONS = {"nll": "log_probabilities", "generalized_cross_entropy": "probabilities"}
ALIASES = {
    "bce": "binary_cross_entropy",
    "cce": "categorical_cross_entropy",
    "sparse_cce": "sparse_categorical_cross_entropy",
}


def canonical(name):
    return ALIASES.get(name, name)


def is_binary(name):
    return canonical(name) in BINARY


def is_sparse(name):
    return canonical(name) in LABEL_ROWS


def _mul0(c, v):
    """c * v, where an exactly zero coefficient contributes 0 even if v is inf/NaN."""
    c, v = np.broadcast_arrays(_f64(c), _f64(v))
    return np.where(c == 0, 0.0, c * v)


def _binaryish(y):
    return (y == 0) | (y == 1)


def _pow_diff(m, d, e):
    """|(m + d)**e - m**e| (0 for e == 0), the change of m**e when m moves by d."""
    if e == 0:
        return np.zeros_like(_f64(m))
    r = np.abs((m + d) ** e - m ** e)
    return np.nan_to_num(r, nan=0.0, posinf=1e300)


@dataclass
class Terms:
    l: Any
    dl: Any
    ml: Any = 0.0
    mdl: Any = 0.0
    al: Any = 0.0
    adl: Any = 0.0
    axis: Any = None  # class axis of y_pred (None: elementwise)
    mult: Any = 1.0  # per-row factor of the mean's denominator
    active: Any = None  # rows that count (None: all)


# ---------------------------------------------------------------------------
# A. Binary (elementwise) losses
# ---------------------------------------------------------------------------


def _smooth_binary(y, label_smoothing):
    if label_smoothing:
        return y * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return y


def binary_cross_entropy(y_true, y_pred, from_logits=False, eps=1e-7, pos_weight=1.0, label_smoothing=0.0, ulp=0.0):
    y = _smooth_binary(_f64(y_true), label_smoothing)
    p = _f64(y_pred)
    pw = 1.0 if pos_weight is None else _f64(pos_weight)
    a = pw * y  # coefficient of the positive term
    b = 1.0 - y  # coefficient of the negative term
    soft = ~_binaryish(y)
    if from_logits:
        x = p
        # a zero coefficient drops its term (0 * inf = 0), but a NaN logit
        # gives NaN even with both coefficients zero (NaN in, NaN out)
        l = np.where(np.isnan(x), np.nan, _mul0(a, softplus(-x)) + _mul0(b, softplus(x)))
        s, sn = sigmoid(x), sigmoid(-x)
        dl = -a * sn + b * s
        # a kernel may write l as sp(x) - y*x (...) and dl as s*(a + b) - a for
        # soft labels: those cancel; for exact 0/1 labels nothing may cancel.
        ml = np.abs(l) + np.where(soft, np.abs(x) * (np.abs(a) + np.abs(b)), 0.0)
        mdl = np.abs(a * sn) + np.abs(b * s) + np.where(soft, np.abs(a) + np.abs(b), 0.0)
        return Terms(l, dl, ml, mdl)
    pc = np.clip(p, eps, 1.0 - eps)
    inside = (p >= eps) & (p <= 1.0 - eps)
    l = -(_mul0(a, np.log(pc)) + _mul0(b, np.log1p(-pc)))
    l = np.where(np.isnan(p), np.nan, l)
    t1, t2 = a / pc, b / (1.0 - pc)
    dl = np.where(inside, -t1 + t2, 0.0)
    dl = np.where(np.isnan(p) | np.isnan(y), np.nan, dl)
    ml = np.abs(l)
    mdl = np.where(inside, np.abs(t1) + np.abs(t2), 0.0)
    # 1 - pc is known to an ulp of 1
    al = 4 * ulp * (np.abs(a) + np.abs(b) / (1.0 - pc))
    adl = np.where(inside, 4 * ulp * np.abs(b) / (1.0 - pc) ** 2, 0.0)
    return Terms(l, dl, ml, mdl, al, adl)


def binary_focal(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, eps=1e-7, label_smoothing=0.0, ulp=0.0):
    y = _smooth_binary(_f64(y_true), label_smoothing)
    p = _f64(y_pred)
    g = float(gamma)
    at = 1.0 if alpha is None else alpha * y + (1.0 - alpha) * (1.0 - y)
    at = np.broadcast_to(_f64(at), np.broadcast_shapes(np.shape(y), np.shape(p)))
    soft = ~_binaryish(y)
    d = 8 * ulp  # absolute error of a computed 1 - pt
    if from_logits:
        x = p
        s, sn = sigmoid(x), sigmoid(-x)
        ce = _mul0(y, softplus(-x)) + _mul0(1.0 - y, softplus(x))
        m = s * (1.0 - y) + sn * y  # 1 - pt without cancellation
        dce = -y * sn + (1.0 - y) * s
        dm = s * sn * (1.0 - 2.0 * y)
        inside = np.ones(np.shape(m), bool)
        mce = np.abs(ce) + np.where(soft, np.abs(x), 0.0)
        mdce = np.abs(y * sn) + np.abs((1.0 - y) * s) + np.where(soft, np.abs(y) + s, 0.0)
        ace = 0.0
        adce = 0.0
        add = s * d  # dm = s * (1 - s) * ...: 1 - s known to d
    else:
        pc = np.clip(p, eps, 1.0 - eps)
        inside = (p >= eps) & (p <= 1.0 - eps)
        ce = -(_mul0(y, np.log(pc)) + _mul0(1.0 - y, np.log1p(-pc)))
        m = pc * (1.0 - y) + (1.0 - pc) * y
        dce = -y / pc + (1.0 - y) / (1.0 - pc)
        dm = 1.0 - 2.0 * y
        mce = np.abs(ce)
        mdce = np.abs(y / pc) + np.abs((1.0 - y) / (1.0 - pc))
        ace = 4 * ulp * (np.abs(y) + np.abs(1.0 - y) / (1.0 - pc))
        adce = 4 * ulp * np.abs(1.0 - y) / (1.0 - pc) ** 2
        add = 0.0
    mg = m ** g  # 0 ** 0 == 1
    if g == 0:
        dmg = np.zeros_like(m)
    else:
        dmg = np.where(m == 0, 0.0, g * m ** (g - 1.0))
    l = at * ce * mg
    second = np.where((dm == 0) | (dmg == 0), 0.0, ce * dmg * dm)
    dl = at * (dce * mg + second)
    dl = np.where(inside, dl, 0.0)
    dl = np.where(np.isnan(p) | np.isnan(y), np.nan, dl)
    aat = np.abs(at)
    ml = aat * mce * mg
    al = aat * (ace * mg + np.abs(ce) * _pow_diff(m, d, g))
    mdl = np.where(inside, aat * (mdce * mg + np.abs(second)), 0.0)
    adl = aat * (
        adce * mg
        + np.abs(dce) * _pow_diff(m, d, g)
        + np.abs(ce * dm) * g * _pow_diff(m, d, g - 1.0)
        + np.abs(ce * dmg) * add
    )
    adl = np.where(inside, np.nan_to_num(adl, nan=0.0, posinf=1e300), 0.0)
    return Terms(l, dl, ml, mdl, al, adl)


def _hinge_labels(y):
    return np.where(y == 0, -1.0, y)


def hinge(y_true, y_pred, ulp=0.0):
    yp = _hinge_labels(_f64(y_true))
    p = _f64(y_pred)
    z = 1.0 - yp * p
    l = np.maximum(0.0, z)
    dl = np.where(z > 0, -yp, 0.0)
    dl = np.where(np.isnan(z), np.nan, dl)
    return Terms(l, dl, 1.0 + np.abs(yp * p), 0.0)


def squared_hinge(y_true, y_pred, ulp=0.0):
    yp = _hinge_labels(_f64(y_true))
    p = _f64(y_pred)
    z = 1.0 - yp * p
    h = np.maximum(0.0, z)
    l = h * h
    dl = -2.0 * yp * h
    scale = 1.0 + np.abs(yp * p)
    return Terms(l, dl, 2.0 * h * scale, 2.0 * np.abs(yp) * scale)


def soft_margin(y_true, y_pred, ulp=0.0):
    y = _f64(y_true)
    p = _f64(y_pred)
    z = y * p
    l = softplus(-z)
    sz = sigmoid(-z)
    dl = -y * sz
    # z = y * p is rounded: relative ulp of z
    al = 2 * ulp * np.abs(z) * sz
    adl = 2 * ulp * np.abs(y * z) * sz
    return Terms(l, dl, np.abs(l), np.abs(dl), al, adl)


# ---------------------------------------------------------------------------
# B. Row-wise losses (computed with the class axis last, then moved back)
# ---------------------------------------------------------------------------


def _row_ulp(ulp, C):
    """Relative error of a sum over a row of C terms (exponentials, products)."""
    return 4 * ulp * (4 + math.sqrt(max(C, 1)))


def _log_softmax(x):
    """(q, logq, fully_masked) along the last axis, as (x - max) - log(sum exp(x - max))."""
    m = np.max(x, axis=-1, keepdims=True)
    z = x - m
    lse = np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    logq = z - lse
    q = np.exp(logq)
    masked = np.all(x == -np.inf, axis=-1)
    return q, logq, masked


def _normalized_probs(p, eps):
    """Keras: q = clip(p / S, eps, 1 - eps); returns (q, inside, S)."""
    S = np.sum(p, axis=-1, keepdims=True)
    r = p / S
    inside = (r >= eps) & (r <= 1.0 - eps)
    return np.clip(r, eps, 1.0 - eps), inside, S


def _soft_ce(yp, x, from_logits, eps, ulp):
    """Cross entropy of a target row yp (class axis last) against logits or
    probabilities x; returns Terms with the class axis last."""
    C = x.shape[-1]
    dr = _row_ulp(ulp, C)
    sy = np.sum(yp, axis=-1, keepdims=True)
    if from_logits:
        q, logq, masked = _log_softmax(x)
        nl = -logq
        l = np.sum(_mul0(yp, nl), axis=-1)
        dl = q * sy - yp
        dl = np.where(masked[..., None], 0.0, dl)
        ml = np.sum(_mul0(np.abs(yp), nl), axis=-1)
        al = dr * np.sum(np.abs(yp), axis=-1)
        mdl = np.where(masked[..., None], 0.0, q * np.abs(sy) + np.abs(yp))
        adl = dr * mdl
        return Terms(l, dl, ml, mdl, al, adl)
    q, inside, S = _normalized_probs(x, eps)
    logq = np.log(q)
    l = -np.sum(_mul0(yp, logq), axis=-1)
    U = np.sum(np.where(inside, yp, 0.0), axis=-1, keepdims=True)
    t = np.where(inside, yp / q, 0.0)
    dl = (U - t) / S
    ml = np.sum(np.abs(_mul0(yp, logq)), axis=-1)
    al = dr * np.sum(np.abs(yp), axis=-1)
    Ua = np.sum(np.where(inside, np.abs(yp), 0.0), axis=-1, keepdims=True)
    mdl = (Ua + np.abs(t)) / np.abs(S)
    adl = dr * mdl
    return Terms(l, dl, ml, mdl, al, adl)


def _to_last(a, axis):
    return np.moveaxis(_f64(a), axis, -1)


def _finish(t, axis, ndim):
    """Move the gradient-shaped fields of a class-last Terms back to ``axis``."""
    ax = axis % ndim
    for f in ("dl", "mdl", "adl"):
        v = np.asarray(getattr(t, f), dtype=np.float64)
        if v.ndim == ndim:
            setattr(t, f, np.moveaxis(v, -1, ax))
    t.axis = ax
    return t


def _check_rows(y_pred, axis):
    p = _f64(y_pred)
    if p.ndim == 0:
        raise ValueError("y_pred must have at least 1 dimension")
    if not -p.ndim <= axis < p.ndim:
        raise ValueError("axis out of range")
    return p


def categorical_cross_entropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, eps=1e-7, axis=-1, ulp=0.0):
    p = _check_rows(y_pred, axis)
    x = _to_last(p, axis)
    y = _to_last(y_true, axis)
    C = x.shape[-1]
    yp = y * (1.0 - label_smoothing) + label_smoothing / C if label_smoothing else y
    return _finish(_soft_ce(yp, x, from_logits, eps, ulp), axis, p.ndim)


def poly1_cross_entropy(
    y_true, y_pred, epsilon=2.0, from_logits=True, label_smoothing=0.0, eps=1e-7, axis=-1, ulp=0.0
):
    """optax's poly_loss_cross_entropy: CE + epsilon * sum_c y'_c (1 - q_c)."""
    p = _check_rows(y_pred, axis)
    x = _to_last(p, axis)
    y = _to_last(y_true, axis)
    C = x.shape[-1]
    yp = y * (1.0 - label_smoothing) + label_smoothing / C if label_smoothing else y
    ce = _soft_ce(yp, x, from_logits, eps, ulp)
    dr = _row_ulp(ulp, C)
    if from_logits:
        q, _, masked = _log_softmax(x)
        # d/dx_j of -sum_c y'_c q_c = q_j (sum_c y'_c q_c - y'_j)
        dq = q * (np.sum(yp * q, axis=-1, keepdims=True) - yp)
        dq = np.where(masked[..., None], 0.0, dq)
        mdq = q * (np.sum(np.abs(yp) * q, axis=-1, keepdims=True) + np.abs(yp))
    else:
        q, inside, S = _normalized_probs(x, eps)
        # d/dp_j of -sum_c y'_c q_c with q = clip(p / S): (sum_{c inside} y'_c q_c - [j inside] y'_j) / S
        V = np.sum(np.where(inside, yp * q, 0.0), axis=-1, keepdims=True)
        dq = (V - np.where(inside, yp, 0.0)) / S
        mdq = (np.sum(np.where(inside, np.abs(yp) * q, 0.0), axis=-1, keepdims=True) + np.abs(yp)) / np.abs(S)
    ce.l = ce.l + epsilon * np.sum(yp * (1.0 - q), axis=-1)
    ce.dl = ce.dl + epsilon * dq
    ce.ml = ce.ml + abs(epsilon) * np.sum(np.abs(yp) * (1.0 + q), axis=-1)
    ce.al = ce.al + dr * abs(epsilon) * np.sum(np.abs(yp), axis=-1)
    ce.mdl = ce.mdl + abs(epsilon) * mdq
    ce.adl = ce.adl + dr * abs(epsilon) * mdq
    return _finish(ce, axis, p.ndim)


def multilabel_soft_margin(y_true, y_pred, class_weights=None, axis=-1, ulp=0.0):
    """PyTorch's multilabel_soft_margin_loss: the class mean of w_c * BCE with logits."""
    p = _check_rows(y_pred, axis)
    x = _to_last(p, axis)
    y = _to_last(y_true, axis)
    C = x.shape[-1]
    w = _class_weights(class_weights, C)
    terms_c = _mul0(y, softplus(-x)) + _mul0(1.0 - y, softplus(x))
    l = np.sum(w * terms_c, axis=-1) / C
    dl = w * (sigmoid(x) - y) / C
    ml = np.sum(np.abs(w) * (np.abs(y) + np.abs(1.0 - y)) * (np.abs(x) + 1.0), axis=-1) / C
    mdl = np.abs(w) * (1.0 + np.abs(y)) / C
    return _finish(Terms(l, dl, ml, mdl), axis, p.ndim)


def categorical_focal(
    y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, eps=1e-7, axis=-1, ulp=0.0
):
    p = _check_rows(y_pred, axis)
    x = _to_last(p, axis)
    y = _to_last(y_true, axis)
    C = x.shape[-1]
    dr = _row_ulp(ulp, C)
    g = float(gamma)
    a = 1.0 if alpha is None else float(alpha)
    yp = y * (1.0 - label_smoothing) + label_smoothing / C if label_smoothing else y
    if from_logits:
        q, logq, masked = _log_softmax(x)
        om = -np.expm1(logq)  # 1 - q without cancellation
        inside = np.ones(x.shape, bool)
        S = None
    else:
        q, inside, S = _normalized_probs(x, eps)
        logq = np.log(q)
        om = 1.0 - q
        masked = np.zeros(x.shape[:-1], bool)
    w = om ** g
    l = -np.sum(_mul0(a * yp, w * logq), axis=-1)
    # G_c = q_c * d l / d q_c = -a y'_c (om^g - g om^(g-1) q log q)
    qlq = np.where(q == 0, 0.0, q * logq)
    if g == 0:
        k = np.zeros_like(om)
    else:
        k = np.where((om == 0) | (qlq == 0), 0.0, g * om ** (g - 1.0) * qlq)
    G = -_mul0(a * yp, w - k)
    d = 8 * ulp + dr * q  # absolute error of a computed 1 - q
    EG = np.abs(a * yp) * (_pow_diff(om, d, g) + g * np.abs(qlq) * _pow_diff(om, d, g - 1.0))
    EG = np.nan_to_num(EG, nan=0.0, posinf=1e300)
    MG = np.abs(a * yp) * (w + np.abs(k))
    ml = np.sum(np.abs(_mul0(a * yp, w * logq)), axis=-1)
    al = np.sum(np.abs(a * yp) * (dr * w + np.abs(np.where(yp == 0, 0.0, logq)) * _pow_diff(om, d, g)), axis=-1)
    al = np.nan_to_num(al, nan=0.0, posinf=1e300)
    if from_logits:
        sG = np.sum(G, axis=-1, keepdims=True)
        dl = G - q * sG
        dl = np.where(masked[..., None], 0.0, dl)
        mdl = MG + q * np.sum(MG, axis=-1, keepdims=True)
        adl = EG + q * np.sum(EG, axis=-1, keepdims=True) + dr * mdl
    else:
        Gi = np.where(inside, G, 0.0)
        t = np.where(inside, G / q, 0.0)
        dl = (t - np.sum(Gi, axis=-1, keepdims=True)) / S
        mdl = (np.where(inside, MG / q, 0.0) + np.sum(np.where(inside, MG, 0.0), axis=-1, keepdims=True)) / np.abs(S)
        adl = (np.where(inside, EG / q, 0.0) + np.sum(np.where(inside, EG, 0.0), axis=-1, keepdims=True)) / np.abs(S)
        adl = adl + dr * mdl
    return _finish(Terms(l, dl, ml, mdl, al, adl), axis, p.ndim)


def categorical_hinge(y_true, y_pred, axis=-1, ulp=0.0):
    pp = _check_rows(y_pred, axis)
    p = _to_last(pp, axis)
    y = _to_last(y_true, axis)
    pos = np.sum(y * p, axis=-1)
    v = (1.0 - y) * p
    neg = np.max(v, axis=-1)
    k = np.argmax(v, axis=-1)  # the first index attaining the max
    z = neg - pos + 1.0
    l = np.maximum(0.0, z)
    onehot = np.arange(p.shape[-1]) == k[..., None]
    dl = np.where((z > 0)[..., None], -y + (1.0 - y) * onehot, 0.0)
    ml = np.abs(neg) + np.sum(np.abs(y * p), axis=-1) + 1.0
    return _finish(Terms(l, dl, ml, 0.0), axis, pp.ndim)


def kl_divergence(y_true, y_pred, log_input=False, log_target=False, axis=-1, ulp=0.0):
    pp = _check_rows(y_pred, axis)
    p = _to_last(pp, axis)
    y = _to_last(y_true, axis)
    dr = _row_ulp(ulp, p.shape[-1])
    lp = p if log_input else np.log(p)
    if log_target:
        t = np.exp(y)
        logt = y
        term = t * (logt - lp)
    else:
        t = y
        logt = np.log(t)
        term = np.where(t == 0, 0.0, t * (logt - lp))
    l = np.sum(term, axis=-1)
    dl = -t if log_input else -t / p
    if not log_target:
        dl = np.where(t == 0, 0.0, dl)
    mterm = np.abs(t * logt) + np.abs(t * lp)
    if not log_target:
        mterm = np.where(t == 0, 0.0, mterm)
    ml = np.sum(mterm, axis=-1)
    t = Terms(l, dl, ml, np.abs(dl), dr * ml, dr * np.abs(dl))
    return _finish(t, axis, pp.ndim)


def jensen_shannon(y_true, y_pred, beta=0.5, log_input=False, axis=-1, ulp=0.0):
    pp = _check_rows(y_pred, axis)
    x = _to_last(pp, axis)
    y = _to_last(y_true, axis)
    dr = _row_ulp(ulp, x.shape[-1])
    b = float(beta)
    if log_input:
        logP, logQ = y, x
        P, Q = np.exp(y), np.exp(x)
    else:
        P, Q = y, x
        logP, logQ = np.log(P), np.log(Q)
    if b == 0.0:
        term = _mul0(P, logP - logQ)
        mterm = np.abs(_mul0(P, np.abs(logP) + np.abs(logQ)))
        dl = -P if log_input else -P / Q
        mdl = np.abs(dl)
    elif b == 1.0:
        term = _mul0(Q, logQ - logP)
        mterm = np.abs(_mul0(Q, np.abs(logQ) + np.abs(logP)))
        if log_input:
            dl = Q * (logQ - logP) + Q
            mdl = Q * (np.abs(logQ) + np.abs(logP) + 1.0)
        else:
            dl = logQ - logP + 1.0
            mdl = np.abs(logQ) + np.abs(logP) + 1.0
    else:
        if log_input:
            logM = np.logaddexp(math.log(b) + logP, math.log1p(-b) + logQ)
        else:
            logM = np.log(b * P + (1.0 - b) * Q)
        term = _mul0(b * P, logP - logM) + _mul0((1.0 - b) * Q, logQ - logM)
        mterm = np.abs(_mul0(b * P, np.abs(logP) + np.abs(logM))) + np.abs(
            _mul0((1.0 - b) * Q, np.abs(logQ) + np.abs(logM))
        )
        if log_input:
            dl = _mul0((1.0 - b) * Q, logQ - logM)
            mdl = np.abs(_mul0((1.0 - b) * Q, np.abs(logQ) + np.abs(logM)))
        else:
            dl = (1.0 - b) * (logQ - logM)
            mdl = (1.0 - b) * (np.abs(logQ) + np.abs(logM))
    l = np.sum(term, axis=-1)
    ml = np.sum(mterm, axis=-1)
    t = Terms(l, dl, ml, mdl, dr * ml, dr * mdl)
    return _finish(t, axis, pp.ndim)


def _labels(y_true, R, C, ignore_index):
    t = np.asarray(y_true)
    if t.dtype.kind not in "iu":
        raise TypeError("y_true must hold integer labels")
    if t.shape != R:
        raise ValueError(f"y_true shape {t.shape} != rows shape {R}")
    ti = t.astype(object) if t.dtype == np.uint64 else t
    ignored = np.zeros(R, bool) if ignore_index is None else (ti == ignore_index)
    bad = ~ignored & ((ti < 0) | (ti >= C))
    if np.any(bad):
        raise ValueError(f"y_true label out of range at {np.argwhere(bad)[0]}")
    tt = np.where(ignored, 0, ti).astype(np.int64)
    return tt, ignored


def _class_weights(class_weights, C):
    if class_weights is None:
        return np.ones(C)
    w = _f64(class_weights)
    if w.shape != (C,):
        raise ValueError("class_weights must be 1-D of length C")
    return w


def _label_rows(y_true, y_pred, axis, ignore_index, class_weights):
    pp = _check_rows(y_pred, axis)
    x = _to_last(pp, axis)
    R, C = x.shape[:-1], x.shape[-1]
    if C == 0:
        raise ValueError("C == 0")
    tt, ignored = _labels(y_true, R, C, ignore_index)
    w = _class_weights(class_weights, C)
    onehot = (np.arange(C) == tt[..., None]).astype(np.float64)
    wt = w[tt]
    return pp, x, C, tt, ignored, w, onehot, wt


def _drop_ignored(t, ignored, wt):
    ign = ignored[..., None]
    t.l = np.where(ignored, 0.0, t.l)
    t.ml = np.where(ignored, 0.0, np.broadcast_to(t.ml, ignored.shape))
    t.al = np.where(ignored, 0.0, np.broadcast_to(t.al, ignored.shape))
    t.dl = np.where(ign, 0.0, t.dl)
    t.mdl = np.where(ign, 0.0, np.broadcast_to(t.mdl, np.shape(t.dl)))
    t.adl = np.where(ign, 0.0, np.broadcast_to(t.adl, np.shape(t.dl)))
    t.mult = np.where(ignored, 0.0, wt)
    t.active = ~ignored
    return t


def sparse_categorical_cross_entropy(
    y_true,
    y_pred,
    from_logits=False,
    ignore_index=None,
    label_smoothing=0.0,
    class_weights=None,
    eps=1e-7,
    axis=-1,
    ulp=0.0,
):
    pp, x, C, tt, ignored, w, onehot, wt = _label_rows(y_true, y_pred, axis, ignore_index, class_weights)
    ls = float(label_smoothing)
    # y'_c = (1 - ls) w_t [c == t] + (ls / C) w_c
    yp = (1.0 - ls) * wt[..., None] * onehot + (ls / C) * w
    # ignored rows: any finite logits (NaN and -inf must not leak)
    xs = np.where(ignored[..., None], 1.0, x)
    t = _soft_ce(yp, xs, from_logits, eps, ulp)
    t = _drop_ignored(t, ignored, wt)
    return _finish(t, axis, pp.ndim)


def nll(y_true, y_pred, ignore_index=None, class_weights=None, axis=-1, ulp=0.0):
    pp, x, C, tt, ignored, w, onehot, wt = _label_rows(y_true, y_pred, axis, ignore_index, class_weights)
    xs = np.where(ignored[..., None], 0.0, x)
    xt = np.take_along_axis(xs, tt[..., None], axis=-1)[..., 0]
    l = -wt * xt
    dl = -wt[..., None] * onehot
    t = Terms(l, dl, np.abs(l), np.abs(dl))
    t = _drop_ignored(t, ignored, wt)
    return _finish(t, axis, pp.ndim)


def generalized_cross_entropy(y_true, y_pred, q=0.5, ignore_index=None, axis=-1, ulp=0.0):
    """Keras' CategoricalGeneralizedCrossEntropy: (1 - p_t**q) / q of the label's probability."""
    pp, x, C, tt, ignored, w, onehot, wt = _label_rows(y_true, y_pred, axis, ignore_index, None)
    xs = np.where(ignored[..., None], 1.0, x)
    pt = np.take_along_axis(xs, tt[..., None], axis=-1)[..., 0]
    l = (1.0 - pt**q) / q
    dt = -(pt ** (q - 1.0))
    dl = dt[..., None] * onehot
    # log, exp and expm1 each round to a few ulp of p_t**q, p_t**(q - 1)
    t = Terms(l, dl, np.abs(pt**q) / q + np.abs(l), np.abs(dl))
    t = _drop_ignored(t, ignored, wt)
    return _finish(t, axis, pp.ndim)


def multi_margin(y_true, y_pred, p=1, margin=1.0, class_weights=None, axis=-1, ulp=0.0):
    pp, x, C, tt, ignored, w, onehot, wt = _label_rows(y_true, y_pred, axis, None, class_weights)
    xt = np.take_along_axis(x, tt[..., None], axis=-1)
    z = margin - xt + x
    other = onehot == 0
    act = other & (z > 0)
    zp = np.where(act, z, 0.0)
    wt1 = wt[..., None]
    l = np.sum(wt1 * zp ** p, axis=-1) / C
    dc = np.where(act, wt1 * p * zp ** (p - 1) / C, 0.0)
    dl = dc - onehot * np.sum(dc, axis=-1, keepdims=True)
    scale = abs(margin) + np.abs(xt) + np.abs(x)
    mterm = np.where(act, np.abs(wt1) * p * np.abs(zp) ** (p - 1) * scale, 0.0) / C
    ml = np.sum(mterm, axis=-1)
    if p == 1:
        mdl = np.abs(dc) + onehot * np.sum(np.abs(dc), axis=-1, keepdims=True)
    else:
        mc = np.where(act, 2.0 * np.abs(wt1) * scale, 0.0) / C
        mdl = mc + onehot * np.sum(mc, axis=-1, keepdims=True)
    t = Terms(l, dl, ml, mdl)
    t.mult = np.ones(l.shape)
    return _finish(t, axis, pp.ndim)



# ---------------------------------------------------------------------------
# Metrics (fastloss.METRICS): hits, 1.0 or 0.0 (NaN where an input is NaN),
# with a zero gradient (metrics have none; fastloss refuses .grad).
# ---------------------------------------------------------------------------


def binary_accuracy(y_true, y_pred, threshold=0.5, from_logits=False, ulp=0.0):
    """Keras' BinaryAccuracy with y_true rounded at 0.5: [(p > threshold) == (y >= 0.5)]."""
    y = _f64(y_true)
    if np.any(y < 0) or np.any(y > 1):
        raise ValueError("y_true must lie in [0, 1]")
    x = _f64(y_pred)
    t = float(np.log(threshold) - np.log1p(-threshold)) if from_logits else float(threshold)
    with np.errstate(all="ignore"):
        hit = ((x > t) == (y >= 0.5)).astype(np.float64)
        hit = np.where(np.isnan(x) | np.isnan(y), np.nan, hit)
    return Terms(hit, np.zeros_like(x))


def _top_k_hits(x, t, top_k):
    """[rank of class t < top_k] per row of x (class-last), the rank in a
    stable descending sort: #{c : x_c > x_t} + #{c < t : x_c == x_t}."""
    if top_k < 1:
        raise ValueError("top_k must be >= 1")
    xt = np.take_along_axis(x, t[..., None], axis=-1)
    c = np.arange(x.shape[-1])
    with np.errstate(invalid="ignore"):
        rank = np.sum((x > xt) | ((c < t[..., None]) & (x == xt)), axis=-1)
    return (rank < top_k).astype(np.float64)


def categorical_accuracy(y_true, y_pred, top_k=1, axis=-1, ulp=0.0):
    """Keras' (TopK)CategoricalAccuracy: the first argmax of y_true among y_pred's top_k."""
    pp = _check_rows(y_pred, axis)
    x = _to_last(pp, axis)
    y = _to_last(y_true, axis)
    if y.shape != x.shape:
        raise ValueError("y_true and y_pred shapes differ")
    if x.shape[-1] == 0:
        raise ValueError("C == 0")
    t = np.argmax(y, axis=-1)
    hit = _top_k_hits(x, t, top_k)
    nan = np.any(np.isnan(x), axis=-1) | np.any(np.isnan(y), axis=-1)
    return _finish(Terms(np.where(nan, np.nan, hit), np.zeros(x.shape)), axis, pp.ndim)


def sparse_categorical_accuracy(y_true, y_pred, top_k=1, ignore_index=None, axis=-1, ulp=0.0):
    """Keras' Sparse(TopK)CategoricalAccuracy; ignore_index rows drop out (token accuracy)."""
    pp, x, C, tt, ignored, w, onehot, wt = _label_rows(y_true, y_pred, axis, ignore_index, None)
    hit = _top_k_hits(x, tt, top_k)
    nan = np.any(np.isnan(x), axis=-1)
    t = Terms(np.where(nan, np.nan, hit), np.zeros(x.shape))
    t = _drop_ignored(t, ignored, wt)
    return _finish(t, axis, pp.ndim)


#: The metrics of fastloss.METRICS -> their reference (value via ``terms``).
METRICS = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
}

LOSSES = {
    "binary_cross_entropy": binary_cross_entropy,
    "binary_focal": binary_focal,
    "hinge": hinge,
    "squared_hinge": squared_hinge,
    "soft_margin": soft_margin,
    "categorical_cross_entropy": categorical_cross_entropy,
    "categorical_focal": categorical_focal,
    "categorical_hinge": categorical_hinge,
    "kl_divergence": kl_divergence,
    "jensen_shannon": jensen_shannon,
    "poly1_cross_entropy": poly1_cross_entropy,
    "multilabel_soft_margin": multilabel_soft_margin,
    "sparse_categorical_cross_entropy": sparse_categorical_cross_entropy,
    "nll": nll,
    "multi_margin": multi_margin,
    "generalized_cross_entropy": generalized_cross_entropy,
}


def terms(name, y_true, y_pred, ulp=0.0, **options):
    """Terms (loss, derivative, magnitudes) of loss ``name`` in float64."""
    name = canonical(name)
    with np.errstate(all="ignore"):
        t = (LOSSES.get(name) or METRICS[name])(y_true, y_pred, ulp=ulp, **options)
        if name in BINARY or name == "binary_accuracy":
            shape = np.broadcast_shapes(np.shape(y_true), np.shape(y_pred))
        else:
            shape = np.shape(y_pred)
        if t.axis is None:
            R = shape
        else:
            R = shape[: t.axis] + shape[t.axis + 1 :]
        t.l = np.broadcast_to(_f64(t.l), R)
        t.dl = np.broadcast_to(_f64(t.dl), shape)
        t.ml = np.broadcast_to(_f64(t.ml), R)
        t.al = np.broadcast_to(_f64(t.al), R)
        t.mdl = np.broadcast_to(_f64(t.mdl), shape)
        t.adl = np.broadcast_to(_f64(t.adl), shape)
        t.mult = np.broadcast_to(_f64(t.mult), R)
        t.active = np.ones(R, bool) if t.active is None else np.broadcast_to(t.active, R)
    return t


def loss(name, y_true, y_pred, **options):
    """Per-element / per-row loss and its derivative w.r.t. y_pred, float64."""
    t = terms(name, y_true, y_pred, **options)
    return np.array(t.l), np.array(t.dl)


def reduce(t, weights, reduction, rtol=0.0, floor=0.0):
    """The weighted reduction of the spec applied to Terms ``t``.

    Returns (value, grad, value_tol, grad_tol): value is a float ("mean",
    "sum") or an array of the rows shape ("none"); grad has y_pred's shape; the
    tolerances are absolute allowances of the same shapes."""
    R = t.l.shape
    shape = t.dl.shape
    with np.errstate(all="ignore"):
        s = np.ones(R) if weights is None else np.broadcast_to(_f64(weights), R)
        sx = s if t.axis is None else np.expand_dims(s, t.axis)
        sa, sxa = np.abs(s), np.abs(sx)
        wl = np.where(t.active, s * t.l, 0.0)
        wdl = np.broadcast_to(sx * t.dl, shape)
        # a NaN allowance belongs to a NaN result (which must match exactly)
        tl = np.nan_to_num(rtol * (np.abs(wl) + sa * t.ml) + sa * t.al, nan=0.0)
        tdl = np.nan_to_num(np.broadcast_to(rtol * (np.abs(wdl) + sxa * t.mdl) + sxa * t.adl, shape), nan=0.0)
        if reduction == "none":
            return wl, wdl, tl + floor, tdl + floor
        if reduction == "sum":
            return float(np.sum(wl)), wdl, float(np.sum(tl)) + floor, tdl + floor
        if reduction == "mean":
            if not np.any(t.active):
                return float("nan"), np.zeros(shape), 0.0, np.zeros(shape)
            D = np.sum(s * t.mult)
            Da = abs(D)
            return float(np.sum(wl) / D), wdl / D, float(np.sum(tl) / Da) + floor, tdl / Da + floor
    raise ValueError(f"unknown reduction {reduction!r}")
