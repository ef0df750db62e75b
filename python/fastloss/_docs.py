"""Docstrings of the losses, made from the registry.

Each loss's summary, formula and notes, and each option's type, default and
doc line come from its registry row in the C++ core (``fastloss._core.loss_info``;
the rows are in ``cpp/include/fastloss/*.hpp``). This module only lays them
out, with the call contract of the loss's driver.
"""

_CONTRACT = """
Call forms (every loss)::

    value = {name}(y_true, y_pred, *, reduction="mean", weights=None{opts})
    grad = {name}.grad(y_true, y_pred, *, reduction="mean", weights=None, out=None{opts})
    value, grad = {name}.value_and_grad(y_true, y_pred, ..., out=None)

Parameters
----------
y_true : array_like of real numbers
    Targets, the same shape as ``y_pred`` (no broadcasting); converted to
    ``y_pred``'s dtype.
y_pred : array_like of float32 or float64
    Predictions. Any buffer-protocol object and any strides are accepted.
reduction : {{"mean", "sum", "none"}}
    ``"mean"``: ``sum(w * l) / sum(w)`` (the plain mean without weights);
    ``"sum"``: ``sum(w * l)``; ``"none"``: the array ``w * l``.
weights : array_like, optional
    Broadcastable to ``y_pred`` (NumPy rules, e.g. ``(N, 1)`` per sample or
    ``(T,)`` per time step).
out : ndarray, optional
    Where to write the gradient: writable, ``y_pred``'s shape and dtype, any
    strides; it may be ``y_pred`` itself (in-place).

Returns
-------
The reduced value as a NumPy scalar of ``y_pred``'s dtype (an array for
``reduction="none"``); the gradient ``d value / d y_pred`` as an array of
``y_pred``'s shape and dtype: ``w * dl / sum(w)`` for ``"mean"``, ``w * dl``
for ``"sum"`` and for ``"none"`` (the gradient of the sum of the returned
array).

Empty input gives 0 (``"sum"``), NaN (``"mean"``), an empty array
(``"none"``) and an empty gradient. NaN in gives NaN out. Sums are
accumulated in float64 in fixed blocks, so results are bit-identical for any
thread count.
"""


_ROW_CONTRACT = """
Call forms (every loss)::

    value = {name}(y_true, y_pred, *, reduction="mean", weights=None{opts})
    grad = {name}.grad(y_true, y_pred, *, reduction="mean", weights=None, out=None{opts})
    value, grad = {name}.value_and_grad(y_true, y_pred, ..., out=None)

Parameters
----------
y_true : array_like
    {targets}
y_pred : array_like of float32 or float64, at least 1-D
    One row of C values (classes, or a vector's components) along ``axis``; the other dimensions are samples
    (a middle axis such as ``(N, C, H, W)`` with ``axis=1`` is fine). Any
    buffer-protocol object and any strides are accepted.
reduction : {{"mean", "sum", "none"}}
    ``"none"`` returns the per-row losses ``w * l`` (``y_pred``'s shape without
    ``axis``); ``"sum"`` their sum; ``"mean"`` their sum divided by {denominator}.
weights : array_like, optional
    Per-row weights ``w``, broadcastable to the rows' shape (``y_pred``'s shape
    without ``axis``), NumPy rules.
out : ndarray, optional
    Where to write the gradient: writable, ``y_pred``'s shape and dtype, any
    strides.

Returns
-------
The reduced value as a NumPy scalar of ``y_pred``'s dtype (an array for
``reduction="none"``); the gradient ``d value / d y_pred`` with ``y_pred``'s
shape and dtype.

A mean over nothing (no rows{ignored}) is NaN with an all-zero gradient;
a sum over nothing is 0. Row sums are accumulated in float64 in a fixed
order: results are bit-identical for any thread count. ``C = 0`` and an
``axis`` out of range are ValueErrors.
"""

_DENSE = "Targets of ``y_pred``'s shape (probabilities, e.g. one-hot rows), converted to ``y_pred``'s dtype."
_LABELS = (
    "Integer class labels (any integer dtype) of the rows' shape: ``y_pred``'s shape "
    "without ``axis``. A label outside ``[0, C)`` (and not ``ignore_index``) is a "
    "ValueError naming its position, raised before anything is written; float "
    "labels are a TypeError."
)




def _format_default(value):
    if isinstance(value, float) and value != 0 and (abs(value) < 1e-4 or abs(value) >= 1e6):
        return f"{value:g}".replace("e-0", "e-").replace("e+0", "e+")
    return repr(value)


def options_section(options):
    """The numpydoc lines of a loss's options (``loss_info(name)["options"]``)."""
    lines = []
    for o in options:
        if o["choices"] is not None:
            kind = "{" + ", ".join(repr(c) for c in o["choices"]) + "}"
        else:
            kind = o["type"]
        lines.append(f"{o['name']} : {kind}, default {_format_default(o['default'])}")
        if o["doc"]:
            lines.append(f"    {o['doc']}")
    return "\n".join(lines)


def signature_suffix(options):
    """``", delta=1.0"``: the options as they appear in a call."""
    return "".join(f", {o['name']}={_format_default(o['default'])}" for o in options)


def render(info):
    """The docstring of the loss described by ``info`` (``_core.loss_info``)."""
    name, options, driver = info["name"], info["options"], info["driver"]
    text = f"{info['summary']}\n\n{info['formula']}\n"
    if options:
        text += f"\nOptions\n-------\n{options_section(options)}\n"
    if driver in ("dense_rows", "label_rows"):
        labels = driver == "label_rows"
        weighted = any(o["name"] == "ignore_index" for o in options)
        text += _ROW_CONTRACT.format(
            name=name, opts=signature_suffix(options), targets=_LABELS if labels else _DENSE,
            denominator=("``sum(weights * class_weights[t])`` over the rows that are not ignored "
                         "(PyTorch's weighted mean)") if weighted
            else "the number of rows (the sum of ``weights``)",
            ignored=", or every row ignored" if weighted else "")
    else:
        text += _CONTRACT.format(name=name, opts=signature_suffix(options))
    if info["notes"]:
        text += f"\nNotes\n-----\n{info['notes']}\n"
    return text
