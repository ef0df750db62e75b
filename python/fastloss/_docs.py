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
    One row of C classes along ``axis``; the other dimensions are samples
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


def _row_doc(name, summary, formula, options, opts_sig, targets=_DENSE,
             denominator="the number of rows (the sum of ``weights``)", ignored="", notes=""):
    text = f"{summary}\n\n{formula}\n\nOptions\n-------\n{options}\n"
    text += _ROW_CONTRACT.format(name=name, opts=opts_sig, targets=targets,
                                 denominator=denominator, ignored=ignored)
    if notes:
        text += f"\nNotes\n-----\n{notes}\n"
    return text


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
    # --- Classification: binary (elementwise) ---
    "binary_cross_entropy": _doc(
        "binary_cross_entropy",
        "Binary cross-entropy (alias ``bce``) on probabilities or logits.",
        "With ``y = y_true * (1 - label_smoothing) + label_smoothing / 2`` and "
        "``pw = pos_weight``:\n"
        "``from_logits=True`` (PyTorch's ``binary_cross_entropy_with_logits``): "
        "``l = pw * y * softplus(-x) + (1 - y) * softplus(x)``, "
        "``dl/dx = (1 - y) * sigmoid(x) - pw * y * sigmoid(-x)``.\n"
        "``from_logits=False`` (Keras' convention): ``pc = clip(p, eps, 1 - eps)``, "
        "``l = -(pw * y * log(pc) + (1 - y) * log(1 - pc))``, "
        "``dl/dp = -pw * y / pc + (1 - y) / (1 - pc)`` where ``eps <= p <= 1 - eps`` "
        "and 0 where the clip is active.",
        "from_logits : bool, default False\n    ``y_pred`` holds logits.\n"
        "eps : float, default 1e-7\n    Clipping of probabilities, in (0, 0.5), and 1 - eps must stay below 1 in the inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54).\n"
        "pos_weight : float or array_like, optional\n    Weight of the positive term "
        "(> 0), or an array broadcastable to ``y_pred`` (e.g. one per class, as "
        "PyTorch's ``pos_weight``).\n"
        "label_smoothing : float, default 0.0\n    In [0, 1).",
        ", from_logits=False, eps=1e-7, pos_weight=None, label_smoothing=0.0",
        "``y_true`` must lie in [0, 1] (ValueError naming the first position "
        "outside; the check runs as the data is read, so ``out`` may be partly "
        "written when it fails). On logits the loss is exact and finite for any "
        "``|x|`` up to inf: softplus is ``max(z, 0) + log1p(exp(-|z|))``, a term "
        "whose coefficient is exactly 0 is 0 (never ``0 * inf``; a NaN logit gives "
        "NaN), and the gradient "
        "uses ``sigmoid(-x)`` directly, so ``y = 1, x = 80`` gives ``-1.8e-35``, "
        "not 0.",
    ),
    "binary_focal": _doc(
        "binary_focal",
        "Sigmoid focal loss (Lin et al.; torchvision's ``sigmoid_focal_loss`` on "
        "logits, Keras' ``binary_focal_crossentropy`` on probabilities).",
        "With ``y`` smoothed as in ``bce``, ``p = sigmoid(x)`` (or the clipped "
        "probability), ``ce`` the binary cross-entropy and "
        "``pt = p * y + (1 - p) * (1 - y)``: "
        "``l = alpha_t * ce * (1 - pt)**gamma`` with "
        "``alpha_t = alpha * y + (1 - alpha) * (1 - y)`` (1 when ``alpha`` is None). "
        "The gradient is the exact derivative (0 through an active clip).",
        "alpha : float or None, default 0.25\n    Class balance in [0, 1]; None "
        "disables it.\n"
        "gamma : float, default 2.0\n    Focusing exponent, >= 0 (0 is weighted "
        "BCE).\n"
        "from_logits : bool, default False\neps : float, default 1e-7\n    Clipping of probabilities, in (0, 0.5), and 1 - eps must stay below 1 in the inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54).\n"
        "label_smoothing : float, default 0.0",
        ", alpha=0.25, gamma=2.0, from_logits=False, eps=1e-7, label_smoothing=0.0",
        "``1 - pt`` is computed as ``sigmoid(x) * (1 - y) + sigmoid(-x) * y`` so it "
        "keeps its accuracy where the model is confident. ``y_true`` must lie in "
        "[0, 1].",
    ),
    "hinge": _doc(
        "hinge",
        "Hinge loss (Keras' ``hinge``) for labels in {-1, 1}.",
        "``l = max(0, 1 - y * y_pred)``; ``dl/dy_pred = -y`` where "
        "``1 - y * y_pred > 0``, else 0.",
        notes="A label of exactly 0 counts as -1, so {0, 1} labels work as Keras "
        "converts them (Keras converts only when every label is 0 or 1).",
    ),
    "squared_hinge": _doc(
        "squared_hinge",
        "Squared hinge loss (Keras' ``squared_hinge``) for labels in {-1, 1}.",
        "``l = max(0, 1 - y * y_pred)**2``; "
        "``dl/dy_pred = -2 * y * max(0, 1 - y * y_pred)``.",
        notes="A label of exactly 0 counts as -1, as for ``hinge``.",
    ),
    "soft_margin": _doc(
        "soft_margin",
        "Soft margin loss (PyTorch's ``soft_margin_loss``) for labels in {-1, 1}.",
        "``l = log(1 + exp(-y * y_pred))`` (a stable softplus), "
        "``dl/dy_pred = -y * sigmoid(-y * y_pred)``.",
    ),
    # --- Classification: over a class axis ---
    "categorical_cross_entropy": _row_doc(
        "categorical_cross_entropy",
        "Categorical cross-entropy with dense targets (alias ``cce``; Keras' "
        "``categorical_crossentropy``, PyTorch's ``cross_entropy`` with "
        "probability targets).",
        "With ``y' = y_true * (1 - label_smoothing) + label_smoothing / C``:\n"
        "``from_logits=True``: ``l = sum_c y'_c * (lse(x) - x_c)``, computed as "
        "``(max - x_c) + log(sum(exp(x - max)))``; "
        "``dl/dx = softmax(x) * sum(y') - y'``.\n"
        "``from_logits=False`` (Keras): ``q = clip(p / sum(p), eps, 1 - eps)``, "
        "``l = -sum_c y'_c * log(q_c)``; the gradient is the exact derivative through "
        "the normalisation, ``(U - y'_j / q_j) / sum(p)`` with ``U`` the sum of ``y'`` "
        "over unclipped classes (0 through an active clip).",
        "from_logits : bool, default False\nlabel_smoothing : float, default 0.0\n"
        "    In [0, 1).\neps : float, default 1e-7\n    Clipping of probabilities, in (0, 0.5), and 1 - eps must stay below 1 in the inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54).\n"
        "axis : int, default -1\n    The class axis.",
        ", from_logits=False, label_smoothing=0.0, eps=1e-7, axis=-1",
        notes="Logits of -inf (masked classes) get probability 0 and gradient 0; "
        "a target on a masked class gives +inf with a finite gradient; a row "
        "whose logits are all -inf gives NaN with a zero gradient. ``y_true`` must "
        "lie in [0, 1] (checked as the rows are read).",
    ),
    "sparse_categorical_cross_entropy": _row_doc(
        "sparse_categorical_cross_entropy",
        "Cross-entropy with integer labels (alias ``sparse_cce``; PyTorch's "
        "``cross_entropy`` with ``weight``, ``ignore_index`` and "
        "``label_smoothing``; Keras' ``sparse_categorical_crossentropy``).",
        "With ``t`` the label, ``w`` the class weights (1 without) and "
        "``ls = label_smoothing``: "
        "``l = (1 - ls) * w_t * (-log q_t) + (ls / C) * sum_c w_c * (-log q_c)``, "
        "``q = softmax(x)`` (``from_logits=True``) or the normalised, clipped "
        "probabilities. Logit gradient: "
        "``(1 - ls) * w_t * (q_j - [j == t]) + (ls / C) * (sum(w) * q_j - w_j)``.",
        "from_logits : bool, default False\nignore_index : int, optional\n    "
        "Rows with this label (e.g. -100) contribute nothing to the value, the "
        "gradient or the mean's denominator, even if their logits are NaN.\n"
        "label_smoothing : float, default 0.0\nclass_weights : array_like, optional\n"
        "    One weight per class (length C).\neps : float, default 1e-7\n    Clipping of probabilities, in (0, 0.5), and 1 - eps must stay below 1 in the inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54).\n"
        "axis : int, default -1",
        ", from_logits=False, ignore_index=None, label_smoothing=0.0, "
        "class_weights=None, eps=1e-7, axis=-1",
        targets=_LABELS,
        denominator="``sum(weights * class_weights[t])`` over the rows that are not "
        "ignored (PyTorch's weighted mean)",
        ignored=", or every row ignored",
        notes="Rows of logits like ``[1e8, 1e8]`` give ``log 2`` exactly. Memory: "
        "nothing proportional to C is allocated per row; the loss from logits reads "
        "each row twice (statistics, then the gradient) while it is in cache.",
    ),
    "categorical_focal": _row_doc(
        "categorical_focal",
        "Softmax focal loss (Keras' ``categorical_focal_crossentropy``).",
        "``l = -sum_c alpha * y'_c * (1 - q_c)**gamma * log(q_c)`` with ``y'`` "
        "smoothed as in ``cce`` and ``q`` the softmax (``from_logits=True``) or the "
        "normalised, clipped probabilities. The gradient is the exact derivative.",
        "alpha : float or None, default 0.25\ngamma : float, default 2.0\n"
        "from_logits : bool, default False\nlabel_smoothing : float, default 0.0\n"
        "eps : float, default 1e-7\n    Clipping of probabilities, in (0, 0.5), and 1 - eps must stay below 1 in the inputs' dtype (float32: eps > 2^-25 = 2.98e-8; float64: eps > 2^-54).\naxis : int, default -1",
        ", alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, eps=1e-7, axis=-1",
    ),
    "categorical_hinge": _row_doc(
        "categorical_hinge",
        "Categorical hinge loss (Keras' ``categorical_hinge``).",
        "``l = max(0, max_c((1 - y_c) * p_c) - sum_c(y_c * p_c) + 1)``; where "
        "``l > 0`` the gradient is ``-y_j + (1 - y_j) * [j == k]`` with ``k`` the "
        "first class attaining the max.",
        "axis : int, default -1",
        ", axis=-1",
    ),
    "multi_margin": _row_doc(
        "multi_margin",
        "Multi-class margin loss (PyTorch's ``multi_margin_loss``).",
        "``l = sum_{c != t} w_t * max(0, margin - x_t + x_c)**p / C``.",
        "p : int, default 1\n    1 or 2.\nmargin : float, default 1.0\n"
        "class_weights : array_like, optional\n    Length C; scales each row by "
        "``w_t``.\naxis : int, default -1",
        ", p=1, margin=1.0, class_weights=None, axis=-1",
        targets=_LABELS,
        notes="As in PyTorch, class weights do not enter the mean's denominator.",
    ),
    "nll": _row_doc(
        "nll",
        "Negative log-likelihood of log-probabilities (PyTorch's ``nll_loss``).",
        "``l = -w_t * y_pred[t]``; gradient ``-w_t`` at the label, 0 elsewhere.",
        "ignore_index : int, optional\nclass_weights : array_like, optional\n"
        "axis : int, default -1",
        ", ignore_index=None, class_weights=None, axis=-1",
        targets=_LABELS,
        denominator="``sum(weights * class_weights[t])`` over the rows that are not "
        "ignored (PyTorch's weighted mean)",
        ignored=", or every row ignored",
    ),
    "kl_divergence": _row_doc(
        "kl_divergence",
        "Kullback-Leibler divergence KL(y_true || y_pred) per row.",
        "``l = sum_c t_c * (log t_c - log p_c)`` with ``t = y_true`` (or "
        "``exp(y_true)`` with ``log_target``) and ``log p = y_pred`` (``log_input``) "
        "or ``log(y_pred)``; gradient ``-t`` (``log_input``) or ``-t / y_pred``.",
        "log_input : bool, default False\n    ``y_pred`` holds log-probabilities "
        "(PyTorch's ``kl_div`` input).\nlog_target : bool, default False\n"
        "axis : int, default -1",
        ", log_input=False, log_target=False, axis=-1",
        notes="``reduction='mean'`` is the mean over rows: PyTorch's "
        "``reduction='batchmean'``, the true KL divergence per sample (PyTorch's "
        "default ``'mean'`` divides by the number of elements instead). A zero "
        "target contributes 0 with gradient 0; a positive target against "
        "``log p = -inf`` gives +inf; negative targets give NaN.",
    ),
    "jensen_shannon": _row_doc(
        "jensen_shannon",
        "Generalized Jensen-Shannon divergence (Liger-Kernel's JSD) between "
        "``P = y_true`` (teacher) and ``Q = y_pred`` (student).",
        "``M = beta * P + (1 - beta) * Q``, "
        "``l = beta * KL(P || M) + (1 - beta) * KL(Q || M)``; ``beta = 0`` is "
        "``KL(P || Q)`` and ``beta = 1`` is ``KL(Q || P)`` (Liger's convention). "
        "Gradient with respect to ``y_pred``: ``(1 - beta) * (log Q - log M)`` on "
        "probabilities, times ``Q`` on log-probabilities.",
        "beta : float, default 0.5\n    In [0, 1].\nlog_input : bool, default False\n"
        "    Both inputs hold log-probabilities.\naxis : int, default -1",
        ", beta=0.5, log_input=False, axis=-1",
    ),
}


