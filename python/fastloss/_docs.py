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
y_pred : array_like of float32 or float64 (or float16 / bfloat16)
    Predictions. Any buffer-protocol object and any strides are accepted.
    float16 and ``ml_dtypes.bfloat16`` are computed in float32 (converted
    once) and the results returned in their dtype.
reduction : {{"mean", "sum", "none"}}
    ``"mean"``: ``sum(w * l) / sum(w)`` (the plain mean without weights);
    ``"sum"``: ``sum(w * l)``; ``"none"``: the array ``w * l``.
weights : array_like, optional
    Broadcastable to ``y_pred`` (NumPy rules, e.g. ``(N, 1)`` per sample or
    ``(T,)`` per time step).
offsets, segment_ids, num_segments : optional
    Per-segment values in one call: ``offsets`` (CSR pointers, S + 1
    non-decreasing integers from 0 to the number of items) or
    ``segment_ids`` (one per item, in ``[0, num_segments)``, in any order)
    split the items into S segments: the elements (flat C order) of an
    elementwise loss, the samples along axis 0 of a region or box loss. The
    value is then an array of S reduced values (0 / NaN for an empty
    segment's sum / mean), each the loss of its segment's items in their
    order, the gradient that of their sum. Sorted ids take one pass;
    unsorted ones are grouped first (a stable sort and a gather of the
    inputs). Not with ``reduction="none"``.
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

Streaming: ``{name}.accumulator(reduction="mean", **options)`` gives an
exact, mergeable ``fastloss.Accumulator`` (``update``, ``merge``, ``result``,
``state``) whose result over batches of whole 1024-item blocks is this call's
value on their concatenation, bit for bit.
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
y_pred : array_like of float32 or float64 (float16 / bfloat16: in float32), at least 1-D
    One row of C values (classes, or a vector's components) along ``axis``; the other dimensions are samples
    (a middle axis such as ``(N, C, H, W)`` with ``axis=1`` is fine). Any
    buffer-protocol object and any strides are accepted.
reduction : {{"mean", "sum", "none"}}
    ``"none"`` returns the per-row losses ``w * l`` (``y_pred``'s shape without
    ``axis``); ``"sum"`` their sum; ``"mean"`` their sum divided by {denominator}.
weights : array_like, optional
    Per-row weights ``w``, broadcastable to the rows' shape (``y_pred``'s shape
    without ``axis``), NumPy rules.
offsets, segment_ids, num_segments : optional
    Per-segment values in one call: ``offsets`` (CSR pointers, S + 1
    non-decreasing integers from 0 to the number of rows along axis 0) or
    ``segment_ids`` (one per row, in ``[0, num_segments)``, in any order;
    unsorted ids are grouped first by a stable sort and a gather) split the
    samples along axis 0 into S segments; the value is then an array of S
    reduced values, the gradient that of their sum.
out : ndarray, optional
    Where to write the gradient: writable, ``y_pred``'s shape and dtype, any
    strides.{hits}

Returns
-------
The reduced value as a NumPy scalar of ``y_pred``'s dtype (an array for
``reduction="none"``); the gradient ``d value / d y_pred`` with ``y_pred``'s
shape and dtype.

A mean over nothing (no rows{ignored}) is NaN with an all-zero gradient;
a sum over nothing is 0. Row sums are accumulated in float64 in a fixed
order: results are bit-identical for any thread count. ``C = 0`` and an
``axis`` out of range are ValueErrors.

Streaming: ``{name}.accumulator(reduction="mean", **options)`` gives an
exact, mergeable ``fastloss.Accumulator`` (``update``, ``merge``, ``result``,
``state``) whose result over batches of whole 1024-item blocks is this call's
value on their concatenation, bit for bit.
"""

_METRIC_CONTRACT = """
Call form (a metric: value only)::

    value = {name}(y_true, y_pred, *, reduction="mean", weights=None{opts})

Parameters
----------
y_true : array_like
    {targets}
y_pred : array_like of float32 or float64
    {preds} Any buffer-protocol object and any strides are accepted.
