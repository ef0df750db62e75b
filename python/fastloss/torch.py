"""Every fastloss loss as a PyTorch operator: differentiable, compilable.

::

    import torch
    import fastloss.torch as flt

    logits = model(x)                                    # requires_grad
    loss = flt.sparse_categorical_cross_entropy(logits, labels, from_logits=True)
    loss.backward()                                      # the gradient of the fused pass
    flt.huber(pred, target, delta=2.0, reduction="sum", weights=w)
    torch.ops.fastloss.huber                             # the operator itself

**Arguments** follow PyTorch: ``(input, target)`` -- the prediction first --
then ``reduction`` (``"mean"``, ``"sum"``, ``"none"``), ``weights`` (per
element, row, region or box, broadcast as in ``fastloss``) and the loss's
options by name, with fastloss's names and defaults (``fastloss.NAME``'s
docstring). Array options (``pos_weight``, ``class_weights``) take tensors.

**How it works.** Each loss of ``fastloss.LOSSES`` is a
``torch.library.custom_op`` (``torch.ops.fastloss.NAME``) whose schema is
generated from the registry row's options. Its CPU kernel hands the
tensors' memory to the C++ core without a copy and, when ``input`` requires
a gradient, computes the value and the gradient in one pass; the gradient
is saved, and the backward multiplies it by the incoming gradient -- no
multiply at all when that is 1 (``loss.backward()`` of a reduced loss,
outside ``torch.compile``). A fake (meta) kernel gives the output shapes, so
``torch.compile(fullgraph=True)`` traces the loss as one node, and
``torch.library.opcheck`` passes.

**dtypes.** float32 and float64 run in their own type. float16 and bfloat16
tensors are computed in float32 (the inputs converted once) and the value
and gradient returned in the input's dtype. Labels are integer tensors.

**Gradients** flow to ``input`` only: ``target``, ``weights`` and array
options are constants (their ``grad`` stays None). Second derivatives are
not available (a RuntimeError under ``create_graph=True``).

**Losses of several inputs** (``gaussian_nll``, ``triplet_margin``,
``cosine_embedding``, ``margin_ranking``, ``contrastive_pairs``, the GAN and
Wasserstein losses, ``gradient_penalty``) take their tensors in
``fastloss.NAME``'s order, PyTorch's where PyTorch has the loss; every
differentiable input gets its gradient. Elementwise ones broadcast their
inputs as PyTorch does (``var`` of shape (N, 1)).

**Devices.** CPU tensors. CUDA tensors raise PyTorch's NotImplementedError
for the operator (the CUDA kernels of ``fastloss.cuda`` take CUDA arrays
directly). Segments (``offsets=``) are for the NumPy calls.
"""

from __future__ import annotations

import torch

from . import _core
from ._layout import _adapter_multi_names, _check_call, _layout

__all__ = ["LOSSES", "Loss"]

# Registry option types -> the operator schema's argument types. An option
# that is a float or an array (pos_weight) takes two arguments: the float,
# and ``NAME_array`` (a tensor, or None).
_SCHEMA_TYPES = {
    "float": "float",
    "bool": "bool",
    "int": "int",
    "str": "str",
    "float or None": "float?",
    "int or None": "int?",
    "array_like or None": "Tensor?",
    "None, int or tuple of ints": "int[]?",
    "float or array_like": "float",
}


