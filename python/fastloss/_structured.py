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
from ._function import MODULE, FunctionLike, signed_method

_REDUCTION_DOC = """reduction : {{"mean", "sum", "none"}}, default "mean"
    Over the {over}: ``"mean"`` is ``sum(w * l) / sum(w)`` (the plain mean
    without weights), ``"sum"`` is ``sum(w * l)``, ``"none"`` returns ``w * l``.
weights : array_like, optional
    Broadcastable to the {over}' shape."""


def _is_device_array(obj):
    """fastloss._core's test for an array in CUDA device memory (IsDeviceArray
    in python/src/single.cc): it exports ``__cuda_array_interface__``, or
    DLPack on a CUDA device (kDLCUDA 2, kDLCUDAManaged 13). NumPy arrays,
    numbers, lists and tuples answer no at once; an attribute that raises
    counts as absent, as in C."""
    if obj is None or isinstance(obj, (np.ndarray, float, int, list, tuple)):
        return False
    try:
        obj.__cuda_array_interface__
    except Exception:  # noqa: BLE001 - absent, or refused (a torch tensor that requires grad)
        pass
    else:
        return True
    try:
        return int(obj.__dlpack_device__()[0]) in (2, 13)
    except Exception:  # noqa: BLE001 - no DLPack, or a failing producer: the CPU path
        return False


class MultiLoss(FunctionLike):
    # A loss of several inputs. ``.grad`` and ``.value_and_grad`` return one
    # gradient per differentiable input (a tuple in argument order), or a
    # single array when there is one. Each instance carries its own __doc__.

    def __init__(self, name, args, inputs, target, options, doc, weights=True):
        self.name = name
        self._args = tuple(args)          # positional argument names
        self._inputs = tuple(inputs)      # the differentiable ones, in order
        self._target = target             # the other one, or None
        self._options = dict(options)     # keyword options and defaults
        self._out = len(inputs) == 1
        self._weights = weights
        self.__doc__ = doc
        self.__module__ = MODULE
        self._set_function_attrs()

    @property
    def options(self):
        return dict(self._options)

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
        return params

    def _bind(self, args, kwargs, want):
        if len(args) > len(self._args):
            raise TypeError(f"{self.name}() takes {len(self._args)} positional arguments "
                            f"({', '.join(self._args)}) but {len(args)} were given")
        bound = dict(zip(self._args, args))
        reduction = "mean"
        weights = None
        out = None
        stream = None
        options = {}
        for key, value in kwargs.items():
            if key in self._args:
                if key in bound:
                    raise TypeError(f"{self.name}() got multiple values for argument '{key}'")
                bound[key] = value
            elif key == "reduction":
                if not isinstance(value, str):
                    raise ValueError(f"{self.name}: reduction must be 'mean', 'sum' or 'none', "
                                     f"got {value!r}")
                reduction = value
            elif key == "weights" and self._weights:
                weights = value
            elif key == "out" and self._out and want != 0:
                out = value
            elif key == "stream":  # device arrays only (below)
                stream = value
            elif key in self._options:
                options[key] = value
            else:
                raise TypeError(f"{self.name}() got an unexpected keyword argument '{key}'")
        for a in self._args:
            if a not in bound:
                raise TypeError(f"{self.name}() missing required argument '{a}'")
        inputs = [bound[a] for a in self._inputs]
        target = bound[self._target] if self._target else None
        if any(_is_device_array(x) for x in inputs) or _is_device_array(target):
            from . import cuda

            return cuda._dispatch_multi(self.name, want, inputs, list(self._inputs), target, self._target,
                                        weights, reduction, options, out, stream)
        if stream is not None:
            raise TypeError(f"{self.name}() got an unexpected keyword argument 'stream'")
        return _core._multi(self.name, want, inputs, list(self._inputs), target, self._target,
                            weights, reduction, options, out)

    def __call__(self, *args, **kwargs):
        return self._bind(args, kwargs, 0)

    @signed_method
    def grad(self, *args, **kwargs):
        return self._bind(args, kwargs, 1)

    @signed_method
    def value_and_grad(self, *args, **kwargs):
        return self._bind(args, kwargs, 2)


