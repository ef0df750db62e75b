"""Every fastloss loss as a differentiable JAX function, through the XLA FFI.

::

    import jax
    import fastloss.jax as flj

    def loss_fn(params, x, labels):
        logits = model(params, x)
        return flj.sparse_categorical_cross_entropy(logits, labels, from_logits=True)

    value, grads = jax.jit(jax.value_and_grad(loss_fn))(params, x, labels)
    flj.huber(pred, target, delta=2.0, reduction="sum", weights=w)

**Arguments** follow optax and PyTorch: ``(y_pred, y_true)`` -- the
prediction first -- then ``reduction`` (``"mean"``, ``"sum"``, ``"none"``),
``weights`` (per element, row, region or box, broadcast as in ``fastloss``)
and the loss's options by name, with fastloss's names and defaults
(``fastloss.NAME``'s docstring). Array options (``pos_weight``,
``class_weights``) take arrays. Options are checked when the call is traced
(a ValueError or TypeError naming the option, as ``fastloss.NAME`` raises);
what only the data can tell (a label out of range, a weights shape that does
not broadcast) is reported by the call itself, as JAX's runtime error with
fastloss's message.

**How it works.** Each loss of ``fastloss.LOSSES`` but the metrics is an XLA
FFI custom call on the CPU (``jax.ffi.ffi_call``; the handlers are compiled
into ``fastloss._core``, generated from the registry rows): the arrays' memory
goes to the C++ core without a copy. Under ``jax.grad`` /
``jax.value_and_grad`` the forward pass computes the value and the gradient
in one pass (``jax.custom_vjp``) and the backward multiplies the saved
gradient by the incoming cotangent; without differentiation only the value
is computed. ``jax.jit``, ``jax.grad``, ``jax.value_and_grad`` and
``jax.vmap`` work: under ``vmap`` one FFI call gets the whole batch
(``vmap_method="expand_dims"``) and runs the loss once per member, each
with its own reduction -- every member's value and gradient are those of its
own call, bit for bit.

**dtypes.** float32 and float64 (with ``jax_enable_x64``) run in their own
type. float16 and bfloat16 are computed in float32 (converted once) and the
value and gradient returned in the input's dtype. Integer and bool
predictions are converted to JAX's default float dtype. Labels are any
integer dtype (int32 without x64).

**Gradients** flow to ``y_pred`` only. Differentiating with respect to
``y_true``, ``weights`` or an array option raises NotImplementedError
(wrap it in ``jax.lax.stop_gradient`` to treat it as a constant). Second
derivatives (``jax.hessian``, ``jax.grad`` of a gradient) are not
available.

**Losses of several inputs** (``gaussian_nll``, ``triplet_margin``,
``cosine_embedding``, ``margin_ranking``, ``contrastive_pairs``, the GAN and
Wasserstein losses, ``gradient_penalty``) take their arrays in
``fastloss.NAME``'s order (PyTorch's where PyTorch has the loss); every
differentiable input gets its gradient, and elementwise ones broadcast their
inputs (``var`` of shape (N, 1)). The GAN and Wasserstein losses of two
score arrays take ``weights=(w_real, w_fake)`` and no ``reduction="none"``.
``pairwise_ranking`` and ``l2_penalty`` are NumPy calls only.

**Devices.** CPU. On other backends the call fails to lower (no handler is
registered for them).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import _core
from ._layout import _adapter_multi_names, _check_call, _layout

__all__ = ["LOSSES"]

_PREFIX = "fastloss_"


def _register_targets():
    for name, capsule in _core.jax_handlers().items():
        jax.ffi.register_ffi_target(_PREFIX + name, capsule, platform="cpu")


_register_targets()


def _is_scalar(v):
    return isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating))


def _option_attrs(loss, info, resolved):
    """The FFI attributes of a call's resolved options (name, value pairs;
    an absent attribute is None), and the real-or-array option's array and
    class_weights ((name, value) or None): operands, not attributes."""
    attrs = []
    aux = cw = None
    for o in info["options"]:
        name, kind = o["name"], str(o["type"])
        v = resolved.get(name)
        if kind == "float or array_like":
            if _is_scalar(v):
                attrs.append((name, float(v)))
            else:
                aux = (name, v)
        elif kind == "array_like or None":
            if v is not None:
                cw = (name, v)
        elif v is None:
            continue  # an absent attribute is None
        elif kind in ("float", "float or None"):
            attrs.append((name, float(v)))
        elif kind == "bool":
            attrs.append((name, bool(v)))
        elif kind in ("int", "int or None"):
            attrs.append((name, int(v)))
        elif kind == "str":
            attrs.append((name, str(v)))
        elif kind == "None, int or tuple of ints":
            attrs.append((name, tuple(int(a) for a in v)))
        else:
            raise TypeError(f"fastloss.jax.{loss}: option {name} of type {kind!r} has no FFI "
                            "attribute")
    return attrs, aux, cw


class _Spec:
    """One loss: its registry row and how its options become FFI attributes
    and operands."""

    def __init__(self, name):
        self.name = name
        self.info = _core.loss_info(name)
        self.labels = self.info["driver"] == "label_rows"
        self.true_name = self.info.get("true_name", "y_true")

    def configure(self, options, nd):
        """The FFI attributes (a hashable tuple), the array options in
        operand order ((what, value) pairs: the real-or-array option's
        array, class_weights) and the axes one loss value spans, from the
        caller's options -- checked by the core's parser (ValueError /
        TypeError naming the option)."""
        resolved = _core.resolve_options(self.name, dict(options))
        attrs, aux, cw = _option_attrs(self.name, self.info, resolved)
        arrays = []
        attrs.append(("_aux", aux is not None))
        attrs.append(("_class_weights", cw is not None))
        if aux is not None:
            arrays.append(aux)
        if cw is not None:
            arrays.append(cw)
        layout = _layout(self.info, resolved, nd, strict=True)
        return tuple(attrs), arrays, layout


def _attributes(attrs):
    """FFI attributes from the configuration: reals as float64, ints as
    int64, bools, strings, axes as int64 arrays."""
    out = {}
    for name, v in attrs:
        if isinstance(v, bool):
            out[name] = np.bool_(v)
        elif isinstance(v, int):
            out[name] = np.int64(v)
        elif isinstance(v, float):
            out[name] = np.float64(v)
        elif isinstance(v, tuple):
            out[name] = np.asarray(v, dtype=np.int64).reshape(len(v))
        else:
            out[name] = v
    return out


def _ffi(name, cfg, want_grad, y_pred, y_true, weights, arrays):
    attrs, reduction, loss_shape, _ = cfg
    dtype = y_pred.dtype
    results = [jax.ShapeDtypeStruct(loss_shape if reduction == "none" else (), dtype)]
    if want_grad:
        results.append(jax.ShapeDtypeStruct(y_pred.shape, dtype))
    operands = [y_true, y_pred] + ([] if weights is None else [weights]) + list(arrays)
    call = jax.ffi.ffi_call(_PREFIX + name, results, vmap_method="expand_dims")
    return call(*operands, _reduction=reduction, _grad=np.bool_(want_grad),
                _weights=np.bool_(weights is not None), _rank=np.int64(y_pred.ndim),
                **_attributes(attrs))


def _make_call(spec):
    name = spec.name

    def primal(cfg, y_pred, y_true, weights, arrays):
        return _ffi(name, cfg, False, y_pred, y_true, weights, arrays)[0]

    def fwd(cfg, y_pred, y_true, weights, arrays):
        # symbolic_zeros: each argument is a CustomVJPPrimal telling whether
        # it is being differentiated.
        for what, arg in ((spec.true_name, y_true), ("weights", weights)):
            if arg is not None and arg.perturbed:
                _refuse(name, what)
        for arg in arrays:
            if arg.perturbed:
                _refuse(name, "an array option")
        value, grad = _ffi(name, cfg, True, y_pred.value, y_true.value,
                           None if weights is None else weights.value,
                           [a.value for a in arrays])
        return value, grad

    def bwd(cfg, grad, g):
        _, reduction, _, whole = cfg
        if isinstance(g, jax.custom_derivatives.SymbolicZero):
            return jnp.zeros_like(grad), None, None, None
        if reduction == "none" and whole:
            g = jnp.expand_dims(g, whole)
        return grad * g.astype(grad.dtype), None, None, None

    f = jax.custom_vjp(primal, nondiff_argnums=(0,))
    f.defvjp(fwd, bwd, symbolic_zeros=True)
    return f


def _refuse(name, what):
    raise NotImplementedError(
        f"fastloss.jax.{name}: the gradient flows to y_pred only, and {what} is being "
        "differentiated; wrap it in jax.lax.stop_gradient to treat it as a constant")


def _work_dtype(name, x):
    """The dtype the core computes in: y_pred's float32/float64; float16
    and bfloat16 in float32; integers and bools in JAX's default float."""
    dt = x.dtype
    if dt in (jnp.float32, jnp.float64):
        return dt
    if dt in (jnp.float16, jnp.bfloat16):
        return jnp.dtype(jnp.float32)
    if jnp.issubdtype(dt, jnp.integer) or dt == jnp.bool_:
        return jnp.dtype(jnp.result_type(float))
    raise TypeError(f"fastloss.jax.{name}: y_pred must be a real array (float32, float64, "
                    f"float16, bfloat16, or integers), got {dt}")