class _Spec:
    """One loss's operator: its registry row, schema and argument order."""

    def __init__(self, name):
        self.name = name
        self.info = _core.loss_info(name)
        self.options = []  # (name, schema type, default)
        args = []
        for o in self.info["options"]:
            kind = str(o["type"])
            if kind not in _SCHEMA_TYPES:
                raise TypeError(f"fastloss.torch: {name}: option {o['name']} of type {kind!r} "
                                "has no operator argument type")
            self.options.append((o["name"], kind, o["default"]))
            args.append(f"{_SCHEMA_TYPES[kind]} {o['name']}")
            if kind == "float or array_like":
                args.append(f"Tensor? {o['name']}_array")
        self.n_args = len(args)  # the operator's option arguments
        self.schema = ("(Tensor input, Tensor target, Tensor? weights, "
                       + "".join(a + ", " for a in args)
                       + "str reduction, bool need_grad) -> (Tensor, Tensor)")
        self.whole_axes = self._whole_axes  # the axes a per-item loss reduces

    def _whole_axes(self, nd, options):
        return _layout(self.info, options, nd, strict=False).whole

    def arguments(self, options):
        """The operator's option arguments, in schema order, from the
        caller's options (defaults filled in; unknown names a TypeError)."""
        given = dict(options)
        out = []
        for name, kind, default in self.options:
            v = given.pop(name, default)
            if kind == "float or array_like":
                if isinstance(v, torch.Tensor) or isinstance(v, (list, tuple)) or (
                        hasattr(v, "shape") and getattr(v, "ndim", 0) > 0):
                    out += [default, torch.as_tensor(v)]
                else:
                    out += [v, None]
            elif kind == "array_like or None":
                out.append(None if v is None else torch.as_tensor(v))
            elif kind == "None, int or tuple of ints":
                out.append(None if v is None else [int(v)] if isinstance(v, int) else
                           [int(a) for a in v])
            else:
                out.append(v)
        if given:
            bad = next(iter(given))
            raise TypeError(f"fastloss.torch.{self.name}() got an unexpected keyword argument "
                            f"{bad!r}")
        return out

    def core_options(self, values, host=True):
        """fastloss's keyword options from the operator's option arguments
        (tensors as NumPy arrays -- left as tensors with ``host=False``, for
        the shape rules under tracing -- and int lists as tuples)."""
        convert = _host if host else (lambda t: t)
        out = {}
        k = 0
        for name, kind, _ in self.options:
            v = values[k]
            k += 1
            if kind == "float or array_like":
                array = values[k]
                k += 1
                if array is not None:
                    v = convert(array)
            elif kind == "array_like or None":
                v = None if v is None else convert(v)
            elif kind == "None, int or tuple of ints":
                v = None if v is None else tuple(v)
            out[name] = v
        return out


def _host(t, dtype=None):
    """A CPU tensor's memory as a NumPy array, without a copy; float16 and
    bfloat16 (which NumPy lacks or the core does not take) as float32."""
    if t.requires_grad:
        t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if t.is_conj() or t.is_neg():  # lazy conjugate / negative views
        t = t.resolve_conj().resolve_neg()
    return t.numpy()


def _register(spec):
    import numpy as np

    import fastloss

    loss = getattr(fastloss, spec.name)
    n_opts = spec.n_args

    def impl(input, target, weights, *rest):
        values, (reduction, need_grad) = rest[:n_opts], rest[n_opts:]
        options = spec.core_options(values)
        work = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else None
        x = _host(input)
        t = _host(target) if not target.is_floating_point() else _host(target, input.dtype
                                                                       if work is None else work)
        w = None if weights is None else _host(weights, input.dtype if work is None else work)
        if need_grad:
            v, g = loss.value_and_grad(t, x, reduction=reduction, weights=w, **options)
            grad = torch.from_numpy(np.ascontiguousarray(g)).to(input.dtype)
        else:
            v = loss(t, x, reduction=reduction, weights=w, **options)
            grad = input.new_empty((0,))
        value = torch.from_numpy(np.asarray(v)).to(input.dtype)
        return value, grad

    op = torch.library.custom_op(f"fastloss::{spec.name}", impl, mutates_args=(),
                                 device_types="cpu", schema=spec.schema)

    def fake(input, target, weights, *rest):
        values, (reduction, need_grad) = rest[:n_opts], rest[n_opts:]
        if reduction == "none":
            options = spec.core_options(values, host=False)
            whole = spec.whole_axes(input.dim(), options)
            shape = [d for a, d in enumerate(input.shape) if a not in whole]
        else:
            shape = []
        grad = input.new_empty(input.shape) if need_grad else input.new_empty((0,))
        return input.new_empty(shape), grad

    op.register_fake(fake)

    def setup_context(ctx, inputs, output):
        input, rest = inputs[0], inputs[3:]
        values, reduction = rest[:n_opts], rest[n_opts]
        ctx.reduction = reduction
        ctx.whole = (spec.whole_axes(input.dim(), spec.core_options(values, host=False))
                     if reduction == "none" else ())
        ctx.mark_non_differentiable(output[1])
        # No zeros made for the gradient output's incoming gradient (it has
        # none): materialising them cost a pass over input's size.
        ctx.set_materialize_grads(False)
        # Saved: released (without retain_graph) before the leaf's gradient
        # is accumulated, so .grad takes this buffer itself, not a copy.
        ctx.save_for_backward(output[1])

    def backward(ctx, grad_value, _grad_grad):
        (g,) = ctx.saved_tensors
        # Eager: plain tensors (traced ones are FakeTensor / functional subclasses).
        eager = type(grad_value) is torch.Tensor and not torch.compiler.is_compiling()
        if eager and torch.is_grad_enabled():
            raise RuntimeError(f"fastloss.torch.{spec.name}: second derivatives are not "
                               "available (create_graph=True)")
        if grad_value is None:
            return (None,) * (n_opts + 5)
        if g.numel() == 0:
            raise RuntimeError(f"fastloss.torch.{spec.name}: the forward ran without a gradient "
                               "(input did not require one)")
        if ctx.reduction == "none":
            s = grad_value
            for a in ctx.whole:
                s = s.unsqueeze(a)
            gin = g * s
        elif eager and grad_value.device.type == "cpu" and grad_value.item() == 1.0:
            gin = g  # loss.backward(): the saved gradient as it is
        else:
            gin = g * grad_value
        return (gin, None, None) + (None,) * (n_opts + 2)

    return _with_autograd(op, impl, setup_context, backward)