def _doc(signature, summary, formula, options, over, returns, notes=""):
    text = (f"{summary}\n\nCall forms::\n\n    value = {signature}\n"
            f"    grads = {signature.split('(')[0]}.grad(...)\n"
            f"    value, grads = {signature.split('(')[0]}.value_and_grad(...)\n\n"
            f"{formula}\n\nParameters\n----------\n{options}\n"
            + _REDUCTION_DOC.format(over=over) + f"\n\nReturns\n-------\n{returns}\n")
    if notes:
        text += f"\nNotes\n-----\n{notes}\n"
    return text


_ROWS = "rows (the inputs' shape without the last axis)"
_TWO = ("The value (a NumPy scalar of the first input's dtype, an array for "
        "``'none'``); ``.grad`` returns ``(g1, g2)``, the gradients of the reduced value with "
        "respect to the two inputs, in their shapes and dtype.")

cosine_embedding = MultiLoss(
    "cosine_embedding", ("x1", "x2", "y"), ("x1", "x2"), "y", {"margin": 0.0},
    _doc("cosine_embedding(x1, x2, y, *, margin=0.0, reduction='mean', weights=None)",
         "PyTorch's ``cosine_embedding_loss``.",
         "Rows along the last axis of ``x1`` and ``x2`` (``(N, D)`` or ``(D,)``); ``y`` of the "
         "rows' shape, each exactly 1 or -1 (anything else: ValueError). With "
         "``cos = sum(x1 x2) / sqrt((sum x1**2 + 1e-12) (sum x2**2 + 1e-12))``: "
         "``l = 1 - cos`` where ``y = 1``, ``max(0, cos - margin)`` where ``y = -1``.",
         "x1, x2 : array_like of float32 or float64 (same shape)\ny : array_like\n"
         "margin : float, default 0.0\n    In [-1, 1].", _ROWS, _TWO))

triplet_margin = MultiLoss(
    "triplet_margin", ("anchor", "positive", "negative"), ("anchor", "positive", "negative"),
    None, {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, "squared": False},
    _doc("triplet_margin(anchor, positive, negative, *, margin=1.0, p=2.0, eps=1e-6, "
         "swap=False, squared=False, reduction='mean', weights=None)",
         "PyTorch's ``triplet_margin_loss``.",
         "Rows along the last axis; ``d(a, b) = ||a - b + eps||_p``; "
         "``l = max(0, d(anchor, positive) - d(anchor, negative) + margin)``. ``swap`` uses "
         "``min(d(anchor, negative), d(positive, negative))`` (the distance swap of Balntas "
         "et al.). ``squared=True`` uses the squared Euclidean distance ``sum((a - b)**2)`` "
         "(no eps), the form tutorials write; it needs ``p = 2``.",
         "anchor, positive, negative : array_like of float32 or float64 (same shape)\n"
         "margin : float, default 1.0\n    >= 0.\np : float, default 2.0\n    > 0; 1 and 2 are "
         "exact fast paths.\neps : float, default 1e-6\n    >= 0.\nswap : bool, default False\n"
         "squared : bool, default False", _ROWS,
         "The value; ``.grad`` returns ``(g_anchor, g_positive, g_negative)``.",
         "At a hinge exactly at 0 the gradient is 0; where ``d = 0`` exactly the distance has "
         "no derivative and contributes 0."))

contrastive_pairs = MultiLoss(
    "contrastive_pairs", ("y_true", "x1", "x2"), ("x1", "x2"), "y_true",
    {"margin": 1.0, "eps": 1e-6},
    _doc("contrastive_pairs(y_true, x1, x2, *, margin=1.0, eps=1e-6, reduction='mean', "
         "weights=None)",
         "Contrastive loss of embedding pairs.",
         "``d = ||x1 - x2 + eps||_2`` per row (last axis), then ``fastloss.contrastive``: "
         "``l = y d**2 + (1 - y) max(0, margin - d)**2``, ``y`` (the rows' shape) in [0, 1].",
         "y_true : array_like\n    1 for similar pairs, 0 for dissimilar ones; in [0, 1].\n"
         "x1, x2 : array_like of float32 or float64 (same shape)\nmargin : float, default 1.0\n"
         "    >= 0.\neps : float, default 1e-6\n    >= 0 (PyTorch's pairwise_distance).",
         _ROWS, _TWO))

