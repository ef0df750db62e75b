"""Losses of several inputs (metric learning, ranking, adversarial, penalties)
and combinations of losses (``0.5 * fl.mse + 0.5 * fl.smooth_l1``).

The computation is in the C++ core (``fastloss._core``); these classes bind
the arguments and document the call forms.
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np

from . import _core
from ._docs import render_multi
from ._accumulate import accumulator_property
from ._function import MODULE, SEGMENT_PARAMETERS, FunctionLike, signed_method

class MultiLoss(FunctionLike):
    # A loss of several inputs: a row of the C++ core's FASTLOSS_MULTI_LOSSES
    # (``_core.loss_info(name)``: its arguments, options with their defaults
    # and docs). ``.grad`` and ``.value_and_grad`` return one gradient per
    # differentiable input (a tuple in argument order), or a single array
    # when there is one. The core parses every call (``_core._multi``),
    # device arrays included (it hands those to fastloss.cuda).

    def __init__(self, name):
        info = _core.loss_info(name)
        self.name = name
        self._args = tuple(info["args"])      # positional argument names
        self._inputs = tuple(info["inputs"])  # the differentiable ones, in order
        self._target = info["target"]         # the other one, or None
        self._options = {o["name"]: o["default"] for o in info["options"]}
        self._out = info["out"]
        self._weights = info["weights"]
        self._segments = info.get("segments", False)
        self.__doc__ = render_multi(info)
        self.__module__ = MODULE
        self._set_function_attrs()

    @property
    def options(self):
        return dict(self._options)

    @property
    def accumulator(self):
        """``fl.NAME.accumulator(reduction="mean", **options)``: a streaming,
        exactly mergeable ``fastloss.Accumulator`` of this loss."""
        return accumulator_property(self)

    def __repr__(self):
        return f"<fastloss.{self.name}>"

    def _parameters(self, method):
        kw = inspect.Parameter.KEYWORD_ONLY
        params = [inspect.Parameter(a, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in self._args]
        params.extend(inspect.Parameter(k, kw, default=v) for k, v in self._options.items())
        params.append(inspect.Parameter("reduction", kw, default="mean"))
        if self._weights:
            params.append(inspect.Parameter("weights", kw, default=None))
        if self._out and method != "__call__":
            params.append(inspect.Parameter("out", kw, default=None))
        if self._segments:
            params.extend(inspect.Parameter(k, kw, default=None) for k in SEGMENT_PARAMETERS)
        return params

    def _reduce_by_value(self, protocol):
        return MultiLoss, (self.name,)

    def __call__(self, *args, **kwargs):
        return self._run(0, args, kwargs)

    @signed_method
    def grad(self, *args, **kwargs):
        return self._run(1, args, kwargs)

    @signed_method
    def value_and_grad(self, *args, **kwargs):
        return self._run(2, args, kwargs)

    def _run(self, want, args, kwargs):
        # A float16 / bfloat16 first input (it sets the computation's dtype):
        # computed in float32, results in its dtype, as the single-input
        # losses do it in the core's front door.
        first = self._inputs[0] if self._inputs else None
        if first in self._args:
            k = self._args.index(first)
            x = args[k] if k < len(args) else kwargs.get(first)
            name = getattr(getattr(x, "dtype", None), "name", None)
            if name in _HALF_NAMES:
                return _half_call(self.name, want, args, kwargs, x.dtype)
        return _core._multi(self.name, want, args, kwargs)


_HALF_NAMES = ("float16", "bfloat16")


def _half_call(name, want, args, kwargs, half):
    """A loss of several inputs on float16 / bfloat16 arrays: every such
    argument converted to float32 once, the call in float32, the value(s)
    and gradient(s) rounded once to ``half``."""
    if want and kwargs.get("out") is not None:
        raise TypeError(f"{name}: out= is not taken with {half.name} inputs (the gradient is "
                        f"returned in {half.name})")

    def to32(x):
        dt = getattr(getattr(x, "dtype", None), "name", None)
        return np.asarray(x, dtype=np.float32) if dt in _HALF_NAMES else x

    def back(v):
        if isinstance(v, tuple):
            return tuple(back(x) for x in v)
        return v.astype(half) if isinstance(v, (np.ndarray, np.generic)) else half.type(v)

    r = _core._multi(name, want, tuple(to32(a) for a in args),
                     {k: to32(v) for k, v in kwargs.items()})
    return (back(r[0]), back(r[1])) if want == 2 else back(r)


class _L2Penalty(MultiLoss):
    # The core's "penalty" kind: a sum over a list of arrays; no reduction,
    # no weights, and its option given positionally (arrays, lam).

    def _parameters(self, method):
        pos = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return [inspect.Parameter(a, pos) for a in self._args]

    def _reduce_by_value(self, protocol):
        return _L2Penalty, (self.name,)


def _make(name):
    return (_L2Penalty if _core.loss_info(name)["driver"] == "penalty" else MultiLoss)(name)


#: Every loss of several inputs (and the penalty) by name: the rows of the
#: core's FASTLOSS_MULTI_LOSSES.
MULTI = {name: _make(name) for name in _core.multi_loss_names()}


# --- Combinations ------------------------------------------------------------------


def _format_coef(c):
    return f"{c:g}"


class Combinable:
    """Arithmetic that builds ``Combined`` losses: ``c * loss``, ``loss / c``,
    ``a + b``, ``a - b``, ``-a``."""

    __slots__ = ()

    def _terms(self):
        return [(1.0, self)]

    def __mul__(self, c):
        if isinstance(c, bool) or not isinstance(c, numbers.Real):
            return NotImplemented
        return Combined([(float(c) * k, t) for k, t in self._terms()])

    __rmul__ = __mul__

    def __truediv__(self, c):
        if isinstance(c, bool) or not isinstance(c, numbers.Real):
            return NotImplemented
        return Combined([(k / float(c), t) for k, t in self._terms()])

    def __neg__(self):
        return self * -1.0

    def __add__(self, other):
        if not isinstance(other, Combinable):
            return NotImplemented
        return Combined(self._terms() + other._terms())

    def __radd__(self, other):
        if isinstance(other, numbers.Real) and other == 0:  # sum([...])
            return Combined(self._terms())
        return NotImplemented

    def __sub__(self, other):
        if not isinstance(other, Combinable):
            return NotImplemented
        return Combined(self._terms() + [(-k, t) for k, t in other._terms()])


def _base_and_options(loss):
    if isinstance(loss, Configured):
        return loss.loss, dict(loss.fixed)
    return loss, {}


class Configured(Combinable, FunctionLike):
    """A loss with some options fixed (``fl.smooth_l1.with_options(beta=2.0)``);
    the same three methods, options given at call time override the fixed ones."""

    __slots__ = ("loss", "fixed", "__dict__")
    __module__ = MODULE

    def __init__(self, loss, options):
        known = loss.options
        for key in options:
            if key not in known:
                raise TypeError(f"{loss.name}.with_options() got an unexpected keyword "
                                f"argument '{key}'")
        self.loss = loss
        self.fixed = dict(options)
        self._set_function_attrs()

    @property
    def name(self):
        return self.loss.name

    @property
    def options(self):
        d = self.loss.options
        d.update(self.fixed)
        return d

    @property
    def __doc__(self):  # noqa: D105 - the loss's own documentation
        return self.loss.__doc__

    @property
    def accumulator(self):
        """The loss's accumulator with the fixed options."""
        return accumulator_property(self)

    def with_options(self, **options):
        merged = dict(self.fixed)
        merged.update(options)
        return Configured(self.loss, merged)

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.fixed.items())
        return f"{self.loss.name}({opts})"

    def _parameters(self, method):
        # the loss's own, with the fixed options' defaults
        return [p.replace(default=self.fixed[p.name]) if p.name in self.fixed else p
                for p in self.loss._signature(method).parameters.values()]

    def _reduce_by_value(self, protocol):
        return Configured, (self.loss, dict(self.fixed))

    def __call__(self, y_true, y_pred, **kwargs):
        return self.loss(y_true, y_pred, **{**self.fixed, **kwargs})

    @signed_method
    def grad(self, y_true, y_pred, **kwargs):
        return self.loss.grad(y_true, y_pred, **{**self.fixed, **kwargs})

    @signed_method
    def value_and_grad(self, y_true, y_pred, **kwargs):
        return self.loss.value_and_grad(y_true, y_pred, **{**self.fixed, **kwargs})


