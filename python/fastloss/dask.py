"""Losses of Dask arrays: lazy, exact, and the same bits as the NumPy call.

Any loss of the ``(y_true, y_pred, **options)`` form accepts Dask arrays::

    import dask.array as da
    import fastloss as fl

    y = da.from_zarr(...)                     # any chunks
    p = da.from_zarr(...)
    v = fl.huber(y, p, delta=1.0)             # a 0-d dask array; nothing has run
    g = fl.huber.grad(y, p, delta=1.0)        # a dask array chunked like p
    v, g = fl.huber.value_and_grad(y, p)      # both lazy
    v.compute()                               # NumPy scalar of p's dtype

The front door (C++, the same parser as for NumPy arrays) checks the options
and hands calls with a Dask array among ``y_true``, ``y_pred`` or ``weights``
to :func:`_run`; this module only builds graphs. A NumPy argument next to a
Dask one is wrapped with ``da.from_array``, chunked like the other.

**Laziness.** Calling a loss on Dask arrays computes nothing: the result is a
Dask array (0-d for ``"mean"`` / ``"sum"``). Shapes, dtypes and options are
checked when the graph is built (the core itself checks them on empty
stand-ins of the inputs, so the messages are the core's); values (labels out
of range, ...) are checked when the graph runs, where they raise the core's
errors.

**Exactness.** A reduction's state is what the kernels already compute: the
exact numerator ``sum(w * l)`` and denominator (``sum(w)``, the count, or the
weighted count of kept rows), held as integer words of a fixed-point
superaccumulator (``fl.NAME.accumulator(...).state()``). Each chunk becomes one
state; states are merged by **integer addition** in a tree reduction
(``dask.array.reduction``; ``split_every`` from the argument or Dask's config,
``dask.config.set(split_every=8)``), and only the merged state is rounded.
Integer addition does not depend on the order, the tree or the scheduler, so
the value is the same bits on the synchronous, threaded and distributed
schedulers, and -- since the one-shot call folds its 1024-item block partials
the same way -- the same bits as the NumPy call when every chunk boundary falls
on a block boundary: chunks of a multiple of 1024 items in C order (elements
for elementwise losses, rows for row-wise ones, boxes, scores), e.g. a 2-D
array chunked along axis 0 only, rows-per-chunk times row length a multiple of
1024. Other chunkings give a value within rounding of the block partials (a
few ulps of float64 accumulation), still independent of the scheduler.

**Gradients** are chunked like ``y_pred``. ``"sum"`` and ``"none"``: each
chunk's ``w * dl`` (a map over blocks). ``"mean"``: each chunk's ``w * dl``
times ``1 / sum(w)``, where ``sum(w)`` is the exact denominator from the merged
states (a lazy 0-d array): the gradient is one reduction pass plus one
gradient pass, as the NumPy call of a region loss.

**Segments.** ``offsets=`` (a NumPy array of S + 1 row pointers) or
``segment_ids=`` (NumPy or Dask, one integer per item, in any order) with
``num_segments=S`` give a lazy (S,) array, one reduced value per segment as
the NumPy call gives it: each chunk's per-segment accumulator states (the
items are the flat elements of an elementwise loss, axis 0 of the others;
chunks run along them, every other axis whole) added as integers. The
value is the NumPy call's bits where no chunk boundary cuts a segment off
its 1024-item blocks (a segment inside one chunk, or cut at a multiple of
1024 items from its start); elsewhere within the rounding of the block
partials, and the same bits on every scheduler. The gradient is each
chunk's ``w * dl`` (``"sum"``), times 1 / its segment's exact denominator
(``"mean"``). Ids out of range raise when the graph runs. Regions that span
axis 0 run the segmented call on the whole array, one chunk.

**Layout.** Chunks never split what one loss value needs: the class axis of
row-wise losses, the 4 coordinates of boxes and the reduced axes of region
losses (Dice, ...) are rechunked to one chunk each. Regions that include
axis 0 (``axis=None``, ``axis=(0, 2, 3)``) span the chunks of axis 0: their
value (without weights) is the dataset's score from every chunk's exact
region sums, added as integers (chunks along axis 0, every other axis
whole); with weights, ``reduction="none"`` or a gradient, every region's
totals are needed before any chunk's output, so the call runs on the whole
array as one chunk. ``y_true`` and
``weights`` are rechunked to ``y_pred``'s chunks (``weights`` broadcast first,
to the per-element, per-row or per-score shape, as in the NumPy call). An
array option that broadcasts to ``y_pred`` (``pos_weight``; NumPy or Dask) is
broadcast and chunked like ``y_pred``; ``class_weights`` (one per class) goes
whole to every chunk and must be a NumPy array.
"""

from __future__ import annotations

import functools

import numpy as np

from ._layout import _DRIVERS, _Layout, _layout

__all__ = ["is_dask_array"]



def _da():
    import dask.array as da

    return da


def is_dask_array(x) -> bool:
    """True for a ``dask.array.Array`` (False where Dask is not installed)."""
    import sys

    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def _loss(name):
    import fastloss

    return getattr(fastloss, name)


def _info(name):
    from . import _core

    return _core.loss_info(name)


# ---------------------------------------------------------------------------
# Work done per chunk (module functions: they pickle by reference, for the
# distributed scheduler).


def _with(options, aux_names, aux):
    """The options of one chunk: the chunk's blocks of the per-element array
    options (an array ``pos_weight``) in place of the whole arrays."""
    if not aux_names:
        return options
    return {**options, **dict(zip(aux_names, aux))}


def _state_block(name, reduction, options, nd, aux_names, p, t, w, *aux):
    """The accumulator state of one chunk, shaped (1,) * nd + (K,)."""
    acc = _loss(name).accumulator(reduction, **_with(options, aux_names, aux))
    acc.update(t, p, weights=w)
    words = np.asarray(acc.state(), dtype=np.int64)
    return words.reshape((1,) * nd + (-1,))


