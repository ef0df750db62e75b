"""fastloss: loss functions and their gradients, many times faster than NumPy.

Every loss is an object with the same three entry points::

    import fastloss as fl
    v = fl.huber(y_true, y_pred, delta=1.0)                  # reduced value
    g = fl.huber.grad(y_true, y_pred, delta=1.0)             # d value / d y_pred
    v, g = fl.huber.value_and_grad(y_true, y_pred, out=buf)  # one pass
    per = fl.huber(y_true, y_pred, reduction="none")         # per element

See ``help(fl.NAME)`` for each loss's formula, options and gradient.
"""

from . import _core, cuda
from . import _function
from ._core import get_num_threads, set_num_threads, simd_target
from ._docs import DOCS as _DOCS
from ._structured import (
    MULTI as _MULTI,
    Combinable as _Combinable,
    Combined,
    Configured,
    MultiLoss,
    contrastive_pairs,
    cosine_embedding,
    gan_discriminator,
    gan_generator,
    gradient_penalty,
    l2_penalty,
    margin_ranking,
    pairwise_ranking,
    triplet_margin,
    wasserstein_critic,
    wasserstein_generator,
)

__version__: str = _core.__version__


class Loss(_function.FunctionLike, _core.Loss, _Combinable):
    """A loss function and its gradient (see the instance's docstring).

    Losses combine: ``0.5 * fl.mse + 0.5 * fl.huber.with_options(delta=2.0)``
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

    def with_options(self, **options):
        """This loss with some options fixed (a ``Configured`` loss)."""
        return Configured(self, options)


def _make(name: str) -> Loss:
    cls = type(name, (Loss,), {"__doc__": _DOCS[name], "__module__": __name__})
    return cls(name)


mse = _make("mse")
mae = _make("mae")
huber = _make("huber")
smooth_l1 = _make("smooth_l1")
log_cosh = _make("log_cosh")
msle = _make("msle")
mape = _make("mape")
poisson_nll = _make("poisson_nll")
quantile = _make("quantile")
binary_cross_entropy = _make("binary_cross_entropy")
binary_focal = _make("binary_focal")
hinge = _make("hinge")
squared_hinge = _make("squared_hinge")
soft_margin = _make("soft_margin")
categorical_cross_entropy = _make("categorical_cross_entropy")
sparse_categorical_cross_entropy = _make("sparse_categorical_cross_entropy")
categorical_focal = _make("categorical_focal")
categorical_hinge = _make("categorical_hinge")
multi_margin = _make("multi_margin")
nll = _make("nll")
kl_divergence = _make("kl_divergence")
jensen_shannon = _make("jensen_shannon")
dice = _make("dice")
jaccard = _make("jaccard")
tversky = _make("tversky")
focal_tversky = _make("focal_tversky")
box_iou = _make("box_iou")
cosine_similarity = _make("cosine_similarity")
contrastive = _make("contrastive")

mean_squared_error = mse
mean_absolute_error = mae
bce = binary_cross_entropy
cce = categorical_cross_entropy
sparse_cce = sparse_categorical_cross_entropy

#: Every loss of the (y_true, y_pred, **options) form by name (aliases not repeated).
LOSSES = {name: globals()[name] for name in _core.loss_names()}
#: The losses of other arguments (several inputs, lists of arrays) by name.
OTHER_LOSSES = dict(_MULTI, l2_penalty=l2_penalty)

__all__ = [
    "LOSSES",
    "OTHER_LOSSES",
    "Loss",
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
    "mean_squared_error",
    "mean_absolute_error",
    "bce",
    "cce",
    "sparse_cce",
]
