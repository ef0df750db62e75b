"""The elementwise losses whose reference is a per-element (loss, derivative)
pair: the regression losses and the hinge embedding loss (``LOSSES`` lists
them).

Each loss takes ``(y_true, y_pred, **options)`` and returns two float64 arrays
of the inputs' broadcast shape: the per-element loss ``l`` and its derivative
``dl`` with respect to ``y_pred``. Every formula is written the plain way, in
float64.

``loss(name, y_true, y_pred, **options)`` evaluates one of them (under
``np.errstate(all="ignore")``: the reference wants exactly the IEEE results
inf and NaN, not warnings). ``reduce(l, dl, weights, reduction, shape)``
applies the weighted reduction to a value and its gradient:

    sum  = sum(w * l)               grad = w * dl
    mean = sum(w * l) / sum(w)      grad = w * dl / sum(w)
    none = w * l                    grad = w * dl

``magnitude(name, ...)`` gives the size of the terms that make up ``(l, dl)``,
from which the tests derive their error allowances: where terms cancel
(msle's log1p(p) - log1p(y), ...) a kernel is wrong by a few ulp of the
largest term, not of the result.
"""

import math

import numpy as np

from ._common import _f64

LOG2 = math.log(2.0)


def mse(y_true, y_pred):
    r = _f64(y_pred) - _f64(y_true)
    return r * r, 2.0 * r


def mae(y_true, y_pred):
    r = _f64(y_pred) - _f64(y_true)
    return np.abs(r), np.sign(r)


def huber(y_true, y_pred, delta=1.0):
    r = _f64(y_pred) - _f64(y_true)
    a = np.abs(r)
    l = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    dl = np.clip(r, -delta, delta)  # np.clip keeps NaN
    return l, dl


def smooth_l1(y_true, y_pred, beta=1.0):
    r = _f64(y_pred) - _f64(y_true)
    a = np.abs(r)
    if beta == 0:
        return a, np.sign(r)
    l = np.where(a < beta, 0.5 * r * r / beta, a - 0.5 * beta)
    dl = np.where(a < beta, r / beta, np.sign(r))
    return l, dl


def log_cosh(y_true, y_pred):
    # log(cosh(r)) overflows cosh for |r| > 710 and loses all digits for tiny r.
    # Small |r|: cosh(r) - 1 = 2 sinh(r/2)^2, so log(cosh r) = log1p(2 sinh(r/2)^2),
    # accurate to a few ulp. Large |r|: |r| + log1p(exp(-2|r|)) - log(2), no
    # cancellation there since the result is >= 0.43.
    r = _f64(y_pred) - _f64(y_true)
    a = np.abs(r)
    small = np.log1p(2.0 * np.sinh(0.5 * r) ** 2)
    large = a + np.log1p(np.exp(-2.0 * a)) - LOG2
    l = np.where(a < 1.0, small, large)
    return l, np.tanh(r)


def msle(y_true, y_pred):
    p = _f64(y_pred)
    d = np.log1p(p) - np.log1p(_f64(y_true))
    return d * d, 2.0 * d / (1.0 + p)


def mape(y_true, y_pred, eps=np.finfo(np.float64).eps):
    y, p = _f64(y_true), _f64(y_pred)
    r = p - y
    den = np.maximum(np.abs(y), eps)  # np.maximum keeps NaN
    return np.abs(r) / den, np.sign(r) / den


def _stirling(y):
    """PyTorch's full=True term: y log y - y + 0.5 log(2 pi y) where y > 1, else 0."""
    return np.where(y > 1, y * np.log(y) - y + 0.5 * np.log(2.0 * np.pi * y), 0.0)


def poisson_nll(y_true, y_pred, log_input=True, full=False, eps=1e-8):
    y, p = _f64(y_true), _f64(y_pred)
    if log_input:
        e = np.exp(p)
        l = e - y * p
        dl = e - y
    else:
        l = p - y * np.log(p + eps)
        dl = 1.0 - y / (p + eps)
    if full:
        l = l + _stirling(y)
    return l, dl


