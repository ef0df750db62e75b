"""fastloss: loss functions and their gradients, many times faster than NumPy.

Every loss is an object with the same three entry points::

    import fastloss as fl
    v = fl.smooth_l1(y_true, y_pred, beta=1.0)                  # reduced value
    g = fl.smooth_l1.grad(y_true, y_pred, beta=1.0)             # d value / d y_pred
    v, g = fl.smooth_l1.value_and_grad(y_true, y_pred, out=buf)  # one pass
    per = fl.smooth_l1(y_true, y_pred, reduction="none")         # per element

See ``help(fl.NAME)`` for each loss's formula, options and gradient, and
``fl.LOSSES`` for the list (made from the C++ core's registry).
"""

from . import _core, cuda
from . import _function
from ._accumulate import Accumulator, AccumulatorFactory
from ._confusion import CONFUSION as _CONFUSION, ConfusionAccumulator, ConfusionMetric
from ._accumulate import accumulator_property as _accumulator_property
from ._core import get_num_threads, set_num_threads, simd_target
from ._docs import render as _render_doc
from ._structured import (
    MULTI as _MULTI,
    Combinable as _Combinable,
    Combined,
    Configured,
    MultiLoss,
)

__version__: str = _core.__version__


class Loss(_function.FunctionLike, _core.Loss, _Combinable):
    """A loss function and its gradient (see the instance's docstring).

    Losses combine: ``0.5 * fl.mse + 0.5 * fl.smooth_l1.with_options(beta=2.0)``
    is a ``Combined`` loss with the same three methods.
    """

    __slots__ = ()

    # Made whole in __new__ (a registered name or an error), so that no
    # uninitialised core object is ever reachable; function behaviour from
    # FunctionLike (fastloss/_function.py).
    __new__ = _function.new_core_loss
    __init__ = _function.init_core_loss
    __init_subclass__ = _function.guard_subclass_new
    _parameters = _function.core_loss_parameters
    _reduce_by_value = _function.reduce_core_loss

    #: True for the evaluation metrics (``fastloss.Metric``), which have no gradient.
    is_metric = False

    def with_options(self, **options):
        """This loss with some options fixed (a ``Configured`` loss)."""
        return Configured(self, options)

    #: ``fl.NAME.accumulator(reduction="mean", **options)``: a streaming,
    #: exactly mergeable :class:`Accumulator` of this loss.
    accumulator = property(_accumulator_property)


class Metric(Loss):
    """An evaluation metric of the registry (accuracy, top-k accuracy): called
    like a loss (reductions, weights, segments, accumulators, Dask arrays),
    value only. It is piecewise constant: ``grad`` and ``value_and_grad``
    raise TypeError, and it does not combine with losses.
    """

    __slots__ = ()

    is_metric = True



def _make(name: str) -> Loss:
    info = _core.loss_info(name)
    base = Metric if info["metric"] else Loss
    cls = type(name, (base,), {"__doc__": _render_doc(info), "__module__": __name__})
    return cls(name)


#: Every loss of the (y_true, y_pred, **options) form by name (aliases not
#: repeated), made from the registry of the C++ core.
LOSSES = {}
#: The evaluation metrics (value only): the registry rows of the losses' form
#: (``binary_accuracy``, ``categorical_accuracy``,
#: ``sparse_categorical_accuracy``: ``fastloss.Metric``) and the confusion
#: metrics (``confusion_counts``, ``precision``, ``recall``, ``f1_score``,
#: ``fbeta_score``, ``specificity``: ``fastloss.ConfusionMetric``).
METRICS = {}
#: Alternative names (``bce``, ``mean_squared_error``, ...) -> the loss's name.
ALIASES = {}
for _name in _core.loss_names():
    _obj = _make(_name)
    (METRICS if _obj.is_metric else LOSSES)[_name] = globals()[_name] = _obj
    for _alias in _core.loss_info(_name)["aliases"]:
        ALIASES[_alias] = _name
        globals()[_alias] = _obj
del _name, _obj
if ALIASES:
    del _alias

# The metrics of confusion counts (confusion_counts, precision, recall,
# f1_score, fbeta_score, specificity: fastloss/confusion.hpp).
METRICS.update(_CONFUSION)
globals().update(_CONFUSION)

#: The losses of other arguments (several inputs, lists of arrays) by name,
#: made from the C++ core's registry (FASTLOSS_MULTI_LOSSES).
OTHER_LOSSES = dict(_MULTI)
globals().update(OTHER_LOSSES)

__all__ = [
    "LOSSES",
    "METRICS",
    "OTHER_LOSSES",
    "ALIASES",
    "Loss",
    "Metric",
    "ConfusionMetric",
    "ConfusionAccumulator",
    "Accumulator",
    "AccumulatorFactory",
    "Combined",
    "Configured",
    "MultiLoss",
    "cuda",
    *OTHER_LOSSES,
    "__version__",
    "get_num_threads",
    "set_num_threads",
    "simd_target",
    *LOSSES,
    *METRICS,
    *ALIASES,
]