def _with_autograd(op, impl, setup_context, backward):
    """Registers the operator's autograd; returns it and an
    autograd.Function of the same kernel, context and backward without the
    operator's dispatch (tens of microseconds a call), which eager calls
    take."""
    op.register_autograd(backward, setup_context=setup_context)
    backward_fn = backward  # (a class body reads its own `backward` first)

    class Eager(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *inputs):  # ctx first: apply binds no signature per call
            output = impl(*inputs)
            setup_context(ctx, inputs, output)
            return output

        backward = staticmethod(backward_fn)
        kernel = staticmethod(impl)  # without autograd (no gradient to give)

    return op, Eager


def _function(spec, op, eager):
    name = spec.name

    def call(input, target, *, reduction="mean", weights=None, **options):
        _check_call("fastloss.torch", name, reduction)
        if not isinstance(input, torch.Tensor) or not isinstance(target, torch.Tensor):
            raise TypeError(f"fastloss.torch.{name}: input and target must be tensors, got "
                            f"{type(input).__name__} and {type(target).__name__}")
        if weights is not None and not isinstance(weights, torch.Tensor):
            weights = torch.as_tensor(weights)
        need_grad = input.requires_grad and torch.is_grad_enabled()
        args = (input, target, weights, *spec.arguments(options), reduction, need_grad)
        # Traced (torch.compile): the operator, one graph node; eager: the
        # autograd.Function of the same kernel, or without a gradient to
        # give the kernel alone (no autograd node to make).
        if torch.compiler.is_compiling():
            return op(*args)[0]
        if not need_grad:
            return eager.kernel(*args)[0]
        return eager.apply(*args)[0]

    call.__name__ = call.__qualname__ = name
    call.__module__ = __name__
    pred, true = spec.info.get("pred_name", "y_pred"), spec.info.get("true_name", "y_true")
    call.__doc__ = (
        f"{spec.info['summary']}\n\n"
        f"``fastloss.torch.{name}(input, target, *, reduction='mean', weights=None, "
        f"**options)``: ``input`` is fastloss's ``{pred}`` (differentiable), ``target`` its "
        f"``{true}``. Options and formula: ``fastloss.{name}``. Returns a tensor of "
        f"``input``'s dtype (0-d for 'mean' and 'sum'); backward gives ``input`` the "
        f"gradient of the same fused pass. The operator: ``torch.ops.fastloss.{name}``.")
    return call


#: name -> the differentiable function: every loss of ``fastloss.LOSSES`` and
#: of ``fastloss.OTHER_LOSSES`` but pairwise_ranking and l2_penalty.
LOSSES = {}
_OPS = {}
_SPECS = {}
for _name in _core.loss_names():
    _info = _core.loss_info(_name)
    if _info["metric"]:
        continue
    _spec = _SPECS[_name] = _Spec(_name)
    _OPS[_name], _eager = _register(_spec)
    LOSSES[_name] = _function(_spec, _OPS[_name], _eager)
    globals()[_name] = LOSSES[_name]
    __all__.append(_name)
    for _alias in _info["aliases"]:
        globals()[_alias] = LOSSES[_name]
        __all__.append(_alias)