def quantile(y_true, y_pred, q=0.5):
    y, p = _f64(y_true), _f64(y_pred)
    d = y - p
    l = np.maximum(q * d, (q - 1.0) * d)
    dl = np.where(y > p, -q, np.where(y < p, 1.0 - q, 0.0))
    dl = np.where(np.isnan(d), np.nan, dl)  # NaN in -> NaN out
    return l, dl


def tweedie(y_true, y_pred, power=0.0):
    """scikit-learn's Tweedie deviance of the mean ``mu = y_pred``; the
    derivative is ``2 mu**-p (mu - y)`` for every power."""
    y, mu = _f64(y_true), _f64(y_pred)
    p = float(power)
    if p == 0:
        l = (y - mu) ** 2
    elif p == 1:
        l = 2 * (np.where(y == 0, 0.0, y * np.log(y / mu)) - y + mu)
    elif p == 2:
        l = 2 * (np.log(mu / y) + y / mu - 1)
    else:
        l = 2 * (np.maximum(y, 0) ** (2 - p) / ((1 - p) * (2 - p))
                 - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))
    return l, 2 * mu ** (-p) * (mu - y)


def hinge_embedding(y_true, y_pred, margin=1.0):
    """PyTorch's hinge_embedding_loss of x = y_pred, as PyTorch computes it for
    any label: ``[y != 1] max(0, margin - x) + [y != -1] x``."""
    y, x = _f64(y_true), _f64(y_pred)
    h = margin - x
    l = np.where(y != 1, np.maximum(h, 0), 0.0) + np.where(y != -1, x, 0.0)
    dl = np.where(y != -1, 1.0, 0.0) - np.where((y != 1) & (h > 0), 1.0, 0.0)
    nan = np.isnan(x)
    return np.where(nan, np.nan, l), np.where(nan, np.nan, dl)


LOSSES = {
    "mse": mse,
    "mae": mae,
    "huber": huber,
    "smooth_l1": smooth_l1,
    "log_cosh": log_cosh,
    "msle": msle,
    "mape": mape,
    "poisson_nll": poisson_nll,
    "quantile": quantile,
    "tweedie": tweedie,
    "hinge_embedding": hinge_embedding,
}


def loss(name, y_true, y_pred, **options):
    """Per-element (loss, derivative) of loss ``name`` in float64."""
    with np.errstate(all="ignore"):
        l, dl = LOSSES[name](y_true, y_pred, **options)
    shape = np.broadcast_shapes(np.shape(y_true), np.shape(y_pred))
    return np.broadcast_to(l, shape).astype(np.float64), np.broadcast_to(dl, shape).astype(np.float64)


