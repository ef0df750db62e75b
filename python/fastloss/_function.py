"""Loss objects that behave like functions.

``FunctionLike`` is the mixin of every loss object of the package
(``fastloss.Loss`` and the classes of ``fastloss._structured``): the
attributes of a function (``__name__``, ``__qualname__``, ``__module__``), a
real ``inspect.signature`` (the loss's own parameters and options with their
defaults), pickling and copying. A loss bound to its name in the ``fastloss``
namespace (``fl.mse``, ``fl.triplet_margin``) pickles and copies by reference:
it unpickles to the very same object, in any process that imports fastloss.
Others (``Configured``, ``Combined``) pickle by value, their terms by
reference.

``new_core_loss`` is ``fastloss.Loss.__new__``: the C++ object is initialised
when it is made, so that no loss without a registered name exists (the
methods of an uninitialised one would read a null pointer in C++);
``guard_subclass_new`` (``Loss.__init_subclass__``) holds a subclass's own
``__new__`` to the same rule.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys

from . import _core

MODULE = "fastloss"

_KW = inspect.Parameter.KEYWORD_ONLY
_POS = inspect.Parameter.POSITIONAL_OR_KEYWORD


class _ForInstances:
    """A class attribute computed from each instance and absent on the class
    itself (so that ``inspect.signature(type(loss))`` and ``help`` see the
    class, not a descriptor). Instance attributes of the same name win."""

    __slots__ = ("_get", "_name")

    def __init__(self, get):
        self._get = get
        self._name = get.__name__

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError(self._name)
        return self._get(obj)


def _registered(obj):
    """The name under which ``obj`` itself is reachable as ``fastloss.NAME``
    (its ``__name__``), or None."""
    module = sys.modules.get(MODULE)
    name = obj.__name__
    if module is not None and isinstance(name, str) and getattr(module, name, None) is obj:
        return name
    return None


class _LazySignature:
    """The ``__wrapped__`` of a loss's bound method: ``inspect.signature``
    unwraps to it and reads the loss's own signature, made on demand."""

    __slots__ = ("_loss", "_method")

    def __init__(self, loss, method):
        self._loss = loss
        self._method = method

    @property
    def __signature__(self):
        return self._loss._signature(self._method)


class signed_method:  # noqa: N801 - a decorator, like ``property``
    """A method of a loss object whose bound form carries the loss's own
    signature (``inspect.signature(loss.grad)``; a plain bound method has its
    class's function's, ``(*args, **kwargs)``).

    The bound form is a ``functools.partial`` of the function and the loss (as
    fast to call as a bound method), made on first access and kept in the
    instance's ``__dict__``, which it then shadows. The loss then refers to
    itself: one dropped after such an access is freed by the cyclic garbage
    collector, not at once.
    """

    def __init__(self, func):
        self.func = func
        functools.update_wrapper(self, func)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.func
        name = self.func.__name__
        bound = functools.partial(self.func, obj)
        bound.__self__ = obj
        bound.__func__ = self.func
        bound.__name__ = name
        bound.__wrapped__ = _LazySignature(obj, name)
        obj.__dict__[name] = bound
        return bound


class FunctionLike:
    """Function behaviour for loss objects.

    A subclass provides ``_function_name()`` (default: ``self.name``) and
    ``_parameters(method)``, the ``inspect.Parameter`` list of ``__call__``,
    ``grad`` or ``value_and_grad``, and may override ``_reduce_by_value``.
    """

    __slots__ = ()

    def _function_name(self):
        return self.name

    @_ForInstances
    def __name__(self):  # noqa: PLE0307 - a function's name, computed
        return self._function_name()

    @_ForInstances
    def __signature__(self):
        return self._signature()

    def _signature(self, method="__call__"):
        """``inspect.Signature`` of ``loss(...)`` (default), ``loss.grad(...)``
        or ``loss.value_and_grad(...)``."""
        if method not in ("__call__", "grad", "value_and_grad"):
            raise ValueError(f"method must be '__call__', 'grad' or 'value_and_grad', got {method!r}")
        return inspect.Signature(self._parameters(method))

    def _set_function_attrs(self):
        # __qualname__ is an instance attribute (a class cannot hold a
        # descriptor of that name) or comes from qualname_fallback.
        self.__qualname__ = self._function_name()

    @staticmethod
    def qualname_fallback(self, name):
        """A ``__getattr__`` for classes whose ``__qualname__`` is computed on
        demand (``Combined``: its name is its formula)."""
        if name == "__qualname__":
            return self._function_name()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __reduce_ex__(self, protocol):
        name = _registered(self)
        if name is not None:
            return name  # pickle's global reference to fastloss.NAME; copy returns self
        return self._reduce_by_value(protocol)

    def _reduce_by_value(self, protocol):
        return object.__reduce_ex__(self, protocol)