def _add_words(x, axis=None, keepdims=False):
    """Merge states: integer addition of their words (exact, any order)."""
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.int64)


def _from_words(name, reduction, options, words, dtype=None):
    return _loss(name).accumulator.from_state(
        np.ascontiguousarray(words, dtype=np.int64), reduction=reduction,
        dtype=_state_dtype(dtype), **options)


def _value_of_words(name, reduction, options, dtype, words):
    """The reduced value of merged states, as the NumPy call returns it (a
    NumPy scalar of y_pred's dtype)."""
    return np.dtype(dtype).type(_from_words(name, reduction, options, words, dtype).result())


def _denominator_of_words(name, options, words):
    """The exact denominator of merged states (``sum(w)``, the count, or the
    loss's own), rounded once to float64, as a 0-d array."""
    return np.asarray(_from_words(name, "mean", options, words).denominator, dtype=np.float64)


def _state_dtype(dtype):
    """The accumulator dtype of y_pred's dtype: float16 / bfloat16 calls
    run (and accumulate) in float32."""
    if dtype is None:
        return None
    return "float32" if np.dtype(dtype).itemsize < 4 else np.dtype(dtype).name


def _in_float32(p, *others):
    """A float16 / bfloat16 chunk and its floating companions in float32
    (the kernels' type for them), else as they are; and y_pred's dtype."""
    half = p.dtype if p.dtype.itemsize < 4 else None
    if half is None:
        return (p, *others), None
    return tuple(None if x is None or np.dtype(x.dtype).kind not in "fV" else
                 x.astype(np.float32) for x in (p, *others)), half


def _grad_block(name, reduction, options, aux_names, p, t, w, *rest):
    """``w * dl`` of one chunk; for a mean (``rest`` ends with the
    denominator), times 1 / sum(w) in the kernels' dtype, as they scale it
    (a zero total weight gives a zero gradient); float16 / bfloat16 chunks
    in float32, rounded once at the end as the NumPy call rounds them."""
    aux = rest[: len(aux_names)]
    (p, t, w, *aux), half = _in_float32(p, t, w, *aux)
    g = _loss(name).grad(t, p, reduction="sum" if reduction == "mean" else reduction,
                         weights=w, **_with(options, aux_names, tuple(aux)))
    if reduction == "mean":
        d = float(rest[-1])
        g *= g.dtype.type(1.0 / d if d != 0.0 else 0.0)
    return g if half is None else g.astype(half)


def _spanning_state_block(name, reduction, options, nd, p, t):
    """A chunk (along axis 0) of a region loss whose regions span axis 0:
    its exact region sums, which add across chunks (LossState::sums)."""
    acc = _loss(name).accumulator(reduction, **options)
    acc.update(t, p)
    words = np.asarray(acc.state(), dtype=np.int64)
    return words.reshape((1,) * nd + (-1,))


def _spanning_words(name, reduction, options, shape, dtype):
    """K of a spanning region loss's state: the regions' sums, from a call on
    a zero-stride stand-in of one item along axis 0."""
    x = np.broadcast_to(np.zeros((), dtype), (1,) + tuple(shape[1:]))
    acc = _loss(name).accumulator(reduction, **options)
    acc.update(x, x)
    return int(np.asarray(acc.state()).size)


def _whole_block(name, want, reduction, options, aux_names, dtype, p, t, w, *aux):
    """The call on the whole array (one chunk): its value (want 0, a NumPy
    scalar, or an array of per-segment values) or gradient (want 1)."""
    kw = dict(reduction=reduction, weights=w, **_with(options, aux_names, aux))
    if want == 0:
        v = _loss(name)(t, p, **kw)
        return v if isinstance(v, np.ndarray) else np.dtype(dtype).type(v)
    return _loss(name).grad(t, p, **kw)


def _none_block(name, options, aux_names, p, t, w, *aux):
    """The per-element (per-row, per-score) losses ``w * l`` of one chunk."""
    return _loss(name)(t, p, reduction="none", weights=w, **_with(options, aux_names, aux))


# ---------------------------------------------------------------------------
# Checks: the core's own, on stand-ins that hold no data.


def _emptied(x, target_nd, pos):
    """A stand-in of x (broadcast, right-aligned, to target_nd axes) whose
    axis over target axis ``pos`` is made empty where x is not 1 there; x's
    own shape and dtype otherwise, in ones (valid weights and options)."""
    shape = list(x.shape)
    k = -1 if pos is None else pos - (target_nd - len(shape))
    if 0 <= k < len(shape) and shape[k] != 1:
        shape[k] = 0
    return np.ones(tuple(shape), x.dtype)


def _probe(loss, reduction, options, aux, layout, p_shape, p_dtype, t_shape, t_dtype, w):
    """Call the core on empty arrays of the inputs' dtypes and (but for one
    item axis, made empty) shapes: it raises its own TypeError / ValueError
    for dtypes, options, axes and most shapes, reading no value."""
    p_shape = list(p_shape)
    nd = len(p_shape)
    zero = next(iter(layout.loss_axes), None)
    if zero is None and layout.driver == "regions" and p_shape:
        zero = 0  # one score over every axis: an empty region
    if zero is None:
        # No item axis (one row, one box, a 0-d array): the real shape, in
        # zeros, whose values pass every range check.
        p = np.zeros(tuple(p_shape), p_dtype)
        t = np.zeros(tuple(t_shape), t_dtype)
        wp = None if w is None else np.zeros((1,) * w.ndim, w.dtype)
        ap = {k: np.ones((1,) * a.ndim, a.dtype) for k, a in aux.items()}
        loss(t, p, reduction=reduction, weights=wp, **options, **ap)
        return
    t_shape = list(t_shape)
    p_shape[zero] = 0
    if layout.labels:
        pos = layout.loss_axes.index(zero) if zero in layout.loss_axes else len(t_shape)
        if pos < len(t_shape):
            t_shape[pos] = 0
    elif zero < len(t_shape):
        t_shape[zero] = 0
    pos = layout.loss_axes.index(zero) if zero in layout.loss_axes else None
    wp = None if w is None else _emptied(w, len(layout.loss_axes), pos)
    ap = {k: _emptied(a, nd, zero) for k, a in aux.items()}
    loss(np.empty(tuple(t_shape), t_dtype), np.empty(tuple(p_shape), p_dtype),
         reduction=reduction, weights=wp, **options, **ap)


