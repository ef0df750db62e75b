"""Helpers shared by the reference modules: float64 conversion and the
overflow-free logistic functions."""

import numpy as np


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def softplus(z):
    """sp(z) = log(1 + exp(z)) = log1p(exp(-|z|)) + max(z, 0), without overflow."""
    z = _f64(z)
    return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0)


def sigmoid(z):
    """1 / (1 + exp(-z)), written so that neither branch overflows."""
    z = _f64(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