# --- fastloss.Loss (the single-input losses of the C++ core) -----------------

_INPUTS = {}


def input_names(name):
    """The names of a core loss's two inputs (``("y_true", "y_pred")``, or
    ``("boxes_true", "boxes_pred")`` for box_iou, ...), as the core parses them:
    read from its own message for too many positional arguments."""
    names = _INPUTS.get(name)
    if names is None:
        names = ("y_true", "y_pred")
        try:
            _core.Loss(name)(0, 0, 0)
        except TypeError as e:
            m = re.search(r"positional arguments \((\w+), (\w+)\)", str(e))
            if m:
                names = (m.group(1), m.group(2))
        _INPUTS[name] = names
    return names


#: The keywords of a per-segment call (after the loss's options).
SEGMENT_PARAMETERS = ("offsets", "segment_ids", "num_segments")


def core_loss_parameters(loss, method):
    """(y_true, y_pred, *, reduction='mean', weights=None[, out=None][, hits=None],
    option=default, ..., offsets=None, segment_ids=None, num_segments=None)"""
    t, p = input_names(loss.name)
    params = [inspect.Parameter(t, _POS), inspect.Parameter(p, _POS),
              inspect.Parameter("reduction", _KW, default="mean"),
              inspect.Parameter("weights", _KW, default=None)]
    if method != "__call__":
        params.append(inspect.Parameter("out", _KW, default=None))
    info = _core.loss_info(loss.name)
    if info["driver"] == "label_rows" and not info["metric"]:
        params.append(inspect.Parameter("hits", _KW, default=None))
    params.extend(inspect.Parameter(k, _KW, default=v) for k, v in loss.options.items())
    params.extend(inspect.Parameter(k, _KW, default=None) for k in SEGMENT_PARAMETERS)
    return params


def new_core_loss(cls, *args, **kwargs):
    """``fastloss.Loss.__new__``: ``cls(name)`` with a registered loss name,
    initialised here (``__init__`` does nothing more), so that no instance
    without one can be made."""
    if len(args) + len(kwargs) != 1 or (kwargs and "name" not in kwargs):
        raise TypeError(f"{cls.__name__}() takes one argument, the name of a loss "
                        f"({len(args) + len(kwargs)} given)")
    name = args[0] if args else kwargs["name"]
    if not isinstance(name, str):
        raise TypeError(f"{cls.__name__}(): the loss name must be a str, got {type(name).__name__}")
    self = _core.Loss.__new__(cls)
    _core.Loss.__init__(self, name)  # ValueError for an unknown name: self is dropped
    self._set_function_attrs()
    return self


def init_core_loss(self, *args, **kwargs):
    """``fastloss.Loss.__init__``: the object was made whole by ``__new__``."""


def guard_subclass_new(cls, **kwargs):
    """``fastloss.Loss.__init_subclass__``: a subclass's own ``__new__`` is
    wrapped so that it returns only losses made whole by ``new_core_loss``
    (which sets their ``__qualname__``); one it got by another route, such as
    ``super(fl.Loss, cls).__new__(cls)`` (the core's bare allocation), is a
    TypeError and is dropped unused."""
    super(FunctionLike, cls).__init_subclass__(**kwargs)
    own = cls.__dict__.get("__new__")
    if own is None:
        return
    func = own.__func__ if isinstance(own, staticmethod) else own

    def __new__(klass, *args, **kw):
        self = func(klass, *args, **kw)
        if isinstance(self, _core.Loss) and "__qualname__" not in vars(self):
            raise TypeError(f"{klass.__name__}.__new__ returned a loss that was not made with a "
                            "registered name (call super().__new__(cls, name))")
        return self

    functools.update_wrapper(__new__, func)
    cls.__new__ = staticmethod(__new__)


new_core_loss.__signature__ = inspect.Signature([inspect.Parameter("cls", _POS), inspect.Parameter("name", _POS)])
init_core_loss.__signature__ = inspect.Signature([inspect.Parameter("self", _POS), inspect.Parameter("name", _POS)])


def _importable(cls):
    obj = sys.modules.get(getattr(cls, "__module__", None) or "")
    for part in cls.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj is cls


def core_loss_from(name, cls=None):
    """Unpickles a core loss that is not fastloss.NAME itself: a new object of
    its class (when importable) or of the registered loss's class."""
    if cls is None:
        import importlib

        cls = type(getattr(importlib.import_module(MODULE), name))
    return cls(name)


def reduce_core_loss(self, protocol):
    """By value: the loss's name (and its class when that is importable)."""
    cls = type(self)
    return core_loss_from, (self.name, cls if _importable(cls) else None)