margin_ranking = MultiLoss(
    "margin_ranking", ("x1", "x2", "y"), ("x1", "x2"), "y", {"margin": 0.0},
    _doc("margin_ranking(x1, x2, y, *, margin=0.0, reduction='mean', weights=None)",
         "PyTorch's ``margin_ranking_loss``.",
         "Elementwise, all three of one shape: ``l = max(0, -y (x1 - x2) + margin)``; "
         "``dl/dx1 = -y`` where ``l > 0``, ``dl/dx2 = -dl/dx1``.",
         "x1, x2 : array_like of float32 or float64\ny : array_like\n    1 where x1 should "
         "rank higher, -1 where x2 should.\nmargin : float, default 0.0\n    >= 0.",
         "elements", _TWO))

pairwise_ranking = MultiLoss(
    "pairwise_ranking", ("relevance", "scores"), ("scores",), "relevance",
    {"margin": 1.0, "groups": None, "normalization": "all_pairs"},
    _doc("pairwise_ranking(relevance, scores, *, margin=1.0, groups=None, "
         "normalization='all_pairs', reduction='mean')",
         "Pairwise hinge ranking loss (RankSVM / RankNet-style), in O(n log n).",
         "For every pair with ``relevance_i > relevance_j`` (within the same group when "
         "``groups`` is given): ``max(0, margin - (s_i - s_j))``. Computed by sorting and a "
         "Fenwick tree, never pair by pair: n = 1e6 takes a fraction of a second. A pair "
         "exactly at the hinge contributes 0 and no gradient.",
         "relevance : array_like\n    Graded relevance (any shape, taken flat).\n"
         "scores : array_like of float32 or float64\n    The model's scores, relevance's shape.\n"
         "margin : float, default 1.0\n    >= 0.\ngroups : array_like of int, optional\n"
         "    Query ids of relevance's shape: pairs are formed within a group only.\n"
         "normalization : {'all_pairs', 'ordered_pairs'}, default 'all_pairs'\n"
         "    ``'mean'`` divides by the number of unordered pairs ``n (n - 1) / 2`` (summed over "
         "groups), or by the number of pairs with different relevance.",
         "pairs (only 'mean' and 'sum'; 'none' is a ValueError, and there are no weights)",
         "The value; ``.grad`` returns the gradient with respect to ``scores``."),
    weights=False)

gan_discriminator = MultiLoss(
    "gan_discriminator", ("real_logits", "fake_logits"), ("real_logits", "fake_logits"), None, {},
    _doc("gan_discriminator(real_logits, fake_logits, *, reduction='mean', weights=None)",
         "The standard GAN discriminator loss: BCE of real logits against 1 and of fake ones "
         "against 0.",
         "``l = R(softplus(-real)) + R(softplus(fake))``, the reduction ``R`` applied to each "
         "array on its own (they may have different shapes). ``weights`` is None or a pair "
         "``(w_real, w_fake)`` (either may be None), each broadcast to its array. "
         "``'none'`` returns the pair of per-element loss arrays.",
         "real_logits, fake_logits : array_like of float32 or float64", "elements",
         "The value; ``.grad`` returns ``(g_real, g_fake)``."))

gan_generator = MultiLoss(
    "gan_generator", ("fake_logits",), ("fake_logits",), None, {"saturating": False},
    _doc("gan_generator(fake_logits, *, saturating=False, reduction='mean', weights=None)",
         "GAN generator loss.",
         "Non-saturating (default): ``l = softplus(-x) = -log sigmoid(x)``; "
         "``saturating=True``: ``l = log(1 - sigmoid(x)) = -softplus(x)`` (the original "
         "minimax form).",
         "fake_logits : array_like of float32 or float64\nsaturating : bool, default False",
         "elements", "The value; ``.grad`` the gradient array (``out=`` accepted)."))

wasserstein_critic = MultiLoss(
    "wasserstein_critic", ("real_scores", "fake_scores"), ("real_scores", "fake_scores"), None, {},
    _doc("wasserstein_critic(real_scores, fake_scores, *, reduction='mean', weights=None)",
         "WGAN critic loss.", "``l = R(fake) - R(real)``; per-element losses ``-real`` and "
         "``fake``; ``weights`` as for gan_discriminator.",
         "real_scores, fake_scores : array_like of float32 or float64", "elements",
         "The value; ``.grad`` returns ``(g_real, g_fake)``."))

