"""The type stub of the fastloss package (``__init__.pyi``), made from the
registry at build time (CMake runs ``python/stubgen.py`` on the built
``_core``), so that no loss name is restated by hand. Plain Python with no
imports of the package: the build loads only the compiled ``_core``."""

HEADER = '''\
"""Type stubs of fastloss (generated from the loss registry at build time)."""

from ._core import Loss as _CoreLoss
from ._core import get_num_threads as get_num_threads
from ._core import set_num_threads as set_num_threads
from ._core import simd_target as simd_target
from . import cuda as cuda
from ._structured import Combinable as _Combinable
from ._structured import Combined as Combined
from ._structured import Configured as Configured
from ._structured import MultiLoss as MultiLoss
from ._accumulate import Accumulator as Accumulator
from ._accumulate import AccumulatorFactory as AccumulatorFactory
from ._confusion import ConfusionAccumulator as ConfusionAccumulator
from ._confusion import ConfusionMetric as ConfusionMetric

__version__: str

class Loss(_CoreLoss, _Combinable):
    def with_options(self, **options: object) -> Configured: ...
    @property
    def accumulator(self) -> AccumulatorFactory: ...

class Metric(Loss):
    is_metric: bool

class _L2Penalty:
    def __call__(self, arrays: object, lam: float) -> object: ...
    def grad(self, arrays: object, lam: float) -> object: ...
    def value_and_grad(self, arrays: object, lam: float) -> object: ...

'''

def render(core):
    """The text of ``__init__.pyi`` for the registry of ``core`` (fastloss._core)."""
    lines = [HEADER]
    aliases = []
    for name in core.loss_names():
        lines.append(f"{name}: {'Metric' if core.loss_info(name).get('metric') else 'Loss'}\n")
        aliases += core.loss_info(name)["aliases"]
    confusion = ["confusion_counts"] + [row["name"] for row in core.confusion_info()["scores"]]
    lines += [f"{name}: ConfusionMetric\n" for name in confusion]
    for name in core.multi_loss_names():  # the losses of other arguments
        penalty = core.loss_info(name)["driver"] == "penalty"
        lines.append(f"{name}: {'_L2Penalty' if penalty else 'MultiLoss'}\n")
    lines += [f"{alias}: Loss\n" for alias in aliases]
    lines.append("LOSSES: dict[str, Loss]\nMETRICS: dict[str, object]\nALIASES: dict[str, str]\n"
                 "OTHER_LOSSES: dict[str, object]\n")
    return "".join(lines)