reduction : {{"mean", "sum", "none"}}
    ``"mean"``: the (weighted) fraction of hits, ``sum(w * hit) / sum(w)``{den};
    ``"sum"``: the (weighted) number of hits; ``"none"``: the array
    ``w * hit`` over the {items} (1.0 for a hit, 0.0 for a miss).
weights : array_like, optional
    Broadcastable to the {items}' shape (NumPy rules).
offsets, segment_ids, num_segments : optional
    Per-segment values in one call: ``offsets`` (CSR pointers, S + 1
    non-decreasing integers) or ``segment_ids`` (in ``[0, num_segments)``,
    any order) split the {segmented} into S segments; the value is then an
    array of S values (0 / NaN for an empty segment's sum / mean).

Returns
-------
The value as a NumPy scalar of ``y_pred``'s dtype (an array for
``reduction="none"`` and with segments). Empty input gives 0 (``"sum"``) and
NaN (``"mean"``). ``grad`` and ``value_and_grad`` raise TypeError: a metric
is piecewise constant; it does not combine with losses either.

Streaming: ``{name}.accumulator(reduction="mean", **options)`` gives an
exact, mergeable ``fastloss.Accumulator`` (``update``, ``merge``, ``result``,
``state``): the epoch's accuracy from its batches, the same bits for any
batch split on 1024-item blocks and any merge order. Dask arrays give a lazy
value.
"""

_HITS = """
hits : ndarray, optional
    Token accuracy from the same pass: a writable array of the rows' shape and
    ``y_pred``'s dtype that receives each row's top-1 hit (1 where the label
    is ``y_pred``'s first maximum, NumPy's ``argmax``; 0 where not and for
    ignored rows; NaN for a row with a NaN), read while the row is in cache.
    The accuracy is ``hits.sum() / (y_true != ignore_index).sum()``. Not with
    segments or Dask arrays."""

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
    if info.get("metric"):
        rows = driver in ("dense_rows", "label_rows")
        ignore = any(o["name"] == "ignore_index" for o in options)
        text += _METRIC_CONTRACT.format(
            name=name, opts=signature_suffix(options),
            targets=(_LABELS if driver == "label_rows" else _DENSE) if rows else
            "Binary targets in [0, 1] of ``y_pred``'s shape (no broadcasting).",
            preds=("Class scores (logits or probabilities), at least 1-D, one row of C "
                   "along ``axis``.") if rows else "Probabilities, scores or logits.",
            den=" over the rows not ignored" if ignore else "",
            items="rows (``y_pred``'s shape without ``axis``)" if rows else "elements",
            segmented="rows along axis 0" if rows else "elements (flat C order)")
    elif driver in ("dense_rows", "label_rows"):
        labels = driver == "label_rows"
        weighted = any(o["name"] == "ignore_index" for o in options)
        text += _ROW_CONTRACT.format(
            name=name, opts=signature_suffix(options), targets=_LABELS if labels else _DENSE,
            denominator=("``sum(weights * class_weights[t])`` over the rows that are not ignored "
                         "(PyTorch's weighted mean)") if weighted
            else "the number of rows (the sum of ``weights``)",
            ignored=", or every row ignored" if weighted else "",
            hits=_HITS if labels else "")
    else:
        text += _CONTRACT.format(name=name, opts=signature_suffix(options))
    if info["notes"]:
        text += f"\nNotes\n-----\n{info['notes']}\n"
    return text


# --- The losses of several inputs (the core's FASTLOSS_MULTI_LOSSES rows) -----

#: What the per-element losses, weights and the mean are over, by kind.
_OVER = {
    "rows": "rows (the inputs' shape without the last axis)",
    "elements": "elements",
    "pairs": "pairs (only 'mean' and 'sum'; 'none' is a ValueError, and there are no weights)",
    "score_pair": "elements",
    "scores": "elements",
    "samples": "samples (N,)",
}

_MULTI_REDUCTION = """reduction : {{"mean", "sum", "none"}}, default "mean"
    Over the {over}: ``"mean"`` is ``sum(w * l) / sum(w)`` (the plain mean
    without weights), ``"sum"`` is ``sum(w * l)``, ``"none"`` returns ``w * l``."""

_MULTI_WEIGHTS = """weights : array_like, optional
    Broadcastable to the {over}' shape."""