def _check_empty(name, arrays, weights, options, work):
    """Runs fastloss.NAME on zeros of the call's shapes and dtypes, for a
    call whose results have no element (XLA elides it, and its checks with
    it): the NumPy call's ValueError for shapes that do not fit, at trace
    time. Zero-size arrays cost nothing; the others are the weights'
    and array options' shapes."""
    import fastloss

    def zeros(a):
        dt = a.dtype if jnp.issubdtype(a.dtype, jnp.integer) else work
        return np.zeros(jnp.shape(a), dtype=np.dtype(dt))

    args = [zeros(a) for a in arrays]  # in fastloss.NAME's order
    if weights is not None:
        weights = (tuple(zeros(jnp.asarray(w)) for w in weights)
                   if isinstance(weights, (tuple, list)) else zeros(jnp.asarray(weights)))
    opts = {k: (v if _is_scalar(v) or v is None or isinstance(v, (str, tuple))
                else zeros(jnp.asarray(v))) for k, v in options.items()}
    getattr(fastloss, name)(*args, reduction="none", weights=weights, **opts)


def _function(spec):
    name = spec.name
    core = _make_call(spec)

    @functools.partial(jax.jit, static_argnums=(0,))
    def run(cfg, y_pred, y_true, weights, arrays):
        # cfg: (attrs, reduction, loss_shape, whole axes)
        return core(cfg, y_pred, y_true, weights, arrays)

    def call(y_pred, y_true, *, reduction="mean", weights=None, **options):
        _check_call("fastloss.jax", name, reduction)
        y_pred = jnp.asarray(y_pred)
        out_dtype = y_pred.dtype
        work = _work_dtype(name, y_pred)
        if out_dtype != work:
            out_dtype = work if out_dtype not in (jnp.float16, jnp.bfloat16) else out_dtype
            y_pred = y_pred.astype(work)
        y_true = jnp.asarray(y_true)
        if spec.labels:
            if not jnp.issubdtype(y_true.dtype, jnp.integer):
                raise TypeError(f"fastloss.jax.{name}: {spec.true_name} must be integer class "
                                f"labels, got {y_true.dtype}")
        else:
            y_true = y_true.astype(work)
        if weights is not None:
            weights = jnp.asarray(weights).astype(work)
        attrs, arrays, layout = spec.configure(options, y_pred.ndim)
        arrays = [jnp.asarray(v).astype(work) for _, v in arrays]
        loss_shape = layout.loss_shape(y_pred.shape)
        if reduction == "none" and 0 in loss_shape:
            # XLA runs no call whose results are all empty: the shapes are
            # checked here instead, by the NumPy call on zeros of them.
            _check_empty(name, (y_true, y_pred), weights, options, work)
        cfg = (attrs, reduction, loss_shape, layout.whole)
        value = run(cfg, y_pred, y_true, weights, arrays)
        return value if value.dtype == out_dtype else value.astype(out_dtype)

    call.__name__ = call.__qualname__ = name
    call.__module__ = __name__
    pred, true = spec.info.get("pred_name", "y_pred"), spec.true_name
    call.__doc__ = (
        f"{spec.info['summary']}\n\n"
        f"``fastloss.jax.{name}(y_pred, y_true, *, reduction='mean', weights=None, "
        f"**options)``: ``y_pred`` is fastloss's ``{pred}`` (differentiable), ``y_true`` its "
        f"``{true}``. Options and formula: ``fastloss.{name}``. Returns a JAX array of "
        f"``y_pred``'s dtype (0-d for 'mean' and 'sum'); ``jax.grad`` gives ``y_pred`` the "
        f"gradient of the same fused pass.")
    return call