wasserstein_generator = MultiLoss(
    "wasserstein_generator", ("fake_scores",), ("fake_scores",), None, {},
    _doc("wasserstein_generator(fake_scores, *, reduction='mean', weights=None)",
         "WGAN generator loss.", "``l = -R(fake)``.",
         "fake_scores : array_like of float32 or float64", "elements",
         "The value; ``.grad`` the gradient array (``out=`` accepted)."))

gradient_penalty = MultiLoss(
    "gradient_penalty", ("gradients",), ("gradients",), None, {"target": 1.0},
    _doc("gradient_penalty(gradients, *, target=1.0, reduction='mean', weights=None)",
         "WGAN-GP gradient penalty on given per-sample gradients.",
         "Rows are samples (axis 0), the other axes flattened: "
         "``l_i = (||g_i||_2 - target)**2``. The gradient with respect to ``gradients`` "
         "(what the double-backward step needs) is ``2 (||g_i|| - target) g_i / ||g_i||``, "
         "and 0 where ``g_i = 0``.",
         "gradients : array_like of float32 or float64, at least 1-D\ntarget : float, default 1.0",
         "samples (N,)", "The value; ``.grad`` the gradient array (``out=`` accepted)."))


class _L2Penalty(FunctionLike):
    """L2 penalty of a list of arrays.

    Call forms::

        value = l2_penalty(arrays, lam)
        grads = l2_penalty.grad(arrays, lam)                  # a list
        value, grads = l2_penalty.value_and_grad(arrays, lam)

    ``value = lam * sum_k sum(w_k**2)`` as a numpy.float64 (accumulated in
    float64); the gradients ``2 * lam * w_k``, each in its array's dtype
    (float32 or float64; other dtypes are a TypeError). ``arrays`` is one array
    or a list/tuple of arrays of any shapes; ``lam >= 0``.
    """

    name = "l2_penalty"

    def __init__(self):
        self.__module__ = MODULE
        self._set_function_attrs()

    def __repr__(self):
        return "<fastloss.l2_penalty>"

    def _parameters(self, method):
        pos = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return [inspect.Parameter("arrays", pos), inspect.Parameter("lam", pos)]

    @staticmethod
    def _arrays(arrays):
        if isinstance(arrays, (list, tuple)):
            return list(arrays)
        return [arrays]

    @staticmethod
    def _lam(lam):
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real):
            raise TypeError(f"l2_penalty: lam must be a real number, got {type(lam).__name__}")
        lam = float(lam)
        if not (lam >= 0) or lam == float("inf"):
            raise ValueError(f"l2_penalty: lam must be a finite number >= 0, got {lam}")
        return lam

    def __call__(self, arrays, lam):
        return _core._l2(self._arrays(arrays), self._lam(lam), 0)

    def grad(self, arrays, lam):
        return _core._l2(self._arrays(arrays), self._lam(lam), 1)

    def value_and_grad(self, arrays, lam):
        return _core._l2(self._arrays(arrays), self._lam(lam), 2)


l2_penalty = _L2Penalty()

MULTI = {
    m.name: m
    for m in (cosine_embedding, triplet_margin, contrastive_pairs, margin_ranking,
              pairwise_ranking, gan_discriminator, gan_generator, wasserstein_critic,
              wasserstein_generator, gradient_penalty)
}


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
        return params

    def _reduce_by_value(self, protocol):
        return Combined, (list(self.terms),)

    def _run(self, y_true, y_pred, want, reduction="mean", weights=None, out=None, **extra):
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
        # The terms that run on their own run first, each into arrays of its
        # own: an error in any of them (an option, a shape) leaves out=
        # untouched, and none of them reads y_true or y_pred after out= (which
        # may be either of them) is written. The fused terms run last, into
        # out= (checked by the core before it writes), and the others'
        # gradient is added.
        values = []  # (name, c, v) of the other terms
        acc = None   # sum_k c_k * grad_k of the other terms, a new array
        for c, base, opts in other:
            kw = dict(opts, reduction=reduction)
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
            r = _core._fused(fused, y_true, y_pred, reduction, weights, want, out)
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
