from ._core import Loss as _CoreLoss
from ._core import get_num_threads as get_num_threads
from ._core import set_num_threads as set_num_threads
from ._core import simd_target as simd_target

__version__: str

class Loss(_CoreLoss): ...

mse: Loss
mae: Loss
huber: Loss
smooth_l1: Loss
log_cosh: Loss
msle: Loss
mape: Loss
poisson_nll: Loss
quantile: Loss
binary_cross_entropy: Loss
binary_focal: Loss
hinge: Loss
squared_hinge: Loss
soft_margin: Loss
categorical_cross_entropy: Loss
sparse_categorical_cross_entropy: Loss
categorical_focal: Loss
categorical_hinge: Loss
multi_margin: Loss
nll: Loss
kl_divergence: Loss
jensen_shannon: Loss
bce: Loss
cce: Loss
sparse_cce: Loss
mean_squared_error: Loss
mean_absolute_error: Loss
LOSSES: dict[str, Loss]
