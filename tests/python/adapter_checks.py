"""Inputs shared by the framework adapters' tests (test_torch.py,
test_jax_multi.py): valid arrays for each loss of several inputs, in
fastloss.NAME's argument order."""

import numpy as np


def multi_case(name, rng, dtype=np.float64):
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    if name == "gaussian_nll":
        return [r(12, 3), r(12, 3), (rng.random((12, 3)) + 0.2).astype(dtype)]
    if name in ("cosine_embedding",):
        return [r(12, 5), r(12, 5), rng.choice([-1.0, 1.0], 12).astype(dtype)]
    if name == "triplet_margin":
        return [r(12, 5), r(12, 5), r(12, 5)]
    if name == "contrastive_pairs":
        return [rng.integers(0, 2, 12).astype(dtype), r(12, 5), r(12, 5)]
    if name == "margin_ranking":
        return [r(12), r(12), rng.choice([-1.0, 1.0], 12).astype(dtype)]
    if name in ("gan_discriminator", "wasserstein_critic"):
        return [r(12), r(9)]
    if name in ("gan_generator", "wasserstein_generator"):
        return [r(12)]
    if name == "gradient_penalty":
        return [r(12, 4)]
    raise AssertionError(name)
