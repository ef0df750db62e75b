"""Docstrings of the losses (kept apart from the code that binds them)."""

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


def _doc(name, summary, formula, options="", opts_sig="", notes=""):
    text = f"{summary}\n\n{formula}\n"
    if options:
        text += f"\nOptions\n-------\n{options}\n"
    text += _CONTRACT.format(name=name, opts=opts_sig)
    if notes:
        text += f"\nNotes\n-----\n{notes}\n"
    return text


DOCS = {
    "mse": _doc(
        "mse",
        "Mean squared error (alias ``mean_squared_error``).",
        "With ``r = y_pred - y_true``: ``l = r**2``, ``dl/dy_pred = 2 * r``.",
    ),
    "mae": _doc(
        "mae",
        "Mean absolute error (alias ``mean_absolute_error``).",
        "With ``r = y_pred - y_true``: ``l = |r|``, ``dl/dy_pred = sign(r)`` "
        "(0 at ``r = 0``, as NumPy's ``sign`` and PyTorch).",
    ),
    "huber": _doc(
        "huber",
        "Huber loss (PyTorch's ``huber_loss``).",
        "With ``r = y_pred - y_true``: ``l = r**2 / 2`` where ``|r| <= delta``, else "
        "``delta * (|r| - delta / 2)``; ``dl/dy_pred = clip(r, -delta, delta)``. "
        "Continuous in value and gradient at ``|r| = delta``.",
        "delta : float, default 1.0\n    Where the loss turns linear; finite and > 0 "
        "(else ValueError).",
        ", delta=1.0",
    ),
    "smooth_l1": _doc(
        "smooth_l1",
        "Smooth L1 loss (PyTorch's ``smooth_l1_loss``).",
        "With ``r = y_pred - y_true``: ``l = r**2 / (2 * beta)`` where ``|r| < beta``, "
        "else ``|r| - beta / 2``; ``dl/dy_pred = r / beta`` where ``|r| < beta``, else "
        "``sign(r)``. ``beta = 0`` is the L1 loss, with the finite gradient ``sign(r)``.",
        "beta : float, default 1.0\n    Finite and >= 0 (else ValueError).",
        ", beta=1.0",
        "Computed as Huber with ``delta = beta``, divided by ``beta``.",
    ),
    "log_cosh": _doc(
        "log_cosh",
        "Log-cosh loss.",
        "With ``r = y_pred - y_true``: ``l = log(cosh(r))``, ``dl/dy_pred = tanh(r)``.",
        notes="Stable for every finite residual (``|r|`` up to the largest float): "
        "``log1p(-tanh(|r|)**2) / -2`` below 1 and ``|r| + log1p(expm1(-2|r|) / 2)`` "
        "above, so tiny residuals keep their relative accuracy (``l ~ r**2 / 2``) and "
        "large ones never overflow.",
    ),
    "msle": _doc(
        "msle",
        "Mean squared logarithmic error.",
        "``l = (log1p(y_pred) - log1p(y_true))**2``, "
        "``dl/dy_pred = 2 * (log1p(y_pred) - log1p(y_true)) / (1 + y_pred)``.",
        notes="Inputs below -1 give NaN and -1 gives inf, as ``np.log1p`` "
        "(scikit-learn raises for negative inputs instead; Keras clips them).",
    ),
    "mape": _doc(
        "mape",
        "Mean absolute percentage error, as a fraction (scikit-learn's convention).",
        "``l = |y_pred - y_true| / max(|y_true|, eps)``, "
        "``dl/dy_pred = sign(y_pred - y_true) / max(|y_true|, eps)``.",
        "eps : float, default 2.220446049250313e-16\n    Guards zero targets "
        "(``np.finfo(np.float64).eps``, as scikit-learn); finite and > 0.",
        ", eps=2.220446049250313e-16",
    ),
    "poisson_nll": _doc(
        "poisson_nll",
        "Poisson negative log-likelihood (PyTorch's ``poisson_nll_loss``; "
        "``y_pred`` is PyTorch's ``input``, ``y_true`` its ``target``).",
        "``log_input=True``: ``l = exp(y_pred) - y_true * y_pred``, "
        "``dl/dy_pred = exp(y_pred) - y_true``.\n"
        "``log_input=False``: ``l = y_pred - y_true * log(y_pred + eps)``, "
        "``dl/dy_pred = 1 - y_true / (y_pred + eps)``.\n"
        "``full=True`` adds Stirling's term ``y log y - y + log(2 pi y) / 2`` where "
        "``y_true > 1`` (it does not change the gradient).",
        "log_input : bool, default True\n    ``y_pred`` holds log-rates.\n"
        "full : bool, default False\n    Add Stirling's approximation term.\n"
        "eps : float, default 1e-8\n    Added to ``y_pred`` inside the log when "
        "``log_input=False``; finite and >= 0.",
        ", log_input=True, full=False, eps=1e-8",
        "``exp`` overflows to +inf (never NaN) for large log-rates; "
        "``log(0)`` is -inf, as in NumPy and PyTorch.",
    ),
    "quantile": _doc(
        "quantile",
        "Quantile (pinball) loss.",
        "With ``e = y_true - y_pred``: ``l = max(q * e, (q - 1) * e)``; "
        "``dl/dy_pred = -q`` where ``e > 0``, ``1 - q`` where ``e < 0``, and 0 where "
        "``e = 0``.",
        "q : float, default 0.5\n    The quantile, strictly inside (0, 1) "
        "(else ValueError). ``q = 0.5`` is half the absolute error.",
        ", q=0.5",
    ),
}