def _check(loss, reduction, options, aux, layout, y_true, y_pred, weights):
    """The core's checks of dtypes, options, axes and shapes, raised with the
    core's messages for the real shapes."""
    try:
        _probe(loss, reduction, options, aux, layout, y_pred.shape, y_pred.dtype, y_true.shape,
               y_true.dtype, weights)
    except (TypeError, ValueError) as e:
        # The message names the empty stand-ins' shapes: ask again with
        # zero-stride stand-ins of the real shapes (checked before anything
        # is read).
        try:
            _standin_call(loss, reduction, options, aux, y_true, y_pred, weights)
        except (TypeError, ValueError) as again:
            raise again from None
        raise e


def _standin_call(loss, reduction, options, aux, y_true, y_pred, weights):
    """The core's call on zero-stride stand-ins (zeros) of the inputs' real
    shapes and dtypes: arguments are checked before anything is read, so a
    bad call raises at once. Only where a check already failed."""

    def standin(x):
        return None if x is None else np.broadcast_to(np.zeros((), x.dtype), x.shape)

    loss(standin(y_true), standin(y_pred), reduction=reduction, weights=standin(weights),
         **options, **{k: standin(a) for k, a in aux.items()})


def _core_message(loss, reduction, options, aux, y_true, y_pred, weights, fallback):
    """Raise the core's error for these shapes, or ValueError(fallback)
    where it accepts them."""
    _standin_call(loss, reduction, options, aux, y_true, y_pred, weights)
    raise ValueError(fallback)


def _broadcasts(x, target):
    return x.ndim <= len(target) and all(
        s in (1, d) for s, d in zip(x.shape[::-1], tuple(target)[::-1]))


def _check_shapes(loss, info, reduction, options, aux, layout, y_true, y_pred, weights):
    name = info["name"]
    tname, pname = info.get("true_name", "y_true"), info.get("pred_name", "y_pred")
    want_t = layout.true_shape(y_pred.shape)
    if tuple(y_true.shape) != want_t:
        if layout.labels:
            msg = (f"{name}: {tname} (integer labels) must have the rows' shape {want_t}, "
                   f"got {tuple(y_true.shape)}")
        else:
            msg = (f"{name}: {tname} and {pname} must have the same shape, got "
                   f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}")
        _core_message(loss, reduction, options, aux, y_true, y_pred, None, msg)
    if weights is not None and not _broadcasts(weights, layout.loss_shape(y_pred.shape)):
        msg = (f"{name}: weights of shape {tuple(weights.shape)} cannot be broadcast to "
               f"the losses' shape {layout.loss_shape(y_pred.shape)}")
        _core_message(loss, reduction, options, aux, y_true, y_pred, weights, msg)
    for key, a in aux.items():
        if not _broadcasts(a, y_pred.shape):
            msg = (f"{name}: {key} of shape {tuple(a.shape)} cannot be broadcast to "
                   f"{pname}'s shape {tuple(y_pred.shape)}")
            _core_message(loss, reduction, options, aux, y_true, y_pred, weights, msg)


# ---------------------------------------------------------------------------
# Alignment


def _as_dask(x, chunks):
    """x (NumPy or Dask) as a Dask array of these chunks."""
    da = _da()
    if isinstance(x, da.Array):
        return x.rechunk(chunks) if x.chunks != chunks else x
    return da.from_array(x, chunks=chunks)


def _pred_chunks(layout, y_pred, y_true, weights):
    """Chunks for y_pred: its own, else from y_true, else from the weights;
    the ``whole`` axes in one chunk."""
    da = _da()
    shape = y_pred.shape
    if isinstance(y_pred, da.Array):
        chunks = list(y_pred.chunks)
    else:
        chunks = [(d,) for d in shape]
        if isinstance(y_true, da.Array):
            if layout.labels:
                for a, c in zip(layout.loss_axes, y_true.chunks):
                    chunks[a] = c
            else:
                chunks = list(y_true.chunks)
        elif isinstance(weights, da.Array):
            off = len(layout.loss_axes) - weights.ndim
            for k, c in enumerate(weights.chunks):
                a = layout.loss_axes[off + k]
                if weights.shape[k] == shape[a]:
                    chunks[a] = c
    for a in layout.whole:
        chunks[a] = (shape[a],)
    return tuple(chunks)


def _align_weights(weights, loss_shape, loss_chunks):
    """Weights (or an array option) broadcast, NumPy rules, to ``loss_shape``
    and chunked ``loss_chunks``: broadcast axes stay one block of size 1
    until the lazy ``da.broadcast_to``, so nothing full-size is made."""
    da = _da()
    off = len(loss_shape) - weights.ndim
    own = tuple(
        (1,) if weights.shape[k] == 1 and loss_shape[off + k] != 1 else loss_chunks[off + k]
        for k in range(weights.ndim))
    w = _as_dask(weights, own)
    if tuple(w.shape) == tuple(loss_shape) and w.chunks == tuple(loss_chunks):
        return w
    return da.broadcast_to(w, tuple(loss_shape), chunks=tuple(loss_chunks))