#: name -> the differentiable function: every loss of ``fastloss.LOSSES`` but
#: the metrics, and of ``fastloss.OTHER_LOSSES`` but pairwise_ranking and
#: l2_penalty.
LOSSES = {}
for _name in _core.loss_names():
    _info = _core.loss_info(_name)
    if _info["metric"]:
        continue
    LOSSES[_name] = _function(_Spec(_name))
    globals()[_name] = LOSSES[_name]
    __all__.append(_name)
    for _alias in _info["aliases"]:
        globals()[_alias] = LOSSES[_name]
        __all__.append(_alias)
del _name, _info


# ---------------------------------------------------------------------------
# Losses of several inputs (fastloss.OTHER_LOSSES): gaussian_nll,
# triplet_margin, cosine_embedding, margin_ranking, contrastive_pairs, the
# GAN and Wasserstein losses, gradient_penalty -- the kinds with one value per
# element, row, sample or score array.

_MULTI_KINDS = {  # kind -> the per-item losses' shape from the first input's
    "elements": lambda shape: tuple(shape),
    "scores": lambda shape: tuple(shape),
    "rows": lambda shape: tuple(shape[:-1]),
    "samples": lambda shape: tuple(shape[:1]),
    "score_pair": None,  # "none" gives one array per input: not here
}