class Combined(Combinable, FunctionLike):
    """A weighted sum of losses of the same ``(y_true, y_pred)``::

        loss = 0.5 * fl.mse + 0.3 * fl.mae + 0.2 * fl.smooth_l1.with_options(beta=2.0)
        v = loss(y_true, y_pred, reduction="mean", weights=None)
        g = loss.grad(y_true, y_pred, out=None)
        v, g = loss.value_and_grad(y_true, y_pred)

    ``value = sum_k c_k * loss_k(y_true, y_pred, reduction, weights, **options_k)``
    and the gradient is ``sum_k c_k * grad_k``. Every elementwise term
    (regression losses, binary classification, contrastive) runs fused in one
    pass in C++: the inputs are read once and the gradient written once. Other
    terms (dice, row-wise losses, box_iou, ...) run on their own and are
    added. ``reduction="none"`` needs every term to have per-element losses of
    the same shape. Options are fixed per term with ``loss.with_options(...)``;
    a combined loss takes no options at call time.
    """

    __slots__ = ("terms", "__dict__")
    __module__ = MODULE

    def __init__(self, terms):
        merged = []
        for c, t in terms:
            if isinstance(t, Combined):
                merged.extend((c * k, u) for k, u in t.terms)
                continue
            base, _ = _base_and_options(t)
            if getattr(base, "is_metric", False):
                raise TypeError(f"{base.name} is a metric (no gradient) and cannot be part of a "
                                "combined loss; evaluate it on its own")
            if isinstance(base, (MultiLoss, _L2Penalty)) or not hasattr(base, "value_and_grad"):
                raise TypeError(f"{getattr(base, 'name', base)!s} takes other arguments than "
                                "(y_true, y_pred) and cannot be part of a combined loss")
            merged.append((float(c), t))
        self.terms = merged

    __getattr__ = FunctionLike.qualname_fallback

    def _terms(self):
        return list(self.terms)

    @property
    def name(self):
        return repr(self)

    def __repr__(self):
        parts = []
        for i, (c, t) in enumerate(self.terms):
            label = repr(t) if isinstance(t, Configured) else t.name
            if i == 0:
                parts.append(f"{_format_coef(c)} * {label}")
            elif c < 0:
                parts.append(f"- {_format_coef(-c)} * {label}")
            else:
                parts.append(f"+ {_format_coef(c)} * {label}")
        return " ".join(parts)

    def _parameters(self, method):
        kw = inspect.Parameter.KEYWORD_ONLY
        params = [inspect.Parameter("y_true", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  inspect.Parameter("y_pred", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  inspect.Parameter("reduction", kw, default="mean"),
                  inspect.Parameter("weights", kw, default=None)]
        if method != "__call__":
            params.append(inspect.Parameter("out", kw, default=None))
        params.extend(inspect.Parameter(k, kw, default=None) for k in SEGMENT_PARAMETERS)
        return params

    def _reduce_by_value(self, protocol):
        return Combined, (list(self.terms),)

    @property
    def accumulator(self):
        """``loss.accumulator(reduction="mean")``: an exact, mergeable
        ``fastloss.Accumulator`` of this combination, when every term fuses
        (elementwise losses without array options); a TypeError otherwise."""
        from ._accumulate import CombinedAccumulatorFactory

        fused = []
        for c, t in self.terms:
            base, opts = _base_and_options(t)
            arrays = any(not np.isscalar(v) and v is not None for v in opts.values())
            if not _core.fusable(base.name) or arrays:
                raise TypeError(f"{self!r}: no accumulator: the term {base.name} does not fuse "
                                "(accumulate each term on its own)")
            fused.append((base.name, float(c), dict(opts)))
        return CombinedAccumulatorFactory(fused)

    def _run(self, y_true, y_pred, want, reduction="mean", weights=None, out=None,
             offsets=None, segment_ids=None, num_segments=None, **extra):
        segments = {k: v for k, v in (("offsets", offsets), ("segment_ids", segment_ids),
                                      ("num_segments", num_segments)) if v is not None}
        if extra:
            key = next(iter(extra))
            raise TypeError(f"combined loss got an unexpected keyword argument '{key}' "
                            "(fix options with loss.with_options(...))")
        if not isinstance(reduction, str) or reduction not in ("mean", "sum", "none"):
            raise ValueError(f"combined: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        fused, other = [], []
        for c, t in self.terms:
            base, opts = _base_and_options(t)
            arrays = any(not np.isscalar(v) and v is not None for v in opts.values())
            if _core.fusable(base.name) and not arrays:
                fused.append((base.name, c, opts))
            else:
                other.append((c, base, opts))
        if segments and other:
            # Elementwise terms segment elements, the others rows: no one meaning.
            raise TypeError(f"combined: segments need every term to fuse (elementwise losses); "
                            f"{other[0][1].name} does not")
        # The terms that run on their own run first, each into arrays of its
        # own: an error in any of them (an option, a shape) leaves out=
        # untouched, and none of them reads y_true or y_pred after out= (which
        # may be either of them) is written. The fused terms run last, into
        # out= (checked by the core before it writes), and the others'
        # gradient is added.
        values = []  # (name, c, v) of the other terms
        acc = None   # sum_k c_k * grad_k of the other terms, a new array
        for c, base, opts in other:
            kw = dict(opts, reduction=reduction, **segments)
            if weights is not None:
                kw["weights"] = weights
            if want == 0:
                v, g = base(y_true, y_pred, **kw), None
            elif want == 1:
                v, g = None, base.grad(y_true, y_pred, **kw)
            else:
                v, g = base.value_and_grad(y_true, y_pred, **kw)
            if v is not None:
                if values:
                    _same_per_element_shape(reduction, base.name, v, np.shape(values[0][2]))
                values.append((base.name, c, v))
            if g is not None:
                if acc is None:
                    acc = g  # this call's own array, scaled in place
                    acc *= g.dtype.type(c)
                else:
                    acc += g.dtype.type(c) * g
        value = None
        grad = None
        if fused:
            if values and acc is not None:
                # the fused terms' per-element losses have y_pred's shape, the gradient's
                _same_per_element_shape(reduction, values[0][0], values[0][2], acc.shape)
            r = _core._fused(fused, y_true, y_pred, reduction, weights, want, out, segments)
            if want == 0:
                value = r
            elif want == 1:
                grad = r
            else:
                value, grad = r
            if values and value is not None:
                _same_per_element_shape(reduction, values[0][0], values[0][2], np.shape(value))
        for _, c, v in values:
            value = c * v if value is None else value + c * v
        if acc is not None:
            if grad is not None:
                grad += acc
            elif out is not None:
                _check_out("combined", out, acc)
                out[...] = acc
                grad = out
            else:
                grad = acc
        if value is not None and reduction != "none":
            value = np.asarray(y_pred_dtype(y_pred, value))[()]
        if want == 0:
            return value
        if want == 1:
            return grad
        return value, grad

    def __call__(self, y_true, y_pred, **kwargs):
        if "out" in kwargs:
            raise TypeError("combined loss got an unexpected keyword argument 'out'")
        return self._run(y_true, y_pred, 0, **kwargs)

    @signed_method
    def grad(self, y_true, y_pred, **kwargs):
        return self._run(y_true, y_pred, 1, **kwargs)

    @signed_method
    def value_and_grad(self, y_true, y_pred, **kwargs):
        return self._run(y_true, y_pred, 2, **kwargs)


def _same_per_element_shape(reduction, name, v, shape):
    if reduction == "none" and np.shape(v) != tuple(shape):
        raise ValueError(
            f"combined: reduction='none' needs per-element losses of one shape; "
            f"{name} gives {np.shape(v)}, the other terms {tuple(shape)}")


def _check_out(name, out, like):
    """The core's checks of a gradient's out= (LoadOut in python/src/arguments.cc),
    with its messages, against ``like`` (an array of y_pred's shape and dtype)."""
    if not isinstance(like, np.ndarray):  # device arrays: the array library checks
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: out must be a numpy.ndarray, got {type(out).__name__}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: out must be writable")
    if out.dtype != like.dtype:
        raise ValueError(f"{name}: out must have y_pred's dtype {like.dtype.name}")
    if out.shape != like.shape:
        raise ValueError(f"{name}: out must have y_pred's shape {like.shape}, got {out.shape}")
    size = out.itemsize
    if any(s % size for s in out.strides) or out.ctypes.data % size:
        raise ValueError(f"{name}: out's strides must be multiples of its item size")


def y_pred_dtype(y_pred, value):
    """The reduced value as a scalar of y_pred's float dtype."""
    dt = getattr(y_pred, "dtype", None)
    if dt is None or dt not in (np.float32, np.float64):
        dt = np.asarray(value).dtype
    return np.asarray(value, dtype=dt)