del _name, _info, _spec, _eager


# ---------------------------------------------------------------------------
# Losses of several inputs (fastloss.OTHER_LOSSES): gaussian_nll,
# triplet_margin, cosine_embedding, margin_ranking, contrastive_pairs, the
# GAN and Wasserstein losses, gradient_penalty.

_MULTI_NONE_SHAPES = {  # the per-item losses' shape, from the first input's
    "elements": lambda shape: list(shape),
    "scores": lambda shape: list(shape),
    "rows": lambda shape: list(shape[:-1]),
    "samples": lambda shape: list(shape[:1]),
}
_MULTI_OPTION_TYPES = {bool: "bool", float: "float", int: "int", str: "str"}


class _MultiSpec:
    """A loss of several inputs: its arguments in the NumPy call's order
    (each a tensor: the differentiable inputs and the target), options typed
    by their defaults, and how many gradients it returns."""

    def __init__(self, name):
        import inspect

        import fastloss

        self.name = name
        self.loss = getattr(fastloss, name)
        self.kind = _core.loss_kind(name)
        sig = inspect.signature(self.loss)
        self.positional = [p.name for p in sig.parameters.values()
                           if p.kind == p.POSITIONAL_OR_KEYWORD]
        self.inputs = tuple(self.loss._inputs)
        self.options = [(k, _MULTI_OPTION_TYPES[type(v)], v) for k, v in self.loss._options.items()]
        self.n_args = len(self.options)
        self.schema = ("(" + "".join(f"Tensor {a}, " for a in self.positional)
                       + "Tensor? weights, " + "".join(f"{t} {k}, " for k, t, _ in self.options)
                       + "str reduction, bool need_grad) -> ("
                       + ", ".join(["Tensor"] * (1 + len(self.inputs))) + ")")

    def arguments(self, options):
        given = dict(options)
        out = [given.pop(k, default) for k, _, default in self.options]
        if given:
            raise TypeError(f"fastloss.torch.{self.name}() got an unexpected keyword argument "
                            f"{next(iter(given))!r}")
        return out


def _register_multi(spec):
    import numpy as np

    n_pos, n_opts = len(spec.positional), spec.n_args
    where = [spec.positional.index(a) for a in spec.inputs]  # the inputs' argument slots

    def run(arrays, weights, values, reduction, need_grad, like):
        work = torch.float32 if like.dtype in (torch.float16, torch.bfloat16) else like.dtype
        xs = [_host(a, work) if a.is_floating_point() else _host(a) for a in arrays]
        w = None if weights is None else _host(weights, work)
        options = {k: v for (k, _, _), v in zip(spec.options, values)}
        if need_grad:
            v, g = spec.loss.value_and_grad(*xs, reduction=reduction, weights=w, **options)
            g = g if isinstance(g, tuple) else (g,)
            grads = [torch.from_numpy(np.ascontiguousarray(gk)).to(arrays[i].dtype)
                     for gk, i in zip(g, where)]
        else:
            v = spec.loss(*xs, reduction=reduction, weights=w, **options)
            grads = [like.new_empty((0,)) for _ in where]
        return torch.from_numpy(np.asarray(v)).to(like.dtype), grads

    def impl(*args):
        arrays, weights = args[:n_pos], args[n_pos]
        values, (reduction, need_grad) = args[n_pos + 1:n_pos + 1 + n_opts], args[-2:]
        value, grads = run(arrays, weights, values, reduction, need_grad, arrays[where[0]])
        return (value, *grads)

    op = torch.library.custom_op(f"fastloss::{spec.name}", impl, mutates_args=(),
                                 device_types="cpu", schema=spec.schema)

    def fake(*args):
        arrays, (reduction, need_grad) = args[:n_pos], args[-2:]
        first = arrays[where[0]]
        shape = _MULTI_NONE_SHAPES[spec.kind](first.shape) if reduction == "none" else []
        grads = [arrays[i].new_empty(arrays[i].shape) if need_grad else first.new_empty((0,))
                 for i in where]
        return (first.new_empty(shape), *grads)

    op.register_fake(fake)

    def setup_context(ctx, inputs, output):
        ctx.reduction = inputs[-2]
        ctx.mark_non_differentiable(*output[1:])
        ctx.set_materialize_grads(False)
        if ctx.reduction == "none":
            # the gradient of sum(go * l): the call again, go among the weights
            ctx.args = inputs
            ctx.save_for_backward(*inputs[:n_pos], inputs[n_pos])
        else:
            ctx.save_for_backward(*output[1:])

    def backward(ctx, grad_value, *_unused):
        eager = type(grad_value) is torch.Tensor and not torch.compiler.is_compiling()
        if eager and torch.is_grad_enabled():
            raise RuntimeError(f"fastloss.torch.{spec.name}: second derivatives are not "
                               "available (create_graph=True)")
        out = [None] * (n_pos + 1 + n_opts + 2)
        if grad_value is None:
            return tuple(out)
        if ctx.reduction == "none":
            saved = ctx.saved_tensors
            arrays, weights = saved[:n_pos], saved[n_pos]
            w = grad_value if weights is None else weights * grad_value
            values = ctx.args[n_pos + 1:n_pos + 1 + n_opts]
            # the operator itself: a node of a traced backward too
            grads = op(*arrays, w, *values, "sum", True)[1:]
        else:
            grads = ctx.saved_tensors
            if grads[0].numel() == 0 and arrays_need(ctx):
                raise RuntimeError(f"fastloss.torch.{spec.name}: the forward ran without "
                                   "gradients")
            if not (eager and grad_value.item() == 1.0):
                grads = [g * grad_value for g in grads]
        for i, g in zip(where, grads):
            out[i] = g
        return tuple(out)

    def arrays_need(ctx):
        return any(ctx.needs_input_grad[i] for i in where)

    return _with_autograd(op, impl, setup_context, backward)


