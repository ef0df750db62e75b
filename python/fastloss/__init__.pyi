from ._core import Loss as _CoreLoss
from ._core import get_num_threads as get_num_threads
from ._core import set_num_threads as set_num_threads
from ._core import simd_target as simd_target
from . import cuda as cuda
from ._structured import Combinable as _Combinable
from ._structured import Combined as Combined
from ._structured import Configured as Configured
from ._structured import MultiLoss as MultiLoss

__version__: str

class Loss(_CoreLoss, _Combinable):
    def with_options(self, **options: object) -> Configured: ...

class _L2Penalty:
    def __call__(self, arrays: object, lam: float) -> object: ...
    def grad(self, arrays: object, lam: float) -> object: ...
    def value_and_grad(self, arrays: object, lam: float) -> object: ...

mse: Loss
mae: Loss
huber: Loss
smooth_l1: Loss
log_cosh: Loss
msle: Loss
mape: Loss
poisson_nll: Loss
quantile: Loss
tweedie: Loss
binary_cross_entropy: Loss
binary_focal: Loss
hinge: Loss
squared_hinge: Loss
soft_margin: Loss
hinge_embedding: Loss
categorical_cross_entropy: Loss
sparse_categorical_cross_entropy: Loss
categorical_focal: Loss
categorical_hinge: Loss
multi_margin: Loss
nll: Loss
kl_divergence: Loss
jensen_shannon: Loss
dice: Loss
jaccard: Loss
tversky: Loss
focal_tversky: Loss
box_iou: Loss
cosine_similarity: Loss
contrastive: Loss
cosine_embedding: MultiLoss
triplet_margin: MultiLoss
contrastive_pairs: MultiLoss
margin_ranking: MultiLoss
pairwise_ranking: MultiLoss
gan_discriminator: MultiLoss
gan_generator: MultiLoss
wasserstein_critic: MultiLoss
wasserstein_generator: MultiLoss
gradient_penalty: MultiLoss
l2_penalty: _L2Penalty
bce: Loss
cce: Loss
sparse_cce: Loss
mean_squared_error: Loss
mean_absolute_error: Loss
LOSSES: dict[str, Loss]
ALIASES: dict[str, str]
OTHER_LOSSES: dict[str, object]