def magnitude(name, y_true, y_pred, **options):
    """Size of the terms that make up (l, dl), for absolute error allowances.

    A float32 (or float64) kernel evaluates each term with a relative error of a
    few ulp; where terms cancel (msle's log1p(p) - log1p(y), Poisson's
    exp(p) - y p, log-cosh's |r| + log1p(...) - log 2) the error of the result is
    a few ulp of the largest term, not of the result. Losses without cancellation
    return just (|l|, |dl|).
    """
    y, p = _f64(y_true), _f64(y_pred)
    with np.errstate(all="ignore"):
        l, dl = loss(name, y, p, **options)
        ml, mdl = np.abs(l), np.abs(dl)
        if name == "log_cosh":
            ml = ml + 0.01
        elif name == "msle":
            a, b = np.abs(np.log1p(p)), np.abs(np.log1p(y))
            ml = ml + 2.0 * np.sqrt(ml) * (a + b)
            mdl = mdl + 2.0 * (a + b) / np.abs(1.0 + p)
        elif name == "tweedie":
            # The deviance is a sum of terms that cancel near y = mu.
            pw = float(options.get("power", 0.0))
            if pw == 1:
                ml = ml + 2 * (np.abs(np.where(y == 0, 0.0, y * np.log(y / p))) + np.abs(y) + np.abs(p))
            elif pw == 2:
                ml = ml + 2 * (np.abs(np.log(p / y)) + np.abs(y / p) + 1)
            elif pw != 0:
                ml = ml + 2 * (np.abs(np.maximum(y, 0) ** (2 - pw) / ((1 - pw) * (2 - pw)))
                               + np.abs(y * p ** (1 - pw) / (1 - pw)) + np.abs(p ** (2 - pw) / (2 - pw)))
            mdl = mdl + 2 * np.abs(p) ** (-pw) * (np.abs(p) + np.abs(y))
        elif name == "poisson_nll":
            eps = options.get("eps", 1e-8)
            if options.get("log_input", True):
                ml = ml + np.exp(p) + np.abs(y * p)
                mdl = mdl + np.exp(p) + np.abs(y)
            else:
                ml = ml + np.abs(p) + np.abs(y * np.log(p + eps))
                mdl = mdl + 1.0 + np.abs(y / (p + eps))
            if options.get("full", False):
                big = y > 1
                ml = ml + np.where(big, np.abs(y * np.log(y)) + np.abs(y) + np.abs(0.5 * np.log(2 * np.pi * y)), 0.0)
    return ml, mdl


def reduce(l, dl, weights, reduction, shape):
    """Apply the spec's weighted reduction to per-element (l, dl).

    Returns (value, grad): value is a float for "mean"/"sum" and an array of
    ``shape`` for "none"; grad is an array of ``shape`` (the gradient of value, or
    of sum(value) for "none").
    """
    l = np.broadcast_to(_f64(l), shape)
    dl = np.broadcast_to(_f64(dl), shape)
    if weights is None:
        w = np.ones(shape)
    else:
        w = np.broadcast_to(_f64(weights), shape)
    with np.errstate(all="ignore"):
        wl = w * l
        wdl = w * dl
        if reduction == "none":
            return wl, wdl
        if reduction == "sum":
            return float(np.sum(wl)), wdl
        if reduction == "mean":
            sw = np.sum(w)
            return float(np.sum(wl) / sw), wdl / sw
    raise ValueError(f"unknown reduction {reduction!r}")

def gaussian_nll(input, target, var, full=False, eps=1e-6):
    """PyTorch's GaussianNLLLoss: ``v = max(var, eps)``, ``r = input - target``,
    ``l = (log v + r**2 / v) / 2`` (``+ log(2 pi) / 2`` with ``full``); the
    gradients with respect to input and var, the clamp passing the latter
    through as PyTorch's does. A Result (inputs: input, var)."""
    from ._result import Result

    x, t, v = _f64(input), _f64(target), _f64(var)
    vc = np.where(v < eps, eps, v)
    r = x - t
    c = 0.5 * math.log(2.0 * math.pi) if full else 0.0
    l = 0.5 * (np.log(vc) + r * r / vc) + c
    g_input = r / vc
    g_var = 0.5 * (1.0 / vc - (r / vc) ** 2)
    s = np.abs(x) + np.abs(t)  # r's rounding error is a few ulp of this
    ml = 0.5 * np.abs(np.log(vc)) + 0.5 * r * r / vc + np.abs(r) * s / vc + c
    mg = (s / vc, 0.5 / vc + (r / vc) ** 2 + np.abs(r) * s / vc ** 2)
    return Result(l, (g_input, g_var), (), ml, mg)


#: The regression losses of several inputs (fastloss.OTHER_LOSSES): each
#: takes its inputs in the order of ``fl.NAME`` and returns a ``Result``
#: (structured.py gathers them).
OTHER_LOSSES = {"gaussian_nll": gaussian_nll}
