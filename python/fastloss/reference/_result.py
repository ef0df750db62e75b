"""The result record and the weighted reduction of the structured losses.

A structured loss returns a ``Result``: the per-sample losses ``l``, the
gradients of ``sum(l)`` with respect to each differentiable input, the axes of
an input that make up one sample, and the magnitudes ``ml`` / ``mg`` of the
terms (see ``fastloss.reference.structured``). ``reduce`` applies the weighted
"mean" / "sum" / "none" reduction to it.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._common import _f64


@dataclass
class Result:
    l: Any
    grads: tuple
    axes: tuple = ()
    ml: Any = None
    mg: tuple = field(default_factory=tuple)

    def __post_init__(self):
        self.l = _f64(self.l)
        self.grads = tuple(_f64(g) for g in self.grads)
        if self.ml is None:
            self.ml = np.abs(self.l)
        self.ml = np.maximum(_f64(self.ml), np.abs(self.l))
        if not self.mg:
            self.mg = tuple(np.abs(g) for g in self.grads)
        self.mg = tuple(np.maximum(_f64(m), np.abs(g)) for m, g in zip(self.mg, self.grads))
        # NaN magnitudes belong to NaN results, which must match exactly
        self.ml = np.nan_to_num(self.ml, nan=0.0, posinf=1e300)
        self.mg = tuple(np.nan_to_num(m, nan=0.0, posinf=1e300) for m in self.mg)


def dmax(a, b):
    """d max(a, b) / d a with torch's convention: half the gradient at a tie."""
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


def dmin(a, b):
    """d min(a, b) / d a, half at a tie."""
    return np.where(a < b, 1.0, np.where(a == b, 0.5, 0.0))


def normalize_axes(axis, ndim):
    """The reduced axes as a sorted tuple of non-negative ints (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    out = []
    for a in axis:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} out of range for {ndim} dimensions")
        a = a % ndim if ndim else a
        if a in out:
            raise ValueError(f"duplicate axis {a}")
        out.append(a)
    return tuple(sorted(out))


# ---------------------------------------------------------------------------
# Reduction
# ---------------------------------------------------------------------------


def reduce(res, weights, reduction):
    """The spec's weighted reduction of a Result.

    Returns (value, grads, value_mag, grad_mags); value is a float for
    "mean"/"sum", an array of the losses shape for "none"; grads are the
    gradients of value (of sum(value) for "none")."""
    L = res.l.shape
    with np.errstate(all="ignore"):
        w = np.ones(L) if weights is None else np.broadcast_to(_f64(weights), L)
        wx = np.expand_dims(w, res.axes) if res.axes else w
        wl = w * res.l
        grads = tuple(wx * g for g in res.grads)
        vm = np.abs(w) * res.ml
        gm = tuple(np.abs(wx) * m for m in res.mg)
        grads = tuple(np.broadcast_to(g, m.shape).copy() for g, m in zip(grads, res.grads))
        gm = tuple(np.broadcast_to(m, g.shape).copy() for m, g in zip(gm, res.grads))
        if reduction == "none":
            return wl, grads, vm, gm
        if reduction == "sum":
            return float(np.sum(wl)), grads, float(np.sum(vm)), gm
        if reduction == "mean":
            if res.l.size == 0:
                return float("nan"), tuple(np.zeros(g.shape) for g in res.grads), 0.0, tuple(np.zeros(g.shape) for g in res.grads)
            D = float(np.sum(w))
            aD = float(np.sum(np.abs(w)))
            k = (1.0 + aD / abs(D)) / abs(D)  # the error of D itself too
            return float(np.sum(wl)) / D, tuple(g / D for g in grads), float(np.sum(vm)) * k, tuple(m * k for m in gm)
    raise ValueError(f"unknown reduction {reduction!r}")
