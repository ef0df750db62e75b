"""Which axes of ``y_pred`` one loss value spans, from a loss's registry row
and options: the per-item losses' shape (``reduction="none"``), the axes that
must stay whole (a row's classes, a region's reduced axes, a box's 4
coordinates). Shared by ``fastloss.dask`` (chunking), ``fastloss.torch`` and
``fastloss.jax`` (output shapes, gradient broadcasting, the losses they take)."""

from __future__ import annotations

import numbers

import numpy as np

# The drivers whose per-item losses are y_pred's shape less some axes (_layout).
_DRIVERS = ("elementwise", "dense_rows", "label_rows", "regions", "boxes")


class _Layout:
    """Where y_pred's axes go: ``whole`` must be one chunk; ``loss_axes``
    (the others, in order) index the per-item losses and the weights;
    ``labels``: y_true has the loss shape (integer labels), else y_pred's."""

    def __init__(self, driver, nd, whole, labels):
        self.driver = driver
        self.nd = nd
        self.whole = tuple(sorted(whole))
        self.loss_axes = tuple(a for a in range(nd) if a not in self.whole)
        self.labels = labels
        # Regions that include axis 0 (axis=None too) span its chunks: their
        # scores need every chunk's sums.
        self.spanning = driver == "regions" and (nd == 0 or 0 in self.whole)

    def loss_shape(self, shape):
        return tuple(shape[a] for a in self.loss_axes)

    def true_shape(self, shape):
        return self.loss_shape(shape) if self.labels else tuple(shape)


def _adapter_multi_names():
    """The losses of several inputs the framework adapters (fastloss.torch,
    fastloss.jax) take: all but pairwise_ranking (an array option, groups)
    and l2_penalty (a list of arrays), which are NumPy calls only."""
    from . import _core

    return [n for n in _core.multi_loss_names() if n not in ("pairwise_ranking", "l2_penalty")]


def _check_call(module, name, reduction, *, arg_names=None, given=None, noun="arrays",
                none_ok=True):
    """The adapters' checks of a call's shape before its options (which the
    core's parser checks): the number of arrays of a loss of several inputs,
    and the reduction."""
    if arg_names is not None and given != len(arg_names):
        raise TypeError(f"{module}.{name}() takes {len(arg_names)} {noun} "
                        f"({', '.join(arg_names)}), got {given}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{module}.{name}: reduction must be 'mean', 'sum' or 'none', got "
                         f"{reduction!r}")
    if reduction == "none" and not none_ok:
        raise ValueError(f"{module}.{name}: reduction='none' gives one array per input; call "
                         f"fastloss.{name} on NumPy arrays for it")


def _normalize_axes(axis, nd):
    """Normalized axes, or None where the core must say what is wrong."""
    if axis is None:
        return tuple(range(nd))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Integral):
            return None
        a = int(a)
        if not -nd <= a < nd:
            return None
        out.append(a % nd)
    if len(set(out)) != len(out):
        return None
    return tuple(out)


def _option_default(info, name):
    for opt in info["options"]:
        if opt["name"] == name:
            return opt["default"]
    return None


def _layout(info, options, nd, *, strict):
    driver = info["driver"]
    names = {o["name"] for o in info["options"]}
    axis = options.get("axis", _option_default(info, "axis")) if "axis" in names else None
    if driver == "elementwise":
        return _Layout(driver, nd, (), False)
    if driver in ("dense_rows", "label_rows"):
        axes = _normalize_axes(axis, nd) if nd > 0 and axis is not None else None
        if axes is None or len(axes) != 1:
            if strict:
                raise ValueError(f"{info['name']}: axis {axis!r} is not an axis of y_pred "
                                 f"with {nd} dimensions")
            axes = ()
        return _Layout(driver, nd, axes, driver == "label_rows")
    if driver == "regions":
        axes = _normalize_axes(axis, nd)
        if axes is None:
            if strict:
                raise ValueError(f"{info['name']}: axis {axis!r} is not a set of axes of y_pred "
                                 f"with {nd} dimensions")
            axes = ()
        return _Layout(driver, nd, axes, False)
    if driver == "boxes":
        return _Layout(driver, nd, (nd - 1,) if nd else (), False)
    raise NotImplementedError(
        f"{info['name']}: Dask arrays are not supported for losses of the {driver!r} driver")