_OVERLAP_OPTIONS = (
    "smooth : float, default 1e-6\n    Added to numerator and denominator; >= 0 (else ValueError).\n"
    "axis : None, int or tuple of ints, default None\n"
    "    The reduced axes. None reduces every axis (one score for the whole array,\n"
    "    Keras' convention); ``axis=(1, 2, 3)`` on ``(N, C, H, W)`` gives one score per\n"
    "    sample, and ``reduction`` / ``weights`` then apply over the samples.\n"
    "squared : bool, default False\n    Use ``sum(y**2)`` and ``sum(p**2)`` in the denominator.\n"
    "from_logits : bool, default False\n"
    "    ``y_pred`` holds logits: ``p = sigmoid(y_pred)``, the gradient goes through it."
)
_OVERLAP_SIG = ", smooth=1e-6, axis=None, squared=False, from_logits=False"
_OVERLAP_NOTES = (
    "The losses (``reduction='none'``), weights and the mean are over the scores: "
    "``y_pred``'s shape without ``axis`` (``()`` for ``axis=None``). The value reads the "
    "inputs once; the gradient needs the sums first and reads them a second time. "
    "``y_true`` is not range-checked (soft masks are fine). With ``smooth=0`` an empty "
    "or all-zero region gives NaN."
)
_SUMS = (
    "Per score, over the reduced axes: ``I = sum(y * p)``, ``Sy = sum(y)``, "
    "``Sp = sum(p)`` (``squared``: ``sum(y**2)``, ``sum(p**2)``), with "
    "``p = y_pred`` or ``sigmoid(y_pred)``. "
)