def _multi_function(spec, op, eager):
    name = spec.name

    def call(*arrays, reduction="mean", weights=None, **options):
        _check_call("fastloss.torch", name, reduction, arg_names=spec.positional,
                    given=len(arrays), noun="tensors", none_ok=spec.kind in _MULTI_NONE_SHAPES)
        for a, x in zip(spec.positional, arrays):
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"fastloss.torch.{name}: {a} must be a tensor, got "
                                f"{type(x).__name__}")
        if weights is not None and not isinstance(weights, torch.Tensor):
            weights = torch.as_tensor(weights)
        if spec.kind == "elements":
            # Broadcast as PyTorch does (a var of shape (N, 1)): autograd's
            # expand sums each gradient back to its input's shape.
            arrays = torch.broadcast_tensors(*arrays)
        need_grad = torch.is_grad_enabled() and any(
            arrays[spec.positional.index(a)].requires_grad for a in spec.inputs)
        args = (*arrays, weights, *spec.arguments(options), reduction, need_grad)
        out = op(*args) if torch.compiler.is_compiling() else eager.apply(*args)
        return out[0]

    call.__name__ = call.__qualname__ = name
    call.__module__ = __name__
    call.__doc__ = (
        f"{spec.loss.__doc__.splitlines()[0]}\n\n"
        f"``fastloss.torch.{name}({', '.join(spec.positional)}, *, reduction='mean', "
        f"weights=None, **options)``: tensors in ``fastloss.{name}``'s order; gradients flow "
        f"to {', '.join(spec.inputs)}. Options: ``fastloss.{name}``. The operator: "
        f"``torch.ops.fastloss.{name}``.")
    return call


for _name in _adapter_multi_names():
    _spec = _SPECS[_name] = _MultiSpec(_name)
    _OPS[_name], _eager = _register_multi(_spec)
    LOSSES[_name] = _multi_function(_spec, _OPS[_name], _eager)
    globals()[_name] = LOSSES[_name]
    __all__.append(_name)
del _name, _spec, _eager


class Loss(torch.nn.Module):
    """A fastloss loss as an ``nn.Module``: ``Loss("huber", delta=2.0)``,
    called as ``module(input, target, weights=None)``."""

    def __init__(self, name, reduction="mean", **options):
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"fastloss.torch.Loss: unknown loss {name!r}")
        self.name = name
        self.reduction = reduction
        self.options = dict(options)
        _SPECS[name].arguments(self.options)  # unknown options fail here

    def forward(self, input, target, weights=None):
        return LOSSES[self.name](input, target, reduction=self.reduction, weights=weights,
                                 **self.options)

    def extra_repr(self):
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{self.name!r}, reduction={self.reduction!r}{opts}"