class _MultiSpec:
    def __init__(self, name):
        self.name = name
        self.info = _core.loss_info(name)
        self.kind = self.info["driver"]
        self.args = tuple(self.info["args"])
        self.inputs = tuple(self.info["inputs"])
        self.target = self.info["target"]
        self.pair = self.kind == "score_pair"


def _multi_ffi(name, cfg, want_grad, inputs, target, weights):
    attrs, reduction, loss_shape = cfg
    dtype = inputs[0].dtype
    results = [jax.ShapeDtypeStruct(loss_shape if reduction == "none" else (), dtype)]
    if want_grad:
        results += [jax.ShapeDtypeStruct(x.shape, dtype) for x in inputs]
    operands = list(inputs) + ([] if target is None else [target]) + list(weights)
    call = jax.ffi.ffi_call(_PREFIX + name, results, vmap_method="expand_dims")
    return call(*operands, _reduction=reduction, _grad=np.bool_(want_grad),
                _n_weights=np.int64(len(weights)), _rank=np.int64(inputs[0].ndim),
                **_attributes(attrs))


def _make_multi_call(spec):
    name = spec.name

    def primal(cfg, inputs, target, weights):
        return _multi_ffi(name, cfg, False, inputs, target, weights)[0]

    def fwd(cfg, inputs, target, weights):
        if target is not None and target.perturbed:
            _refuse(name, spec.target)
        if any(w.perturbed for w in weights):
            _refuse(name, "weights")
        out = _multi_ffi(name, cfg, True, [x.value for x in inputs],
                         None if target is None else target.value, [w.value for w in weights])
        return out[0], tuple(out[1:])

    def bwd(cfg, grads, g):
        reduction = cfg[1]
        if isinstance(g, jax.custom_derivatives.SymbolicZero):
            return tuple(jnp.zeros_like(x) for x in grads), None, None
        out = []
        for x in grads:
            c = g.astype(x.dtype)
            if reduction == "none":
                c = c.reshape(c.shape + (1,) * (x.ndim - c.ndim))
            out.append(x * c)
        return tuple(out), None, None

    f = jax.custom_vjp(primal, nondiff_argnums=(0,))
    f.defvjp(fwd, bwd, symbolic_zeros=True)
    return f