DOCS.update({
    "dice": _doc(
        "dice", "Soft Dice loss (segmentation).",
        _SUMS + "``l = 1 - (2 I + smooth) / (Sy + Sp + smooth)``; "
        "``dl/dp = dl/dI * y + dl/dSp * (1 or 2 p)``.",
        _OVERLAP_OPTIONS, _OVERLAP_SIG, _OVERLAP_NOTES),
    "jaccard": _doc(
        "jaccard", "Soft Jaccard (IoU) loss (segmentation).",
        _SUMS + "``l = 1 - (I + smooth) / (Sy + Sp - I + smooth)``.",
        _OVERLAP_OPTIONS, _OVERLAP_SIG, _OVERLAP_NOTES),
    "tversky": _doc(
        "tversky", "Tversky loss (segmentation): Dice with weighted false positives and negatives.",
        _SUMS + "``TI = (I + smooth) / (I + alpha (Sp - I) + beta (Sy - I) + smooth)``, "
        "``l = 1 - TI``. ``alpha = beta = 0.5`` is Dice (up to smooth), ``alpha = beta = 1`` Jaccard.",
        _OVERLAP_OPTIONS + "\nalpha : float, default 0.5\n    Weight of the false positives, >= 0.\n"
        "beta : float, default 0.5\n    Weight of the false negatives, >= 0.",
        _OVERLAP_SIG + ", alpha=0.5, beta=0.5", _OVERLAP_NOTES),
    "focal_tversky": _doc(
        "focal_tversky", "Focal Tversky loss (Abraham and Khan, 2019).",
        _SUMS + "``l = (1 - TI)**gamma`` with ``TI`` the Tversky index (see ``tversky``); "
        "``gamma = 0.75`` is the paper's ``gamma = 4/3`` in its ``(1 - TI)**(1/gamma)`` form. "
        "The gradient is 0 where ``TI = 1``.",
        _OVERLAP_OPTIONS + "\nalpha : float, default 0.5\nbeta : float, default 0.5\n"
        "gamma : float, default 0.75\n    > 0.",
        _OVERLAP_SIG + ", alpha=0.5, beta=0.5, gamma=0.75", _OVERLAP_NOTES),
    "box_iou": _doc(
        "box_iou", "IoU losses of bounding boxes: IoU, GIoU, DIoU and CIoU (torchvision's definitions).",
        "``y_true`` / ``y_pred`` are boxes ``(..., 4)`` as ``(x1, y1, x2, y2)``; one loss per box. "
        "``iou = inter / (union + eps)``; ``'iou'``: ``l = 1 - iou``; ``'giou'``: "
        "``+ (area_c - union) / (area_c + eps)`` with ``area_c`` the smallest enclosing box; "
        "``'diou'``: ``+ rho**2 / (diag_c**2 + eps)`` (distance of the centres over the "
        "enclosing box's diagonal); ``'ciou'``: DIoU ``+ alpha * v``, "
        "``v = 4/pi**2 (atan(wg/hg) - atan(w/h))**2``, ``alpha = v / (1 - iou + v + eps)`` held "
        "constant in the gradient (torchvision's ``no_grad``). Gradient with respect to "
        "``y_pred``, with autograd's conventions (a tie of min/max passes half to each side; "
        "nothing flows through an empty intersection).",
        "kind : {'iou', 'giou', 'diou', 'ciou'}, default 'iou'\neps : float, default 1e-7\n    >= 0.",
        ", kind='iou', eps=1e-7",
        "Degenerate boxes (zero width or height, or ``x2 < x1``) give finite values and "
        "gradients with ``eps > 0``: the intersection is 0 where the boxes do not overlap, "
        "areas are taken as computed (negative for inverted boxes, as torchvision), and in "
        "``atan(w / h)`` a height with ``|h| < eps`` counts as ``eps`` (keeping its sign), "
        "where torchvision gives inf or NaN. ``weights`` and ``reduction='none'`` are over the "
        "boxes' shape ``y_pred.shape[:-1]``. Call positionally: ``box_iou(boxes_true, boxes_pred)``."),
    "cosine_similarity": _doc(
        "cosine_similarity", "Cosine similarity loss ``1 - cos`` of rows along ``axis``.",
        "``cos = sum(y * p) / (max(|y|, eps) * max(|p|, eps))`` clipped to ``[-1, 1]``, "
        "``l = 1 - cos``. Keras' ``cosine_similarity`` loss returns ``-cos`` (this is 1 + "
        "Keras' value); PyTorch's ``F.cosine_similarity`` returns ``cos``. "
        "``dl/dp = -(y / (|y|' |p|') - cos p / |p|**2)`` (the second term vanishes where ``|p| < eps``).",
        "axis : int, default -1\n    The vectors' axis.\neps : float, default 1e-8\n"
        "    Lower bound of each norm (separately), >= 0: zero vectors give a finite loss 1 "
        "and a finite gradient.",
        ", axis=-1, eps=1e-8",
        "The losses, weights and the mean are over the rows: ``y_pred``'s shape without ``axis``."),
    "contrastive": _doc(
        "contrastive", "Contrastive loss on given distances (Hadsell, Chopra and LeCun, 2006).",
        "``y_true`` in [0, 1] (1 = similar pair), ``y_pred = d`` a distance: "
        "``l = y d**2 + (1 - y) max(0, margin - d)**2``; "
        "``dl/dd = 2 y d - 2 (1 - y) max(0, margin - d)``. Targets outside [0, 1] are a ValueError.",
        "margin : float, default 1.0\n    >= 0.", ", margin=1.0",
        "To compute the distances from embeddings as well, use ``contrastive_pairs``."),
})