_MULTI_SEGMENTS = """offsets, segment_ids, num_segments : optional
    Per-segment values in one call: ``offsets`` (CSR pointers, S + 1
    non-decreasing integers) or ``segment_ids`` (one per {item}, in
    ``[0, num_segments)``, any order) split the {items} into S segments; the
    value is then an array of S values, each the loss's own call on its
    segment (0 / NaN for an empty segment's sum / mean), and the gradients
    are those of their sum."""

_PENALTY = """{summary}

Call forms::

    value = {name}({args})
    grads = {name}.grad({args})                  # a list
    value, grads = {name}.value_and_grad({args})

{formula}

Parameters
----------
{options}
"""


def _multi_inputs(info):
    """The numpydoc lines of a loss's array arguments."""
    inputs, target = info["inputs"], info["target"]
    lines = []
    for a in info["args"]:
        if a == target:
            lines.append(f"{a} : array_like\n    Converted to the first input's dtype.")
        elif a == inputs[0]:
            same = " (same shape)" if len(inputs) > 1 and info["driver"] != "score_pair" else ""
            lines.append(f"{', '.join(inputs)} : array_like of float32 or float64{same}")
    return "\n".join(lines)


def _multi_returns(info):
    inputs = info["inputs"]
    if len(inputs) == 1:
        out = " (``out=`` accepted)" if info["out"] else ""
        return f"The value; ``.grad`` the gradient array{out}."
    grads = ", ".join(f"g_{a}" for a in inputs)
    return ("The value (a NumPy scalar of the first input's dtype, an array for ``'none'``); "
            f"``.grad`` returns ``({grads})``, the gradients of the reduced value with respect to "
            f"{', '.join(inputs)}, in their shapes and dtype.")


def multi_signature(info):
    """The call as text: ``name(arg, ..., *, option=default, ..., reduction='mean', weights=None)``."""
    parts = list(info["args"])
    keywords = [f"{o['name']}={_format_default(o['default'])}" for o in info["options"]]
    if info["reduction"]:
        keywords.append("reduction='mean'")
    if info["weights"]:
        keywords.append("weights=None")
    if keywords:
        parts += ["*", *keywords]
    return f"{info['name']}({', '.join(parts)})"


def render_multi(info):
    """The docstring of a loss of several inputs (``_core.loss_info(name)``)."""
    name, options = info["name"], info["options"]
    if info["driver"] == "penalty":  # its options are given positionally: required
        required = "\n".join(f"{o['name']} : {o['type']}\n    {o['doc']}" for o in options)
        return _PENALTY.format(summary=info["summary"], name=name, args=", ".join(info["args"]),
                               formula=info["formula"], options=required)
    over = _OVER[info["driver"]]
    params = [_multi_inputs(info)]
    if options:
        params.append(options_section(options))
    params.append(_MULTI_REDUCTION.format(over=over))
    if info["weights"]:
        params.append(_MULTI_WEIGHTS.format(over=over))
    if info.get("segments"):
        rows = info["driver"] == "rows"
        params.append(_MULTI_SEGMENTS.format(
            item="row (axis 0)" if rows else "element (flat, C order)",
            items="rows" if rows else "elements"))
    text = (f"{info['summary']}\n\nCall forms::\n\n    value = {multi_signature(info)}\n"
            f"    grads = {name}.grad(...)\n"
            f"    value, grads = {name}.value_and_grad(...)\n\n"
            f"{info['formula']}\n\nParameters\n----------\n" + "\n".join(params)
            + f"\n\nReturns\n-------\n{_multi_returns(info)}\n")
    if info["notes"]:
        text += f"\nNotes\n-----\n{info['notes']}\n"
    return text