def _asarray(x, *, pred=False):
    if x is None:
        return x
    a = x if is_dask_array(x) else np.asarray(x)
    if pred and a.dtype.kind in "biu":
        a = a.astype(np.float64)  # integers and bools, as the NumPy call converts them
    elif pred and a.dtype.kind == "f" and not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))  # byte-swapped: native order
    return a


# ---------------------------------------------------------------------------
# The graph


def _run(name, want, y_true, y_pred, reduction, weights, options, *, segments=None,
         split_every=None):
    """Build the lazy Dask graph of ``fastloss.NAME`` (called by the front
    door when any argument is a Dask array).

    want: 0 value, 1 grad, 2 (value, grad). reduction: "mean", "sum" or
    "none". weights: None or array-like. options: the loss's options as
    parsed by the front door. segments: None, ``{"offsets": o}`` or
    ``{"segment_ids": ids, "num_segments": S}`` (the combination checked by
    the front door). split_every: the tree reduction's fan-in (None: Dask's
    config, ``split_every``).
    """
    da = _da()
    if want not in (0, 1, 2):
        raise ValueError(f"{name}: want must be 0 (value), 1 (grad) or 2 (both), got {want!r}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    options = dict(options or {})
    loss = _loss(name)
    info = _info(name)
    # Array options (registry type "... array_like ..."): class_weights (one
    # per class) goes whole to every chunk; any other given as an array (an
    # array pos_weight) broadcasts to y_pred and is chunked like it.
    arrays = {o["name"] for o in info["options"] if "array" in str(o.get("type", ""))}
    aux = {}
    for key in list(options):
        v = options[key]
        if key == "class_weights" or key not in arrays:
            if is_dask_array(v):
                raise TypeError(f"{name}: {key} must be a NumPy array or a value, not a Dask "
                                f"array (compute it first)")
        elif is_dask_array(v) or (isinstance(v, (np.ndarray, list, tuple)) and np.ndim(v) > 0):
            aux[key] = _asarray(options.pop(key))
    if info["driver"] not in _DRIVERS:
        raise NotImplementedError(
            f"{name}: Dask arrays are not supported for losses of the {info['driver']!r} driver")

    y_true = _asarray(y_true)
    y_pred = _asarray(y_pred, pred=True)
    weights = _asarray(weights)
    nd = y_pred.ndim
    for arg, x in ((info.get("true_name", "y_true"), y_true),
                   (info.get("pred_name", "y_pred"), y_pred), ("weights", weights),
                   *aux.items()):
        if x is not None and any(s != s for s in x.shape):
            raise ValueError(
                f"{name}: {arg} has unknown chunk sizes, shape {x.shape} (call "
                f"{arg}.compute_chunk_sizes() first)")

    # Checks, all before anything is built: the core's own on stand-ins.
    _check(loss, reduction, options, aux, _layout(info, options, nd, strict=False), y_true,
           y_pred, weights)
    layout = _layout(info, options, nd, strict=True)
    _check_shapes(loss, info, reduction, options, aux, layout, y_true, y_pred, weights)

    if segments:
        return _segmented(name, want, reduction, options, info, layout, y_true, y_pred, weights,
                          aux, segments, split_every)

    if layout.spanning and nd > 0:
        if want == 0 and weights is None and not aux and reduction != "none":
            return _spanning_value(name, reduction, options, layout, y_true, y_pred,
                                   split_every)
        return _spanning_whole(name, want, reduction, options, layout, y_true, y_pred, weights,
                               aux)

    # Alignment: y_pred's chunks (the whole axes in one chunk) for everything.
    p_chunks = _pred_chunks(layout, y_pred, y_true, weights)
    loss_chunks = tuple(p_chunks[a] for a in layout.loss_axes)
    P = _as_dask(y_pred, p_chunks)
    T = _as_dask(y_true, loss_chunks if layout.labels else p_chunks)
    W = None if weights is None else _align_weights(weights, layout.loss_shape(P.shape),
                                                    loss_chunks)
    p_ind = tuple(range(nd))
    loss_ind = layout.loss_axes
    args = [P, p_ind, T, loss_ind if layout.labels else p_ind]
    args += [None, None] if W is None else [W, loss_ind]
    aux_names = tuple(aux)
    for key in aux_names:
        args += [_align_weights(aux[key], P.shape, P.chunks), p_ind]
    dtype = P.dtype

    def states():
        return _merged_words(
            name, functools.partial(_state_block, name, reduction, options, nd, aux_names), nd,
            _state_words(name, reduction, options, dtype), args, split_every, "state")

    def scalar(fn, merged, out_dtype, token):
        return da.blockwise(fn, (), merged, (0,), concatenate=True, token=token,
                            dtype=out_dtype, meta=np.empty((), out_dtype))

    merged = states() if reduction != "none" else None
    value = grad = None
    if want in (0, 2):
        if reduction == "none":
            value = _none_graph(name, options, aux_names, loss_ind, args, dtype)
        else:
            value = scalar(functools.partial(_value_of_words, name, reduction, options, dtype),
                           merged, dtype, f"fastloss-{name}-{reduction}")
    if want in (1, 2):
        extra = []
        if reduction == "mean":
            den = scalar(functools.partial(_denominator_of_words, name, options), merged,
                         np.float64, f"fastloss-{name}-denominator")
            extra = [den, ()]
        grad = da.blockwise(
            functools.partial(_grad_block, name, reduction, options, aux_names), p_ind, *args,
            *extra,
            concatenate=True, token=f"fastloss-{name}-grad", dtype=dtype,
            meta=np.empty((0,) * nd, dtype))
    return _wanted(want, value, grad)


def _wanted(want, value, grad):
    """What ``want`` asks for: 0 the value, 1 the gradient, 2 both."""
    return value if want == 0 else grad if want == 1 else (value, grad)


def _merged_words(name, block_fn, nd, k, args, split_every, token, align=True):
    """The chunks' state words (``block_fn`` over ``args``, K words each)
    merged by integer addition: a lazy (K,) int64 array. ``align=False``:
    the arguments already have the same blocks (one of them one item per
    block)."""
    da = _da()
    p_ind = tuple(range(nd))
    words = da.blockwise(
        block_fn, p_ind + (nd,), *args, new_axes={nd: k},
        adjust_chunks=dict.fromkeys(p_ind, 1), concatenate=True, align_arrays=align,
        token=f"fastloss-{name}-{token}", dtype=np.int64,
        meta=np.empty((0,) * (nd + 1), np.int64))
    if nd == 0:
        return words
    return da.reduction(
        words, _add_words, _add_words, combine=_add_words, axis=p_ind, keepdims=False,
        dtype=np.int64, split_every=split_every, name=f"fastloss-{name}-merge",
        concatenate=True, meta=np.empty((0,), np.int64))


def _none_graph(name, options, aux_names, loss_ind, args, dtype):
    """The per-item losses (``reduction="none"``), chunk by chunk."""
    return _da().blockwise(
        functools.partial(_none_block, name, options, aux_names), loss_ind, *args,
        concatenate=True, token=f"fastloss-{name}-none", dtype=dtype,
        meta=np.empty((0,) * len(loss_ind), dtype))


def _spanning_value(name, reduction, options, layout, y_true, y_pred, split_every):
    """The value of a region loss whose regions span axis 0, without
    weights: chunks along axis 0 (every other axis whole) each give their
    regions' exact sums, which add as integers; the scores come from the
    totals -- the dataset's Dice, the NumPy call's bits when each chunk is a
    whole number of 1024-element blocks of its regions."""
    da = _da()
    nd = y_pred.ndim
    chunks = list(_pred_chunks(_Layout("elementwise", nd, (), False), y_pred, y_true, None))
    for a in range(1, nd):
        chunks[a] = (y_pred.shape[a],)
    P = _as_dask(y_pred, tuple(chunks))
    T = _as_dask(y_true, P.chunks)
    dtype = P.dtype
    p_ind = tuple(range(nd))
    merged = _merged_words(
        name, functools.partial(_spanning_state_block, name, reduction, options, nd), nd,
        _spanning_words(name, reduction, options, P.shape, dtype), [P, p_ind, T, p_ind],
        split_every, "sums")
    return da.blockwise(functools.partial(_value_of_words, name, reduction, options, dtype), (),
                        merged, (0,), concatenate=True, token=f"fastloss-{name}-{reduction}",
                        dtype=dtype, meta=np.empty((), dtype))


def _spanning_whole(name, want, reduction, options, layout, y_true, y_pred, weights, aux,
                    segments=None):
    """A region loss whose regions span axis 0, with weights, per-score
    losses, a gradient (which need every region's totals first) or
    segments: the call on the whole array, one chunk."""
    da = _da()
    nd = y_pred.ndim
    full = tuple((d,) for d in y_pred.shape)
    P = _as_dask(y_pred, full)
    T = _as_dask(y_true, tuple((d,) for d in y_true.shape))
    loss_shape = layout.loss_shape(P.shape)
    loss_ind = layout.loss_axes
    W = None if weights is None else _align_weights(weights, loss_shape,
                                                    tuple((d,) for d in loss_shape))
    p_ind = tuple(range(nd))
    args = [P, p_ind, T, loss_ind if layout.labels else p_ind]
    args += [None, None] if W is None else [W, loss_ind]
    aux_names = tuple(aux)
    for key in aux_names:
        args += [_align_weights(aux[key], P.shape, full), p_ind]
    dtype = P.dtype
    seg = {}
    out_ind = ()
    if segments:
        # The segments' keyword (ids as one chunk), after the array options.
        aux_names += ("offsets" if "offsets" in segments else "segment_ids",)
        ids = segments.get("offsets", segments.get("segment_ids"))
        args += [_as_dask(ids, ((ids.shape[0],),)), (nd,)]  # whole: an index of no other
        if "num_segments" in segments:
            seg["num_segments"] = segments["num_segments"]
        out_ind = (nd + 1,)
    value = grad = None
    if want in (0, 2):
        if reduction == "none":
            value = _none_graph(name, options, aux_names, loss_ind, args, dtype)
        else:
            S = _num_segments(segments) if segments else None
            value = da.blockwise(
                functools.partial(_whole_block, name, 0, reduction, {**options, **seg},
                                  aux_names, dtype),
                out_ind, *args, concatenate=True, token=f"fastloss-{name}-{reduction}",
                dtype=dtype, new_axes={nd + 1: S} if segments else None,
                meta=np.empty((0,) * len(out_ind), dtype))
    if want in (1, 2):
        grad = da.blockwise(
            functools.partial(_whole_block, name, 1, reduction, {**options, **seg}, aux_names,
                              dtype),
            p_ind, *args, concatenate=True, token=f"fastloss-{name}-grad", dtype=dtype,
            meta=np.empty((0,) * nd, dtype))
    return _wanted(want, value, grad)


# ---------------------------------------------------------------------------
# Segments: offsets= or segment_ids= with num_segments=


def _num_segments(segments):
    if "offsets" in segments:
        return int(np.shape(segments["offsets"])[0]) - 1
    return int(segments["num_segments"])


def _segment_keywords(name, items, n_items, segments):
    """The segment keywords checked as the core checks them, before anything
    is built: ``offsets`` (a NumPy array: S + 1 integers rising from 0 to the
    item count) or ``segment_ids`` (NumPy or Dask, one integer per item; their
    range is checked when the graph runs) with ``num_segments`` (>= 0)."""
    if "offsets" in segments:
        o = segments["offsets"]
        if is_dask_array(o):
            raise TypeError(f"{name}: offsets must be a NumPy array, not a Dask array (it holds "
                            f"S + 1 row pointers; compute it first)")
        o = np.asarray(o)
        if o.dtype.kind not in "iu":
            raise TypeError(f"{name}: offsets must be an array of integers, got dtype {o.dtype}")
        if o.ndim != 1 or o.shape[0] < 1:
            raise ValueError(f"{name}: offsets must be 1-D with S + 1 >= 1 entries")
        o = o.astype(np.int64)
        if o[0] != 0 or o[-1] != n_items or np.any(o[1:] < o[:-1]):
            raise ValueError(f"{name}: offsets must rise from 0 to the {n_items} {items} "
                             f"(non-decreasing), got {o[0]} ... {o[-1]}")
        return {"offsets": o}
    S = segments["num_segments"]
    if isinstance(S, bool) or not isinstance(S, (int, np.integer)):
        raise TypeError(f"{name}: num_segments must be an int, got {type(S).__name__}")
    if S < 0:
        raise ValueError(f"{name}: num_segments must be >= 0")
    ids = _asarray(segments["segment_ids"])
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{name}: segment_ids must be an array of integers, got dtype {ids.dtype}")
    if ids.ndim != 1 or ids.shape[0] != n_items:
        got = ids.shape[0] if ids.ndim == 1 else f"shape {tuple(ids.shape)} of"
        raise ValueError(f"{name}: segment_ids has {got} ids for {n_items} {items}")
    if any(c != c for c in ids.shape):
        raise ValueError(f"{name}: segment_ids has unknown chunk sizes (call "
                         f"segment_ids.compute_chunk_sizes() first)")
    return {"segment_ids": ids, "num_segments": int(S)}


def _block_segments(name, S, offsets, seg, n):
    """The segment keyword of a block of ``n`` items: its ids (checked in
    range), or ``offsets`` shifted to the block (``seg`` holds its first
    item's index)."""
    if offsets is None:
        ids = np.asarray(seg)
        if ids.size and (ids.min() < 0 or ids.max() >= S):
            bad = ids[(ids < 0) | (ids >= S)][0]
            raise ValueError(f"{name}: segment_ids holds {bad}, outside [0, {S})")
        return {"segment_ids": ids}
    return {"offsets": np.clip(offsets - int(seg[0]), 0, n)}


def _segment_state_block(name, reduction, options, nd, S, aux_names, offsets, p, t, w, seg,
                         *aux):
    """The (S, K) accumulator states of one chunk's segments, flattened and
    shaped (1,) * nd + (S * K,)."""
    acc = _loss(name).accumulator(reduction, num_segments=S, **_with(options, aux_names, aux))
    acc.update(t, p, weights=w, **_block_segments(name, S, offsets, seg, p.shape[0]))
    return np.asarray(acc.state(), dtype=np.int64).reshape((1,) * nd + (-1,))


def _segment_merged(name, reduction, options, dtype, S, words):
    """An accumulator of S segments holding the merged words."""
    words = np.ascontiguousarray(words, dtype=np.int64)
    return _loss(name).accumulator.from_state(
        words.reshape(S, -1) if S else words.reshape(0, _core_state_words()),
        reduction=reduction, dtype=_state_dtype(dtype), **options)


def _core_state_words():
    from . import _core

    return int(_core.STATE_WORDS)


def _segment_values(name, reduction, options, dtype, S, words):
    """Each segment's reduced value (an (S,) array of y_pred's dtype, as the
    NumPy call returns it)."""
    return np.asarray(_segment_merged(name, reduction, options, dtype, S, words).result(),
                      dtype=dtype)


def _segment_scales(name, options, S, words):
    """1 / each segment's exact denominator, in float64 (0 for a zero one)."""
    den = np.asarray(_segment_merged(name, "mean", options, np.float64, S, words).denominators,
                     dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(den != 0.0, 1.0 / den, 0.0)


def _segment_grad_block(name, reduction, options, S, aux_names, offsets, p, t, w, seg, *rest):
    """``w * dl`` of one chunk; for a mean (``rest`` ends with the segments'
    scales) each item's times 1 / its segment's denominator, in the chunk's
    dtype, as the kernels scale a mean."""
    aux = rest[: len(aux_names)]
    keyword = _block_segments(name, S, offsets, seg, p.shape[0])
    (p, t, w, *aux), half = _in_float32(p, t, w, *aux)
    g = _loss(name).grad(t, p, reduction="sum", weights=w,
                         **_with(options, aux_names, tuple(aux)))
    if reduction == "mean":
        scale = rest[-1].astype(g.dtype)
        if offsets is None:
            s = scale[keyword["segment_ids"]]
        else:
            s = np.repeat(scale, np.diff(keyword["offsets"]))
        g *= s.reshape((-1,) + (1,) * (g.ndim - 1))
    return g if half is None else g.astype(half)


def _segmented(name, want, reduction, options, info, layout, y_true, y_pred, weights, aux,
               segments, split_every):
    """A call with ``offsets=`` or ``segment_ids=``: one reduced value per
    segment, a lazy (S,) array. Chunks along the items (the flat elements of
    an elementwise loss, axis 0 of the others) give per-segment accumulator
    states, added as integers; the gradient is chunked like ``y_pred``."""
    da = _da()
    pname = info.get("pred_name", "y_pred")
    if reduction == "none":
        raise ValueError(f"{name}: segments need reduction 'mean' or 'sum', not 'none'")
    nd = y_pred.ndim
    elements = info["driver"] == "elementwise"
    if not elements and nd == 0:
        raise ValueError(f"{name}: segments split axis 0 of {pname}, which has none")
    n_items = int(np.prod(y_pred.shape, dtype=np.int64)) if elements else int(y_pred.shape[0])
    segments = _segment_keywords(name, "elements" if elements else "items along axis 0",
                                 n_items, segments)
    S = _num_segments(segments)
    if not elements and 0 in layout.whole:
        # Axis 0 is reduced (regions spanning it: each segment's dataset score).
        return _spanning_whole(name, want, reduction, options, layout, y_true, y_pred, weights,
                               aux, segments)

    if elements:
        # The items are the flat elements: every input as y_pred's shape, raveled.
        shape = y_pred.shape
        p_chunks = _pred_chunks(layout, y_pred, y_true, weights)
        P = _as_dask(y_pred, p_chunks)
        flat = [P, _as_dask(y_true, p_chunks),
                None if weights is None else _align_weights(weights, shape, p_chunks)]
        flat += [_align_weights(aux[k], shape, p_chunks) for k in aux]
        flat = [None if x is None else x.reshape(-1) for x in flat]
        P, T, W, A = flat[0], flat[1], flat[2], flat[3:]
        c0 = P.chunks[0]
        W = None if W is None else W.rechunk((c0,))
        T = T.rechunk((c0,))
        A = [a.rechunk((c0,)) for a in A]
        p_ind = loss_ind = t_ind = (0,)
    else:
        c0 = _pred_chunks(layout, y_pred, y_true, weights)[0]
        p_chunks = (c0,) + tuple((d,) for d in y_pred.shape[1:])
        P = _as_dask(y_pred, p_chunks)
        loss_chunks = tuple(p_chunks[a] for a in layout.loss_axes)
        T = _as_dask(y_true, loss_chunks if layout.labels else p_chunks)
        W = None if weights is None else _align_weights(
            weights, layout.loss_shape(P.shape), loss_chunks)
        A = [_align_weights(aux[k], P.shape, p_chunks) for k in aux]
        p_ind = tuple(range(nd))
        loss_ind = layout.loss_axes
        t_ind = loss_ind if layout.labels else p_ind
    offsets = segments.get("offsets")
    if offsets is None:
        seg = _as_dask(segments["segment_ids"], (c0,))
    else:  # each block's first item, one per block
        seg = da.from_array(np.concatenate([[0], np.cumsum(c0[:-1])]).astype(np.int64),
                            chunks=1)
    args = [P, p_ind, T, t_ind]
    args += [None, None] if W is None else [W, loss_ind]
    args += [seg, (0,)]
    for a in A:
        args += [a, p_ind]
    aux_names = tuple(aux)
    dtype = P.dtype
    k = S * int(np.asarray(_loss(name).accumulator(reduction, **options).state()).size)
    merged = _merged_words(
        name, functools.partial(_segment_state_block, name, reduction, options, len(p_ind), S,
                                aux_names, offsets),
        len(p_ind), k, args, split_every, "segment-states", align=False)

    value = grad = None
    if want in (0, 2):
        value = da.map_blocks(
            functools.partial(_segment_values, name, reduction, options, dtype, S), merged,
            chunks=((S,),), dtype=dtype, meta=np.empty((0,), dtype),
            token=f"fastloss-{name}-segment-{reduction}")
    if want in (1, 2):
        extra = []
        if reduction == "mean":
            scales = da.map_blocks(
                functools.partial(_segment_scales, name, options, S), merged, chunks=((S,),),
                dtype=np.float64, meta=np.empty((0,), np.float64),
                token=f"fastloss-{name}-segment-scales")
            extra = [scales, (len(p_ind),)]  # an index of no other argument: whole
        grad = da.blockwise(
            functools.partial(_segment_grad_block, name, reduction, options, S, aux_names,
                              offsets),
            p_ind, *args, *extra, concatenate=True, align_arrays=False,
            token=f"fastloss-{name}-segment-grad", dtype=dtype,
            meta=np.empty((0,) * len(p_ind), dtype))
        if elements:
            grad = grad.reshape(y_pred.shape)
    return _wanted(want, value, grad)


def _state_words(name, reduction, options, dtype):
    """K, the number of words of a state (the same for every chunk)."""
    return int(np.asarray(_loss(name).accumulator(reduction, **options).state()).size)


# ---------------------------------------------------------------------------
# Confusion metrics (fl.confusion_counts, fl.precision, ...)


def _confusion(name, score, y_true, y_pred, count_options, score_options, segments=None):
    """The lazy counts (score None: an int64 Dask array of shape (C, 4)) or
    score of ``fastloss.NAME`` on Dask arrays (called by the confusion front
    door, which has parsed and checked the options). Each chunk's counts are
    the core's; they add as integers, so the result is the NumPy call's for
    any chunking and scheduler. The class axis (scores with C classes,
    multilabel) is rechunked to one chunk; y_true is chunked like y_pred's
    items. With ``segments`` (offsets= or segment_ids= with num_segments=):
    the (S, C, 4) counts, or S scores, of the items (elements for the binary
    task and predicted labels, rows otherwise) in C order."""
    import dask

    from . import _core

    da = _da()
    task = count_options["task"]
    p = _asarray(y_pred, pred=False)
    t = _asarray(y_true)
    p_labels = task == "multiclass" and np.dtype(p.dtype).kind in "iu"
    nd = p.ndim
    class_axis = None
    if task == "multilabel" or (task == "multiclass" and not p_labels):
        if nd == 0:
            raise ValueError(f"{name}: y_pred needs a class axis")
        axis = count_options["axis"]
        if not -nd <= axis < nd:
            raise ValueError(f"{name}: axis {axis} is out of range for y_pred with {nd} "
                             "dimension(s)")
        class_axis = axis % nd
    if isinstance(p, da.Array):
        chunks = list(p.chunks)
    elif task == "multiclass" and not p_labels and isinstance(t, da.Array):
        chunks = [(d,) for d in p.shape]
        for a, c in zip([a for a in range(nd) if a != class_axis], t.chunks):
            chunks[a] = c
    else:
        chunks = list(t.chunks) if isinstance(t, da.Array) and t.shape == p.shape else [
            (d,) for d in p.shape]
    if class_axis is not None:
        chunks[class_axis] = (p.shape[class_axis],)
    chunks = tuple(chunks)
    if task == "multiclass" and not p_labels:
        t_shape = tuple(d for a, d in enumerate(p.shape) if a != class_axis)
        t_chunks = tuple(c for a, c in enumerate(chunks) if a != class_axis)
    else:
        t_shape, t_chunks = p.shape, chunks
    if tuple(t.shape) != tuple(t_shape):
        raise ValueError(f"{name}: y_true has shape {tuple(t.shape)}; y_pred's items have "
                         f"shape {tuple(t_shape)}")
    p = _as_dask(p, chunks)
    t = _as_dask(t, t_chunks)
    if p_labels or task == "binary":
        C = 1 if task == "binary" else count_options["num_classes"]
        if C is None:
            raise ValueError(f"{name}: num_classes is required with predicted labels")
    else:
        C = p.shape[class_axis]
    if segments:
        return _confusion_segments(name, score, t, p, count_options, score_options, segments,
                                   C, class_axis if not p_labels else None, task)
    p_blocks = p.to_delayed()
    if class_axis is not None and not p_labels and task == "multiclass":
        p_blocks = np.squeeze(p_blocks, axis=class_axis)
    t_blocks = t.to_delayed()
    if task == "multilabel":
        t_blocks = np.squeeze(t_blocks, axis=class_axis)
        p_blocks = np.squeeze(p_blocks, axis=class_axis)
    count = dask.delayed(_core.confusion, pure=True)
    parts = [count(name, None, tb, pb, count_options)
             for tb, pb in zip(np.ravel(t_blocks), np.ravel(p_blocks))]
    empty = np.zeros((C, 4), np.int64)
    total = dask.delayed(lambda xs: sum(xs, empty.copy()), pure=True)(parts)
    counts = da.from_delayed(total, shape=(C, 4), dtype=np.int64)
    if score is None:
        return counts
    per_class = score_options.get("average") == "none"
    value = dask.delayed(_core.confusion_score, pure=True)(name, score, total, score_options)
    return da.from_delayed(value, shape=(C,) if per_class else (), dtype=np.float64)


def _confusion_block(name, S, offsets, count_options, t, p, seg):
    """One chunk's (S, C, 4) counts (``seg``: its ids, or its first item's
    index with ``offsets``). Counts do not depend on the items' order, so
    ids in any order are grouped (a stable sort) first."""
    from . import _core

    kw = _block_segments(name, S, offsets, seg, t.shape[0])
    if "segment_ids" in kw:
        ids = kw["segment_ids"]
        if ids.size > 1 and np.any(ids[1:] < ids[:-1]):
            order = np.argsort(ids, kind="stable")
            ids, t, p = ids[order], t[order], p[order]
        kw = {"segment_ids": ids, "num_segments": S}
    return _core.confusion(name, None, t, p, {**count_options, **kw})


def _confusion_segments(name, score, t, p, count_options, score_options, segments, C,
                        class_axis, task):
    """Per-segment counts or scores of Dask arrays: the items flat in C
    order (the class axis last), chunked along them; each chunk's per-segment
    counts, summed as integers."""
    import dask

    from . import _core

    da = _da()
    if class_axis is not None:
        # Class scores (multiclass) or indicators (multilabel): rows of C.
        P = da.moveaxis(p, class_axis, -1).reshape(-1, C)
        T = (da.moveaxis(t, class_axis, -1).reshape(-1, C) if task == "multilabel"
             else t.reshape(-1))
        items = "rows"
    else:
        P, T = p.reshape(-1), t.reshape(-1)
        items = "elements" if task == "binary" else "rows"
    n_items = int(P.shape[0])
    segments = _segment_keywords(name, items, n_items, segments)
    S = _num_segments(segments)
    c0 = P.chunks[0]
    P = P.rechunk((c0,) + ((C,),) * (P.ndim - 1))
    T = T.rechunk((c0,) + ((C,),) * (T.ndim - 1))
    offsets = segments.get("offsets")
    if offsets is None:
        seg_blocks = list(_as_dask(segments["segment_ids"], (c0,)).to_delayed().ravel())
    else:
        seg_blocks = [np.array([a], np.int64) for a in np.concatenate([[0], np.cumsum(c0[:-1])])]
    options = {**count_options, "axis": -1}
    count = dask.delayed(functools.partial(_confusion_block, name, S, offsets, options),
                         pure=True)
    parts = [count(tb, pb, sb) for tb, pb, sb in
             zip(T.to_delayed().ravel(), P.to_delayed().ravel(), seg_blocks)]
    empty = np.zeros((S, C, 4), np.int64)
    total = dask.delayed(lambda xs: sum(xs, empty.copy()), pure=True)(parts)
    counts = da.from_delayed(total, shape=(S, C, 4), dtype=np.int64)
    if score is None:
        return counts
    per_class = score_options.get("average") == "none"
    value = dask.delayed(_core.confusion_score, pure=True)(name, score, total, score_options)
    return da.from_delayed(value, shape=(S, C) if per_class else (S,), dtype=np.float64)