def _multi_function(spec):
    name = spec.name
    core = _make_multi_call(spec)
    run = jax.jit(core, static_argnums=(0,))

    def call(*arrays, reduction="mean", weights=None, **options):
        shape_of = _MULTI_KINDS[spec.kind]
        _check_call("fastloss.jax", name, reduction, arg_names=spec.args, given=len(arrays),
                    none_ok=shape_of is not None)
        arrays = [jnp.asarray(a) for a in arrays]
        first = arrays[spec.args.index(spec.inputs[0])]
        out_dtype = first.dtype
        work = _work_dtype(name, first)
        if out_dtype not in (jnp.float16, jnp.bfloat16):
            out_dtype = work
        arrays = [a.astype(work) for a in arrays]
        if spec.kind == "elements":
            # Broadcast as PyTorch does (a var of shape (N, 1)); the
            # broadcast's own gradient sums back to each input's shape.
            arrays = jnp.broadcast_arrays(*arrays)
        by_name = dict(zip(spec.args, arrays))
        inputs = tuple(by_name[a] for a in spec.inputs)
        target = by_name[spec.target] if spec.target else None
        if weights is None:
            ws = ()
        elif spec.pair:
            if not isinstance(weights, (tuple, list)) or len(weights) != 2 or any(
                    w is None for w in weights):
                raise ValueError(f"fastloss.jax.{name}: weights must be None or a pair "
                                 "(w_real, w_fake) of arrays")
            ws = tuple(jnp.asarray(w).astype(work) for w in weights)
        else:
            ws = (jnp.asarray(weights).astype(work),)
        attrs, _, _ = _option_attrs(name, spec.info,
                                    _core.resolve_options(name, dict(options)))
        loss_shape = shape_of(inputs[0].shape) if reduction == "none" else ()
        if reduction == "none" and 0 in loss_shape:
            _check_empty(name, arrays, weights, options, work)
        value = run((tuple(attrs), reduction, loss_shape), inputs, target, ws)
        return value if value.dtype == out_dtype else value.astype(out_dtype)

    call.__name__ = call.__qualname__ = name
    call.__module__ = __name__
    call.__doc__ = (
        f"{spec.info['summary']}\n\n"
        f"``fastloss.jax.{name}({', '.join(spec.args)}, *, reduction='mean', weights=None, "
        f"**options)``: arrays in ``fastloss.{name}``'s order; gradients flow to "
        f"{', '.join(spec.inputs)}. Options and formula: ``fastloss.{name}``.")
    return call


for _name in _adapter_multi_names():
    LOSSES[_name] = _multi_function(_MultiSpec(_name))
    globals()[_name] = LOSSES[_name]
    __all__.append(_name)
del _name
